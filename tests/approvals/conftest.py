"""A staffed company and a published policy matrix, built through the real services.

Region A (sites A1, A2) and region B (site B1) from the root fixtures, with enough people that
every tier of the matrix resolves at every site: a site manager at each site, two regional
managers and a finance officer per region. The global policy is the enterprise framework;
region B publishes a local variant with lower thresholds.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from approvals import services
from approvals.models import HeldAt, OnBreach, PolicyRule
from approvals.specs import RuleSpec, TierSpec, VersionSpec
from sites.roles import Role
from tests.conftest import persona

D = Decimal
_LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
RISK_FLAGS = (
    "amount_outlier",
    "threshold_split",
    "new_counterparty",
    "after_hours",
    "price_below_history",
)


def tier(role, *, stage=1, held_at=HeldAt.SITE, quorum=1, sla="24", **extra) -> TierSpec:
    escalation = extra.pop("escalation_role", Role.REGIONAL_MANAGER)
    return TierSpec(
        role=role,
        stage=stage,
        held_at=held_at,
        quorum=quorum,
        sla_hours=D(sla),
        escalation_role=escalation,
        **extra,
    )


SITE_MANAGER = tier(Role.SITE_MANAGER)
REGIONAL = tier(Role.REGIONAL_MANAGER, stage=2, held_at=HeldAt.REGION)
FINANCE_PARALLEL = tier(Role.FINANCE, stage=2, held_at=HeldAt.REGION)


def enterprise_rules(*, purchase_fast=500, purchase_mid=5000, purchase_big=50000):
    """The global matrix; region B reuses it with lower thresholds."""
    purchase_fast, purchase_mid, purchase_big = map(D, (purchase_fast, purchase_mid, purchase_big))
    return (
        RuleSpec(
            name="Routine purchases",
            kinds=("purchase",),
            max_amount=purchase_mid,
            auto_approve_below=purchase_fast,
            tiers=(SITE_MANAGER,),
        ),
        RuleSpec(
            name="Material purchases",
            kinds=("purchase",),
            min_amount=purchase_mid,
            max_amount=purchase_big,
            tiers=(SITE_MANAGER, REGIONAL),
        ),
        RuleSpec(
            name="Major purchases",
            kinds=("purchase",),
            min_amount=purchase_big,
            tiers=(SITE_MANAGER, REGIONAL, FINANCE_PARALLEL),
        ),
        RuleSpec(
            name="Transfers",
            kinds=("transfer",),
            tiers=(SITE_MANAGER,),
        ),
        RuleSpec(
            name="Small write-offs",
            kinds=("write_off",),
            max_amount=D("1000"),
            auto_approve_below=D("100"),
            tiers=(SITE_MANAGER,),
        ),
        RuleSpec(
            name="Large write-offs",
            kinds=("write_off",),
            min_amount=D("1000"),
            tiers=(SITE_MANAGER, tier(Role.FINANCE, stage=2, held_at=HeldAt.REGION)),
        ),
        RuleSpec(
            name="Price overrides for key accounts",
            kinds=("price_override",),
            customer_classes=("key",),
            tiers=(tier(Role.REGIONAL_MANAGER, held_at=HeldAt.REGION),),
        ),
        RuleSpec(
            name="Other price overrides",
            kinds=("price_override",),
            customer_classes=("standard", "new"),
            tiers=(SITE_MANAGER,),
        ),
        RuleSpec(
            name="Credit exceptions",
            kinds=("credit_exception",),
            tiers=(tier(Role.FINANCE, held_at=HeldAt.REGION, comment_required=True),),
        ),
        RuleSpec(
            name="Returns",
            kinds=("return_authorization",),
            auto_approve_below=D("250"),
            tiers=(SITE_MANAGER,),
        ),
        RuleSpec(
            name="Expedited freight",
            kinds=("expedited_freight",),
            tiers=(tier(Role.REGIONAL_MANAGER, held_at=HeldAt.REGION, quorum=2),),
        ),
        RuleSpec(
            name="Risk review",
            effect=PolicyRule.Effect.ADD,
            risk_flags=RISK_FLAGS,
            tiers=(tier(Role.FINANCE, held_at=HeldAt.REGION, on_breach=OnBreach.REJECT),),
        ),
    )


# A Tuesday, 10:00 in Amsterdam and 09:00 in London: inside every test site's business hours.
WORKING_MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _working_morning():
    with time_machine.travel(WORKING_MORNING, tick=True) as traveller:
        yield traveller


@pytest.fixture
def staffed(site_a1, site_a2, site_b1, region_a, region_b, outsider):
    """Everyone the matrix needs, beyond the root personas."""
    return {
        "site_manager_a2": persona("sm.a2", Role.SITE_MANAGER, site=site_a2),
        "regional_manager_2": persona("rm.a.second", Role.REGIONAL_MANAGER, region=region_a),
        "regional_manager_b": persona("rm.b", Role.REGIONAL_MANAGER, region=region_b),
        "regional_manager_b2": persona("rm.b.second", Role.REGIONAL_MANAGER, region=region_b),
        "finance_b": persona("finance.b", Role.FINANCE, region=region_b),
        "requester_b": persona("requester.b", Role.REQUESTER, site=site_b1),
    }


@pytest.fixture
def colleague(site_a1):
    """A second requester at A1: sees the site's requests and decides none of them, except
    through a delegation (a delegate must work where the approvals are handed over)."""
    return persona("colleague", Role.REQUESTER, site=site_a1)


@pytest.fixture
def matrix(staffed, requester, site_manager, regional_manager, finance):
    """The global policy v1 and region B's local variant v1, and the pound's rate."""
    services.currency_rate_add(
        actor=None, currency="GBP", units_per_base=D("0.85"), valid_from=_LONG_AGO
    )
    global_policy = services.policy_create(actor=None, name="Enterprise framework")
    global_v1 = services.policy_publish(
        actor=None, policy=global_policy, spec=VersionSpec(rules=enterprise_rules())
    )
    region_b = staffed["regional_manager_b"].memberships.get().region
    local = services.policy_create(actor=None, name="UK thresholds", region=region_b)
    local_v1 = services.policy_publish(
        actor=None,
        policy=local,
        spec=VersionSpec(
            rules=enterprise_rules(purchase_fast=200, purchase_mid=2000, purchase_big=20000)
        ),
    )
    return {"global": global_v1, "region_b": local_v1}


def raise_request(requester, site, *, kind="purchase", amount="1000", submit=True, **fields):
    """Raise (and by default submit) a request the way the portal does."""
    defaults = {
        "title": f"{kind} of {amount}",
        "reason": "Stock for the spring season",
        "currency": site.currency,
        "category": "Beverages",
        "customer_class": "standard",
        "counterparty": "Acme Supplies",
        "counterparty_ref": "res.partner,7",
        "details": _details(kind),
    }
    defaults.update(fields)
    request = services.request_create(
        requester=requester, kind=kind, site=site, amount=D(amount), **defaults
    )
    if submit:
        request = services.request_submit(actor=requester, request_id=request.pk)
    return request


def _details(kind: str) -> dict:
    # Known to Odoo for years, so that only the signals a test builds are raised.
    known = {"counterparty_since": "2019-01-01"}
    return known | {
        "transfer": {"destination_site": "A2"},
        "price_override": {"product": "SKU-1", "unit_price": "9.50", "floor_price": "10.00"},
        "credit_exception": {"credit_limit": "10000", "exposure": "12500"},
        "expedited_freight": {"carrier": "DHL"},
    }.get(kind, {})
