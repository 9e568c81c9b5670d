"""What Tollgate remembers about Odoo: how far each model has been read, and what to write back.

A `SyncCursor` advances only in the transaction that stored what it read, so a crash mid-sync
re-reads a batch rather than skipping it. An `OutboxItem` is written in the same transaction as
the decision it carries, so a decision is never lost between Tollgate and Odoo.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class SyncCursor(models.Model):
    """How far the pull has read one Odoo model, by `write_date`."""

    model = models.CharField(max_length=64, unique=True)
    write_date = models.DateTimeField(null=True, blank=True)
    # id -> [write_date, digest of the row] for rows read within the overlap window before
    # `write_date`, so a re-read of the window recognises them; pruned as the cursor advances.
    recent = models.JSONField(default=dict, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    records_read = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.model} up to {self.write_date or 'the beginning'}"


class OutboxState(models.TextChoices):
    PENDING = "pending", "Waiting to be applied"
    APPLIED = "applied", "Applied in Odoo"
    FAILED = "failed", "Failed; needs an administrator"
    SUPERSEDED = "superseded", "Superseded by a later decision"


# A write-back not yet applied is dropped when its request goes back to review.
SUPERSEDABLE_STATES = (OutboxState.PENDING, OutboxState.FAILED)


class OutboxQuerySet(models.QuerySet):
    def supersede(self) -> int:
        """`OutboxItem.supersede` for every row of the set it applies to, in one statement."""
        return self.filter(state__in=SUPERSEDABLE_STATES).update(state=OutboxState.SUPERSEDED)


class OutboxItem(FSMModelMixin, models.Model):
    """One decision to write back to one Odoo record, exactly once.

    Its state moves only through the transitions below, or `OutboxQuerySet.supersede` for all
    of a request's rows at once.
    """

    class Action(models.TextChoices):
        APPROVE = "approve", "Carry out the approved action"
        REJECT = "reject", "Record the rejection"

    request = models.ForeignKey(
        "approvals.ApprovalRequest", on_delete=models.PROTECT, related_name="outbox"
    )
    round = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    cancel_in_odoo = models.BooleanField(
        default=False, help_text="On rejection, also cancel the Odoo record (policy setting)."
    )
    odoo_model = models.CharField(max_length=64)
    odoo_id = models.PositiveIntegerField()
    state = FSMField(
        max_length=16, default=OutboxState.PENDING, choices=OutboxState.choices, protected=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    odoo_message_id = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    objects = OutboxQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "action"], name="one_write_back_per_decision"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="pending"), name="outbox_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.odoo_model},{self.odoo_id} ({self.get_state_display()})"

    @property
    def marker(self) -> str:
        """Written into the Odoo note, so that a retry can see the note is already there."""
        return f"[tollgate:outbox:{self.pk}]"

    @transition(field=state, source=OutboxState.PENDING, target=OutboxState.APPLIED)
    def mark_applied(self, *, message_id) -> None:
        self.applied_at, self.odoo_message_id = timezone.now(), message_id

    @transition(field=state, source=OutboxState.PENDING, target=OutboxState.FAILED)
    def mark_failed(self) -> None:
        pass

    @transition(field=state, source=OutboxState.FAILED, target=OutboxState.PENDING)
    def retry(self) -> None:
        self.attempts, self.next_attempt_at = 0, timezone.now()

    @transition(field=state, source=list(SUPERSEDABLE_STATES), target=OutboxState.SUPERSEDED)
    def supersede(self) -> None:
        pass
