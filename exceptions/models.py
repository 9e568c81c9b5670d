"""Operational exceptions: late shipments, receipt and invoice mismatches, ASN conflicts.

Each becomes an ExceptionCase with a queue, a deadline and the evidence that raised it. A case is
keyed by what it is about (`dedupe_key`), so the same real-world event arriving again, or from
another source, joins the open case as another occurrence instead of opening a second one.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from sites.models import currency_validator


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


class Queue(models.TextChoices):
    FINANCE = "finance", "Finance"
    WAREHOUSE = "warehouse", "Warehouse"
    PROCUREMENT = "procurement", "Procurement"
    CUSTOMER_SERVICE = "customer_service", "Customer service"


class Source(models.TextChoices):
    ODOO = "odoo", "Odoo sync"
    WEBHOOK = "webhook", "Webhook"
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
            # At most one open case per real-world event; a closed one may be followed by a new.
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(state__in=["new", "assigned", "in_progress"]),
                name="one_open_case_per_event",
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "state", "due_at"], name="case_queue"),
            models.Index(fields=["site", "state"], name="case_site_state"),
            models.Index(fields=["odoo_model", "odoo_id"], name="case_odoo_record"),
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
