"""Approval requests, the versioned policy matrix that routes them, and the record of decisions.

Rows here are never deleted: a policy edit publishes a new version, a rejected request is
resubmitted as a new revision, a step or a decision is history once written. States move only
through the transitions below, called from approvals.services.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from sites.models import currency_validator
from sites.roles import Role

MONEY = {"max_digits": 16, "decimal_places": 2}


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


class CurrencyRate(models.Model):
    """How many units of `currency` one unit of the base currency buys, from `valid_from` on."""

    currency = models.CharField(max_length=3, validators=[currency_validator])
    units_per_base = models.DecimalField(
        max_digits=18, decimal_places=8, validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    valid_from = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["currency", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "valid_from"], name="one_rate_per_instant")
        ]

    def __str__(self) -> str:
        return f"1 {settings.TOLLGATE_BASE_CURRENCY} = {self.units_per_base} {self.currency}"


class ApprovalPolicy(models.Model):
    """A policy line for one scope: the whole company, one region, or one site."""

    name = models.CharField(max_length=100)
    region = models.OneToOneField(
        "sites.Region", on_delete=models.PROTECT, null=True, blank=True, related_name="policy"
    )
    site = models.OneToOneField(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="policy"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="From then on the next broader policy governs its scope."
    )

    class Meta:
        verbose_name_plural = "approval policies"
        constraints = [
            models.CheckConstraint(
                name="policy_scope_is_one_level",
                condition=Q(region__isnull=True) | Q(site__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(region__isnull=True, site__isnull=True),
                name="one_global_policy_per_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope_label})"

    @property
    def scope_label(self) -> str:
        if self.site_id:
            return f"site {self.site.code}"
        if self.region_id:
            return f"region {self.region.code}"
        return "global"


class PolicyVersion(models.Model):
    """One published, immutable state of a policy: its rules and their tiers."""

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    effective_from = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    fast_path_sample_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.05"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of fast-path approvals flagged for finance's post-event review.",
    )
    drift_tolerance_pct = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=[MinValueValidator(0)],
        help_text="An Odoo amount change beyond this percentage sends a request back to review.",
    )
    cancel_in_odoo_on_reject = models.BooleanField(
        default=False,
        help_text="A rejection also cancels the Odoo document, rather than only noting it there.",
    )

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="version_numbers_unique")
        ]
        indexes = [models.Index(fields=["policy", "effective_from"], name="version_in_force")]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("A published policy version cannot change; publish a new one.")
        super().save(*args, **kwargs)


class PolicyRule(models.Model):
    """Selects requests and yields their chain of tiers, or adds tiers to another rule's chain.

    A `route` rule gives the chain; `add` rules (typically on risk flags) append their tiers.
    Empty selectors match everything; the amount band is [min, max) in the base currency.
    """

    class Effect(models.TextChoices):
        ROUTE = "route", "Routes the request"
        ADD = "add", "Adds tiers to the route"

    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="rules")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.ROUTE)
    kinds = models.JSONField(default=list, blank=True)
    min_amount = models.DecimalField(**MONEY, null=True, blank=True)
    max_amount = models.DecimalField(**MONEY, null=True, blank=True)
    categories = models.JSONField(default=list, blank=True)
    customer_classes = models.JSONField(default=list, blank=True)
    risk_flags = models.JSONField(
        default=list, blank=True, help_text="The rule applies only to requests with any of these."
    )
    auto_approve_below = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Fast path: unflagged requests below this."
    )

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="rule_positions_unique")
        ]

    def __str__(self) -> str:
        return f"{self.version} rule {self.position} {self.name!r}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Rules of a published policy version cannot change.")
        super().save(*args, **kwargs)


class HeldAt(models.TextChoices):
    SITE = "site", "at the request's site"
    REGION = "region", "at the request's region"


class OnBreach(models.TextChoices):
    ESCALATE = "escalate", "Add the escalation role"
    EXPIRE = "expire", "Expire the request"
    REJECT = "reject", "Reject the request"


class PolicyTier(models.Model):
    """One level of a chain: who decides, how many must agree, and how long they have.

    Tiers of a rule with the same `stage` run in parallel; stages run one after another.
    """

    rule = models.ForeignKey(PolicyRule, on_delete=models.PROTECT, related_name="tiers")
    position = models.PositiveSmallIntegerField()
    stage = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=32, choices=Role.choices)
    held_at = models.CharField(max_length=8, choices=HeldAt.choices, default=HeldAt.SITE)
    quorum = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    sla_hours = models.DecimalField(
        max_digits=6, decimal_places=2, validators=[MinValueValidator(Decimal("0.25"))]
    )
    business_hours = models.BooleanField(default=False)
    escalation_role = models.CharField(max_length=32, choices=Role.choices, blank=True)
    on_breach = models.CharField(max_length=8, choices=OnBreach.choices, default=OnBreach.ESCALATE)
    comment_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["rule", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "position"], name="tier_positions_unique")
        ]

    def __str__(self) -> str:
        return f"{self.quorum} × {self.get_role_display()} {self.get_held_at_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Tiers of a published policy version cannot change.")
        super().save(*args, **kwargs)


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


def _attachment_path(instance, filename: str) -> str:
    # Named by digest, never by what the uploader typed: no path tricks, and one copy per file.
    return f"attachments/{instance.sha256[:2]}/{instance.sha256}"


class Attachment(models.Model):
    """A document given with a request (a quote, a photo of the damage), kept by its digest."""

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="attachments"
    )
    file = models.FileField(upload_to=_attachment_path, max_length=200)
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


class StepState(models.TextChoices):
    WAITING = "waiting", "Waiting for an earlier tier"
    ACTIVE = "active", "Waiting for a decision"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CLOSED = "closed", "Closed unfinished"


# A tier still open when its request is decided, withdrawn or sent back is closed unfinished.
UNFINISHED_STEP_STATES = (StepState.WAITING, StepState.ACTIVE)


class StepQuerySet(models.QuerySet):
    def close_unfinished(self, *, at) -> int:
        """`ApprovalStep.close` for every unfinished tier in the set, in one statement.

        A request can have many tiers open when it is decided; this writes the same state and
        time the transition writes, only to rows the transition accepts (its sources).
        """
        return self.filter(state__in=UNFINISHED_STEP_STATES).update(
            state=StepState.CLOSED, completed_at=at
        )


class ApprovalStep(FSMModelMixin, models.Model):
    """One tier of one request, copied from its policy tier when the request was routed.

    Its state moves only through the transitions below (`activate`, `approve`, `reject`,
    `expire`, `close`), or `StepQuerySet.close_unfinished` for many tiers at once.
    """

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="steps")
    # The request's site (a request never changes site), copied so that tiers are counted per
    # site without reading a million requests to learn where each one is.
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    tier = models.ForeignKey(PolicyTier, on_delete=models.PROTECT, related_name="+")
    round = models.PositiveSmallIntegerField(
        default=1, help_text="Each return to review (drift) starts a new round of steps."
    )
    position = models.PositiveSmallIntegerField()
    stage = models.PositiveSmallIntegerField()
    state = FSMField(
        max_length=16, default=StepState.WAITING, choices=StepState.choices, protected=True
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    held_at = models.CharField(max_length=8, choices=HeldAt.choices)
    quorum = models.PositiveSmallIntegerField()
    comment_required = models.BooleanField(default=False)
    sla_hours = models.DecimalField(max_digits=6, decimal_places=2)
    business_hours = models.BooleanField(default=False)
    escalation_role = models.CharField(max_length=32, choices=Role.choices, blank=True)
    escalated_role = models.CharField(
        max_length=32, choices=Role.choices, blank=True, help_text="Set when the SLA escalated."
    )
    on_breach = models.CharField(max_length=8, choices=OnBreach.choices)
    activated_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = StepQuerySet.as_manager()

    class Meta:
        ordering = ["request", "round", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "position"], name="step_positions_unique"
            )
        ]
        indexes = [
            models.Index(fields=["request", "state"], name="step_request_state"),
            models.Index(fields=["due_at"], condition=Q(state="active"), name="step_sla"),
            # Dashboards: tiers activated in a period per site, and the tiers waiting now, read
            # from the index alone.
            models.Index(
                fields=["site", "activated_at", "state", "due_at", "completed_at", "escalated_at"],
                name="step_activated",
            ),
            models.Index(
                fields=["site", "request", "position", "activated_at", "due_at"],
                condition=Q(state="active"),
                name="step_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request.reference} tier {self.position}: {self.get_role_display()}"

    @property
    def roles(self) -> list[str]:
        return [role for role in (self.role, self.escalated_role) if role]

    @transition(field=state, source=StepState.WAITING, target=StepState.ACTIVE)
    def activate(self, *, at, due_at, remind_at) -> None:
        self.activated_at, self.due_at, self.remind_at = at, due_at, remind_at

    @transition(field=state, source=StepState.ACTIVE, target=StepState.APPROVED)
    def approve(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=StepState.ACTIVE, target=StepState.REJECTED)
    def reject(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=StepState.ACTIVE, target=StepState.EXPIRED)
    def expire(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=list(UNFINISHED_STEP_STATES), target=StepState.CLOSED)
    def close(self) -> None:
        self.completed_at = timezone.now()


class Delegation(models.Model):
    """`delegator` hands their approvals to `delegate` for a period, optionally narrowed.

    Only the delegator's own approvals move: a delegation never passes on one that the delegator
    holds from someone else.
    """

    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=RequestKind.choices, blank=True)
    max_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="In the base currency."
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                name="delegation_period_is_ordered", condition=Q(ends_at__gt=models.F("starts_at"))
            ),
            models.CheckConstraint(
                name="delegation_to_someone_else", condition=~Q(delegate=models.F("delegator"))
            ),
        ]
        indexes = [models.Index(fields=["delegate", "ends_at"], name="delegation_lookup")]

    def __str__(self) -> str:
        period = f"{self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"
        return f"{self.delegator} → {self.delegate} ({period})"


class Outcome(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"
    AUTO_APPROVE = "auto_approve", "Approved by policy (fast path)"


class Decision(models.Model):
    """Who decided which tier, for whom, when, why, and under which policy version."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    step = models.ForeignKey(
        ApprovalStep, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    delegation = models.ForeignKey(
        Delegation, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    round = models.PositiveSmallIntegerField(default=1)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # The last line of segregation of duties: one vote per person per step, and one
            # approval per person per request, whatever the application code does.
            models.UniqueConstraint(fields=["step", "actor"], name="one_vote_per_person_per_step"),
            models.UniqueConstraint(
                fields=["request", "round", "actor"],
                condition=Q(outcome="approve"),
                name="one_approval_per_person_per_request",
            ),
        ]

    def __str__(self) -> str:
        if self.actor is None:
            return (
                self.get_outcome_display()
                if self.outcome == Outcome.AUTO_APPROVE
                else (f"{self.get_outcome_display()} by Tollgate")
            )
        who = self.actor.get_username()
        if self.on_behalf_of_id:
            who = f"{who} on behalf of {self.on_behalf_of.get_username()}"
        return f"{self.get_outcome_display()} by {who}"


class NotificationPreference(models.Model):
    """How one person wants to hear from Tollgate; without a row, everything comes at once.

    Escalations are always sent: an overdue decision must reach someone whatever they chose.
    """

    class NewSteps(models.TextChoices):
        IMMEDIATE = "immediate", "An e-mail for each new decision"
        DIGEST = "digest", "One daily digest of what waits for me"
        OFF = "off", "No e-mail; I check my inbox"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    new_steps = models.CharField(
        max_length=16, choices=NewSteps.choices, default=NewSteps.IMMEDIATE
    )
    reminders = models.BooleanField(
        default=True, help_text="Remind me when a decision waiting for me nears its due time."
    )
    decisions_on_my_requests = models.BooleanField(
        default=True, help_text="Tell me when a request I raised is decided."
    )
    last_digest_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"notification preferences of {self.user}"
