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


def seal_all() -> int:
    """What the beat job does every few seconds: seal what the writers' own seals left.

    A writer seals after its commit without waiting for the chain; when another sealer holds
    it, the writer's events wait for the next seal. Retries briefly while the lock is taken.
    """
    import time

    from portal.audit import sequencer
    from portal.audit.models import AuditEvent

    # The sealer thread, woken by the fixtures' commits, could otherwise seal whatever the test
    # writes next after this returns: let it finish first.
    sequencer.settle()
    total = 0
    for _ in range(200):
        total += sequencer.seal()
        if not AuditEvent.objects.filter(sequence__isnull=True).exists():
            return total
        time.sleep(0.05)
    raise AssertionError("events stayed unsealed")
