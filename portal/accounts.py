"""Failed sign-ins, and the password reset: Django's views, made safe to put on the sign-in page.

A failed sign-in (at /accounts/login/, /admin/login/, or during a lockout) is counted in the
cache per account, or "unknown" when the typed name matches no account, per client address
and per window of SIGN_IN_FAILURE_WINDOW_SECONDS; only the first failure of each such window
appends a summary to the ledger, which carries the count of the window before. A script that
rotates usernames therefore adds at most one event per address and window, where it used to add
one per attempt to a table nothing may delete from. Each attempt is also kept, outside the
ledger, in SignInFailure, purged after SIGN_IN_FAILURE_RETENTION_DAYS. A typed name that matches
no account is often a password typed into the wrong field: it is kept nowhere in clear, only as
a keyed hash (HMAC-SHA256 under a key derived from SECRET_KEY), which still shows the same text
tried again and again. Lockouts (django-axes) key on that hash as well.

The request page answers the same whether or not the address belongs to anyone, and does the
same work for both: it hands the address to a task, which looks it up and mails only an active
account, so neither the answer nor its timing tells who has an account. Both the
address and the client's IP address are rate-limited through the shared cache, so the form can
be used neither to find out who has an account nor to flood someone's mailbox. The e-mailed
link is built on TOLLGATE_BASE_URL, never on the Host header of the request that asked for it.
The link works once (Django's token is bound to the password it replaces) and for
PASSWORD_RESET_TIMEOUT seconds; the new password signs out every other session of the person.
"""

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.crypto import salted_hmac

from portal.audit.services import audit_record
from portal.client_ip import client_ip

logger = logging.getLogger(__name__)

_KEY_PREFIX = "password-reset"
_USERNAME_LIMIT = 150
# Axes' name for a typed username that matches no account; ":" is never part of a username.
UNKNOWN_PREFIX = "unknown:"


# --- failed sign-ins ------------------------------------------------------------------------


def username_digest(typed: str) -> str:
    """The keyed hash a typed name that matches no account is kept as (64 hex digits)."""
    return salted_hmac("tollgate.sign-in.typed-username", typed, algorithm="sha256").hexdigest()


def _account_named(typed: str):
    return get_user_model().objects.filter(username=typed).first() if typed else None


def lockout_username(request, credentials) -> str | None:
    """AXES_USERNAME_CALLABLE: the typed name if it is an account's, else its keyed hash."""
    if credentials:
        typed = credentials.get("username")
    else:
        typed = getattr(request, "data", request.POST).get("username")
    if typed is None:
        return None
    typed = str(typed)[:_USERNAME_LIMIT]
    if typed.startswith(UNKNOWN_PREFIX) or _account_named(typed) is None:
        return UNKNOWN_PREFIX + username_digest(typed)
    return typed


def _who(typed) -> tuple:
    """(account or None, digest or "") for a typed name, or for axes' name of one."""
    typed = str(typed or "")[: _USERNAME_LIMIT + len(UNKNOWN_PREFIX)]
    if typed.startswith(UNKNOWN_PREFIX):
        return None, typed[len(UNKNOWN_PREFIX) :][:64]
    typed = typed[:_USERNAME_LIMIT]
    account = _account_named(typed)
    return account, "" if account is not None else username_digest(typed)


def _count(key: str, timeout: int) -> int | None:
    """Count one failure under `key`; the count so far, or None when the cache cannot say."""
    try:
        return _counted(key, timeout)
    except Exception:  # a cache outage must not turn a failed sign-in into an error page
        logger.warning("sign-in failure not counted: the cache is unavailable", exc_info=True)
        return None


def _previous(key: str) -> int | None:
    try:
        return cache.get(key)
    except Exception:
        return None


def _summarise(*, action: str, account, address: str | None, reference: str) -> None:
    """Append `action`'s summary for (account or unknown, address) once per window."""
    window = settings.SIGN_IN_FAILURE_WINDOW_SECONDS
    now = timezone.now()
    index = int(now.timestamp() // window)
    subject = str(account.pk) if account is not None else "unknown"
    key = f"sign-in:{action}:{subject}:{address or '-'}"
    count = _count(f"{key}:{index}", 2 * window)
    if count is not None and count > 1:
        return
    context = {
        "client_ip": address,
        "account_known": account is not None,
        "window_start": datetime.fromtimestamp(index * window, tz=UTC).isoformat(),
        "window_seconds": window,
    }
    previous = _previous(f"{key}:{index - 1}")
    if previous is not None:
        context["previous_window_failures"] = previous
    with transaction.atomic():
        audit_record(
            action=action,
            actor=None,
            obj=account if account is not None else get_user_model()(),
            reference=reference[:200],
            context=context,
        )


def record_sign_in_failure(request, typed) -> None:
    """One failed sign-in: a row of detail, and the window's summary in the ledger if first."""
    from portal.audit.models import SignInFailure

    account, digest = _who(typed)
    address = client_ip(request) if request is not None else None
    locked = bool(getattr(request, "axes_locked_out", False))
    SignInFailure.objects.create(
        account=account,
        username_digest=digest,
        client_ip=address,
        path=(request.path if request is not None else "")[:200],
        locked_out=locked,
    )
    to = account.get_username() if account is not None else "an unknown account"
    _summarise(
        action="auth.sign_in_failed",
        account=account,
        address=address,
        reference=f"failed sign-ins to {to} from {address or 'an unknown address'}",
    )


def record_lockout(request, typed, address: str | None) -> None:
    """Sign-in locked for (name, address): in the ledger once per window, however often hit."""
    account, _ = _who(typed)
    to = account.get_username() if account is not None else "an unknown account"
    _summarise(
        action="auth.locked_out",
        account=account,
        address=address,
        reference=f"lockout of {to} from {address or 'an unknown address'}",
    )


def purge_sign_in_failures(*, now: datetime | None = None) -> int:
    """Delete the failed-sign-in detail older than the retention period; returns how many."""
    from portal.audit.models import SignInFailure

    cutoff = (now or timezone.now()) - timedelta(days=settings.SIGN_IN_FAILURE_RETENTION_DAYS)
    deleted, _ = SignInFailure.objects.filter(at__lt=cutoff).delete()
    return deleted


# --- password reset ---------------------------------------------------------------------------


def _hit(kind: str, value: str) -> int:
    """Count one request against `value` in the current window; return the count so far."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    key = f"{_KEY_PREFIX}:{kind}:{digest}"
    return _counted(key, settings.PASSWORD_RESET_RATE_WINDOW_SECONDS)


def _counted(key: str, window: int) -> int:
    """Count one more under `key` in a window of `window` seconds; the count so far."""
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        # The window ended between add() and incr(): this one opens a new window.
        cache.set(key, 1, timeout=window)
        return 1


def send_password_reset_mail(address: str) -> int:
    """Mail a reset link to every active account with this address (usually one, often none).

    Runs in a worker for every request the form accepts; returns how many mails were sent.
    """
    from django.contrib.auth.forms import PasswordResetForm

    form = PasswordResetForm(data={"email": address})
    if not form.is_valid():
        return 0
    users = list(form.get_users(form.cleaned_data["email"]))
    if not users:
        return 0
    base_url = settings.TOLLGATE_BASE_URL.rstrip("/")
    form.save(
        domain_override=urlsplit(base_url).netloc,
        subject_template_name=PasswordResetView.subject_template_name,
        email_template_name=PasswordResetView.email_template_name,
        use_https=base_url.startswith("https://"),
        extra_email_context={"base_url": base_url},
    )
    return len(users)


class PasswordResetView(auth_views.PasswordResetView):
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        address = form.cleaned_data["email"].strip().lower()
        per_address = _hit("address", address)
        per_ip = _hit("ip", client_ip(self.request) or "unknown")
        limit = settings.PASSWORD_RESET_RATE_LIMIT
        if per_address > limit or per_ip > 4 * limit:
            minutes = max(1, settings.PASSWORD_RESET_RATE_WINDOW_SECONDS // 60)
            return render(
                self.request,
                "registration/password_reset_limited.html",
                {"minutes": minutes},
                status=429,
            )
        # The request only hands the address to a task, known or not: the look-up and the mail
        # happen in a worker, so the time the answer takes says nothing about the address.
        from portal.celery import broker_outage_logged
        from portal.tasks import password_reset_mail

        with broker_outage_logged("password-reset mail"):
            password_reset_mail.delay(form.cleaned_data["email"])
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            audit_record(action="auth.password_reset", actor=form.user, obj=form.user)
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response
