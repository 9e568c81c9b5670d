"""The SLA sweep: reminders for open cases nearing their due time, escalation of overdue ones."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from exceptions import notifications
from exceptions.events import CaseBreached
from exceptions.models import OPEN_CASE_STATES, ExceptionCase
from exceptions.services.common import owner_name
from portal.audit.services import audit_record
from portal.core.events import emit


@dataclass
class CaseSweepResult:
    reminded: int = 0
    escalated: int = 0


def case_sla_sweep(*, now: datetime | None = None) -> CaseSweepResult:
    """Remind the people of open cases nearing their due time, and escalate overdue ones.

    Each case is handled in its own transaction with its row locked and already-locked rows
    skipped, and each reminder or escalation is marked on the case, so two sweeps running at
    once (or one running twice) never act twice.
    """
    now = now or timezone.now()
    result = CaseSweepResult()
    unescalated = ExceptionCase.objects.filter(
        state__in=OPEN_CASE_STATES, escalated_at__isnull=True
    ).order_by()
    # Overdue cases first: a case the sweep finds already overdue is escalated, not reminded.
    for case_id in unescalated.filter(due_at__lte=now).values_list("pk", flat=True):
        _sweep_breach(case_id, now, result)
    reminders = unescalated.filter(remind_at__lte=now, reminded_at__isnull=True)
    for case_id in reminders.values_list("pk", flat=True):
        _sweep_reminder(case_id, now, result)
    return result


def _swept(case_id: int) -> ExceptionCase | None:
    return (
        ExceptionCase.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("site__region")
        .filter(pk=case_id, state__in=OPEN_CASE_STATES, escalated_at__isnull=True)
        .first()
    )


def _sweep_breach(case_id: int, now: datetime, result: CaseSweepResult) -> None:
    with transaction.atomic():
        case = _swept(case_id)
        if case is None or case.due_at is None or case.due_at > now:
            return
        case.escalated_at = now
        case.save(update_fields=["escalated_at"])
        audit_record(
            action="case.escalated",
            actor=None,
            obj=case,
            site=case.site,
            before={"escalated_at": None},
            after={"due_at": case.due_at, "escalation_role": case.escalation_role},
        )
        notifications.case_escalated(case.pk)
        emit(CaseBreached(case))
        result.escalated += 1


def _sweep_reminder(case_id: int, now: datetime, result: CaseSweepResult) -> None:
    with transaction.atomic():
        case = _swept(case_id)
        if case is None or case.reminded_at is not None or not case.remind_at:
            return
        if case.remind_at > now:
            return
        case.reminded_at = now
        case.save(update_fields=["reminded_at"])
        audit_record(
            action="case.reminded",
            actor=None,
            obj=case,
            site=case.site,
            before={"reminded_at": None},
            after={"due_at": case.due_at, "owner": owner_name(case)},
        )
        notifications.case_reminder(case.pk)
        result.reminded += 1
