"""Raising exception cases: queue, deadline, evidence, and one open case per event."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from exceptions.models import CaseState, ExceptionCase, Queue
from exceptions.services import case_raise
from portal.audit.models import AuditEvent


def _raise(site, **overrides):
    values = {
        "kind": "invoice_mismatch",
        "site": site,
        "severity": "high",
        "title": "Bill BILL/2026/0042 differs from PO00042",
        "source": "odoo",
        "dedupe_key": "odoo:account.move:42:invoice_mismatch",
        "payload": {"id": 42},
        "evidence": {"difference": "120.00", "tolerance_pct": "2"},
        "amount_at_stake": Decimal("120.00"),
        "currency": "EUR",
        "odoo_model": "account.move",
        "odoo_id": 42,
    }
    return case_raise(**(values | overrides))


def test_invoice_mismatch_lands_in_the_finance_queue_with_a_deadline(site_a1):
    before = timezone.now()
    case, created = _raise(site_a1)

    assert created
    assert (case.queue, case.state) == (Queue.FINANCE, CaseState.NEW)
    assert before + timedelta(hours=24) <= case.due_at <= timezone.now() + timedelta(hours=24)
    assert AuditEvent.objects.filter(action="case.opened", object_id=str(case.pk)).exists()


def test_the_same_event_seen_again_joins_the_open_case(site_a1):
    first, _ = _raise(site_a1)
    again, created = _raise(site_a1, evidence={"difference": "150.00"}, amount_at_stake=150)

    assert not created
    assert again.pk == first.pk
    assert ExceptionCase.objects.count() == 1
    again.refresh_from_db()
    assert again.occurrences == 2
    assert again.evidence == {"difference": "150.00"}
