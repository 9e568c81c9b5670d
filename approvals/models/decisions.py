"""Decisions: who decided which step, for whom, when, why, and under which policy version."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.delegations import Delegation
from approvals.models.policy import PolicyVersion
from approvals.models.requests import ApprovalRequest
from approvals.models.steps import ApprovalStep


class Outcome(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"
    AUTO_APPROVE = "auto_approve", "Approved by policy (fast path)"


class Decision(models.Model):
    """Who decided which tier, for whom, when, why, and under which policy version."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    step = models.ForeignKey(
        ApprovalStep, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    delegation = models.ForeignKey(
        Delegation, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    round = models.PositiveSmallIntegerField(default=1)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # The last line of segregation of duties: one vote per person per step, and one
            # approval per person per request, whatever the application code does.
            models.UniqueConstraint(fields=["step", "actor"], name="one_vote_per_person_per_step"),
            models.UniqueConstraint(
                fields=["request", "round", "actor"],
                condition=Q(outcome="approve"),
                name="one_approval_per_person_per_request",
            ),
        ]

    def __str__(self) -> str:
        if self.actor is None:
            return (
                self.get_outcome_display()
                if self.outcome == Outcome.AUTO_APPROVE
                else (f"{self.get_outcome_display()} by Tollgate")
            )
        who = self.actor.get_username()
        if self.on_behalf_of_id:
            who = f"{who} on behalf of {self.on_behalf_of.get_username()}"
        return f"{self.get_outcome_display()} by {who}"
