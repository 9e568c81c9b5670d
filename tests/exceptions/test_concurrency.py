"""Case SLA sweeps racing each other, on real connections with real row locks."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from exceptions.services import case_raise, case_sla_sweep
from portal.audit.models import AuditEvent
from portal.webhooks.models import OutboundDelivery

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs row locks between connections; SQLite serialises every writer anyway",
    ),
    pytest.mark.django_db(transaction=True),
]

DETECTED = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SWEEPS = 4


def sweep_at_once(now: datetime) -> list:
    """Run SWEEPS sweeps at the same moment, one thread and connection each."""
    barrier = threading.Barrier(SWEEPS)
    results: list = [None] * SWEEPS

    def run(index):
        try:
            barrier.wait(timeout=10)
            results[index] = vars(case_sla_sweep(now=now))
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(SWEEPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a sweep never returned"
    return results


def test_sweeps_running_at_once_remind_and_escalate_each_case_once(
    site_a1, finance, regional_manager, subscriber, mailoutbox
):
    cases = [
        case_raise(
            kind="invoice_mismatch",
            site=site_a1,
            severity="high",
            title=f"Bill {n} differs from its order",
            source="odoo",
            dedupe_key=f"bill-{n}",
            payload={},
            evidence={},
            amount_at_stake=Decimal("100"),
            currency="EUR",
            at=DETECTED,
        )[0]
        for n in range(8)
    ]

    reminding = sweep_at_once(DETECTED + timedelta(hours=18, minutes=1))
    escalating = sweep_at_once(DETECTED + timedelta(hours=24, minutes=1))

    assert not [r for r in reminding + escalating if isinstance(r, Exception)]
    assert sum(r["reminded"] for r in reminding) == len(cases)
    assert sum(r["escalated"] for r in escalating) == len(cases)
    ids = {str(case.pk) for case in cases}
    for action in ("case.reminded", "case.escalated"):
        events = AuditEvent.objects.filter(action=action)
        assert Counter(events.values_list("object_id", flat=True)) == dict.fromkeys(ids, 1)
    breaches = OutboundDelivery.objects.filter(event__type="sla.breached")
    assert breaches.filter(state="delivered").count() == len(cases)
    sent = Counter((m.subject.split(":")[0], m.to[0]) for m in mailoutbox)
    assert sent == {
        ("[Tollgate] Case due soon", finance.email): len(cases),
        ("[Tollgate] Case overdue", regional_manager.email): len(cases),
    }
