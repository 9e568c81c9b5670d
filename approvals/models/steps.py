"""The steps of a request: one per tier of its route and round, each with its own state."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition

from approvals.models.policy import HeldAt, OnBreach, PolicyTier
from approvals.models.requests import ApprovalRequest
from sites.roles import Role


class StepState(models.TextChoices):
    WAITING = "waiting", "Waiting for an earlier tier"
    ACTIVE = "active", "Waiting for a decision"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CLOSED = "closed", "Closed unfinished"


# A tier still open when its request is decided, withdrawn or sent back is closed unfinished.
UNFINISHED_STEP_STATES = (StepState.WAITING, StepState.ACTIVE)


class StepQuerySet(models.QuerySet):
    def close_unfinished(self, *, at) -> int:
        """`ApprovalStep.close` for every unfinished tier in the set, in one statement.

        A request can have many tiers open when it is decided; this writes the same state and
        time the transition writes, only to rows the transition accepts (its sources).
        """
        return self.filter(state__in=UNFINISHED_STEP_STATES).update(
            state=StepState.CLOSED, completed_at=at
        )


class ApprovalStep(FSMModelMixin, models.Model):
    """One tier of one request, copied from its policy tier when the request was routed.

    Its state moves only through the transitions below (`activate`, `approve`, `reject`,
    `expire`, `close`), or `StepQuerySet.close_unfinished` for many tiers at once.
    """

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="steps")
    # The request's site (a request never changes site), copied so that tiers are counted per
    # site without reading a million requests to learn where each one is.
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    tier = models.ForeignKey(PolicyTier, on_delete=models.PROTECT, related_name="+")
    round = models.PositiveSmallIntegerField(
        default=1, help_text="Each return to review (drift) starts a new round of steps."
    )
    position = models.PositiveSmallIntegerField()
    stage = models.PositiveSmallIntegerField()
    state = FSMField(
        max_length=16, default=StepState.WAITING, choices=StepState.choices, protected=True
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    held_at = models.CharField(max_length=8, choices=HeldAt.choices)
    quorum = models.PositiveSmallIntegerField()
    comment_required = models.BooleanField(default=False)
    sla_hours = models.DecimalField(max_digits=6, decimal_places=2)
    business_hours = models.BooleanField(default=False)
    escalation_role = models.CharField(max_length=32, choices=Role.choices, blank=True)
    escalated_role = models.CharField(
        max_length=32, choices=Role.choices, blank=True, help_text="Set when the SLA escalated."
    )
    on_breach = models.CharField(max_length=8, choices=OnBreach.choices)
    activated_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = StepQuerySet.as_manager()

    class Meta:
        ordering = ["request", "round", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "position"], name="step_positions_unique"
            )
        ]
        indexes = [
            models.Index(fields=["request", "state"], name="step_request_state"),
            models.Index(fields=["due_at"], condition=Q(state="active"), name="step_sla"),
            # Dashboards: tiers activated in a period per site, and the tiers waiting now, read
            # from the index alone.
            models.Index(
                fields=["site", "activated_at", "state", "due_at", "completed_at", "escalated_at"],
                name="step_activated",
            ),
            models.Index(
                fields=["site", "request", "position", "activated_at", "due_at"],
                condition=Q(state="active"),
                name="step_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request.reference} tier {self.position}: {self.get_role_display()}"

    @property
    def roles(self) -> list[str]:
        return [role for role in (self.role, self.escalated_role) if role]

    @transition(field=state, source=StepState.WAITING, target=StepState.ACTIVE)
    def activate(self, *, at, due_at, remind_at) -> None:
        self.activated_at, self.due_at, self.remind_at = at, due_at, remind_at

    @transition(field=state, source=StepState.ACTIVE, target=StepState.APPROVED)
    def approve(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=StepState.ACTIVE, target=StepState.REJECTED)
    def reject(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=StepState.ACTIVE, target=StepState.EXPIRED)
    def expire(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=list(UNFINISHED_STEP_STATES), target=StepState.CLOSED)
    def close(self) -> None:
        self.completed_at = timezone.now()
