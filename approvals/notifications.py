"""E-mails to the people who have something to do now: what, why, by when, and a link.

Functions here are called after the transaction commits and only enqueue a Celery task, so a
slow mail server never holds a database lock and a rolled-back change never sends mail.
"""

import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mass_mail
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

logger = logging.getLogger(__name__)


def step_activated(step_ids: list[int]) -> None:
    """Tell the eligible people of newly active tiers that a decision waits for them."""
    from approvals.tasks import notify_steps

    if step_ids:
        notify_steps.delay(step_ids, "activated")


def step_reminder(step_ids: list[int]) -> None:
    """Remind the eligible people that a tier is three quarters through its SLA."""
    from approvals.tasks import notify_steps

    if step_ids:
        notify_steps.delay(step_ids, "reminder")


def step_escalated(step_id: int) -> None:
    """Tell the people an escalation added, and the original ones, that a tier is overdue."""
    from approvals.tasks import notify_steps

    notify_steps.delay([step_id], "escalated")


def request_decided(request_id: int) -> None:
    """Tell the requester how their request ended."""
    from approvals.tasks import notify_requester

    notify_requester.delay(request_id)


def request_link(request) -> str:
    """The absolute address of the request's page, for e-mails."""
    try:
        path = reverse("approvals:detail", args=[request.pk])
    except NoReverseMatch:
        path = f"/approvals/{request.pk}/"
    return f"{settings.TOLLGATE_BASE_URL.rstrip('/')}{path}"


def send_step_mail(step_ids: list[int], reason: str) -> int:
    """Send one e-mail per person and tier; returns how many were sent."""
    from approvals.models import ApprovalStep, StepState
    from approvals.selectors import step_audience

    messages = []
    steps = ApprovalStep.objects.filter(pk__in=step_ids, state=StepState.ACTIVE).select_related(
        "request__site", "request__requester"
    )
    for step in steps:
        for person in step_audience(step):
            if person.email:
                messages.append(_step_message(step, person, reason))
    sent = send_mass_mail(messages, fail_silently=False) if messages else 0
    logger.info("approval notifications sent", extra={"count": sent, "reason": reason})
    return sent


def _step_message(step, person, reason: str):
    request = step.request
    local_due = (
        timezone.localtime(step.due_at, ZoneInfo(request.site.time_zone)) if step.due_at else None
    )
    context = {
        "step": step,
        "request": request,
        "person": person,
        "reason": reason,
        "due": local_due,
        "link": request_link(request),
    }
    prefix = {"activated": "Decision needed", "reminder": "Reminder", "escalated": "Escalated"}
    subject = f"[Tollgate] {prefix[reason]}: {request.reference} {request.title}"[:200]
    body = render_to_string("approvals/email/step.txt", context)
    return subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]


def send_requester_mail(request_id: int) -> int:
    """Tell the requester how their request ended; returns how many e-mails were sent."""
    from approvals.models import ApprovalRequest

    request = ApprovalRequest.objects.select_related("requester", "site").get(pk=request_id)
    if not request.requester.email:
        return 0
    body = render_to_string(
        "approvals/email/decided.txt", {"request": request, "link": request_link(request)}
    )
    subject = f"[Tollgate] {request.reference} {request.get_state_display().lower()}"
    return send_mass_mail(
        [(subject, body, settings.DEFAULT_FROM_EMAIL, [request.requester.email])],
        fail_silently=False,
    )
