"""E-mails about exception cases nearing or past their due time.

Services call these inside their transaction; the mail is enqueued as a Celery task only once
the transaction commits, so a rolled-back sweep never sends anything and a slow mail server
never holds a row lock.
"""

import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = {"reminder": "Case due soon", "escalated": "Case overdue"}


def case_reminder(case_id: int) -> None:
    """Tell the owner (or, for an unowned case, its queue's people) that it falls due soon."""
    _on_commit(case_id, "reminder")


def case_escalated(case_id: int) -> None:
    """Tell the escalation role at the case's site or region, and its owner, that it is late."""
    _on_commit(case_id, "escalated")


def _on_commit(case_id: int, reason: str) -> None:
    from exceptions.tasks import notify_case
    from portal.celery import broker_outage_logged

    def send() -> None:
        with broker_outage_logged(f"case {case_id} {reason} mail"):
            notify_case.delay(case_id, reason)

    transaction.on_commit(send)


def send_case_mail(case_id: int, reason: str) -> int:
    """Send one e-mail per person who should hear about the case; returns how many were sent."""
    from exceptions.models import ExceptionCase
    from exceptions.selectors import case_audience

    case = ExceptionCase.objects.select_related("site", "owner").filter(pk=case_id).first()
    if case is None:
        return 0
    messages = [
        _message(case, person, reason) for person in case_audience(case, reason) if person.email
    ]
    sent = send_mass_mail(messages, fail_silently=False) if messages else 0
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
