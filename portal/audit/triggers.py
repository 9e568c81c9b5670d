"""The database's own refusal to change the ledger: triggers on UPDATE, DELETE and TRUNCATE.

Installed by migration 0003. PostgreSQL raises `insufficient_privilege` for any UPDATE, DELETE
or TRUNCATE of the event table; SQLite (no TRUNCATE there) aborts UPDATE and DELETE. Only a
database superuser who disables triggers can get past them, and `verify_audit` then reports
the first event whose stored bytes no longer match the chain.
"""

TABLE = "audit_auditevent"

POSTGRESQL_INSTALL = f"""
CREATE OR REPLACE FUNCTION audit_ledger_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit ledger is append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_ledger_no_update_or_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_is_append_only();
CREATE TRIGGER audit_ledger_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_is_append_only();
"""
POSTGRESQL_REMOVE = f"""
DROP TRIGGER IF EXISTS audit_ledger_no_update_or_delete ON {TABLE};
DROP TRIGGER IF EXISTS audit_ledger_no_truncate ON {TABLE};
DROP FUNCTION IF EXISTS audit_ledger_is_append_only();
"""
SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS audit_ledger_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_ledger_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: DELETE refused'); END""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_ledger_no_update",
    "DROP TRIGGER IF EXISTS audit_ledger_no_delete",
]


def install(connection) -> None:
    """Make the ledger table refuse changes on this database."""
    _run(connection, POSTGRESQL_INSTALL, SQLITE_INSTALL)


def remove(connection) -> None:
    """Take the refusal away (only for reversing the migration)."""
    _run(connection, POSTGRESQL_REMOVE, SQLITE_REMOVE)


def _run(connection, postgresql: str, sqlite: list[str]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(postgresql)
        elif connection.vendor == "sqlite":
            for statement in sqlite:
                cursor.execute(statement)
        else:
            raise NotImplementedError(f"No ledger triggers for {connection.vendor}.")
