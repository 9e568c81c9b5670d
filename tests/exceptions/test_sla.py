"""The case SLA sweep: a reminder at the configured share of the time, an escalation when due.

An invoice mismatch of high severity lands in the finance queue with 24 clock hours: the
reminder falls due after 18 hours, the escalation after 24.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from exceptions import services, tasks
from exceptions.models import CaseDeadline, CaseState
from exceptions.services import case_raise, case_sla_sweep
from portal.audit.models import AuditEvent
from portal.celery import app
from portal.webhooks import openapi
from portal.webhooks.models import OutboundEvent
from sites.roles import Role
from tests.conftest import persona

DETECTED = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
BEFORE_REMINDER = DETECTED + timedelta(hours=17, minutes=59)
REMINDER = DETECTED + timedelta(hours=18, minutes=1)
OVERDUE = DETECTED + timedelta(hours=24, minutes=1)


def raised(site, *, kind="invoice_mismatch", key="bill-42", severity="high"):
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity=severity,
        title="Bill BILL/2026/0042 differs from PO00042",
        source="odoo",
        dedupe_key=key,
        payload={},
        evidence={},
        amount_at_stake=Decimal("120.00"),
        currency="EUR",
        at=DETECTED,
    )
    return case


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """One sweep at `now`, with the e-mails it enqueues sent as its transactions commit."""

    def run(now):
        with django_capture_on_commit_callbacks(execute=True):
            return case_sla_sweep(now=now)

    return run


def mail_to(mailoutbox) -> list[tuple[str, str]]:
    return sorted((message.subject.split(":")[0], message.to[0]) for message in mailoutbox)


def actions(case) -> list[str]:
    events = AuditEvent.objects.filter(object_type="exceptions.exceptioncase", object_id=case.pk)
    return list(events.values_list("action", flat=True))


def test_the_owner_is_reminded_once_at_three_quarters_of_the_time(
    site_a1, finance, sweep, mailoutbox
):
    case = raised(site_a1)
    services.case_assign(actor=finance, case_id=case.pk, owner=finance)

    assert vars(sweep(BEFORE_REMINDER)) == {"reminded": 0, "escalated": 0}
    assert vars(sweep(REMINDER)) == {"reminded": 1, "escalated": 0}
    assert vars(sweep(REMINDER + timedelta(minutes=5))) == {"reminded": 0, "escalated": 0}

    assert mail_to(mailoutbox) == [("[Tollgate] Case due soon", finance.email)]
    assert "Due:       Tue 5 May 10:00 CEST" in mailoutbox[0].body  # Amsterdam time
    assert f"/exceptions/{case.pk}/" in mailoutbox[0].body
    case.refresh_from_db()
    assert case.reminded_at == REMINDER
    assert actions(case).count("case.reminded") == 1


def test_an_unowned_case_reminds_the_people_of_its_queue(
    site_a1, finance, site_manager, regional_manager, sweep, mailoutbox
):
    raised(site_a1, kind="shipment_delay", severity="high")

    sweep(REMINDER)

    assert mail_to(mailoutbox) == sorted(
        [
            ("[Tollgate] Case due soon", site_manager.email),
            ("[Tollgate] Case due soon", regional_manager.email),
        ]
    )


def test_an_overdue_case_is_escalated_once_and_told_to_subscribers(
    site_a1, finance, regional_manager, outsider, subscriber, sweep, mailoutbox
):
    case = raised(site_a1)
    services.case_assign(actor=finance, case_id=case.pk, owner=finance)

    # Found already overdue: escalated, and no longer worth a reminder.
    assert vars(sweep(OVERDUE)) == {"reminded": 0, "escalated": 1}
    assert vars(sweep(OVERDUE + timedelta(hours=1))) == {"reminded": 0, "escalated": 0}

    case.refresh_from_db()
    assert case.escalated_at == OVERDUE
    assert case.state == CaseState.ASSIGNED
    assert mail_to(mailoutbox) == sorted(
        [
            ("[Tollgate] Case overdue", finance.email),
            ("[Tollgate] Case overdue", regional_manager.email),
        ]
    )
    assert actions(case).count("case.escalated") == 1
    breached = OutboundEvent.objects.get(type="sla.breached")
    assert set(breached.data) == set(openapi.CaseData().fields)
    assert breached.site == site_a1
    assert breached.deliveries.get().state == "delivered"
    assert breached.data == {
        "id": case.pk,
        "reference": case.reference,
        "kind": "invoice_mismatch",
        "site": "A1",
        "severity": "high",
        "queue": "finance",
        "state": "assigned",
        "amount": "120.00",
        "currency": "EUR",
        "due_at": "2026-05-05T08:00:00+00:00",
    }


def test_the_escalation_goes_to_the_role_the_deadline_names(
    site_a1, finance, regional_manager, sweep, mailoutbox
):
    services.case_deadline_save(
        actor=None,
        deadline=CaseDeadline(severity="high", hours=Decimal("24"), escalation_role="finance"),
    )
    raised(site_a1)

    sweep(OVERDUE)

    assert mail_to(mailoutbox) == [("[Tollgate] Case overdue", finance.email)]


def test_closed_cases_are_left_alone(site_a1, finance, sweep):
    case = raised(site_a1)
    services.case_dismiss(actor=finance, case_id=case.pk, reason="Duplicate bill")

    assert vars(sweep(OVERDUE)) == {"reminded": 0, "escalated": 0}


def test_a_reopened_case_gets_a_fresh_deadline_and_can_escalate_again(site_a1, finance, sweep):
    case = raised(site_a1)
    sweep(OVERDUE)
    services.case_dismiss(actor=finance, case_id=case.pk, reason="Paid already")
    reopened = services.case_reopen(actor=finance, case_id=case.pk, reason="It was not")

    assert reopened.escalated_at is None
    assert reopened.due_at > timezone.now() + timedelta(hours=23)
    assert vars(sweep(reopened.due_at + timedelta(minutes=1))) == {"reminded": 0, "escalated": 1}


def test_the_sweep_is_a_celery_task_on_the_beat_schedule(site_a1):
    raised(site_a1)

    entry = settings.CELERY_BEAT_SCHEDULE["exceptions-sla-sweep"]

    assert entry["task"] == "exceptions.sla_sweep" == tasks.sla_sweep.name
    assert "exceptions.sla_sweep" in app.tasks
    assert tasks.sla_sweep.delay().get() == {"reminded": 0, "escalated": 1}


def test_an_escalation_nobody_holds_goes_to_the_queue_instead(site_a1, finance, sweep, mailoutbox):
    # No regional manager in region A: the late case must still reach someone.
    raised(site_a1)

    sweep(OVERDUE)

    assert mail_to(mailoutbox) == [("[Tollgate] Case overdue", finance.email)]


def test_a_reminder_for_a_departed_owner_goes_to_the_queue(
    site_a1, finance, region_a, sweep, mailoutbox
):
    colleague = persona("finance.two", Role.FINANCE, region=region_a)
    case = raised(site_a1)
    services.case_assign(actor=finance, case_id=case.pk, owner=colleague)
    colleague.is_active = False
    colleague.save(update_fields=["is_active"])

    sweep(REMINDER)

    assert mail_to(mailoutbox) == [("[Tollgate] Case due soon", finance.email)]
