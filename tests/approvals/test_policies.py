"""Segregation of duties: every persona against every transition, and the reasons shown."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from approvals import policies, services
from approvals.models import ApprovalRequest, Decision, RequestState
from portal.core.errors import Conflict
from sites.roles import Role
from tests.approvals.conftest import raise_request
from tests.factories import grant

PERSONAS = [
    "requester",
    "site_manager",
    "regional_manager",
    "finance",
    "auditor",
    "administrator",
    "outsider",
    "stranger",
]


def _in_review(requester, site, amount="1000"):
    # Routine purchase (500–5,000 EUR): one tier, the site manager at the site.
    return raise_request(requester, site, amount=amount)


def _rejected(request, site_manager):
    services.request_reject(actor=site_manager, request_id=request.pk, reason="Over budget")
    return ApprovalRequest.objects.get(pk=request.pk)


def _attempt(action: str, actor, request, site_manager):
    if action == "approve":
        services.request_approve(actor=actor, request_id=request.pk)
    elif action == "reject":
        services.request_reject(actor=actor, request_id=request.pk, reason="No")
    elif action == "withdraw":
        services.request_withdraw(actor=actor, request_id=request.pk)
    elif action == "resubmit":
        rejected = _rejected(request, site_manager)
        services.request_resubmit(actor=actor, request_id=rejected.pk, reason="Cheaper now")
    elif action == "submit":
        services.request_submit(actor=actor, request_id=request.pk)


ALLOWED = {
    "submit": {"requester"},
    "approve": {"site_manager"},
    "reject": {"site_manager"},
    "withdraw": {"requester"},
    "resubmit": {"requester"},
}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("who", PERSONAS)
def test_segregation_of_duties_matrix(request, matrix, site_a1, who, action):
    requester, site_manager = (request.getfixturevalue(n) for n in ("requester", "site_manager"))
    actor = request.getfixturevalue(who)
    target = raise_request(requester, site_a1, amount="1000", submit=action != "submit")
    before = (target.state, Decision.objects.count(), ApprovalRequest.objects.count())

    if who in ALLOWED[action]:
        _attempt(action, actor, target, site_manager)
        assert ApprovalRequest.objects.get(pk=target.pk).state != before[0] or action == "resubmit"
        return
    with pytest.raises((PermissionDenied, Http404)):
        _attempt(action, actor, target, site_manager)
    assert ApprovalRequest.objects.get(pk=target.pk).state in {before[0], RequestState.REJECTED}
    if action != "resubmit":
        assert (Decision.objects.count(), ApprovalRequest.objects.count()) == before[1:]


def test_outsider_gets_404_not_403(matrix, requester, site_a1, outsider):
    target = _in_review(requester, site_a1)

    with pytest.raises(Http404):
        services.request_approve(actor=outsider, request_id=target.pk)


def test_site_manager_never_approves_own_request(matrix, site_a1, site_manager):
    own = raise_request(site_manager, site_a1, amount="1000")

    with pytest.raises(PermissionDenied, match="You raised this request"):
        services.request_approve(actor=site_manager, request_id=own.pk)
    assert policies.available_actions(site_manager, own)["approve"].startswith("You raised")


def test_one_person_never_approves_two_tiers(matrix, requester, site_a1, site_manager, region_a):
    # The site manager is also a regional manager: tier 1 and tier 2 both name them.
    grant(site_manager, Role.REGIONAL_MANAGER, region=region_a)
    target = raise_request(requester, site_a1, amount="6000")

    services.request_approve(actor=site_manager, request_id=target.pk)

    with pytest.raises(PermissionDenied, match="approved another tier"):
        services.request_approve(actor=site_manager, request_id=target.pk)
    reason = policies.available_actions(site_manager, target)["approve"]
    assert "a different person must decide" in reason
    assert Decision.objects.filter(request=target).count() == 1


def test_delegate_never_decides_a_request_they_raised(matrix, site_a1, site_manager, requester):
    grant(requester, Role.REQUESTER, site=site_a1)
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=requester,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=7),
    )
    own = _in_review(requester, site_a1)

    with pytest.raises(PermissionDenied):
        services.request_approve(actor=requester, request_id=own.pk)


def test_delegate_never_decides_what_their_delegator_raised(
    matrix, site_a1, site_manager, regional_manager
):
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=regional_manager,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=7),
    )
    raised_by_delegator = raise_request(site_manager, site_a1, amount="1000")

    with pytest.raises(PermissionDenied):
        services.request_approve(actor=regional_manager, request_id=raised_by_delegator.pk)


def test_withdraw_is_refused_once_final(matrix, requester, site_a1, site_manager):
    target = _in_review(requester, site_a1)
    services.request_approve(actor=site_manager, request_id=target.pk)

    with pytest.raises(Conflict, match="can no longer be withdrawn"):
        services.request_withdraw(actor=requester, request_id=target.pk)
    assert ApprovalRequest.objects.get(pk=target.pk).state == RequestState.APPROVED


def test_available_actions_match_what_the_services_allow(matrix, requester, site_a1, site_manager):
    target = _in_review(requester, site_a1)

    assert policies.available_actions(site_manager, target) == {
        "approve": None,
        "reject": None,
        "withdraw": "Only the requester may withdraw, and only while nothing is final.",
        "resubmit": "Only a rejected request can be raised again, by its requester, once.",
        "delegate": None,
    }
    mine = policies.available_actions(requester, target)
    assert mine["withdraw"] is None
    assert mine["approve"] == "You raised this request, so someone else must decide it."
    assert mine["delegate"] == "You raised this request, so someone else must decide it."


def test_available_actions_refuse_handing_on_a_tier_held_for_someone_else(
    matrix, requester, site_a1, site_manager, colleague
):
    target = _in_review(requester, site_a1)
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=7),
    )
    options = policies.decision_options(colleague, target)

    actions = policies.available_actions(colleague, target, options=options)

    assert [option.on_behalf_of_id for option in options] == [site_manager.pk]
    assert actions["approve"] is None
    assert actions["delegate"] == policies.why_not_delegate(colleague, target)
    assert actions["delegate"] is not None


def test_an_administrator_cannot_delegate_for_someone_without_a_role(
    matrix, administrator, stranger
):
    from approvals import services as approval_services

    with pytest.raises(PermissionDenied):
        approval_services.delegation_create(
            actor=administrator,
            delegator=stranger,
            delegate=administrator,
            starts_at=timezone.now(),
            ends_at=timezone.now() + timedelta(days=3),
        )
