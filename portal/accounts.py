"""Password reset: Django's views, made safe to put on the sign-in page.

The request page answers the same whether or not the address belongs to anyone, and both the
address and the client's IP address are rate-limited through the shared cache, so the form can
be used neither to find out who has an account nor to flood someone's mailbox. The e-mailed
link is built on TOLLGATE_BASE_URL, never on the Host header of the request that asked for it.
The link works once (Django's token is bound to the password it replaces) and for
PASSWORD_RESET_TIMEOUT seconds; the new password signs out every other session of the person.
"""

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.db import transaction
from django.shortcuts import render
from django.urls import reverse_lazy

from portal.audit.services import audit_record
from portal.client_ip import client_ip

_KEY_PREFIX = "password-reset"


def _hit(kind: str, value: str) -> int:
    """Count one request against `value` in the current window; return the count so far."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    key = f"{_KEY_PREFIX}:{kind}:{digest}"
    window = settings.PASSWORD_RESET_RATE_WINDOW_SECONDS
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        # The window ended between add() and incr(): this request opens a new one.
        cache.set(key, 1, timeout=window)
        return 1


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
        self.extra_email_context = {"base_url": settings.TOLLGATE_BASE_URL.rstrip("/")}
        return super().form_valid(form)

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
