"""Delegations: a person's approvals handed to someone else for a period."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.currency import MONEY
from approvals.models.requests import RequestKind


class Delegation(models.Model):
    """`delegator` hands their approvals to `delegate` for a period, optionally narrowed.

    Only the delegator's own approvals move: a delegation never passes on one that the delegator
    holds from someone else.
    """

    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=RequestKind.choices, blank=True)
    max_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="In the base currency."
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                name="delegation_period_is_ordered", condition=Q(ends_at__gt=models.F("starts_at"))
            ),
            models.CheckConstraint(
                name="delegation_to_someone_else", condition=~Q(delegate=models.F("delegator"))
            ),
        ]
        indexes = [models.Index(fields=["delegate", "ends_at"], name="delegation_lookup")]

    def __str__(self) -> str:
        period = f"{self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"
        return f"{self.delegator} → {self.delegate} ({period})"
