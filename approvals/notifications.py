"""E-mails to the people who have something to do now: what, why, by when, and a link.

Services call these functions inside their transaction; nothing is sent then. What there is to
tell is enqueued as Celery tasks only once the transaction commits, so a rolled-back change
never sends mail and a slow mail server never holds a database lock. Bulk work (the Odoo sync
raising hundreds of requests) wraps itself in `batched()`, which gathers everything into a
handful of tasks instead of one per request.
"""

import logging
import threading
from collections import defaultdict
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

logger = logging.getLogger(__name__)
_local = threading.local()


class _Outgoing:
    """Notifications gathered together, enqueued as few tasks when called."""

    def __init__(self):
        self.steps: dict[str, set[int]] = defaultdict(set)
        self.requests: set[int] = set()

    def __call__(self) -> None:
        from approvals.tasks import notify_requesters, notify_steps
        from portal.celery import broker_outage_logged

        with broker_outage_logged("approval notifications"):
            for reason, step_ids in self.steps.items():
                if step_ids:
                    notify_steps.delay(sorted(step_ids), reason)
            if self.requests:
                notify_requesters.delay(sorted(self.requests))


@contextmanager
def batched():
    """Gather the notifications of everything inside into one set of tasks, sent on commit.

    Steps of rows rolled back inside are dropped when sending, which reads only active steps.
    """
    if getattr(_local, "batch", None) is not None:
        yield
        return
    _local.batch = _Outgoing()
    try:
        yield
        transaction.on_commit(_local.batch)
    finally:
        _local.batch = None


class _Silenced(_Outgoing):
    """Gathers like a batch and sends nothing."""

    def __call__(self) -> None:
        pass


@contextmanager
def silenced():
    """Nothing inside tells anyone: for history written after the fact, such as the demo's
    past ninety days, whose people must not be mailed about decisions long made."""
    previous = getattr(_local, "batch", None)
    _local.batch = _Silenced()
    try:
        yield
    finally:
        _local.batch = previous


def is_silenced() -> bool:
    return isinstance(getattr(_local, "batch", None), _Silenced)


def _outgoing() -> _Outgoing:
    batch = getattr(_local, "batch", None)
    if batch is not None:
        return batch
    single = _Outgoing()
    transaction.on_commit(single)
    return single


def step_activated(step_ids: list[int]) -> None:
    """Tell the eligible people of newly active tiers that a decision waits for them."""
    _outgoing().steps["activated"].update(step_ids)


def step_reminder(step_ids: list[int]) -> None:
    """Remind the eligible people that a tier is three quarters through its SLA."""
    _outgoing().steps["reminder"].update(step_ids)


def step_escalated(step_id: int) -> None:
    """Tell the people an escalation added, and the original ones, that a tier is overdue."""
    _outgoing().steps["escalated"].add(step_id)


def request_decided(request_id: int) -> None:
    """Tell the requester how their request ended."""
    _outgoing().requests.add(request_id)


def request_link(request) -> str:
    """The absolute address of the request's page, for e-mails."""
    try:
        path = reverse("approvals:detail", args=[request.pk])
    except NoReverseMatch:
        path = f"/approvals/{request.pk}/"
    return f"{settings.TOLLGATE_BASE_URL.rstrip('/')}{path}"


def send_step_mail(step_ids: list[int], reason: str) -> int:
    """Send one e-mail per person and tier; returns how many were sent."""
    from approvals.authority import audience as step_audience
    from approvals.models import ApprovalStep, StepState
    from approvals.preferences import muted

    messages = []
    steps = ApprovalStep.objects.filter(pk__in=step_ids, state=StepState.ACTIVE).select_related(
        "request__site", "request__requester"
    )
    for step in steps:
        audience = step_audience(step)
        # People who chose a digest, or no e-mail, for this reason are left out.
        silenced = muted([person.pk for person in audience], reason)
        for person in audience:
            if person.email and person.pk not in silenced:
                messages.append(_step_message(step, person, reason))
    sent = send_mass_mail(messages, fail_silently=False) if messages else 0
    logger.info("approval notifications sent", extra={"count": sent, "reason": reason})
    return sent


def _step_message(step, person, reason: str):
    request = step.request
    context = {
        "step": step,
        "request": request,
        "person": person,
        "reason": reason,
        "due": step.due_at,
        "link": request_link(request),
        "decide_link": _decide_link(step, person),
    }
    prefix = {"activated": "Decision needed", "reminder": "Reminder", "escalated": "Escalated"}
    # One line: a title typed with a line break would make the mail header invalid.
    title = " ".join(request.title.split())
    subject = f"[Tollgate] {prefix[reason]}: {request.reference} {title}"[:200]
    # Times on the page read in the site's own zone, whoever receives the e-mail.
    with timezone.override(ZoneInfo(request.site.time_zone)):
        body = render_to_string("approvals/email/step.txt", context)
    return subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]


def _decide_link(step, person) -> str:
    """A single-use, signed link for `person` to decide `step` (see approvals.email_links)."""
    from approvals.email_links import link_url

    try:
        return link_url(step, person)
    except NoReverseMatch:
        return ""


def send_requester_mail(request_ids: list[int]) -> int:
    """Tell each requester how their request ended; returns how many e-mails were sent."""
    from approvals.models import ApprovalRequest
    from approvals.preferences import muted

    messages = []
    requests = ApprovalRequest.objects.filter(pk__in=request_ids).select_related(
        "requester", "site"
    )
    for request in requests:
        if not request.requester.email or muted([request.requester_id], "decided"):
            continue
        with timezone.override(ZoneInfo(request.site.time_zone)):
            body = render_to_string(
                "approvals/email/decided.txt", {"request": request, "link": request_link(request)}
            )
        subject = f"[Tollgate] {request.reference} {request.get_state_display().lower()}"
        messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [request.requester.email]))
    return send_mass_mail(messages, fail_silently=False) if messages else 0
