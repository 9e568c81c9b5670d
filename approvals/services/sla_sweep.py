"""The SLA sweep: reminders at 75 % of each active tier's SLA, and breaches at 100 %."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from approvals import notifications, sla
from approvals.events import StepBreached
from approvals.models import ApprovalStep, Decision, OnBreach, Outcome, RequestState, StepState
from approvals.services.common import audit_transition, locked
from approvals.services.review import (
    after_final_decision,
    close_open_steps,
    complete_step,
    refresh_due,
)
from portal.audit.services import audit_record
from portal.core.events import emit

S = RequestState


@dataclass
class SweepResult:
    reminded: int = 0
    escalated: int = 0
    expired: int = 0
    rejected: int = 0


def sla_sweep(*, now: datetime | None = None) -> SweepResult:
    """Remind at 75 % of each active tier's SLA, and act on breaches at 100 %.

    Each request is handled in its own transaction with its row locked and already-locked rows
    skipped, and each reminder or breach is marked on the step, so two sweeps running at once
    (or one running twice) never act twice.
    """
    now = now or timezone.now()
    result = SweepResult()
    # Unordered, or the steps' default ordering would defeat DISTINCT.
    due = ApprovalStep.objects.filter(
        state=StepState.ACTIVE, request__state=S.IN_REVIEW, escalated_at__isnull=True
    ).order_by()
    breached = due.filter(due_at__lte=now)
    for request_id in breached.values_list("request_id", flat=True).distinct():
        _sweep_breaches(request_id, now, result)
    # Breaches go first: a tier the sweep finds already overdue is escalated, not reminded.
    reminders = due.filter(remind_at__lte=now, reminded_at__isnull=True)
    for request_id in reminders.values_list("request_id", flat=True).distinct():
        _sweep_reminders(request_id, now, result)
    return result


def _sweep_breaches(request_id: int, now: datetime, result: SweepResult) -> None:
    with transaction.atomic():
        request = locked(request_id, skip_locked=True)
        if request is None or request.state != S.IN_REVIEW:
            return
        steps = request.steps.filter(
            round=request.round, state=StepState.ACTIVE, due_at__lte=now, escalated_at__isnull=True
        )
        for step in steps:
            step.escalated_at = now
            emit(StepBreached(request, step, action=step.on_breach))
            if step.on_breach == OnBreach.ESCALATE:
                step.escalated_role = step.escalation_role
                step.due_at = sla.deadline(
                    now, step.sla_hours, site=request.site, business_hours=step.business_hours
                )
                step.save(update_fields=["escalated_at", "escalated_role", "due_at"])
                audit_record(
                    action="step.escalated",
                    actor=None,
                    obj=request,
                    site=request.site,
                    policy_version=request.policy_version,
                    after={"tier": step.position, "added_role": step.escalation_role},
                )
                result.escalated += 1
                notifications.step_escalated(step.pk)
                continue
            step.save(update_fields=["escalated_at"])
            _breach_ends_request(request, step, result)
            return
        refresh_due(request)


def _breach_ends_request(request, step, result: SweepResult) -> None:
    complete_step(step, ApprovalStep.expire)
    close_open_steps(request)
    comment = f"Tier {step.position} passed its SLA of {step.sla_hours} h."
    if step.on_breach == OnBreach.EXPIRE:
        request.expire()
        action, result.expired = "request.expired", result.expired + 1
    else:
        request.reject()
        decision = Decision.objects.create(
            request=request,
            step=step,
            outcome=Outcome.REJECT,
            actor=None,
            round=request.round,
            policy_version=request.policy_version,
            comment=comment,
        )
        request.last_decided_at = decision.at
        action, result.rejected = "request.rejected", result.rejected + 1
    request.save()
    audit_transition(request, None, action, S.IN_REVIEW, comment=comment)
    after_final_decision(request)


def _sweep_reminders(request_id: int, now: datetime, result: SweepResult) -> None:
    with transaction.atomic():
        request = locked(request_id, skip_locked=True)
        if request is None or request.state != S.IN_REVIEW:
            return
        steps = list(
            request.steps.filter(
                round=request.round,
                state=StepState.ACTIVE,
                remind_at__lte=now,
                reminded_at__isnull=True,
                escalated_at__isnull=True,
            )
        )
        for step in steps:
            step.reminded_at = now
            step.save(update_fields=["reminded_at"])
            audit_record(
                action="step.reminded",
                actor=None,
                obj=request,
                site=request.site,
                after={"tier": step.position, "due_at": step.due_at},
            )
            result.reminded += 1
        if steps:
            notifications.step_reminder([step.pk for step in steps])
