"""Sign-ins, failed sign-ins and lockouts, recorded in the ledger as they happen.

Failures and lockouts are summarised per account (or unknown), client address and window, and
their detail kept outside the ledger (portal.accounts): a flood of guesses cannot grow it.
"""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from portal.audit.services import audit_record


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
    # The password is never recorded, nor a typed name that matches no account.
    from portal.accounts import record_sign_in_failure

    record_sign_in_failure(request, credentials.get("username", ""))


@receiver(user_locked_out)
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    from portal.accounts import record_lockout

    record_lockout(request, username, ip_address)
