"""Which tiers a request gets: the matrix by kind, amount, region and site, and its preview."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    HeldAt,
    Outcome,
    RequestState,
)
from approvals.selectors import who_would_approve
from approvals.specs import RuleSpec, VersionSpec
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request, tier
from tests.conftest import persona

D = Decimal
SITE, REGION = HeldAt.SITE, HeldAt.REGION
FAST = "fast path"

# (stage, role, held at, quorum) of each tier, as the requester's page lists them.
SITE_MANAGER = (1, Role.SITE_MANAGER, SITE, 1)
REGIONAL_SECOND = (2, Role.REGIONAL_MANAGER, REGION, 1)
FINANCE_SECOND = (2, Role.FINANCE, REGION, 1)
REGIONAL_ONLY = (1, Role.REGIONAL_MANAGER, REGION, 1)
FINANCE_ONLY = (1, Role.FINANCE, REGION, 1)
TWO_REGIONAL = (1, Role.REGIONAL_MANAGER, REGION, 2)


def case(site, kind, amount, expected, *, customer_class="standard"):
    label = f"{site}-{kind}-{amount}-{customer_class}"
    return pytest.param(site, kind, amount, customer_class, expected, id=label)


# Sites A1 and A2 (region A, euros) follow the global framework; B1 (region B, pounds at 0.85
# per euro) follows region B's local variant, whose purchase bands are 200 / 2,000 / 20,000 EUR,
# i.e. 170 / 1,700 / 17,000 GBP. Every band is [min, max) in euros.
ROUTING_TABLE = [
    case("A1", "purchase", "499.99", FAST),
    case("A2", "purchase", "499.99", FAST),
    case("A1", "purchase", "500.00", [SITE_MANAGER]),
    case("A1", "purchase", "4999.99", [SITE_MANAGER]),
    case("A2", "purchase", "5000.00", [SITE_MANAGER, REGIONAL_SECOND]),
    case("A1", "purchase", "49999.99", [SITE_MANAGER, REGIONAL_SECOND]),
    case("A2", "purchase", "50000.00", [SITE_MANAGER, REGIONAL_SECOND, FINANCE_SECOND]),
    case("A1", "transfer", "0.00", [SITE_MANAGER]),
    case("A2", "transfer", "250000.00", [SITE_MANAGER]),
    case("A1", "write_off", "99.99", FAST),
    case("A2", "write_off", "100.00", [SITE_MANAGER]),
    case("A1", "write_off", "999.99", [SITE_MANAGER]),
    case("A1", "write_off", "1000.00", [SITE_MANAGER, FINANCE_SECOND]),
    case("A1", "price_override", "800.00", [REGIONAL_ONLY], customer_class="key"),
    case("A2", "price_override", "800.00", [SITE_MANAGER], customer_class="standard"),
    case("A1", "price_override", "800.00", [SITE_MANAGER], customer_class="new"),
    case("A1", "credit_exception", "2500.00", [FINANCE_ONLY]),
    case("A2", "credit_exception", "90000.00", [FINANCE_ONLY], customer_class="key"),
    case("A1", "return_authorization", "249.99", FAST),
    case("A2", "return_authorization", "250.00", [SITE_MANAGER]),
    case("A1", "expedited_freight", "300.00", [TWO_REGIONAL]),
    case("A2", "expedited_freight", "5.00", [TWO_REGIONAL]),
    case("B1", "purchase", "169.99", FAST),
    case("B1", "purchase", "170.00", [SITE_MANAGER]),
    case("B1", "purchase", "1699.99", [SITE_MANAGER]),
    case("B1", "purchase", "1700.00", [SITE_MANAGER, REGIONAL_SECOND]),
    case("B1", "purchase", "16999.99", [SITE_MANAGER, REGIONAL_SECOND]),
    case("B1", "purchase", "17000.00", [SITE_MANAGER, REGIONAL_SECOND, FINANCE_SECOND]),
    case("B1", "transfer", "100.00", [SITE_MANAGER]),
    case("B1", "write_off", "84.99", FAST),
    case("B1", "write_off", "85.00", [SITE_MANAGER]),
    case("B1", "write_off", "849.99", [SITE_MANAGER]),
    case("B1", "write_off", "850.00", [SITE_MANAGER, FINANCE_SECOND]),
    case("B1", "price_override", "800.00", [REGIONAL_ONLY], customer_class="key"),
    case("B1", "price_override", "800.00", [SITE_MANAGER], customer_class="standard"),
    case("B1", "credit_exception", "2500.00", [FINANCE_ONLY]),
    case("B1", "return_authorization", "212.49", FAST),
    case("B1", "return_authorization", "212.50", [SITE_MANAGER]),
    case("B1", "expedited_freight", "300.00", [TWO_REGIONAL]),
]


@pytest.fixture
def sites(site_a1, site_a2, site_b1):
    return {site.code: site for site in (site_a1, site_a2, site_b1)}


@pytest.fixture
def requesters(requester, staffed, site_a2):
    return {
        "A1": requester,
        "A2": persona("requester.a2", Role.REQUESTER, site=site_a2),
        "B1": staffed["requester_b"],
    }


def _reload(request) -> ApprovalRequest:
    return ApprovalRequest.objects.get(pk=request.pk)


def _tiers(request) -> list[tuple]:
    steps = request.steps.order_by("position")
    return [(s.stage, s.role, s.held_at, s.quorum) for s in steps]


def _row_counts() -> tuple[int, ...]:
    models = (ApprovalRequest, ApprovalStep, Decision, AuditEvent)
    return tuple(model.objects.count() for model in models)


@pytest.mark.parametrize(
    ("site_code", "kind", "amount", "customer_class", "expected"), ROUTING_TABLE
)
def test_matrix_routes_each_request_to_its_tiers(
    matrix, sites, requesters, site_code, kind, amount, customer_class, expected
):
    raised = raise_request(
        requesters[site_code],
        sites[site_code],
        kind=kind,
        amount=amount,
        customer_class=customer_class,
    )

    routed = _reload(raised)
    assert routed.risk_flags == []
    assert routed.policy_version == matrix["region_b" if site_code == "B1" else "global"]
    if expected == FAST:
        assert routed.state == RequestState.APPROVED
        assert routed.fast_path
        assert [d.outcome for d in routed.decisions.all()] == [Outcome.AUTO_APPROVE]
        assert _tiers(routed) == []
    else:
        assert routed.state == RequestState.IN_REVIEW
        assert not routed.fast_path
        assert _tiers(routed) == expected


def test_pounds_are_converted_to_euros_before_the_bands_apply(matrix, staffed, site_b1):
    routed = _reload(raise_request(staffed["requester_b"], site_b1, amount="425.00"))

    assert (routed.amount, routed.currency, routed.amount_base) == (D("425.00"), "GBP", D("500.00"))


def test_region_b_routes_with_its_lower_thresholds(matrix, requester, staffed, site_a1, site_b1):
    # 3,000 EUR: routine under the global framework, material under region B's variant.
    in_a = raise_request(requester, site_a1, amount="3000.00")
    in_b = raise_request(staffed["requester_b"], site_b1, amount="2550.00")

    assert _reload(in_b).amount_base == _reload(in_a).amount_base == D("3000.00")
    assert (in_a.rule.name, _tiers(in_a)) == ("Routine purchases", [SITE_MANAGER])
    assert (in_b.rule.name, _tiers(in_b)) == (
        "Material purchases",
        [SITE_MANAGER, REGIONAL_SECOND],
    )
    assert in_b.rule.version == matrix["region_b"]


def test_amounts_convert_at_the_rate_in_force_at_submission(matrix, staffed, site_b1):
    tomorrow = WORKING_MORNING + timedelta(days=1)
    services.currency_rate_add(
        actor=None, currency="GBP", units_per_base=D("0.90"), valid_from=tomorrow
    )
    today = raise_request(staffed["requester_b"], site_b1, amount="1700.00")

    with time_machine.travel(tomorrow + timedelta(hours=1), tick=False):
        later = raise_request(staffed["requester_b"], site_b1, amount="1700.00")

    assert (_reload(today).amount_base, today.rule.name) == (D("2000.00"), "Material purchases")
    assert (_reload(later).amount_base, later.rule.name) == (D("1888.89"), "Routine purchases")


def test_site_policy_beats_its_region_policy(matrix, staffed, site_b1):
    own = services.policy_create(actor=None, name="B1 pilot", site=site_b1)
    pilot = services.policy_publish(
        actor=None,
        policy=own,
        spec=VersionSpec(
            rules=(RuleSpec(name="Everything to finance", tiers=(tier(Role.FINANCE),)),)
        ),
    )

    # 100 GBP would take region B's fast path; B1's own policy sends it to finance.
    routed = _reload(raise_request(staffed["requester_b"], site_b1, amount="100.00"))

    assert routed.policy_version == pilot
    assert routed.state == RequestState.IN_REVIEW
    assert _tiers(routed) == [(1, Role.FINANCE, SITE, 1)]


def test_site_policy_leaves_the_other_sites_of_its_region_alone(matrix, requesters, sites, site_a1):
    own = services.policy_create(actor=None, name="A1 pilot", site=site_a1)
    pilot = services.policy_publish(
        actor=None,
        policy=own,
        spec=VersionSpec(
            rules=(RuleSpec(name="Everything to finance", tiers=(tier(Role.FINANCE),)),)
        ),
    )

    at_a1 = raise_request(requesters["A1"], sites["A1"], amount="100.00")
    at_a2 = raise_request(requesters["A2"], sites["A2"], amount="100.00")

    assert (at_a1.policy_version, at_a1.state) == (pilot, RequestState.IN_REVIEW)
    assert (at_a2.policy_version, at_a2.state) == (matrix["global"], RequestState.APPROVED)


def _assert_still_draft(request) -> None:
    draft = _reload(request)
    assert draft.state == RequestState.DRAFT
    assert (draft.policy_version, draft.rule, draft.amount_base, draft.submitted_at) == (
        None,
        None,
        None,
        None,
    )
    assert not draft.steps.exists()
    assert not draft.decisions.exists()
    assert not AuditEvent.objects.filter(
        action="request.submitted", object_id=str(draft.pk)
    ).exists()


def test_no_policy_in_force_refuses_submission_and_keeps_the_draft(requester, site_a1):
    draft = raise_request(requester, site_a1, submit=False)

    with pytest.raises(ValidationError) as refused:
        services.request_submit(actor=requester, request_id=draft.pk)

    assert refused.value.messages == ["No approval policy is in force at A1."]
    _assert_still_draft(draft)


def test_no_matching_rule_is_refused_naming_the_policy_version(matrix, requester, site_a1):
    draft = raise_request(
        requester,
        site_a1,
        kind="price_override",
        amount="800",
        customer_class="wholesale",
        submit=False,
    )

    with pytest.raises(ValidationError) as refused:
        services.request_submit(actor=requester, request_id=draft.pk)

    assert refused.value.messages == [
        "No rule of Enterprise framework v1 routes a price_override of 800.00 EUR; "
        "ask an administrator to extend the policy."
    ]
    _assert_still_draft(draft)


def test_missing_exchange_rate_is_refused_on_the_currency(matrix, requester, site_a1):
    draft = raise_request(requester, site_a1, currency="USD", submit=False)

    with pytest.raises(ValidationError) as refused:
        services.request_submit(actor=requester, request_id=draft.pk)

    assert refused.value.message_dict == {
        "currency": ["There is no exchange rate for USD; an administrator must add one."]
    }
    _assert_still_draft(draft)


# --- "Who would approve this?" ------------------------------------------------------------------


def _preview_table(preview) -> list[tuple]:
    return [
        (t.stage, t.role, t.held_at, t.quorum, [p.username for p in t.people])
        for t in preview.tiers
    ]


def test_preview_lists_tiers_and_eligible_people_and_writes_nothing(
    matrix, requester, site_a1, django_assert_max_num_queries
):
    before = _row_counts()

    # One query for the version, two for its rules and tiers, one per tier for its people.
    with django_assert_max_num_queries(6):
        preview = who_would_approve(
            site=site_a1,
            kind="purchase",
            amount=D("60000"),
            currency="EUR",
            requester=requester,
            category="Beverages",
        )

    assert (preview.version, preview.rule, preview.fast_path) == (
        "Enterprise framework v1",
        "Major purchases",
        False,
    )
    assert _preview_table(preview) == [
        (1, Role.SITE_MANAGER, SITE, 1, ["site.manager"]),
        (2, Role.REGIONAL_MANAGER, REGION, 1, ["regional.manager", "rm.a.second"]),
        (2, Role.FINANCE, REGION, 1, ["finance"]),
    ]
    assert _row_counts() == before


def test_preview_converts_local_currency_and_uses_the_local_variant(
    matrix, staffed, site_b1, django_assert_max_num_queries
):
    before = _row_counts()

    with django_assert_max_num_queries(6):
        preview = who_would_approve(
            site=site_b1,
            kind="expedited_freight",
            amount=D("300"),
            currency="GBP",
            requester=staffed["requester_b"],
        )

    assert (preview.version, preview.rule) == ("UK thresholds v1", "Expedited freight")
    assert _preview_table(preview) == [
        (1, Role.REGIONAL_MANAGER, REGION, 2, ["rm.b", "rm.b.second"]),
    ]
    assert _row_counts() == before


def test_preview_never_lists_the_requester_as_an_approver(matrix, regional_manager, site_a1):
    preview = who_would_approve(
        site=site_a1,
        kind="purchase",
        amount=D("6000"),
        currency="EUR",
        requester=regional_manager,
    )

    assert _preview_table(preview) == [
        (1, Role.SITE_MANAGER, SITE, 1, ["site.manager"]),
        (2, Role.REGIONAL_MANAGER, REGION, 1, ["rm.a.second"]),
    ]


def test_preview_shows_the_fast_path_for_small_amounts(matrix, requester, site_a1):
    small = who_would_approve(
        site=site_a1, kind="purchase", amount=D("499.99"), currency="EUR", requester=requester
    )
    at_threshold = who_would_approve(
        site=site_a1, kind="purchase", amount=D("500"), currency="EUR", requester=requester
    )

    assert (small.rule, small.fast_path) == ("Routine purchases", True)
    assert (at_threshold.rule, at_threshold.fast_path) == ("Routine purchases", False)


def test_preview_agrees_with_the_route_the_request_then_gets(matrix, requester, site_a1):
    preview = who_would_approve(
        site=site_a1, kind="write_off", amount=D("1000"), currency="EUR", requester=requester
    )
    routed = raise_request(requester, site_a1, kind="write_off", amount="1000")

    assert [row[:4] for row in _preview_table(preview)] == _tiers(routed)
    assert preview.rule == routed.rule.name


def test_preview_without_a_policy_says_so(requester, site_a1):
    with pytest.raises(ValidationError, match="No approval policy is in force at A1"):
        who_would_approve(site=site_a1, kind="purchase", amount=D("10"), currency="EUR")
