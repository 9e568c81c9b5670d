"""Approval requests: what they ask for, the states they move through, and their documents."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from approvals.models.currency import MONEY
from approvals.models.policy import PolicyRule, PolicyVersion
from sites.models import currency_validator


class RequestKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase order"
    TRANSFER = "transfer", "Inter-site transfer"
    WRITE_OFF = "write_off", "Write-off"
    PRICE_OVERRIDE = "price_override", "Price override"
    CREDIT_EXCEPTION = "credit_exception", "Credit exception"
    RETURN_AUTHORIZATION = "return_authorization", "Return authorisation"
    EXPEDITED_FREIGHT = "expedited_freight", "Expedited freight"


class RiskFlag(models.TextChoices):
    """The signals approvals.risk computes at submission; add rules may select on them."""

    AMOUNT_OUTLIER = "amount_outlier", "Amount far outside history"
    THRESHOLD_SPLIT = "threshold_split", "Possible threshold splitting"
    NEW_COUNTERPARTY = "new_counterparty", "New vendor or customer"
    AFTER_HOURS = "after_hours", "Submitted after hours"
    PRICE_BELOW_HISTORY = "price_below_history", "Price far below the customer's history"


class RequestState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    APPLIED = "applied", "Applied in Odoo"
    APPLY_FAILED = "apply_failed", "Odoo update failed"


S = RequestState
OPEN_STATES = (S.DRAFT, S.SUBMITTED, S.IN_REVIEW)
# Drift sends a request back to review until Odoo has actually been changed.
DRIFT_STATES = (S.IN_REVIEW, S.APPROVED, S.APPLY_FAILED)


class ApprovalRequest(ConcurrentTransitionMixin, models.Model):
    """Something that needs someone's yes before Odoo does it."""

    kind = models.CharField(max_length=32, choices=RequestKind.choices)
    state = FSMField(default=S.DRAFT, choices=RequestState.choices, protected=True)
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    revision_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_revision"
    )
    revision = models.PositiveSmallIntegerField(default=1)
    title = models.CharField(max_length=200)
    reason = models.TextField()
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    amount_base = models.DecimalField(**MONEY, null=True, blank=True)
    category = models.CharField(max_length=100, blank=True)
    customer_class = models.CharField(max_length=32, blank=True)
    counterparty = models.CharField(
        max_length=200, blank=True, help_text="Vendor or customer, as Odoo names it."
    )
    counterparty_ref = models.CharField(
        max_length=64,
        blank=True,
        help_text="Stable id of the vendor or customer, e.g. res.partner,42.",
    )
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    odoo_model = models.CharField(max_length=64, blank=True)
    odoo_id = models.PositiveIntegerField(null=True, blank=True)
    odoo_snapshot = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # Who made the record in Odoo and when it was made or sent for approval there: the risk
    # signals judge those, never the integration user or the moment Tollgate synced.
    odoo_author_ref = models.CharField(
        max_length=64, blank=True, help_text="The Odoo user who made the record, e.g. res.users,7."
    )
    odoo_author = models.CharField(max_length=200, blank=True)
    odoo_asked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the record was made or asked for approval in Odoo."
    )
    policy_version = models.ForeignKey(
        PolicyVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    rule = models.ForeignKey(
        PolicyRule, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    round = models.PositiveSmallIntegerField(
        default=0, help_text="Routing rounds so far; a return to review starts the next."
    )
    risk_flags = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    fast_path = models.BooleanField(default=False)
    sampled_for_review = models.BooleanField(default=False)
    post_review_done_at = models.DateTimeField(null=True, blank=True)
    drift = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    due_at = models.DateTimeField(null=True, blank=True)
    apply_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    # When its last decision (of any round, by anyone or by the policy) was made: kept by the
    # services that record decisions, so the list can sort on it without reading decisions.
    last_decided_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A sale order can need a price override and a credit exception at once, but never
            # two requests of one kind (per revision): a re-read updates, it does not duplicate.
            models.UniqueConstraint(
                fields=["odoo_model", "odoo_id", "kind", "revision"],
                condition=Q(odoo_id__isnull=False),
                name="one_request_per_odoo_record_kind_revision",
            ),
        ]
        indexes = [
            # The inbox: requests waiting for a decision, soonest due first.
            models.Index(
                fields=["due_at", "id"], condition=Q(state="in_review"), name="request_inbox"
            ),
            models.Index(fields=["site", "state"], name="request_site_state"),
            models.Index(fields=["requester", "submitted_at"], name="request_requester"),
            models.Index(fields=["counterparty_ref", "submitted_at"], name="request_counterparty"),
            models.Index(
                fields=["odoo_author_ref", "submitted_at"],
                condition=~Q(odoo_author_ref=""),
                name="request_odoo_author",
            ),
            # The inbox per site: each granted site's waiting requests, soonest due first.
            models.Index(
                fields=["site", "due_at", "id"],
                condition=Q(state="in_review"),
                name="request_site_inbox",
            ),
            # Dashboards: decisions and submissions per site and period, answered from the index
            # alone (the trailing columns are what the aggregates read).
            models.Index(
                fields=["site", "decided_at", "state", "kind", "submitted_at", "fast_path"],
                name="request_site_decided",
            ),
            models.Index(fields=["site", "submitted_at", "id"], name="request_site_submitted"),
            # The requests list, newest first: each site's head, every site's rows in order,
            # and a person's own requests (PostgreSQL only: see migration 0008).
            models.Index(
                F("site"),
                F("submitted_at").desc(nulls_last=True),
                F("id").desc(),
                name="request_site_recent",
            ),
            models.Index(
                F("submitted_at").desc(nulls_last=True), F("id").desc(), name="request_recent"
            ),
            models.Index(
                F("requester"),
                F("submitted_at").desc(nulls_last=True),
                F("id").desc(),
                name="request_requester_recent",
            ),
            # The requests list by last decision, most recent first (PostgreSQL only: see
            # migration 0009).
            models.Index(
                F("last_decided_at").desc(nulls_last=True),
                F("id").desc(),
                name="request_last_decided",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        suffix = f"-r{self.revision}" if self.revision > 1 else ""
        return f"AR-{self.pk or 0:06d}{suffix}"

    @property
    def is_final(self) -> bool:
        return self.state not in OPEN_STATES

    @transition(field=state, source=S.DRAFT, target=S.SUBMITTED)
    def submit(self) -> None:
        self.submitted_at = timezone.now()

    @transition(field=state, source=S.SUBMITTED, target=S.IN_REVIEW)
    def start_review(self) -> None:
        pass

    @transition(field=state, source=S.SUBMITTED, target=S.APPROVED)
    def auto_approve(self) -> None:
        self.fast_path = True
        self.decided_at = timezone.now()
        self.due_at = None

    @transition(field=state, source=S.IN_REVIEW, target=S.APPROVED)
    def approve(self) -> None:
        self.decided_at = timezone.now()
        self.due_at = None

    @transition(field=state, source=S.IN_REVIEW, target=S.REJECTED)
    def reject(self) -> None:
        self.decided_at = timezone.now()
        self.due_at = None

    @transition(field=state, source=list(OPEN_STATES), target=S.WITHDRAWN)
    def withdraw(self) -> None:
        self.decided_at = timezone.now()
        self.due_at = None

    @transition(field=state, source=S.IN_REVIEW, target=S.EXPIRED)
    def expire(self) -> None:
        self.decided_at = timezone.now()
        self.due_at = None

    @transition(field=state, source=list(DRIFT_STATES), target=S.IN_REVIEW)
    def return_to_review(self) -> None:
        self.decided_at = None
        self.apply_error = ""

    @transition(field=state, source=[S.APPROVED, S.APPLY_FAILED], target=S.APPLIED)
    def mark_applied(self) -> None:
        self.applied_at = timezone.now()
        self.apply_error = ""

    @transition(field=state, source=S.APPROVED, target=S.APPLY_FAILED)
    def mark_apply_failed(self) -> None:
        pass

    @transition(field=state, source=S.APPLY_FAILED, target=S.APPROVED)
    def retry_apply(self) -> None:
        self.apply_error = ""


def attachment_path(instance, filename: str) -> str:
    # Named by digest, never by what the uploader typed: no path tricks, and one copy per file.
    return f"attachments/{instance.sha256[:2]}/{instance.sha256}"


class Attachment(models.Model):
    """A document given with a request (a quote, a photo of the damage), kept by its digest."""

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path, max_length=200)
    name = models.CharField(max_length=200, help_text="The file name as uploaded.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return self.name
