"""Who is calling: a user's API token (integrations) or the browser's session.

`Authorization: Token <secret>` and `Authorization: Bearer <secret>` are the same thing. An
unknown, expired or revoked token, or one of a deactivated user, answers 401: an integration
learns its credential is bad instead of being silently treated as anonymous.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal.api import selectors, services

KEYWORDS = ("token", "bearer")


class TokenAuthentication(authentication.BaseAuthentication):
    """Authenticates `Authorization: Token|Bearer <secret>`; `request.auth` is the ApiToken."""

    def authenticate(self, request):
        secret = presented_secret(request)
        if secret is None:
            return None
        token = usable_token(secret)
        if token is None:
            raise exceptions.AuthenticationFailed(
                _("The API token is unknown, expired or revoked."), code="token_invalid"
            )
        services.token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with this challenge) rather than 403 to an unauthenticated call.
        return 'Bearer realm="api"'


def presented_secret(request) -> str | None:
    """The secret in the Authorization header, or None when no token is presented."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].decode(errors="replace").lower() not in KEYWORDS:
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed(
            _("Send the token as 'Authorization: Bearer <token>'."), code="token_malformed"
        )
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed(
            _("The token contains characters a token never has."), code="token_malformed"
        ) from None


def usable_token(secret: str):
    """The token with this secret if it lets anyone in now: live, and its user active."""
    token = selectors.token_by_secret(secret)
    if token is None or not token.is_active() or not token.user.is_active:
        return None
    return token


def principal(request) -> str | None:
    """Who a request acts as, for idempotency keys: "token:<id>", "user:<id>" or None.

    Read before the view runs, so it must not raise: a credential that does not authenticate
    has no principal, and the view answers for it.
    """
    try:
        secret = presented_secret(request)
    except exceptions.AuthenticationFailed:
        return None
    if secret is not None:
        token = usable_token(secret)
        return f"token:{token.pk}" if token is not None else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


class TokenScheme(OpenApiAuthenticationExtension):
    """Documents the token as an HTTP bearer scheme (the `Token` keyword works the same)."""

    target_class = "portal.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A personal API token: `Authorization: Bearer <token>` (or `Token <token>`). "
                "Create one under /api/v1/tokens/ or with `manage.py create_api_token`."
            ),
        }
