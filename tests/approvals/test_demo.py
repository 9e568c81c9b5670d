"""The demo company's approval policy: published by seed_demo, staffed at every site."""

from decimal import Decimal

from django.contrib.auth import get_user_model

from approvals import routing, services
from approvals.models import PolicyVersion, RequestState
from sites.models import Site
from tests.seeded_demo import seed_demo


def seed():
    seed_demo(history=False)


def test_every_demo_site_has_a_policy_in_force_and_seeding_again_adds_no_version(db):
    seed()
    seed()

    assert PolicyVersion.objects.count() == 2
    governing = {site.code: str(routing.version_in_force(site)) for site in Site.objects.all()}
    assert governing["AMS"] == "Enterprise framework v1"
    assert governing["LON"] == "UK & Ireland thresholds v1"


def test_demo_requester_raises_a_purchase_that_reaches_the_amsterdam_site_manager(db):
    seed()
    User = get_user_model()
    requester = User.objects.get(username="requester")
    ams = Site.objects.get(code="AMS")

    request = services.request_create(
        requester=requester,
        kind="purchase",
        site=ams,
        title="Pallet racking",
        reason="New aisle",
        amount=Decimal("7200"),
        currency="EUR",
        category="Equipment",
        counterparty="Racks BV",
        counterparty_ref="res.partner,12",
        details={"counterparty_since": "2020-05-01"},
    )
    request = services.request_submit(actor=requester, request_id=request.pk)

    assert request.state == RequestState.IN_REVIEW
    first = request.steps.order_by("position").first()
    assert first.role == "site_manager"
    services.request_approve(actor=User.objects.get(username="site.manager"), request_id=request.pk)
    services.request_approve(
        actor=User.objects.get(username="regional.manager"), request_id=request.pk
    )
    request.refresh_from_db()
    assert request.state == RequestState.APPROVED
