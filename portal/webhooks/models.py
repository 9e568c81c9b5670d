"""Inbound webhooks: who may send (sources and their secrets) and what they sent (deliveries).

A delivery is stored verbatim, keyed by its sender's `webhook-id`; the unique constraint is what
makes a replay, or two copies racing each other, land exactly once.

Outbound webhooks: who receives Tollgate's events (subscriptions and their secrets), the events
themselves, and one delivery row per event and subscriber, an outbox that a beat sweep drains
with retries, so nothing depends on a task surviving a worker crash.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class WebhookSource(models.Model):
    """A system allowed to send events to `/api/v1/webhooks/<name>/`."""

    name = models.SlugField(max_length=32, unique=True)
    active = models.BooleanField(
        default=True, help_text="An inactive source is answered 404, as if it did not exist."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookSecret(models.Model):
    """One signing secret of a source; several may be active at once while a sender rotates."""

    source = models.ForeignKey(WebhookSource, on_delete=models.PROTECT, related_name="secrets")
    # Never shown: not in __str__, the admin, a log line or an error message.
    secret = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source", "-created_at"]

    def __str__(self) -> str:
        state = "retired" if self.retired_at else "active"
        return f"{self.source.name} secret #{self.pk or 0} ({state})"


class DeliveryStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class InboundDelivery(FSMModelMixin, models.Model):
    """One signed event as received, and what became of it.

    Stored accepted or rejected; an accepted one is then processed, or fails, through the
    transitions below.
    """

    source = models.ForeignKey(WebhookSource, on_delete=models.PROTECT, related_name="deliveries")
    webhook_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(default=timezone.now)
    event_type = models.CharField(max_length=64, blank=True)
    body = models.TextField(help_text="Exactly as received.")
    status = FSMField(max_length=16, choices=DeliveryStatus.choices, protected=True)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    case = models.ForeignKey(
        "exceptions.ExceptionCase",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "webhook_id"], name="one_delivery_per_webhook_id"
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="delivery_status")]
        verbose_name_plural = "inbound deliveries"

    def __str__(self) -> str:
        return f"{self.source.name}/{self.webhook_id}"

    @transition(field=status, source=DeliveryStatus.ACCEPTED, target=DeliveryStatus.PROCESSED)
    def mark_processed(self, *, case) -> None:
        self.case, self.error, self.processed_at = case, "", timezone.now()

    @transition(field=status, source=DeliveryStatus.ACCEPTED, target=DeliveryStatus.FAILED)
    def mark_failed(self, *, error: str) -> None:
        self.case, self.error, self.processed_at = None, error, timezone.now()


# --- outbound ---------------------------------------------------------------------------------


class EventType(models.TextChoices):
    """What Tollgate tells subscribers about; adding one here is what makes it publishable."""

    APPROVAL_REQUESTED = "approval.requested", "Approval requested"
    APPROVAL_DECIDED = "approval.decided", "Approval decided"
    APPROVAL_APPLIED = "approval.applied", "Approval applied in Odoo"
    APPROVAL_APPLY_FAILED = "approval.apply_failed", "Approval could not be applied in Odoo"
    EXCEPTION_OPENED = "exception.opened", "Exception opened"
    EXCEPTION_RESOLVED = "exception.resolved", "Exception resolved"
    SLA_BREACHED = "sla.breached", "SLA breached"


class WebhookSubscription(models.Model):
    """A receiver of outbound events: where to POST them and which types it wants."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500, help_text="https:// unless plain http is allowed.")
    event_types = models.JSONField(default=list, help_text="Event types this receiver wants.")
    region = models.ForeignKey(
        "sites.Region",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only events of this region's sites; empty for every site.",
    )
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from portal.webhooks.delivery import TargetRefused, check_target

        unknown = sorted(set(self.event_types or []) - set(EventType.values))
        if not isinstance(self.event_types, list) or not self.event_types or unknown:
            raise ValidationError(
                {
                    "event_types": "Choose one or more of: "
                    + ", ".join(EventType.values)
                    + (f" (unknown: {', '.join(unknown)})." if unknown else ".")
                }
            )
        try:
            check_target(self.url)
        except TargetRefused as error:
            raise ValidationError({"url": str(error)}) from None

    def wants(self, event_type: str, site) -> bool:
        """Whether an event of this type at `site` is for this receiver."""
        if event_type not in self.event_types:
            return False
        return self.region_id is None or (site is not None and site.region_id == self.region_id)


class SubscriptionSecret(models.Model):
    """A signing secret of a subscription; the newest active one signs, so secrets rotate."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="secrets"
    )
    # Never shown after creation: not in __str__, the admin, a log line or an error message.
    secret = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subscription", "-created_at", "-id"]

    def __str__(self) -> str:
        state = "retired" if self.retired_at else "active"
        return f"{self.subscription.name} secret #{self.pk or 0} ({state})"


class OutboundEvent(models.Model):
    """Something that happened, as told to subscribers; `event_id` is the `webhook-id`."""

    event_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=40, choices=EventType.choices)
    data = models.JSONField()
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    def body(self) -> dict:
        """What every subscriber receives, the same on every attempt."""
        return {"type": self.type, "timestamp": self.created_at.isoformat(), "data": self.data}


class OutboundState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed, will retry"
    ABANDONED = "abandoned", "Abandoned"


class OutboundDelivery(models.Model):
    """One event owed to one subscriber; the outbox row that the delivery sweep works off."""

    S = OutboundState
    RETRYING = (S.PENDING, S.FAILED)

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    event = models.ForeignKey(OutboundEvent, on_delete=models.PROTECT, related_name="deliveries")
    state = FSMField(default=S.PENDING, choices=OutboundState.choices, protected=True)
    attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts in the current cycle; a redelivery starts a new cycle."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="one_delivery_per_event_and_subscriber"
            ),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outbound_due")]
        verbose_name_plural = "outbound deliveries"

    def __str__(self) -> str:
        return f"{self.event.event_id} → {self.subscription.name}"

    @transition(field=state, source=list(RETRYING), target=S.DELIVERED)
    def succeed(self, at) -> None:
        self.delivered_at, self.next_attempt_at, self.last_error = at, None, ""

    @transition(field=state, source=list(RETRYING), target=S.FAILED)
    def fail(self, retry_at) -> None:
        self.next_attempt_at = retry_at

    @transition(field=state, source=list(RETRYING), target=S.ABANDONED)
    def abandon(self) -> None:
        self.next_attempt_at = None

    @transition(field=state, source="*", target=S.PENDING)
    def restart(self, at) -> None:
        self.attempts, self.next_attempt_at, self.delivered_at = 0, at, None


class DeliveryAttempt(models.Model):
    """One POST to a subscriber, or one refusal to make it, as it happened."""

    delivery = models.ForeignKey(OutboundDelivery, on_delete=models.CASCADE, related_name="log")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery} at {self.attempted_at:%Y-%m-%d %H:%M:%S} ({self.status_code})"
