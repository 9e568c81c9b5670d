"""Shared mailboxes as a source of events: where to read, what was read, and what it meant.

A message is kept verbatim (its `.eml` bytes and their SHA-256) before anything is made of
it, and stored once: the unique constraints on its digest and its Message-ID decide between
two polls that read the same message. What an extractor found in it is kept beside it with the
text each value came from. Below its mailbox's confidence threshold it waits in triage for a
person, whose confirmation, correction or dismissal is kept as a labelled example.
"""

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition


class Purpose(models.TextChoices):
    CARRIER = "carrier", "Carrier"
    SUPPLIER = "supplier", "Supplier"
    ACCOUNTS_PAYABLE = "ap", "Accounts payable"


class Security(models.TextChoices):
    TLS = "tls", "TLS (usually port 993)"
    STARTTLS = "starttls", "STARTTLS (usually port 143)"
    NONE = "none", "None: plain text, for a server on this machine only"


env_name = RegexValidator(
    r"^[A-Z][A-Z0-9_]*$", "The name of an environment variable: capitals, digits and _."
)


class Mailbox(models.Model):
    """A shared mailbox Tollgate reads; its credentials live in environment variables only."""

    name = models.SlugField(max_length=32, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    site = models.ForeignKey(
        "sites.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The site whose mail this is; empty for a company-wide mailbox, whose mails "
        "are placed by the documents they name.",
    )
    host = models.CharField(max_length=200, blank=True, help_text="Empty: fed by hand only.")
    port = models.PositiveIntegerField(default=993, validators=[MaxValueValidator(65535)])
    security = models.CharField(max_length=16, choices=Security.choices, default=Security.TLS)
    folder = models.CharField(max_length=200, default="INBOX")
    processed_folder = models.CharField(
        max_length=200,
        blank=True,
        help_text="Move stored messages to this folder; empty: flag them and leave them.",
    )
    username_variable = models.CharField(
        max_length=100,
        blank=True,
        validators=[env_name],
        help_text="The NAME of the environment variable holding the login, e.g. MAIL_CARRIER_USER.",
    )
    password_variable = models.CharField(
        max_length=100,
        blank=True,
        validators=[env_name],
        help_text="The NAME of the environment variable holding the password. The password "
        "itself is never stored.",
    )
    confidence_threshold = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.80"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Extractions at least this sure become events at once; the rest wait in triage.",
    )
    active = models.BooleanField(default=True)
    uid_validity = models.BigIntegerField(null=True, blank=True, editable=False)
    last_uid = models.BigIntegerField(default=0, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.name

    @property
    def polled(self) -> bool:
        return bool(self.host)


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received, not yet read"
    PROCESSED = "processed", "Became an event"
    NO_EVENT = "no_event", "Nothing to do"
    TRIAGE = "triage", "Waiting in triage"
    FAILED = "failed", "Reading failed, will retry"
    REFUSED = "refused", "Refused"


class MailMessage(FSMModelMixin, models.Model):
    """One message as received, and what became of it."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="messages")
    raw = models.BinaryField(
        help_text="The .eml bytes as received (a refused one too big: only its headers)."
    )
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    message_id = models.CharField(max_length=998, blank=True)
    sender = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    imap_uid = models.BigIntegerField(null=True, blank=True)
    status = FSMField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.RECEIVED, protected=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    case = models.ForeignKey(
        "exceptions.ExceptionCase",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mails",
    )
    # What the extractor found: {"kind", "fields": {name: {"value", "text"}}, "confidence",
    # "template", "reasons"}; kept whatever became of the message.
    extraction = models.JSONField(default=dict, blank=True)
    event = models.JSONField(
        default=dict, blank=True, help_text="The event raised, in the webhook's shape."
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["sha256"], name="one_mail_per_digest"),
            models.UniqueConstraint(
                fields=["message_id"], condition=~Q(message_id=""), name="one_mail_per_message_id"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="mail_due")]

    def __str__(self) -> str:
        return self.subject or f"Mail of {self.received_at:%Y-%m-%d %H:%M}"

    # A stored message is read (again, after a failure) into an event or into triage; one in
    # triage becomes an event when a person confirms it. A refused message is stored refused.
    @transition(
        field=status,
        source=[MessageStatus.RECEIVED, MessageStatus.FAILED, MessageStatus.TRIAGE],
        target=RETURN_VALUE(MessageStatus.PROCESSED, MessageStatus.NO_EVENT),
    )
    def became_event(self, *, payload: dict, case) -> str:
        self.event, self.case = payload, case
        self.processed_at, self.error, self.next_attempt_at = timezone.now(), "", None
        return MessageStatus.PROCESSED if case else MessageStatus.NO_EVENT

    @transition(
        field=status,
        source=[MessageStatus.RECEIVED, MessageStatus.FAILED],
        target=MessageStatus.TRIAGE,
    )
    def send_to_triage(self) -> None:
        self.processed_at, self.next_attempt_at = timezone.now(), None

    @transition(
        field=status,
        source=[MessageStatus.RECEIVED, MessageStatus.FAILED],
        target=MessageStatus.FAILED,
    )
    def reading_failed(self, *, retry_at) -> None:
        self.next_attempt_at = retry_at

    @property
    def reference(self) -> str:
        return f"MAIL-{self.pk or 0:06d}"


class EventKind(models.TextChoices):
    SHIPMENT_DELAYED = "shipment.delayed", "Shipment delayed"
    DELIVERY_FAILED = "delivery.failed", "Delivery failed"
    SHORT_SHIPMENT = "asn", "Short shipment (shipping notice)"
    INVOICE_QUERY = "invoice.query", "Invoice query"


class SenderTemplate(models.Model):
    """How one carrier's or vendor's mails read: which mails it fits, and where each value is.

    Administered as data: a pattern on the sender and on the subject (regular expressions,
    case-insensitive) pick the mails; each field pattern finds one value in the subject and
    body, as its first group (or the whole match).
    """

    name = models.CharField(max_length=100, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    sender_pattern = models.CharField(max_length=300, help_text="e.g. @dhl\\.(com|de)$")
    subject_pattern = models.CharField(max_length=300, blank=True, help_text="Empty: any subject.")
    event_kind = models.CharField(max_length=32, choices=EventKind.choices)
    field_patterns = models.JSONField(
        default=dict,
        help_text='Field name to pattern, e.g. {"picking_ref": "Ref(?:erence)?:\\\\s*(\\\\S+)"}.',
    )
    confidence = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.95"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="How sure an extraction with every field found is.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from portal.integrations.mail.extractors import ALL_FIELDS

        errors = {}
        for name in ("sender_pattern", "subject_pattern"):
            if problem := _pattern_problem(getattr(self, name)):
                errors[name] = problem
        patterns = self.field_patterns
        if not isinstance(patterns, dict) or not all(isinstance(v, str) for v in patterns.values()):
            errors["field_patterns"] = (
                'A JSON object of field name to pattern: {"picking_ref": "…"}.'
            )
        else:
            unknown = sorted(set(patterns) - set(ALL_FIELDS))
            problems = [f"{n}: {p}" for n, v in patterns.items() if (p := _pattern_problem(v))]
            if unknown:
                problems.insert(
                    0, f"Unknown fields: {', '.join(unknown)}; known: {', '.join(ALL_FIELDS)}."
                )
            if problems:
                errors["field_patterns"] = " ".join(problems)
        if errors:
            raise ValidationError(errors)


def _pattern_problem(pattern: str) -> str:
    try:
        re.compile(pattern or "")
    except re.error as error:
        return f"Not a valid regular expression: {error}."
    return ""


class TriageState(models.TextChoices):
    OPEN = "open", "Waiting"
    CONFIRMED = "confirmed", "Confirmed"
    DISMISSED = "dismissed", "Dismissed"


class TriageItem(models.Model):
    """A message Tollgate was not sure enough about, waiting for a person to confirm or dismiss."""

    message = models.OneToOneField(MailMessage, on_delete=models.PROTECT, related_name="triage")
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    reason = models.TextField(help_text="Why it was not turned into an event on its own.")
    state = FSMField(default=TriageState.OPEN, choices=TriageState.choices, protected=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    dismiss_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "site"], name="triage_open_at_site")]

    def __str__(self) -> str:
        return f"{self.message} ({self.get_state_display().lower()})"

    @transition(field=state, source=TriageState.OPEN, target=TriageState.CONFIRMED)
    def confirm(self, by, at) -> None:
        self.decided_by, self.decided_at = by, at

    @transition(field=state, source=TriageState.OPEN, target=TriageState.DISMISSED)
    def dismiss(self, by, at, reason: str) -> None:
        self.decided_by, self.decided_at, self.dismiss_reason = by, at, reason


class LabelledExample(models.Model):
    """What a person said a message meant: the extractor's reading and theirs, side by side."""

    class Label(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed as read"
        CORRECTED = "corrected", "Corrected"
        DISMISSED = "dismissed", "Not an event"

    message = models.ForeignKey(MailMessage, on_delete=models.PROTECT, related_name="examples")
    template = models.ForeignKey(
        SenderTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="examples"
    )
    label = models.CharField(max_length=16, choices=Label.choices)
    extracted_kind = models.CharField(max_length=32, blank=True)
    extracted = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=32, blank=True, help_text="The event kind as labelled.")
    fields = models.JSONField(default=dict, blank=True, help_text="The fields as labelled.")
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    labelled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-labelled_at", "-id"]

    def __str__(self) -> str:
        return f"{self.message} — {self.get_label_display().lower()}"
