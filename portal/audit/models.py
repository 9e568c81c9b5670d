"""The audit ledger: append-only, hash-chained events.

Rows are only ever inserted, through portal.audit.services.audit_record; the database itself
refuses UPDATE, DELETE and TRUNCATE on this table (triggers installed by migrations). Names and
labels are copied in (`actor_label`, `object_reference`, `policy_version_label`) so the trail
reads the same after people are renamed or deactivated. See portal.audit.chain for how each
event is sealed.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    sequence = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150)
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_reference = models.CharField(max_length=200, blank=True)
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, null=True, related_name="+")
    policy_version_label = models.CharField(max_length=120, blank=True)
    before = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    comment = models.TextField(blank=True)
    context = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "sequence"], name="audit_object"),
            models.Index(fields=["site", "sequence"], name="audit_site"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.at:%Y-%m-%d %H:%M} {self.action} {self.object_reference}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit events are never changed once recorded.")
        super().save(*args, **kwargs)


class AuditCheckpoint(models.Model):
    """The chain's head at a moment, also sent outside Tollgate, so history cannot be rewritten
    unnoticed even by someone who can rewrite the database."""

    sequence = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)
    sink = models.CharField(max_length=200, blank=True)
    delivered = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"checkpoint #{self.sequence} {self.hash[:12]}…"
