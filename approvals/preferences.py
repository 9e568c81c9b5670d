"""Notification preferences: the one write that changes them and the reads notifications use.

`approvals.notifications` asks `muted(...)` which of the people it is about to e-mail chose not
to hear about this kind of event, in one query for the whole audience. People who chose a
daily digest are told once a day what waits for them (`send_daily_digests`).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from approvals.models import NotificationPreference
from portal.audit.services import audit_record

Pref = NotificationPreference


def preference_for(user) -> NotificationPreference:
    """The user's preferences, or the defaults (unsaved) when they never chose."""
    found = Pref.objects.filter(user=user.pk).first()
    return found or Pref(user=user)


def notification_preference_set(
    *, actor, user, new_steps: str, reminders: bool, decisions_on_my_requests: bool
) -> NotificationPreference:
    """Change how `user` is notified; people change only their own. Locks the preference row."""
    if actor is None or actor.pk != user.pk:
        raise PermissionDenied("You may change only your own notification preferences.")
    if new_steps not in Pref.NewSteps.values:
        raise ValidationError({"new_steps": f"Choose one of {', '.join(Pref.NewSteps.values)}."})
    with transaction.atomic():
        preference, _ = Pref.objects.select_for_update().get_or_create(user=user)
        before = _summary(preference)
        preference.new_steps = new_steps
        preference.reminders = reminders
        preference.decisions_on_my_requests = decisions_on_my_requests
        preference.updated_at = timezone.now()
        preference.full_clean()
        preference.save()
        after = _summary(preference)
        if after != before:
            audit_record(
                action="notifications.preferences_changed",
                actor=actor,
                obj=preference,
                before=before,
                after=after,
                reference=f"notification preferences of {user.get_username()}",
            )
    return preference


def _summary(preference: NotificationPreference) -> dict:
    return {
        "new_steps": preference.new_steps,
        "reminders": preference.reminders,
        "decisions_on_my_requests": preference.decisions_on_my_requests,
    }


def muted(user_ids, reason: str) -> set[int]:
    """Of `user_ids`, those who chose not to get an e-mail for `reason` (one query).

    Reasons: "activated" (a new decision waits), "reminder", "escalated", "decided" (a request
    they raised was decided).
    """
    user_ids = list(user_ids)
    if not user_ids or reason == "escalated":
        return set()
    rows = Pref.objects.filter(user__in=user_ids)
    if reason == "activated":
        rows = rows.exclude(new_steps=Pref.NewSteps.IMMEDIATE)
    elif reason == "reminder":
        rows = rows.filter(reminders=False)
    elif reason == "decided":
        rows = rows.filter(decisions_on_my_requests=False)
    else:
        return set()
    return set(rows.values_list("user", flat=True))


def send_daily_digests(*, now: datetime | None = None) -> int:
    """E-mail each person who chose the digest what waits for them now; returns mails sent.

    Safe to run twice: a person gets at most one digest per 20 hours.
    """
    from approvals.selectors import inbox_for

    now = now or timezone.now()
    due = Pref.objects.filter(new_steps=Pref.NewSteps.DIGEST, user__is_active=True).exclude(
        last_digest_at__gt=now - timedelta(hours=20)
    )
    messages, sent_to = [], []
    for preference in due.select_related("user"):
        person = preference.user
        waiting = inbox_for(person, at=now, limit=50).requests
        if waiting and person.email:
            messages.append(_digest_message(person, waiting))
        sent_to.append(preference.pk)
    sent = send_mass_mail(messages, fail_silently=False) if messages else 0
    Pref.objects.filter(pk__in=sent_to).update(last_digest_at=now)
    return sent


def _digest_message(person, waiting: list):
    from approvals.notifications import request_link

    # The template shows each due time in its own site's zone: one digest may span several.
    body = render_to_string(
        "manage/email/digest.txt",
        {"person": person, "items": [(request, request_link(request)) for request in waiting]},
    )
    subject = f"[Tollgate] {len(waiting)} decision{'s' if len(waiting) != 1 else ''} waiting"
    return subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]
