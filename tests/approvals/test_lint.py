"""Policy lint: a version that would strand, confuse or exhaust approvers is never published."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from approvals import routing, services
from approvals.lint import governed_sites
from approvals.models import HeldAt, PolicyRule, PolicyTier, PolicyVersion
from approvals.specs import RuleSpec, VersionSpec, version_spec
from portal.audit.models import AuditEvent
from sites.roles import DECIDING_ROLES, Role
from tests.approvals.conftest import (
    FINANCE_PARALLEL,
    REGIONAL,
    SITE_MANAGER,
    WORKING_MORNING,
    raise_request,
    tier,
)
from tests.conftest import persona

D = Decimal
ADD = PolicyRule.Effect.ADD


def _with_rule(version: PolicyVersion, rule: RuleSpec) -> VersionSpec:
    spec = version_spec(version)
    return replace(spec, rules=(*spec.rules, rule))


def _edited(version: PolicyVersion, rule_name: str, **changes) -> VersionSpec:
    spec = version_spec(version)
    rules = tuple(replace(r, **changes) if r.name == rule_name else r for r in spec.rules)
    assert rules != spec.rules, f"no rule named {rule_name!r}"
    return replace(spec, rules=rules)


def _without_add_rules(version: PolicyVersion) -> VersionSpec:
    spec = version_spec(version)
    return replace(spec, rules=tuple(r for r in spec.rules if r.effect != ADD))


def _stored() -> tuple[int, ...]:
    published = AuditEvent.objects.filter(action="policy.published")
    rows = [m.objects.count() for m in (PolicyVersion, PolicyRule, PolicyTier)]
    return (*rows, published.count())


def refused(policy, spec: VersionSpec, **options) -> list[str]:
    """Publish `spec` expecting lint to refuse it; check nothing was written; the messages."""
    before = _stored()
    with pytest.raises(ValidationError) as error:
        services.policy_publish(actor=None, policy=policy, spec=spec, **options)
    assert _stored() == before
    return error.value.messages


def published(policy, spec: VersionSpec) -> PolicyVersion:
    return services.policy_publish(actor=None, policy=policy, spec=spec)


# --- tiers nobody can decide ----------------------------------------------------------------


def test_quorum_larger_than_the_region_is_refused_naming_rule_tier_and_sites(matrix, site_a1):
    # Region A has two regional managers; a quorum of three can never be met at A1 or A2.
    v1 = matrix["global"]
    three = tier(Role.REGIONAL_MANAGER, held_at=HeldAt.REGION, quorum=3)

    messages = refused(v1.policy, _edited(v1, "Expedited freight", tiers=(three,)))

    # Region B's own policy governs B1, so B1 is not the global policy's concern.
    assert messages == [
        "Rule 'Expedited freight', tier 1 (3 × Regional manager at the request's region): "
        "resolves to too few people at A1 (2), A2 (2); it needs 3."
    ]
    assert routing.version_in_force(site_a1) == v1


@pytest.fixture
def area_manager(region_a, site_a1, site_a2):
    """A site manager for every site of region A; region B has only site-held site managers."""
    return persona("area.manager", Role.SITE_MANAGER, region=region_a)


AREA_TIER = tier(Role.SITE_MANAGER, stage=2, held_at=HeldAt.REGION)


def test_role_nobody_holds_at_a_site_is_refused_naming_that_site(matrix, area_manager):
    # Region A has a site manager held at the region; region B has none, so B1's tier would
    # resolve to nobody.
    local = matrix["region_b"]

    messages = refused(local.policy, _edited(local, "Transfers", tiers=(SITE_MANAGER, AREA_TIER)))

    assert messages == [
        "Rule 'Transfers', tier 2 (1 × Site manager at the request's region): "
        "resolves to 0 people at B1; it needs 1."
    ]


def test_region_policy_is_checked_only_at_its_own_sites(matrix, region_b):
    # Region B gets three finance officers, region A keeps one.
    persona("finance.b2", Role.FINANCE, region=region_b)
    persona("finance.b3", Role.FINANCE, region=region_b)
    three = (tier(Role.FINANCE, held_at=HeldAt.REGION, quorum=3, comment_required=True),)
    local, enterprise = matrix["region_b"], matrix["global"]

    v2 = published(local.policy, _edited(local, "Credit exceptions", tiers=three))
    messages = refused(enterprise.policy, _edited(enterprise, "Credit exceptions", tiers=three))

    assert str(v2) == "UK thresholds v2"
    assert messages == [
        "Rule 'Credit exceptions', tier 1 (3 × Finance at the request's region): "
        "resolves to too few people at A1 (1), A2 (1); it needs 3."
    ]


def test_global_policy_ignores_sites_that_have_their_own_policy(matrix, area_manager):
    # Nobody manages B1 from the region, but region B's own policy governs it, not the global one.
    enterprise = matrix["global"]
    tiers = (SITE_MANAGER, AREA_TIER)

    v2 = published(enterprise.policy, _edited(enterprise, "Transfers", tiers=tiers))

    assert str(v2) == "Enterprise framework v2"


def test_governed_sites_are_those_where_the_policy_is_the_most_specific_in_force(
    matrix, site_a1, site_a2, site_b1
):
    enterprise, local = matrix["global"].policy, matrix["region_b"].policy
    now = WORKING_MORNING + timedelta(hours=1)
    later = now + timedelta(days=30)
    own = services.policy_create(actor=None, name="A2 pilot", site=site_a2)
    services.policy_publish(
        actor=None,
        policy=own,
        spec=VersionSpec(rules=(RuleSpec(name="Everything", tiers=(SITE_MANAGER,)),)),
        effective_from=later,
    )

    def codes(policy, at):
        return sorted(site.code for site in governed_sites(policy, at=at))

    assert codes(enterprise, now) == ["A1", "A2"]
    assert codes(enterprise, later) == ["A1"]
    assert codes(local, later) == ["B1"]
    assert codes(own, now) == ["A2"]


# --- roles that decide nothing --------------------------------------------------------------

_ONLY_DECIDERS = "(only the site manager, regional manager and finance roles decide approval tiers)"


@pytest.mark.parametrize(
    ("role", "label"),
    [(Role.ADMIN, "administrator"), (Role.REQUESTER, "requester"), (Role.AUDITOR, "auditor")],
)
def test_tier_naming_a_role_that_decides_nothing_is_refused(matrix, role, label):
    v1 = matrix["global"]
    spec = _edited(v1, "Transfers", tiers=(SITE_MANAGER, tier(role, stage=2)))

    assert refused(v1.policy, spec) == [
        f"Rule 'Transfers': tier 2: the {label} role decides nothing {_ONLY_DECIDERS}."
    ]


@pytest.mark.parametrize(
    ("role", "label"),
    [(Role.ADMIN, "administrator"), (Role.REQUESTER, "requester"), (Role.AUDITOR, "auditor")],
)
def test_tier_escalating_to_a_role_that_decides_nothing_is_refused(matrix, role, label):
    v1 = matrix["global"]
    spec = _edited(v1, "Transfers", tiers=(tier(Role.SITE_MANAGER, escalation_role=role),))

    assert refused(v1.policy, spec) == [
        f"Rule 'Transfers': tier 1: it escalates to the {label} role, which decides nothing "
        f"{_ONLY_DECIDERS}."
    ]


@pytest.mark.parametrize("role", sorted(DECIDING_ROLES))
def test_tiers_naming_each_deciding_role_are_accepted(matrix, role):
    v1 = matrix["global"]
    decider = tier(role, stage=2, escalation_role=role)
    spec = _edited(v1, "Transfers", tiers=(SITE_MANAGER, decider))

    assert str(published(v1.policy, spec)) == "Enterprise framework v2"


# --- overlapping route rules ----------------------------------------------------------------


def test_overlapping_rules_that_route_differently_are_refused_naming_both(matrix):
    v1 = matrix["global"]
    urgent = RuleSpec(
        name="Beverage transfers",
        kinds=("transfer",),
        categories=("Beverages",),
        tiers=(tier(Role.REGIONAL_MANAGER, held_at=HeldAt.REGION),),
    )

    assert refused(v1.policy, _with_rule(v1, urgent)) == [
        "Rule 'Beverage transfers': it overlaps rule 'Transfers' (same kinds, categories, "
        "customer classes and amounts) but routes differently."
    ]


def test_overlapping_amount_bands_are_refused(matrix):
    v1 = matrix["global"]

    messages = refused(v1.policy, _edited(v1, "Material purchases", min_amount=D("4999.99")))

    assert messages == [
        "Rule 'Material purchases': it overlaps rule 'Routine purchases' (same kinds, "
        "categories, customer classes and amounts) but routes differently."
    ]


def test_overlapping_rules_that_route_identically_are_accepted(matrix, requester, site_a1):
    v1 = matrix["global"]
    same = RuleSpec(
        name="Beverage transfers",
        kinds=("transfer",),
        categories=("Beverages",),
        tiers=(SITE_MANAGER,),
    )

    v2 = published(v1.policy, _with_rule(v1, same))

    assert [r.name for r in v2.rules.order_by("position")][-1] == "Beverage transfers"
    routed = raise_request(requester, site_a1, kind="transfer", amount="100")
    assert routed.policy_version == v2
    assert [s.role for s in routed.steps.all()] == [Role.SITE_MANAGER]


def test_different_fast_path_thresholds_count_as_routing_differently(matrix):
    v1 = matrix["global"]
    cheaper = RuleSpec(
        name="Beverage transfers",
        kinds=("transfer",),
        categories=("Beverages",),
        auto_approve_below=D("50"),
        tiers=(SITE_MANAGER,),
    )

    messages = refused(v1.policy, _with_rule(v1, cheaper))

    assert messages == [
        "Rule 'Beverage transfers': it overlaps rule 'Transfers' (same kinds, categories, "
        "customer classes and amounts) but routes differently."
    ]


# --- chain length ---------------------------------------------------------------------------


def test_chain_longer_than_the_maximum_is_refused(matrix, settings):
    settings.APPROVAL_MAX_CHAIN = 2
    v1 = matrix["global"]

    assert refused(v1.policy, _without_add_rules(v1)) == [
        "Rule 'Major purchases': its chain can reach 3 tiers; the maximum is 2."
    ]


def test_add_rules_count_towards_the_chain_length(matrix, settings):
    # Major purchases has three tiers; the risk review adds a fourth to any flagged request.
    settings.APPROVAL_MAX_CHAIN = 3
    v1 = matrix["global"]

    assert published(v1.policy, _without_add_rules(v1)).number == 2
    assert refused(v1.policy, version_spec(v1)) == [
        "Rule 'Major purchases': its chain can reach 4 tiers with add rules 'Risk review'; "
        "the maximum is 3."
    ]


def test_chain_at_the_maximum_is_accepted(matrix, settings):
    settings.APPROVAL_MAX_CHAIN = 4
    v1 = matrix["global"]

    assert published(v1.policy, version_spec(v1)).number == 2


# --- shape ----------------------------------------------------------------------------------


SHAPE_ERRORS = [
    pytest.param(
        RuleSpec(
            name="Odd band",
            kinds=("transfer",),
            min_amount=D("100"),
            max_amount=D("100"),
            tiers=(SITE_MANAGER,),
        ),
        "Rule 'Odd band': the amount band is empty (minimum is not below maximum).",
        id="empty-amount-band",
    ),
    pytest.param(
        RuleSpec(
            name="Flagged purchases",
            kinds=("purchase",),
            risk_flags=("after_hours",),
            tiers=(FINANCE_PARALLEL,),
        ),
        "Rule 'Flagged purchases': a route rule cannot select on risk flags; "
        "use an add rule for flags.",
        id="route-rule-on-risk-flags",
    ),
    pytest.param(
        RuleSpec(
            name="Waive small",
            effect=ADD,
            risk_flags=("after_hours",),
            auto_approve_below=D("50"),
            tiers=(SITE_MANAGER,),
        ),
        "Rule 'Waive small': an add rule cannot auto-approve.",
        id="add-rule-auto-approving",
    ),
    pytest.param(
        RuleSpec(name="Forgotten", kinds=("transfer",)),
        "Rule 'Forgotten': it has no tiers, so requests it selects could never be approved.",
        id="rule-without-tiers",
    ),
    pytest.param(
        RuleSpec(name="Buyers", kinds=("transfer",), tiers=(tier("buyer"),)),
        "Rule 'Buyers': tier 1: unknown role 'buyer'.",
        id="unknown-role",
    ),
    pytest.param(
        RuleSpec(
            name="No escalation",
            kinds=("transfer",),
            tiers=(tier(Role.SITE_MANAGER, escalation_role=""),),
        ),
        "Rule 'No escalation': tier 1: it escalates on breach but names no escalation role.",
        id="escalate-without-escalation-role",
    ),
    pytest.param(
        RuleSpec(name="Transfers", kinds=("transfer",), tiers=(SITE_MANAGER,)),
        "Rule 'Transfers': two rules have this name.",
        id="duplicate-rule-names",
    ),
    pytest.param(
        RuleSpec(name="Gifts", kinds=("gift",), tiers=(SITE_MANAGER,)),
        "Rule 'Gifts': unknown kinds gift.",
        id="unknown-kind",
    ),
    pytest.param(
        RuleSpec(name="Nobody", kinds=("transfer",), tiers=(tier(Role.FINANCE, quorum=0),)),
        "Rule 'Nobody': tier 1: the quorum must be at least 1.",
        id="quorum-zero",
    ),
    pytest.param(
        RuleSpec(name="Hasty", kinds=("transfer",), tiers=(tier(Role.FINANCE, sla="0.1"),)),
        "Rule 'Hasty': tier 1: the SLA must be at least a quarter of an hour.",
        id="sla-too-short",
    ),
    pytest.param(
        RuleSpec(name="Stage zero", kinds=("transfer",), tiers=(tier(Role.FINANCE, stage=0),)),
        "Rule 'Stage zero': tier 1: stages are numbered from 1.",
        id="stage-zero",
    ),
    pytest.param(
        RuleSpec(
            name="Nationwide", kinds=("transfer",), tiers=(tier(Role.FINANCE, held_at="country"),)
        ),
        "Rule 'Nationwide': tier 1: held at must be one of site, region.",
        id="unknown-held-at",
    ),
]


@pytest.mark.parametrize(("bad_rule", "message"), SHAPE_ERRORS)
def test_badly_shaped_rule_is_refused_with_its_message(matrix, site_a1, bad_rule, message):
    v1 = matrix["global"]

    assert refused(v1.policy, _with_rule(v1, bad_rule)) == [message]
    assert routing.version_in_force(site_a1) == v1


def test_every_shape_error_is_reported_at_once(matrix):
    v1 = matrix["global"]
    spec = replace(
        version_spec(v1),
        rules=(
            RuleSpec(name="Forgotten", kinds=("transfer",)),
            RuleSpec(name="Forgotten", kinds=("purchase",), tiers=(tier("buyer"),)),
        ),
    )

    assert refused(v1.policy, spec) == [
        "Rule 'Forgotten': it has no tiers, so requests it selects could never be approved.",
        "Rule 'Forgotten': tier 1: unknown role 'buyer'.",
        "Rule 'Forgotten': two rules have this name.",
    ]


def test_tierless_rule_that_only_ever_auto_approves_is_accepted(
    matrix, requester, site_a1, site_manager
):
    own = services.policy_create(actor=None, name="A1 petty cash", site=site_a1)
    petty = published(
        own,
        VersionSpec(
            rules=(
                RuleSpec(
                    name="Petty purchases",
                    kinds=("purchase",),
                    max_amount=D("100"),
                    auto_approve_below=D("100"),
                ),
                RuleSpec(
                    name="Other purchases",
                    kinds=("purchase",),
                    min_amount=D("100"),
                    tiers=(SITE_MANAGER, REGIONAL),
                ),
            )
        ),
    )

    routed = raise_request(requester, site_a1, amount="99.99")

    assert (routed.policy_version, routed.rule.name, routed.fast_path) == (
        petty,
        "Petty purchases",
        True,
    )


# --- values the model forbids ---------------------------------------------------------------


def test_unknown_escalation_role_is_refused(matrix):
    v1 = matrix["global"]
    bad = RuleSpec(
        name="Escalates to nobody",
        kinds=("transfer",),
        categories=("Beverages",),
        tiers=(tier(Role.SITE_MANAGER, escalation_role="ceo"),),
    )

    messages = refused(v1.policy, _with_rule(v1, bad))

    assert len(messages) == 1
    assert messages[0].startswith("Rule 'Escalates to nobody': tier 1:")
    assert "'ceo'" in messages[0]


def test_unknown_breach_action_is_refused(matrix):
    v1 = matrix["global"]
    bad = RuleSpec(
        name="Odd breach",
        kinds=("transfer",),
        categories=("Beverages",),
        tiers=(tier(Role.SITE_MANAGER, on_breach="shrug"),),
    )

    messages = refused(v1.policy, _with_rule(v1, bad))

    assert len(messages) == 1
    assert messages[0].startswith("Rule 'Odd breach': tier 1:")
    assert "shrug" in messages[0]


@pytest.mark.parametrize("rate", ["1.5", "-0.1"])
def test_fast_path_sample_rate_outside_zero_to_one_is_refused(matrix, rate):
    v1 = matrix["global"]

    messages = refused(v1.policy, replace(version_spec(v1), fast_path_sample_rate=D(rate)))

    assert any("sample" in m.lower() for m in messages)


def test_overlong_rule_name_is_refused_not_a_database_error(matrix):
    v1 = matrix["global"]
    spec = _edited(v1, "Transfers", name="T" * 101)

    messages = refused(v1.policy, spec)

    assert len(messages) == 1
    assert "100" in messages[0]
