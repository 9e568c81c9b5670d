"""The audit ledger: append-only, hash-chained events.

Rows are only ever inserted, through portal.audit.services.audit_record, and then sealed once by
the sequencer (portal.audit.sequencer), which fills in `sequence`, `prev_hash`, `hash` and
`sealed_at`; the database itself refuses any other UPDATE, and every DELETE and TRUNCATE, on
this table (triggers installed by migrations, portal.audit.triggers). An event with no
sequence yet is "pending seal". Names and labels are copied in (`actor_label`,
`object_reference`, `policy_version_label`) so the trail reads the same after people are
renamed or deactivated. See portal.audit.chain for how each event is sealed.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class CurrentTransactionId(models.Func):
    """The inserting transaction's id on PostgreSQL (64-bit, never wraps); nothing elsewhere.

    The sequencer seals an event only once every transaction with a lower id has ended, which
    is how it knows no earlier-started change can still add events before it.
    """

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


# Ledger order, events pending their seal last (in the order they arrived), and its reverse.
LEDGER_ORDER = (F("sequence").asc(nulls_last=True), "id")
NEWEST_FIRST = (F("sequence").desc(nulls_first=True), "-id")


class AuditEvent(models.Model):
    # Sealing fills these four in, once (events recorded before the sequencer have no sealed_at).
    sequence = models.PositiveBigIntegerField(unique=True, null=True)
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
    # NULL, not "", until sealed: "" is the first event's prev_hash, and hashes are unique.
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001
    sealed_at = models.DateTimeField(null=True)
    # Which transaction inserted the event (PostgreSQL), set by the database itself.
    txid = models.BigIntegerField(null=True, editable=False, db_default=CurrentTransactionId())

    class Meta:
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "sequence"], name="audit_object"),
            models.Index(fields=["site", "sequence"], name="audit_site"),
            # The sequencer's backlog: small, and read on every seal.
            models.Index(
                fields=["txid", "id"], name="audit_unsealed", condition=Q(sequence__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        where = "pending seal" if self.sequence is None else f"#{self.sequence}"
        return f"{where} {self.at:%Y-%m-%d %H:%M} {self.action} {self.object_reference}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit events are never changed once recorded.")
        super().save(*args, **kwargs)

    @property
    def sealed(self) -> bool:
        return self.sequence is not None


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


class SignInFailure(models.Model):
    """One failed sign-in, kept outside the chain for SIGN_IN_FAILURE_RETENTION_DAYS.

    The ledger gets one summary per account (or "unknown") and client address and window
    (portal.accounts); this ordinary table keeps each attempt for investigation and is purged
    (`purge_sign_in_failures`, daily from beat). A typed name that matches no account is kept
    only as a keyed hash: people type passwords into the username field.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+"
    )
    username_digest = models.CharField(
        max_length=64, blank=True, help_text="HMAC-SHA256 of a typed name that matches no account."
    )
    client_ip = models.GenericIPAddressField(null=True)
    path = models.CharField(max_length=200)
    locked_out = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        who = f"account {self.account_id}" if self.account_id else "unknown account"
        return f"failed sign-in to {who} from {self.client_ip} at {self.at:%Y-%m-%d %H:%M:%S}"
