"""What Tollgate remembers about Odoo: how far each model has been read, and what to write back.

A `SyncCursor` advances only in the transaction that stored what it read, so a crash mid-sync
re-reads a batch rather than skipping it. An `OutboxItem` is written in the same transaction as
the decision it carries, so a decision is never lost between Tollgate and Odoo.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


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


class OutboxItem(models.Model):
    """One decision to write back to one Odoo record, exactly once."""

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
    state = models.CharField(
        max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    odoo_message_id = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

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
