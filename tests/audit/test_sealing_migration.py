"""A ledger written before the sequencer carries over: migration 0004 keeps its chain as it was.

The events the old code appended were sealed as they were written; after the migration new
events arrive unsealed, the sequencer continues the same chain from its head, and
`verify_audit` passes across the boundary.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from portal.audit import chain
from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from tests import ledger

BEFORE = [("audit", "0003_append_only")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _append_the_old_way(apps, site_id: int, comment: str) -> None:
    """What portal.audit.services did before the sequencer: seal at insert, under the lock."""
    Event = apps.get_model("audit", "AuditEvent")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x5447415544495400])
        head = Event.objects.order_by("-sequence").values_list("sequence", "hash").first()
        sequence, previous = head or (0, chain.GENESIS)
        event = Event(
            sequence=sequence + 1,
            action="test.old_code",
            actor_label="tollgate",
            object_type="sites.site",
            object_id=str(site_id),
            object_reference="before the sequencer",
            site_id=site_id,
            comment=comment,
            context={},
            prev_hash=previous,
        )
        event.hash = chain.seal(chain.payload(event))
        event.save(force_insert=True)


@pytest.mark.django_db(transaction=True)
def test_a_ledger_written_by_the_old_code_verifies_across_the_migration(site_a1):
    if connection.vendor == "postgresql":
        ledger.seal_all()
    _migrate(BEFORE)
    old_apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    for number in range(3):
        _append_the_old_way(old_apps, site_a1.pk, f"old {number}")
    old = dict(
        old_apps.get_model("audit", "AuditEvent")
        .objects.filter(action="test.old_code")
        .values_list("sequence", "hash")
    )

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    with transaction.atomic():
        audit_record(action="test.new_code", actor=None, obj=site_a1, comment="new 0")
        audit_record(action="test.new_code", actor=None, obj=site_a1, comment="new 1")
    if connection.vendor == "postgresql":
        ledger.seal_all()
    carried = dict(
        AuditEvent.objects.filter(action="test.old_code").values_list("sequence", "hash")
    )
    assert carried == old  # numbers and hashes as the old code sealed them
    assert not AuditEvent.objects.filter(action="test.old_code", sealed_at__isnull=False).exists()
    new = list(AuditEvent.objects.filter(action="test.new_code").order_by("sequence"))
    assert new[0].sequence == max(old) + 1
    assert new[0].prev_hash == old[max(old)]
    assert all(event.sealed_at is not None for event in new)

    out, err = StringIO(), StringIO()
    call_command("verify_audit", workers=1, stdout=out, stderr=err)
    assert "Audit ledger intact" in out.getvalue(), err.getvalue()
