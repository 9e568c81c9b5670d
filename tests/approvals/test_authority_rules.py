"""Two rules of approvals.authority told as stories: whom a tier's e-mail and "waiting for" list
name, and how far a delegation reaches once its delegator holds roles in another region."""

from datetime import timedelta

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.authority import audience
from approvals.models import ApprovalRequest, ApprovalStep, Decision, StepState
from approvals.request_selectors import pending_people
from approvals.selectors import inbox_for
from sites.roles import Role
from tests.approvals import oracle
from tests.approvals.conftest import raise_request
from tests.conftest import persona
from tests.factories import grant


def _active_step(request: ApprovalRequest) -> ApprovalStep:
    return ApprovalStep.objects.select_related("request").get(
        request=request, state=StepState.ACTIVE
    )


def _names(people) -> list[str]:
    return [person.username for person in people]


def test_a_tier_is_announced_to_neither_its_requester_nor_an_earlier_approver(
    matrix, requester, site_a1, region_a, site_manager, regional_manager, staffed
):
    # Both could decide the regional tier by role: the requester is also a regional manager,
    # and the site manager who approves the first tier is one too.
    grant(requester, Role.REGIONAL_MANAGER, region=region_a)
    grant(site_manager, Role.REGIONAL_MANAGER, region=region_a)
    # A material purchase: the site manager, then a regional manager.
    purchase = raise_request(requester, site_a1, amount="6000")
    services.request_approve(actor=site_manager, request_id=purchase.pk)

    second = _active_step(purchase)
    told = _names(audience(second))
    waiting_for = _names(pending_people(second))

    assert second.role == Role.REGIONAL_MANAGER
    assert told == ["regional.manager", "rm.a.second"]
    assert waiting_for == told
    # The same people the reference rule names, one person at a time.
    assert told == _names(oracle.audience(second, at=timezone.now()))


@pytest.fixture
def deputy(site_a1):
    """Raises requests at A1 and holds no other role, here or in any other region."""
    return persona("deputy", Role.REQUESTER, site=site_a1)


@pytest.fixture
def stand_in(site_manager, deputy, site_b1, outsider):
    """The A1 site manager hands their approvals to the deputy, everywhere; later they are made
    site manager at B1 as well."""
    now = timezone.now()
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=deputy,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=14),
    )
    grant(site_manager, Role.SITE_MANAGER, site=site_b1)
    return deputy


def test_a_delegation_does_not_follow_its_delegator_into_another_region(
    client, matrix, stand_in, site_manager, site_b1, staffed
):
    at_b1 = raise_request(staffed["requester_b"], site_b1, amount="1000")
    tier = _active_step(at_b1)
    assert tier.role == Role.SITE_MANAGER
    assert "site.manager" in _names(audience(tier)), "the delegator may decide it"

    client.force_login(stand_in)
    page = client.get(reverse("approvals:detail", args=[at_b1.pk]))

    assert at_b1.pk not in [request.pk for request in inbox_for(stand_in).requests]
    assert page.status_code == 404
    with pytest.raises((PermissionDenied, Http404, ObjectDoesNotExist)):
        services.request_approve(actor=stand_in, request_id=at_b1.pk)
    assert not Decision.objects.filter(request=at_b1, actor=stand_in).exists()
    assert "deputy" not in _names(audience(tier))


def test_the_same_delegation_still_works_in_its_own_region(
    client, matrix, stand_in, requester, site_manager, site_a1
):
    at_a1 = raise_request(requester, site_a1, amount="1000")
    tier = _active_step(at_a1)

    client.force_login(stand_in)
    page = client.get(reverse("approvals:detail", args=[at_a1.pk]))

    assert at_a1.pk in [request.pk for request in inbox_for(stand_in).requests]
    assert page.status_code == 200
    assert "deputy" in _names(audience(tier))
    decision = services.request_approve(actor=stand_in, request_id=at_a1.pk)
    assert (decision.actor, decision.on_behalf_of) == (stand_in, site_manager)
