"""API access: per-user tokens and the idempotency keys of mutations.

A token's secret is shown once and stored only as its SHA-256 digest: the secret is 32 random
bytes, so a fast hash is enough and a stolen table does not let anyone in. The short visible
prefix lets a person tell their tokens apart without ever seeing a secret again.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """One credential of one user for integrations; never grants more than its user may do."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The visible start of the token.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    read_only = models.BooleanField(
        default=False, help_text="Only GET, HEAD and OPTIONS requests are allowed."
    )
    actions = models.JSONField(
        default=list,
        blank=True,
        help_text='When not empty, the only API actions allowed, e.g. "approvals.approve".',
    )
    # Revoking a token revokes every token created through it: a leaked token must not leave
    # behind credentials it minted for whoever holds it.
    created_with = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        editable=False,
        related_name="created_tokens",
        help_text="The token of the API call that created this one, if any.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="api_token_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, *, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and self.expires_at > at

    def allows(self, *, action: str | None, safe: bool) -> bool:
        """Whether this token's narrowing lets it call `action` (the user's rights come after)."""
        if self.read_only and not safe:
            return False
        return not self.actions or action in self.actions


class IdempotencyKey(models.Model):
    """A mutation claimed under an `Idempotency-Key`, and once done, the response it gave.

    The unique constraint on (principal, key) is the claim: of two concurrent requests with the
    same key exactly one inserts the row and runs; the other finds it and answers from it.
    """

    principal = models.CharField(max_length=80, help_text="user:<id> or token:<id>.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="one_claim_per_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
