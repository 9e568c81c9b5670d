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
from django_fsm import FSMField, FSMModelMixin, transition


class MailState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed; needs an administrator"


class Topic(models.TextChoices):
    STEP = "approvals.step", "Approval tier"
    REQUEST = "approvals.request", "Approval request decided"
    CASE = "exceptions.case", "Exception case"


class OutboxMailQuerySet(models.QuerySet):
    def retry(self, *, at) -> int:
        """`OutboxMail.retry` for every failed row of the set, in one statement."""
        return self.filter(state=MailState.FAILED).update(
            state=MailState.PENDING, attempts=0, next_attempt_at=at
        )


class OutboxMail(FSMModelMixin, models.Model):
    """One notification (the e-mails to everyone who should hear of one event), sent once.

    Its state moves only through the transitions below, or `OutboxMailQuerySet.retry`.
    """

    topic = models.CharField(max_length=32, choices=Topic.choices)
    object_id = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=16, blank=True)
    state = FSMField(
        max_length=16, default=MailState.PENDING, choices=MailState.choices, protected=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    mails_sent = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many e-mails the notification became when sent."
    )

    objects = OutboxMailQuerySet.as_manager()

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

    @transition(field=state, source=MailState.PENDING, target=MailState.SENT)
    def mark_sent(self, *, mails: int) -> None:
        self.sent_at, self.mails_sent, self.last_error = timezone.now(), mails, ""

    @transition(field=state, source=MailState.PENDING, target=MailState.FAILED)
    def mark_failed(self) -> None:
        pass

    @transition(field=state, source=MailState.FAILED, target=MailState.PENDING)
    def retry(self, *, at) -> None:
        self.attempts, self.next_attempt_at = 0, at
