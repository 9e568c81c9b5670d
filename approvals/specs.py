"""A policy version before it is published: plain values that lint can read and publish writes.

Editing a policy means: take the specs of the version in force (`version_spec`), change them,
and publish them as the next version.
"""

from dataclasses import dataclass, fields
from decimal import Decimal

from approvals.models import HeldAt, OnBreach, PolicyRule, PolicyVersion


@dataclass(frozen=True)
class TierSpec:
    role: str
    sla_hours: Decimal
    stage: int = 1
    held_at: str = HeldAt.SITE
    quorum: int = 1
    business_hours: bool = False
    escalation_role: str = ""
    on_breach: str = OnBreach.ESCALATE
    comment_required: bool = False

    def routing_key(self) -> tuple:
        return (self.stage, self.role, self.held_at, self.quorum)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    tiers: tuple[TierSpec, ...] = ()
    effect: str = PolicyRule.Effect.ROUTE
    kinds: tuple[str, ...] = ()
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    categories: tuple[str, ...] = ()
    customer_classes: tuple[str, ...] = ()
    risk_flags: tuple[str, ...] = ()
    auto_approve_below: Decimal | None = None

    def routing_key(self) -> tuple:
        return (self.auto_approve_below, tuple(t.routing_key() for t in self.tiers))


@dataclass(frozen=True)
class VersionSpec:
    rules: tuple[RuleSpec, ...]
    fast_path_sample_rate: Decimal = Decimal("0.05")
    drift_tolerance_pct: Decimal = Decimal("2.00")
    cancel_in_odoo_on_reject: bool = False
    note: str = ""


TIER_FIELDS = tuple(f.name for f in fields(TierSpec))
RULE_FIELDS = tuple(f.name for f in fields(RuleSpec) if f.name != "tiers")
_LIST_FIELDS = ("kinds", "categories", "customer_classes", "risk_flags")


def tier_values(tier: TierSpec) -> dict:
    """The columns of a PolicyTier for `tier`."""
    return {name: getattr(tier, name) for name in TIER_FIELDS}


def rule_values(rule: RuleSpec) -> dict:
    """The columns of a PolicyRule for `rule` (lists stored as JSON lists)."""
    values = {name: getattr(rule, name) for name in RULE_FIELDS}
    return values | {name: list(values[name]) for name in _LIST_FIELDS}


def version_spec(version: PolicyVersion) -> VersionSpec:
    """The specs of a published version, ready to be changed and published again."""
    rules = []
    for rule in version.rules.order_by("position").prefetch_related("tiers"):
        tiers = tuple(
            TierSpec(**{name: getattr(tier, name) for name in TIER_FIELDS})
            for tier in sorted(rule.tiers.all(), key=lambda t: t.position)
        )
        values = {name: getattr(rule, name) for name in RULE_FIELDS}
        values |= {name: tuple(values[name]) for name in _LIST_FIELDS}
        rules.append(RuleSpec(tiers=tiers, **values))
    return VersionSpec(
        rules=tuple(rules),
        fast_path_sample_rate=version.fast_path_sample_rate,
        drift_tolerance_pct=version.drift_tolerance_pct,
        cancel_in_odoo_on_reject=version.cancel_in_odoo_on_reject,
        note=version.note,
    )
