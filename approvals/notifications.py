"""E-mails to the people who have something to do now: what, why, by when, and a link.

Services call these functions inside their transaction. Each notification is written there as a
row of the notification outbox (portal.notify), so it commits with the change or not at all: a
rolled-back change never sends mail, and a committed one always does, even if the broker is
down at that moment (beat's outbox drain sends it later). Nothing is sent inside the
transaction, so a slow mail server never holds a lock of the change. On commit the new rows are
handed to a worker; bulk work (the Odoo sync raising hundreds of requests) wraps itself in
`batched()`, which hands all of its rows over in a handful of tasks instead of one per request.
The e-mails are rendered when they are sent, from what is true then.
"""

import logging
import threading
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from portal.notify import services as outbox
from portal.notify.models import Topic

logger = logging.getLogger(__name__)
_local = threading.local()


class _Outgoing:
    """Outbox rows written together, handed to workers as few tasks when called (on commit)."""

    def __init__(self):
        self.seen: set[tuple[str, int, str]] = set()
        self.item_ids: list[int] = []

    def add(self, topic: str, object_ids, reason: str = "") -> None:
        fresh = [pk for pk in dict.fromkeys(object_ids) if (topic, pk, reason) not in self.seen]
        if not fresh:
            return
        self.seen.update((topic, pk, reason) for pk in fresh)
        self.item_ids += outbox.outbox_add(topic, fresh, reason)

    def __call__(self) -> None:
        outbox.schedule(self.item_ids)


@contextmanager
def batched():
    """Hand the notifications of everything inside to workers as one set of tasks, on commit.

    Rows written in a savepoint that is rolled back inside disappear with it; their ids are
    skipped when sending.
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
    """Gathers like a batch and writes and sends nothing."""

    def add(self, topic: str, object_ids, reason: str = "") -> None:
        pass

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


def _tell(topic: str, object_ids, reason: str = "") -> None:
    batch = getattr(_local, "batch", None)
    if batch is not None:
        batch.add(topic, object_ids, reason)
        return
    outbox.schedule_on_commit(outbox.outbox_add(topic, list(dict.fromkeys(object_ids)), reason))


def step_activated(step_ids: list[int]) -> None:
    """Tell the eligible people of newly active tiers that a decision waits for them."""
    _tell(Topic.STEP, step_ids, "activated")


def step_reminder(step_ids: list[int]) -> None:
    """Remind the eligible people that a tier is three quarters through its SLA."""
    _tell(Topic.STEP, step_ids, "reminder")


def step_escalated(step_id: int) -> None:
    """Tell the people an escalation added, and the original ones, that a tier is overdue."""
    _tell(Topic.STEP, [step_id], "escalated")


def request_decided(request_id: int) -> None:
    """Tell the requester how their request ended."""
    _tell(Topic.REQUEST, [request_id])


def send_step_notification(step_id: int, reason: str, *, connection=None) -> int:
    """The outbox's sender for one tier's notification (see portal.notify.services)."""
    return send_step_mail([step_id], reason, connection=connection)


def send_requester_notification(request_id: int, reason: str = "", *, connection=None) -> int:
    """The outbox's sender for a requester's notification (see portal.notify.services)."""
    return send_requester_mail([request_id], connection=connection)


def step_labels(step_ids: list[int]) -> dict[int, str]:
    """What tier notifications are about, for the outbox admin: "Tier 2 of AR-…"."""
    from approvals.models import ApprovalStep

    steps = ApprovalStep.objects.filter(pk__in=step_ids).select_related("request")
    return {step.pk: f"Tier {step.position} of {step.request.reference}" for step in steps}


def request_labels(request_ids: list[int]) -> dict[int, str]:
    """What requesters' notifications are about, for the outbox admin: the reference."""
    from approvals.models import ApprovalRequest

    return {pk: ApprovalRequest(pk=pk).reference for pk in request_ids}


def request_link(request) -> str:
    """The absolute address of the request's page, for e-mails."""
    try:
        path = reverse("approvals:detail", args=[request.pk])
    except NoReverseMatch:
        path = f"/approvals/{request.pk}/"
    return f"{settings.TOLLGATE_BASE_URL.rstrip('/')}{path}"


def send_step_mail(step_ids: list[int], reason: str, *, connection=None) -> int:
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
    sent = send_mass_mail(messages, fail_silently=False, connection=connection) if messages else 0
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


def send_requester_mail(request_ids: list[int], *, connection=None) -> int:
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
    return send_mass_mail(messages, fail_silently=False, connection=connection) if messages else 0
