"""E-mails about exception cases nearing or past their due time.

Services call these inside their transaction; each notification is written there as a row of
the notification outbox (portal.notify), so a rolled-back sweep never sends anything, a
committed one always does (even if the broker is down at that moment: beat's outbox drain
sends it later), and a slow mail server never holds a row lock of the case.
"""

import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mass_mail
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from portal.notify import services as outbox
from portal.notify.models import Topic

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = {"reminder": "Case due soon", "escalated": "Case overdue"}


def case_reminder(case_id: int) -> None:
    """Tell the owner (or, for an unowned case, its queue's people) that it falls due soon."""
    outbox.schedule_on_commit(outbox.outbox_add(Topic.CASE, [case_id], "reminder"))


def case_escalated(case_id: int) -> None:
    """Tell the escalation role at the case's site or region, and its owner, that it is late."""
    outbox.schedule_on_commit(outbox.outbox_add(Topic.CASE, [case_id], "escalated"))


def send_case_notification(case_id: int, reason: str, *, connection=None) -> int:
    """The outbox's sender for one case's notification (see portal.notify.services)."""
    return send_case_mail(case_id, reason, connection=connection)


def case_labels(case_ids: list[int]) -> dict[int, str]:
    """What case notifications are about, for the outbox admin: the reference."""
    from exceptions.models import ExceptionCase

    return {pk: ExceptionCase(pk=pk).reference for pk in case_ids}


def send_case_mail(case_id: int, reason: str, *, connection=None) -> int:
    """Send one e-mail per person who should hear about the case; returns how many were sent."""
    from exceptions.models import ExceptionCase
    from exceptions.selectors import case_audience

    case = ExceptionCase.objects.select_related("site", "owner").filter(pk=case_id).first()
    if case is None:
        return 0
    messages = [
        _message(case, person, reason) for person in case_audience(case, reason) if person.email
    ]
    sent = send_mass_mail(messages, fail_silently=False, connection=connection) if messages else 0
    logger.info("case notifications sent", extra={"count": sent, "reason": reason})
    return sent


def _message(case, person, reason: str):
    # One line: a title carried in from a webhook may hold line breaks, which a header may not.
    title = " ".join(case.title.split())
    subject = f"[Tollgate] {SUBJECT_PREFIX[reason]}: {case.reference} {title}"[:200]
    context = {"case": case, "person": person, "reason": reason, "link": _link(case)}
    # Times read in the site's own zone, whoever receives the e-mail.
    with timezone.override(ZoneInfo(case.site.time_zone)):
        body = render_to_string("exceptions/email/case.txt", context)
    return subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]


def _link(case) -> str:
    try:
        path = reverse("exceptions:detail", args=[case.pk])
    except NoReverseMatch:
        path = f"/exceptions/{case.pk}/"
    return f"{settings.TOLLGATE_BASE_URL.rstrip('/')}{path}"
