"""Reads of API tokens: a person sees their own tokens, and a secret finds its token."""

import hashlib

from django.db.models import QuerySet

from portal.api.models import ApiToken


def digest(secret: str) -> str:
    """How a token's secret is stored: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def tokens_for(user) -> QuerySet[ApiToken]:
    """The tokens `user` owns, newest first, revoked and expired ones included."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def token_by_secret(secret: str) -> ApiToken | None:
    """The token with this secret, whatever its state, or None."""
    return ApiToken.objects.select_related("user").filter(digest=digest(secret)).first()
