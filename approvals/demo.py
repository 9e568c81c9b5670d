"""The demo company's approval policy and exchange rates, published through the services.

One enterprise framework for every site, and a UK & Ireland variant with lower purchase
thresholds ("one enterprise framework, local thresholds"). Amounts are in EUR.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalPolicy,
    CurrencyRate,
    HeldAt,
    OnBreach,
    PolicyRule,
    RiskFlag,
)
from approvals.specs import RuleSpec, TierSpec, VersionSpec
from sites.models import Region
from sites.roles import Role

D = Decimal
RATES = {"GBP": D("0.85"), "SEK": D("11.50"), "NOK": D("11.70"), "DKK": D("7.46")}


def _in_force_from() -> datetime:
    """The demo's policies and rates start two new years ago, so that its ninety days of
    history were always governed, on whatever day the demo is first seeded."""
    return datetime(timezone.now().year - 2, 1, 1, tzinfo=UTC)


def _tier(role, *, stage=1, held_at=HeldAt.SITE, quorum=1, hours="24", **extra) -> TierSpec:
    return TierSpec(
        role=role,
        stage=stage,
        held_at=held_at,
        quorum=quorum,
        sla_hours=D(hours),
        business_hours=True,
        escalation_role=extra.pop("escalation_role", Role.REGIONAL_MANAGER),
        **extra,
    )


SITE = _tier(Role.SITE_MANAGER, hours="8")
REGIONAL = _tier(Role.REGIONAL_MANAGER, stage=2, held_at=HeldAt.REGION, hours="16")
FINANCE_2 = _tier(
    Role.FINANCE,
    stage=2,
    held_at=HeldAt.REGION,
    hours="16",
    escalation_role=Role.FINANCE,
    on_breach=OnBreach.EXPIRE,
)


def framework(*, fast: int, material: int, major: int) -> tuple[RuleSpec, ...]:
    fast_d, material_d, major_d = D(fast), D(material), D(major)
    return (
        RuleSpec(
            "Routine purchases",
            (SITE,),
            kinds=("purchase",),
            max_amount=material_d,
            auto_approve_below=fast_d,
        ),
        RuleSpec(
            "Material purchases",
            (SITE, REGIONAL),
            kinds=("purchase",),
            min_amount=material_d,
            max_amount=major_d,
        ),
        RuleSpec(
            "Major purchases", (SITE, REGIONAL, FINANCE_2), kinds=("purchase",), min_amount=major_d
        ),
        RuleSpec("Transfers", (SITE,), kinds=("transfer",), auto_approve_below=D(2000)),
        RuleSpec(
            "Small write-offs",
            (SITE,),
            kinds=("write_off",),
            max_amount=D(1000),
            auto_approve_below=D(250),
        ),
        RuleSpec("Large write-offs", (SITE, FINANCE_2), kinds=("write_off",), min_amount=D(1000)),
        RuleSpec(
            "Key-account price overrides",
            (_tier(Role.REGIONAL_MANAGER, held_at=HeldAt.REGION, hours="8"),),
            kinds=("price_override",),
            customer_classes=("key",),
        ),
        RuleSpec(
            "Price overrides",
            (SITE,),
            kinds=("price_override",),
            customer_classes=("standard", "new", "wholesale"),
        ),
        RuleSpec(
            "Credit exceptions",
            (
                _tier(
                    Role.FINANCE,
                    held_at=HeldAt.REGION,
                    hours="8",
                    escalation_role=Role.REGIONAL_MANAGER,
                    comment_required=True,
                ),
            ),
            kinds=("credit_exception",),
        ),
        RuleSpec("Returns", (SITE,), kinds=("return_authorization",), auto_approve_below=D(500)),
        RuleSpec(
            "Expedited freight",
            (
                _tier(
                    Role.REGIONAL_MANAGER,
                    held_at=HeldAt.REGION,
                    quorum=2,
                    hours="4",
                    on_breach=OnBreach.REJECT,
                ),
            ),
            kinds=("expedited_freight",),
        ),
        RuleSpec(
            "Risk review: finance looks at flagged requests",
            (
                _tier(
                    Role.FINANCE,
                    held_at=HeldAt.REGION,
                    hours="16",
                    escalation_role=Role.REGIONAL_MANAGER,
                ),
            ),
            effect=PolicyRule.Effect.ADD,
            risk_flags=tuple(RiskFlag.values),
        ),
    )


def seed() -> None:
    """Create the rates and policies that are missing; leave edited ones alone."""
    for currency, units in RATES.items():
        if not CurrencyRate.objects.filter(currency=currency).exists():
            services.currency_rate_add(
                actor=None, currency=currency, units_per_base=units, valid_from=_in_force_from()
            )
    _publish_once("Enterprise framework", None, framework(fast=1000, material=5000, major=50000))
    uki = Region.objects.get(code="UKI")
    _publish_once("UK & Ireland thresholds", uki, framework(fast=500, material=3000, major=30000))


def _publish_once(name: str, region, rules) -> None:
    policy = ApprovalPolicy.objects.filter(name=name, region=region, site=None).first()
    if policy is None:
        policy = services.policy_create(actor=None, name=name, region=region)
    if not policy.versions.exists():
        services.policy_publish(
            actor=None,
            policy=policy,
            spec=VersionSpec(rules=rules, note="Demo policy"),
            effective_from=_in_force_from(),
        )
