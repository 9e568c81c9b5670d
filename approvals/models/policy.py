"""The versioned policy matrix: a policy per scope, its published versions, rules and tiers.

A version is immutable once published: an edit publishes the next one.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.currency import MONEY
from sites.roles import Role


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
