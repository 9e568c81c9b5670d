"""What Tollgate has to tell people, kept until it has been told.

An `OutboxMail` is written in the same transaction as the change it tells of (a tier opening, a
request decided, a case falling due), so a committed change always has its row and a rolled-back
one never has. The row names what happened (`topic`, `object_id`, `reason`); the e-mails
themselves are rendered when the row is sent, so a person whose tier was decided meanwhile is
not asked to decide it. See `portal.notify.services` for how rows are sent exactly once.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class MailState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed; needs an administrator"


class Topic(models.TextChoices):
    STEP = "approvals.step", "Approval tier"
    REQUEST = "approvals.request", "Approval request decided"
    CASE = "exceptions.case", "Exception case"


class OutboxMail(models.Model):
    """One notification (the e-mails to everyone who should hear of one event), sent once."""

    topic = models.CharField(max_length=32, choices=Topic.choices)
    object_id = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=MailState.choices, default=MailState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    mails_sent = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many e-mails the notification became when sent."
    )

    class Meta:
        ordering = ["id"]
        verbose_name = "outbox mail"
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="pending"), name="notify_due"
            ),
            models.Index(fields=["sent_at"], condition=Q(state="sent"), name="notify_sent"),
        ]

    def __str__(self) -> str:
        what = f"{self.get_topic_display()} {self.object_id}"
        if self.reason:
            what += f" ({self.reason})"
        return f"{what}: {self.get_state_display()}"
