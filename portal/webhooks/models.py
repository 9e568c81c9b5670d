"""Inbound webhooks: who may send (sources and their secrets) and what they sent (deliveries).

A delivery is stored verbatim, keyed by its sender's `webhook-id`; the unique constraint is what
makes a replay, or two copies racing each other, land exactly once.
"""

from django.db import models
from django.utils import timezone


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


class InboundDelivery(models.Model):
    """One signed event as received, and what became of it."""

    source = models.ForeignKey(WebhookSource, on_delete=models.PROTECT, related_name="deliveries")
    webhook_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(default=timezone.now)
    event_type = models.CharField(max_length=64, blank=True)
    body = models.TextField(help_text="Exactly as received.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
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
