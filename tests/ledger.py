"""What only a database superuser can do to the audit ledger: set its triggers aside.

Tests use it to empty the database after transactional tests and to play the tamperer; it is
deliberately not part of Tollgate itself.
"""

from portal.audit import triggers


def set_aside(connection) -> None:
    """Stop the ledger's triggers firing on this connection."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
    else:
        triggers.remove(connection)


def enforce(connection) -> None:
    """Make the ledger's triggers fire again on this connection."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
    else:
        triggers.install(connection)
