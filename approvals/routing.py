"""From a request to its chain of tiers: which policy version governs, which rule selects it.

The most specific policy with a version in force wins: the site's own, else its region's, else
the global one ("one enterprise framework, local thresholds"). Within a version exactly one
`route` rule may select a request (publishing refuses overlaps), and any number of `add` rules
append their tiers after it, typically for risk flags.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Prefetch, Q, Value, When
from django.utils import timezone

from approvals.models import CurrencyRate, PolicyRule, PolicyTier, PolicyVersion

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Selector:
    """What a request looks like to the policy matrix."""

    kind: str
    amount_base: Decimal
    category: str = ""
    customer_class: str = ""
    flags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Route:
    version: PolicyVersion
    rule: PolicyRule
    tiers: list[tuple[int, PolicyTier]]  # (stage, tier), in the order they are worked
    added_by: list[PolicyRule]
    auto_approve: bool

    def evidence(self, selector: Selector) -> dict:
        """What a fast-path decision rests on, in words and numbers an auditor can check."""
        return {
            "policy_version": str(self.version),
            "rule": self.rule.name,
            "auto_approve_below": self.rule.auto_approve_below,
            "amount_base": selector.amount_base,
            "base_currency": settings.TOLLGATE_BASE_CURRENCY,
            "risk_flags": sorted(selector.flags),
        }


def convertible_currencies(*, at: datetime | None = None) -> set[str]:
    """The currencies `to_base` converts at `at` (now): the base one and those with a rate."""
    rated = CurrencyRate.objects.filter(valid_from__lte=at or timezone.now())
    return {settings.TOLLGATE_BASE_CURRENCY, *rated.values_list("currency", flat=True).distinct()}


def to_base(amount: Decimal, currency: str, *, at: datetime | None = None) -> Decimal:
    """`amount` in the base currency at the rate in force at `at`."""
    if currency == settings.TOLLGATE_BASE_CURRENCY:
        return amount.quantize(CENT)
    rate = (
        CurrencyRate.objects.filter(currency=currency, valid_from__lte=at or timezone.now())
        .order_by("-valid_from")
        .values_list("units_per_base", flat=True)
        .first()
    )
    if rate is None:
        message = f"There is no exchange rate for {currency}; an administrator must add one."
        raise ValidationError({"currency": message})
    return (amount / rate).quantize(CENT, rounding=ROUND_HALF_UP)


def version_in_force(site, *, at: datetime | None = None) -> PolicyVersion | None:
    """The policy version that governs new requests at `site` (one query)."""
    at = at or timezone.now()
    specificity = Case(
        When(policy__site=site.pk, then=Value(3)),
        When(policy__region=site.region_id, then=Value(2)),
        default=Value(1),
        output_field=IntegerField(),
    )
    scope = (
        Q(policy__site=site.pk)
        | Q(policy__region=site.region_id)
        | Q(policy__site__isnull=True, policy__region__isnull=True)
    )
    return (
        PolicyVersion.objects.filter(scope, effective_from__lte=at)
        .filter(Q(policy__retired_at__isnull=True) | Q(policy__retired_at__gt=at))
        .select_related("policy")
        .annotate(specificity=specificity)
        .order_by("-specificity", "-effective_from", "-number")
        .first()
    )


def rules_of(version: PolicyVersion) -> list[PolicyRule]:
    """The version's rules with their tiers, in position order (two queries, cached per object)."""
    cached = getattr(version, "_rules_with_tiers", None)
    if cached is None:
        tiers = Prefetch("tiers", queryset=PolicyTier.objects.order_by("position"))
        cached = list(version.rules.order_by("position").prefetch_related(tiers))
        version._rules_with_tiers = cached
    return cached


def matches(rule: PolicyRule, selector: Selector) -> bool:
    """Whether `rule` selects a request that looks like `selector`."""
    if rule.kinds and selector.kind not in rule.kinds:
        return False
    if rule.min_amount is not None and selector.amount_base < rule.min_amount:
        return False
    if rule.max_amount is not None and selector.amount_base >= rule.max_amount:
        return False
    if rule.categories and selector.category not in rule.categories:
        return False
    if rule.customer_classes and selector.customer_class not in rule.customer_classes:
        return False
    return not rule.risk_flags or bool(selector.flags & set(rule.risk_flags))


def route(version: PolicyVersion, selector: Selector) -> Route:
    """The chain `version` gives a request; a ValidationError if no route rule selects it."""
    rules = rules_of(version)
    routes = [r for r in rules if r.effect == PolicyRule.Effect.ROUTE and matches(r, selector)]
    if not routes:
        raise ValidationError(
            f"No rule of {version} routes a {selector.kind} of {selector.amount_base} "
            f"{settings.TOLLGATE_BASE_CURRENCY}; ask an administrator to extend the policy."
        )
    chosen = routes[0]
    added = [r for r in rules if r.effect == PolicyRule.Effect.ADD and matches(r, selector)]
    tiers = [(tier.stage, tier) for tier in chosen.tiers.all()]
    offset = max((stage for stage, _ in tiers), default=0)
    for rule in added:
        rule_tiers = list(rule.tiers.all())
        tiers.extend((offset + tier.stage, tier) for tier in rule_tiers)
        offset = max((stage for stage, _ in tiers), default=offset)
    fast = (
        chosen.auto_approve_below is not None
        and selector.amount_base < chosen.auto_approve_below
        and not selector.flags
        and not added
    )
    return Route(version=version, rule=chosen, tiers=tiers, added_by=added, auto_approve=fast)


def thresholds(version: PolicyVersion, kind: str) -> list[Decimal]:
    """The amounts at which `version` routes a `kind` differently, ascending."""
    found: set[Decimal] = set()
    for rule in rules_of(version):
        if rule.effect != PolicyRule.Effect.ROUTE or (rule.kinds and kind not in rule.kinds):
            continue
        found.update(a for a in (rule.min_amount, rule.max_amount, rule.auto_approve_below) if a)
    return sorted(found)
