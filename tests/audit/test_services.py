"""Appending to the ledger: events held back to the end of a change, alone and concurrently."""

import threading

import pytest
from django.db import connection, transaction

from portal.audit import chain
from portal.audit.models import AuditEvent
from portal.audit.services import appended_at_end, audit_record
from portal.audit.verify import verify_chain
from sites import services as site_services
from tests import ledger


def _record(obj, action: str, comment: str = ""):
    return audit_record(action=action, actor=None, obj=obj, comment=comment)


def test_held_back_events_are_appended_in_order_as_the_block_ends(site_a1):
    before = AuditEvent.objects.count()
    with transaction.atomic(), appended_at_end():
        first = _record(site_a1, "test.first")
        second = _record(site_a1, "test.second")
        assert AuditEvent.objects.count() == before
        assert first.sequence is None and first.pk is None

    assert AuditEvent.objects.count() == before + 2
    assert second.sequence == first.sequence + 1
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(pk=second.pk)
    assert stored.action == "test.second"
    assert chain.seal(chain.payload(stored)) == stored.hash
    assert verify_chain().intact


def test_a_block_left_by_an_error_appends_nothing(site_a1):
    before = AuditEvent.objects.count()
    with pytest.raises(ValueError), transaction.atomic(), appended_at_end():
        _record(site_a1, "test.lost")
        raise ValueError("the change failed")

    assert AuditEvent.objects.count() == before
    with transaction.atomic():
        _record(site_a1, "test.after")
    assert AuditEvent.objects.count() == before + 1


def test_a_nested_block_appends_with_the_outer_one(site_a1):
    before = AuditEvent.objects.count()
    with transaction.atomic(), appended_at_end():
        _record(site_a1, "test.outer")
        with appended_at_end():
            _record(site_a1, "test.inner")
        assert AuditEvent.objects.count() == before
    actions = list(AuditEvent.objects.order_by("-sequence").values_list("action", flat=True)[:2])
    assert actions == ["test.inner", "test.outer"]


@pytest.mark.django_db(transaction=True)
def test_holding_back_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"), appended_at_end():
        pass


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs concurrent connections; SQLite serialises every writer anyway",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_keep_their_events_together_and_the_chain_whole(region_a):
    site = site_services.site_create(
        actor=None,
        code="CH1",
        name="Concurrent changes",
        region=region_a,
        time_zone="Europe/Amsterdam",
        currency="EUR",
        odoo_company_id=1,
    )
    writers = 24
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def change(number: int) -> None:
        try:
            start.wait()
            with transaction.atomic():
                if number % 2:
                    with appended_at_end():
                        for part in range(3):
                            _record(site, "test.held_back", comment=f"{number}.{part}")
                else:
                    _record(site, "test.at_once", comment=str(number))
        except BaseException as error:  # collected and asserted below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    ledger.seal_all()
    verdict = verify_chain()
    assert verdict.intact, verdict.reason
    held_back = list(
        AuditEvent.objects.filter(action="test.held_back")
        .order_by("sequence")
        .values_list("sequence", "comment")
    )
    assert len(held_back) == 3 * (writers // 2)
    for first in range(0, len(held_back), 3):
        group = held_back[first : first + 3]
        assert len({comment.split(".")[0] for _, comment in group}) == 1, group
        assert [sequence for sequence, _ in group] == list(range(group[0][0], group[0][0] + 3))
