"""The database's own refusal to change the ledger: triggers on UPDATE, DELETE and TRUNCATE.

An event's content is final when it is inserted. The one UPDATE the database lets through is the
sequencer's seal: setting `sequence`, `prev_hash`, `hash` and `sealed_at` of an event that has
none of them yet, all four at once, with every other column unchanged. Once sealed, an event
cannot change at all. PostgreSQL raises `insufficient_privilege` for anything else (and for any
DELETE or TRUNCATE); SQLite (no TRUNCATE there) aborts the UPDATE or DELETE. Only a database
superuser who disables triggers can get past them, and `verify_audit` then reports the first
event whose stored bytes no longer match the chain.

Migration 0003 installed the first form (no UPDATE at all, `install_v1`); migration 0004
replaces it with `install`.
"""

from portal.audit import chain

TABLE = "audit_auditevent"
# The columns the seal fills in, once, from empty; every other column is the event's content.
SEAL_COLUMNS = ("sequence", "prev_hash", "hash", "sealed_at")
# The event's content: its id, the columns the hash covers but for the chain links, and txid.
CONTENT_COLUMNS = (
    "id",
    *(column for column in chain.COLUMNS if column not in SEAL_COLUMNS),
    "txid",
)
_UNSEALED_BECOMES_SEALED = " AND ".join(
    [f"OLD.{column} IS NULL" for column in SEAL_COLUMNS]
    + [f"NEW.{column} IS NOT NULL" for column in SEAL_COLUMNS]
)
_SEAL_NAMES = "{" + ",".join(SEAL_COLUMNS) + "}"

POSTGRESQL_INSTALL = f"""
CREATE OR REPLACE FUNCTION audit_ledger_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND {_UNSEALED_BECOMES_SEALED}
       AND to_jsonb(NEW) - '{_SEAL_NAMES}'::text[] = to_jsonb(OLD) - '{_SEAL_NAMES}'::text[] THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit ledger is append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_ledger_no_update_or_delete ON {TABLE};
DROP TRIGGER IF EXISTS audit_ledger_no_truncate ON {TABLE};
CREATE TRIGGER audit_ledger_no_update_or_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_is_append_only();
CREATE TRIGGER audit_ledger_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_is_append_only();
"""
_CONTENT_UNCHANGED = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in CONTENT_COLUMNS)
SQLITE_INSTALL = [
    "DROP TRIGGER IF EXISTS audit_ledger_no_update",
    "DROP TRIGGER IF EXISTS audit_ledger_no_delete",
    f"""CREATE TRIGGER audit_ledger_no_update BEFORE UPDATE ON {TABLE}
    WHEN NOT ({_UNSEALED_BECOMES_SEALED} AND {_CONTENT_UNCHANGED})
    BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_ledger_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: DELETE refused'); END""",
]

POSTGRESQL_INSTALL_V1 = f"""
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
SQLITE_INSTALL_V1 = [
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
    """Make the ledger table refuse every change but the seal on this database."""
    _run(connection, POSTGRESQL_INSTALL, SQLITE_INSTALL)


def install_v1(connection) -> None:
    """The first form, which refused every UPDATE (migration 0003, before the sequencer)."""
    _run(connection, POSTGRESQL_INSTALL_V1, SQLITE_INSTALL_V1)


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
