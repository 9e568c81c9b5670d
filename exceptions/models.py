"""Operational exceptions: late shipments, receipt and invoice mismatches, ASN conflicts.

Each becomes an ExceptionCase with a queue, a deadline and the evidence that raised it. A case is
keyed by its site and what it is about (`dedupe_key`), so the same real-world event arriving
again, or from another source, joins the site's open case as another occurrence instead of
opening a second one; an event at another site never joins it, whatever key it carries.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from sites.models import currency_validator
from sites.roles import Role


class CaseKind(models.TextChoices):
    SHIPMENT_DELAY = "shipment_delay", "Shipment delay"
    DELIVERY_FAILED = "delivery_failed", "Delivery failed"
    RECEIPT_DISCREPANCY = "receipt_discrepancy", "Receipt discrepancy"
    ASN_CONFLICT = "asn_conflict", "ASN conflict"
    INVOICE_MISMATCH = "invoice_mismatch", "Invoice mismatch"
    RESERVATION_FAILURE = "reservation_failure", "Reservation failure"
    PRICE_VARIANCE = "price_variance", "Price variance"
    RETURN_DAMAGE = "return_damage", "Return damage"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# How severe, in order: a rule's minimum severity matches this rank and every higher one.
SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Queue(models.TextChoices):
    FINANCE = "finance", "Finance"
    WAREHOUSE = "warehouse", "Warehouse"
    PROCUREMENT = "procurement", "Procurement"
    CUSTOMER_SERVICE = "customer_service", "Customer service"


class Source(models.TextChoices):
    ODOO = "odoo", "Odoo sync"
    WEBHOOK = "webhook", "Webhook"
    MAIL = "mail", "Shared mailbox"
    MANUAL = "manual", "Entered by hand"


class CaseState(models.TextChoices):
    NEW = "new", "New"
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


C = CaseState
OPEN_CASE_STATES = (C.NEW, C.ASSIGNED, C.IN_PROGRESS)


class ExceptionCase(ConcurrentTransitionMixin, models.Model):
    kind = models.CharField(max_length=32, choices=CaseKind.choices)
    state = FSMField(default=C.NEW, choices=CaseState.choices, protected=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="cases")
    queue = models.CharField(max_length=32, choices=Queue.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=Source.choices)
    dedupe_key = models.CharField(max_length=200)
    odoo_model = models.CharField(max_length=64, blank=True)
    odoo_id = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder, help_text="As received."
    )
    evidence = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    amount_at_stake = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, validators=[currency_validator])
    occurrences = models.PositiveIntegerField(default=1)
    detected_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the SLA sweep found the case overdue."
    )
    escalation_role = models.CharField(
        max_length=32, choices=Role.choices, default=Role.REGIONAL_MANAGER
    )
    linked_request = models.OneToOneField(
        "approvals.ApprovalRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exception_case",
        help_text="A resolution that needs approval waits for this request's outcome.",
    )
    pending_resolution = models.CharField(max_length=64, blank=True)
    resolution_code = models.CharField(max_length=64, blank=True)
    resolution_note = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # At most one open case per real-world event and site; a closed one may be followed
            # by a new. The site is part of the key: one site's event never joins another's case.
            models.UniqueConstraint(
                fields=["site", "dedupe_key"],
                condition=Q(state__in=["new", "assigned", "in_progress"]),
                name="one_open_case_per_event_and_site",
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "state", "due_at"], name="case_queue"),
            models.Index(fields=["site", "state"], name="case_site_state"),
            models.Index(fields=["odoo_model", "odoo_id"], name="case_odoo_record"),
            models.Index(fields=["state", "escalated_at", "due_at"], name="case_sla"),
            # The queues: the open cases at the person's sites, with what the summary counts,
            # so it is read from the index alone and the ranking visits only those cases.
            models.Index(
                fields=["site", "queue", "due_at", "detected_at"],
                condition=Q(state__in=["new", "assigned", "in_progress"]),
                name="case_open_at_site",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        return f"EX-{self.pk or 0:06d}"

    @transition(field=state, source=[C.NEW, C.ASSIGNED, C.IN_PROGRESS], target=C.ASSIGNED)
    def assign(self) -> None:
        pass

    @transition(field=state, source=C.ASSIGNED, target=C.IN_PROGRESS)
    def start(self) -> None:
        pass

    @transition(field=state, source=list(OPEN_CASE_STATES), target=C.RESOLVED)
    def resolve(self) -> None:
        self.closed_at = timezone.now()

    @transition(field=state, source=list(OPEN_CASE_STATES), target=C.DISMISSED)
    def dismiss(self) -> None:
        self.closed_at = timezone.now()

    @transition(field=state, source=[C.RESOLVED, C.DISMISSED], target=C.ASSIGNED)
    def reopen(self) -> None:
        self.closed_at = None


class QueueRule(models.Model):
    """Where a new case lands: the most specific rule that matches its kind, severity and site.

    A rule for a site beats one for its region, which beats a company-wide one; within a scope
    a rule naming the kind beats one for every kind, and a higher minimum severity beats a
    lower one. Equal rules are taken oldest first. No match: the kind's fixed default queue.
    """

    kind = models.CharField(
        max_length=32, choices=CaseKind.choices, blank=True, help_text="Empty: every kind."
    )
    min_severity = models.CharField(
        max_length=16,
        choices=Severity.choices,
        blank=True,
        help_text="Cases at least this severe; empty: any severity.",
    )
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    region = models.ForeignKey(
        "sites.Region", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    queue = models.CharField(max_length=32, choices=Queue.choices)
    note = models.CharField(max_length=200, blank=True, help_text="Why the rule exists.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(site__isnull=True) | Q(region__isnull=True),
                name="queue_rule_site_or_region",
            ),
        ]

    def __str__(self) -> str:
        scope = self.site or self.region or "every site"
        kind = self.get_kind_display() if self.kind else "any kind"
        severity = f", {self.min_severity} or worse" if self.min_severity else ""
        return f"{kind}{severity} at {scope} → {self.get_queue_display()}"

    def clean(self) -> None:
        if self.site_id and self.region_id:
            raise ValidationError("A rule applies to one site or one region, not both.")

    @property
    def specificity(self) -> tuple[int, int, int]:
        scope = 2 if self.site_id else 1 if self.region_id else 0
        return scope, int(bool(self.kind)), SEVERITY_RANK.get(self.min_severity, 0)


class CaseDeadline(models.Model):
    """How long a case of one severity may stay open, for every queue or for one queue.

    Counted from detection on the clock or in the site's working hours (its own time zone).
    The SLA sweep reminds at `remind_at_percent` of that time and, once the case is overdue,
    tells the escalation role at the case's site or region.
    """

    severity = models.CharField(max_length=16, choices=Severity.choices)
    queue = models.CharField(
        max_length=32,
        choices=Queue.choices,
        blank=True,
        help_text="Empty: every queue that has no row of its own for this severity.",
    )
    hours = models.DecimalField(
        max_digits=7, decimal_places=2, validators=[MinValueValidator(Decimal("0.25"))]
    )
    business_hours = models.BooleanField(
        default=False, help_text="Count only the site's working hours, in its time zone."
    )
    remind_at_percent = models.PositiveSmallIntegerField(
        default=75, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    escalation_role = models.CharField(
        max_length=32, choices=Role.choices, default=Role.REGIONAL_MANAGER
    )

    class Meta:
        ordering = ["queue", "severity"]
        constraints = [
            models.UniqueConstraint(fields=["severity", "queue"], name="one_deadline_per_severity"),
        ]

    def __str__(self) -> str:
        queue = self.get_queue_display() if self.queue else "every queue"
        return f"{self.get_severity_display()} in {queue}: {self.hours} h"


class ResolutionCode(models.Model):
    """A change to the resolution codes a kind of case may be closed with.

    The built-in codes of each kind (exceptions/rules.py) apply unless a row says otherwise: an
    active row adds a code to its kind (or relabels a built-in one), an inactive row withdraws
    one. Cases already closed keep the code they were closed with.
    """

    kind = models.CharField(max_length=32, choices=CaseKind.choices)
    code = models.SlugField(max_length=64, help_text="Stored on the case; lower case, no spaces.")
    label = models.CharField(max_length=200, help_text="What people choose from.")
    active = models.BooleanField(
        default=True, help_text="Untick to withdraw the code (a built-in one too)."
    )

    class Meta:
        ordering = ["kind", "code"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "code"], name="one_row_per_resolution_code"),
        ]

    def __str__(self) -> str:
        state = "" if self.active else " (withdrawn)"
        return f"{self.get_kind_display()}: {self.code}{state}"


class ResolutionModel(models.Model):
    """A text classifier for one kind of case, trained on past resolved cases, kept as plain
    numbers (vocabulary, idf weights, coefficients) rather than pickled code, so that loading
    it can never run anything. The newest row of a kind is the one in use."""

    kind = models.CharField(max_length=32, choices=CaseKind.choices)
    trained_at = models.DateTimeField(default=timezone.now)
    classes = models.JSONField(help_text="The resolution codes, in the coefficients' order.")
    vocabulary = models.JSONField(help_text="Term -> column.")
    idf = models.JSONField()
    coefficients = models.JSONField(help_text="One row per class (one in all for two classes).")
    intercepts = models.JSONField()
    accuracy = models.DecimalField(
        max_digits=5, decimal_places=4, help_text="Share right on cases held out of training."
    )
    trained_on = models.PositiveIntegerField()
    tested_on = models.PositiveIntegerField()

    class Meta:
        ordering = ["kind", "-trained_at", "-id"]
        indexes = [models.Index(fields=["kind", "-trained_at"], name="resolution_model_latest")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} suggestions of {self.trained_at:%Y-%m-%d %H:%M}"
