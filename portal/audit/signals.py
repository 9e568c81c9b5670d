"""Sign-ins, failed sign-ins and lockouts, recorded in the ledger as they happen."""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from portal.audit.services import audit_record

_USERNAME_LIMIT = 150


def _user_named(username: str):
    return get_user_model().objects.filter(username=username).first() if username else None


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(action="auth.signed_in", actor=user, obj=user)


@receiver(user_logged_out)
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        with transaction.atomic():
            audit_record(action="auth.signed_out", actor=user, obj=user)


@receiver(user_login_failed)
def _sign_in_failed(sender, credentials, request=None, **kwargs):
    # The password is never recorded; the username as typed is, because that is the evidence.
    username = str(credentials.get("username", ""))[:_USERNAME_LIMIT]
    known = _user_named(username)
    with transaction.atomic():
        audit_record(
            action="auth.sign_in_failed",
            actor=None,
            obj=known or get_user_model()(username=username),
            reference=f"sign-in as {username!r}",
            context={"username": username, "known_user": known is not None},
        )


@receiver(user_locked_out)
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    username = str(username or "")[:_USERNAME_LIMIT]
    known = _user_named(username)
    with transaction.atomic():
        audit_record(
            action="auth.locked_out",
            actor=None,
            obj=known or get_user_model()(username=username),
            reference=f"lockout of {username!r}",
            context={"username": username, "locked_ip": ip_address},
        )
