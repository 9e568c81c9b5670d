"""Publishing policy versions: each edit is a new version, and requests keep the one they got."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from approvals import routing, services
from approvals.models import (
    ApprovalRequest,
    HeldAt,
    PolicyVersion,
    RequestState,
)
from approvals.selectors import who_would_approve
from approvals.specs import version_spec
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.approvals.conftest import FINANCE_PARALLEL, REGIONAL, WORKING_MORNING, raise_request
from tests.approvals.conftest import SITE_MANAGER as SITE_MANAGER_TIER
from tests.conftest import persona
from tests.factories import UserFactory

D = Decimal
SITE, REGION = HeldAt.SITE, HeldAt.REGION
SITE_MANAGER = (1, Role.SITE_MANAGER, SITE, 1)
REGIONAL_SECOND = (2, Role.REGIONAL_MANAGER, REGION, 1)
FINANCE_SECOND = (2, Role.FINANCE, REGION, 1)


def _edited(version: PolicyVersion, rule_name: str, **changes):
    """The specs of `version` with one rule changed, as the policy editor produces them."""
    spec = version_spec(version)
    rules = tuple(
        replace(rule, **changes) if rule.name == rule_name else rule for rule in spec.rules
    )
    assert rules != spec.rules, f"no rule named {rule_name!r}"
    return replace(spec, rules=rules)


def _material_purchases_need_finance(version: PolicyVersion):
    rule = next(r for r in version_spec(version).rules if r.name == "Material purchases")
    return _edited(version, "Material purchases", tiers=(*rule.tiers, FINANCE_PARALLEL))


def _reload(request) -> ApprovalRequest:
    return ApprovalRequest.objects.get(pk=request.pk)


def _tiers(request, round_=1) -> list[tuple]:
    steps = request.steps.filter(round=round_).order_by("position")
    return [(s.stage, s.role, s.held_at, s.quorum) for s in steps]


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def region_b_administrator(staffed, region_b):
    return persona("admin.b", Role.ADMIN, region=region_b)


def test_publishing_an_edit_creates_the_next_version_with_its_own_rules(matrix):
    v1 = matrix["global"]

    v2 = services.policy_publish(
        actor=None, policy=v1.policy, spec=_material_purchases_need_finance(v1)
    )

    assert (v2.policy, v2.number, str(v2)) == (v1.policy, 2, "Enterprise framework v2")
    names = [rule.name for rule in v1.rules.order_by("position")]
    assert [rule.name for rule in v2.rules.order_by("position")] == names
    assert not set(v1.rules.values_list("pk", flat=True)) & set(
        v2.rules.values_list("pk", flat=True)
    )
    old = v1.rules.get(name="Material purchases").tiers.order_by("position")
    new = v2.rules.get(name="Material purchases").tiers.order_by("position")
    assert [t.role for t in old] == [Role.SITE_MANAGER, Role.REGIONAL_MANAGER]
    assert [t.role for t in new] == [Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE]


def test_republishing_unchanged_specs_gives_an_identical_next_version(matrix):
    v1 = matrix["global"]

    v2 = services.policy_publish(actor=None, policy=v1.policy, spec=version_spec(v1))

    assert v2.number == 2
    assert version_spec(v2) == version_spec(v1)


def test_request_in_flight_keeps_its_version_and_tiers_after_an_edit(matrix, requester, site_a1):
    v1 = matrix["global"]
    in_flight = raise_request(requester, site_a1, amount="6000")

    services.policy_publish(actor=None, policy=v1.policy, spec=_material_purchases_need_finance(v1))

    kept = _reload(in_flight)
    assert (kept.policy_version, kept.rule.version) == (v1, v1)
    assert _tiers(kept) == [SITE_MANAGER, REGIONAL_SECOND]


def test_request_in_flight_is_decided_under_its_version_after_an_edit(
    matrix, requester, site_a1, site_manager, regional_manager
):
    v1 = matrix["global"]
    in_flight = raise_request(requester, site_a1, amount="6000")
    services.policy_publish(actor=None, policy=v1.policy, spec=_material_purchases_need_finance(v1))

    services.request_approve(actor=site_manager, request_id=in_flight.pk)
    services.request_approve(actor=regional_manager, request_id=in_flight.pk)

    decided = _reload(in_flight)
    assert decided.state == RequestState.APPROVED
    assert [d.policy_version for d in decided.decisions.all()] == [v1, v1]
    labels = AuditEvent.objects.filter(
        object_id=str(decided.pk), action__in=["decision.approve", "request.approved"]
    ).values_list("policy_version_label", flat=True)
    assert set(labels) == {"Enterprise framework v1"}


def test_new_request_after_an_edit_routes_with_the_new_version(matrix, requester, site_a1):
    v1 = matrix["global"]
    before = raise_request(requester, site_a1, amount="6000")
    v2 = services.policy_publish(
        actor=None, policy=v1.policy, spec=_material_purchases_need_finance(v1)
    )

    after = raise_request(requester, site_a1, amount="7000")

    assert after.policy_version == v2
    assert after.rule.version == v2
    assert _tiers(after) == [SITE_MANAGER, REGIONAL_SECOND, FINANCE_SECOND]
    assert _tiers(before) == [SITE_MANAGER, REGIONAL_SECOND]


def test_drift_reroutes_under_the_version_the_request_was_submitted_with(
    matrix, requester, site_a1
):
    v1 = matrix["global"]
    in_flight = raise_request(requester, site_a1, amount="6000")
    stricter = replace(REGIONAL, quorum=2)
    services.policy_publish(
        actor=None,
        policy=v1.policy,
        spec=_edited(v1, "Major purchases", tiers=(SITE_MANAGER_TIER, stricter, FINANCE_PARALLEL)),
    )

    change = services.OdooChange(amount=D("60000"), currency="EUR", lines=[], snapshot={})
    assert services.request_odoo_changed(request_id=in_flight.pk, change=change)

    drifted = _reload(in_flight)
    assert drifted.policy_version == v1
    assert (drifted.rule.version, drifted.rule.name) == (v1, "Major purchases")
    assert _tiers(drifted, round_=2) == [SITE_MANAGER, REGIONAL_SECOND, FINANCE_SECOND]


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("version", lambda version: setattr(version, "note", "quietly edited")),
        ("rule", lambda rule: setattr(rule, "max_amount", D("999999"))),
        ("tier", lambda tier: setattr(tier, "quorum", 5)),
    ],
)
def test_published_version_rule_and_tier_cannot_be_saved_again(matrix, what, change):
    version = matrix["global"]
    rule = version.rules.get(name="Routine purchases")
    published = {"version": version, "rule": rule, "tier": rule.tiers.get()}[what]
    before = version_spec(version)

    change(published)
    with pytest.raises(ValidationError, match="cannot change"):
        published.save()

    assert version_spec(PolicyVersion.objects.get(pk=version.pk)) == before


def test_future_version_leaves_the_old_one_in_force_until_it_starts(matrix, requester, site_a1):
    v1 = matrix["global"]
    starts = WORKING_MORNING + timedelta(days=7)
    v2 = services.policy_publish(
        actor=None,
        policy=v1.policy,
        spec=_edited(v1, "Routine purchases", auto_approve_below=D("100")),
        effective_from=starts,
    )

    now = raise_request(requester, site_a1, amount="300")
    assert (now.policy_version, now.state) == (v1, RequestState.APPROVED)
    assert routing.version_in_force(site_a1, at=starts - timedelta(seconds=1)) == v1
    assert routing.version_in_force(site_a1, at=starts) == v2

    with time_machine.travel(starts + timedelta(hours=1), tick=False):
        preview = who_would_approve(site=site_a1, kind="purchase", amount=D("300"), currency="EUR")
        later = raise_request(requester, site_a1, amount="300")

    assert (preview.version, preview.fast_path) == ("Enterprise framework v2", False)
    assert (later.policy_version, later.state) == (v2, RequestState.IN_REVIEW)
    assert _tiers(later) == [SITE_MANAGER]
    assert (_reload(now).policy_version, _reload(now).state) == (v1, RequestState.APPROVED)


def test_publishing_records_who_published_and_when(matrix, superuser):
    v1 = matrix["global"]
    moment = WORKING_MORNING + timedelta(minutes=30)

    with time_machine.travel(moment, tick=False):
        v2 = services.policy_publish(actor=superuser, policy=v1.policy, spec=version_spec(v1))

    stored = PolicyVersion.objects.get(pk=v2.pk)
    assert (stored.published_by, stored.published_at, stored.effective_from) == (
        superuser,
        moment,
        moment,
    )


def test_publishing_is_written_to_the_audit_ledger(matrix, superuser):
    v1 = matrix["global"]
    spec = replace(version_spec(v1), note="Yearly review: no change")

    v2 = services.policy_publish(actor=superuser, policy=v1.policy, spec=spec)

    event = AuditEvent.objects.get(action="policy.published", object_id=str(v2.pk))
    assert (event.actor, event.actor_label, event.policy_version_label) == (
        superuser,
        "root",
        "Enterprise framework v2",
    )
    assert event.comment == "Yearly review: no change"
    assert event.after["rules"] == [rule.name for rule in spec.rules]


# --- who may publish ---------------------------------------------------------------------------


def _versions_of(policy) -> list[int]:
    return list(PolicyVersion.objects.filter(policy=policy).values_list("number", flat=True))


def test_superuser_publishes_the_global_policy(matrix, superuser):
    v1 = matrix["global"]

    v2 = services.policy_publish(actor=superuser, policy=v1.policy, spec=version_spec(v1))

    assert (v2.number, v2.published_by) == (2, superuser)


@pytest.mark.parametrize(
    "who", ["administrator", "region_b_administrator", "regional_manager", "finance", "stranger"]
)
def test_nobody_but_a_superuser_publishes_the_global_policy(request, matrix, who):
    v1 = matrix["global"]
    actor = request.getfixturevalue(who)

    with pytest.raises(PermissionDenied, match="do not administer"):
        services.policy_publish(actor=actor, policy=v1.policy, spec=version_spec(v1))

    assert _versions_of(v1.policy) == [1]
    assert AuditEvent.objects.filter(action="policy.published").count() == 2


def test_region_administrator_publishes_their_region_policy(matrix, region_b_administrator):
    local = matrix["region_b"]

    v2 = services.policy_publish(
        actor=region_b_administrator, policy=local.policy, spec=version_spec(local)
    )

    assert (str(v2), v2.published_by) == ("UK thresholds v2", region_b_administrator)


@pytest.mark.parametrize("who", ["administrator", "outsider", "regional_manager", "stranger"])
def test_others_may_not_publish_a_region_policy(request, matrix, staffed, who):
    local = matrix["region_b"]
    actor = request.getfixturevalue(who)

    with pytest.raises(PermissionDenied, match="do not administer"):
        services.policy_publish(actor=actor, policy=local.policy, spec=version_spec(local))

    assert _versions_of(local.policy) == [1]


def test_version_backdated_before_the_one_in_force_is_refused(matrix, requester, site_a1):
    # v1 has been in force since this morning; a v2 "from yesterday" could never govern anything.
    v1 = matrix["global"]

    with pytest.raises(ValidationError) as refused:
        services.policy_publish(
            actor=None,
            policy=v1.policy,
            spec=_edited(v1, "Routine purchases", auto_approve_below=D("100")),
            effective_from=WORKING_MORNING - timedelta(days=1),
        )

    assert "effective_from" in refused.value.message_dict
    assert _versions_of(v1.policy) == [1]
    assert routing.version_in_force(site_a1) == v1


def test_retiring_a_region_policy_hands_its_sites_back_to_the_global_one(matrix, site_b1):
    from portal.core.errors import Conflict

    local = matrix["region_b"].policy
    assert routing.version_in_force(site_b1) == matrix["region_b"]

    services.policy_retire(actor=None, policy=local, reason="Region joins the framework")

    assert routing.version_in_force(site_b1) == matrix["global"]
    assert AuditEvent.objects.get(action="policy.retired").comment == "Region joins the framework"
    with pytest.raises(Conflict):
        services.policy_retire(actor=None, policy=local, reason="again")
