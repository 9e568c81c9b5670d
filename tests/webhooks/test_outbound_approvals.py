"""Approval services tell subscribers what happened, through the outbox, with the real routing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services
from portal.webhooks import openapi, outbound
from portal.webhooks.models import OutboundDelivery, OutboundEvent
from tests.approvals.conftest import (  # noqa: F401 - fixtures used by name
    _working_morning,
    matrix,
    raise_request,
    staffed,
)
from tests.webhooks.test_outbound import receiver  # noqa: F401 - fixture used by name

ALL_APPROVAL_EVENTS = [
    "approval.requested",
    "approval.decided",
    "approval.applied",
    "approval.apply_failed",
    "sla.breached",
]


@pytest.fixture
def subscriber(db, receiver):  # noqa: F811 - the fixture imported above
    _, secret = outbound.subscription_create(
        actor=None, name="n8n", url=receiver.url, event_types=ALL_APPROVAL_EVENTS
    )
    receiver.secret = secret
    return receiver


def events(event_type: str) -> list[dict]:
    """The data of every `event_type` event, each checked against its documented fields."""
    rows = [row.data for row in OutboundEvent.objects.filter(type=event_type).order_by("id")]
    documented = openapi.DATA[event_type]
    if event_type == "sla.breached":
        documented = openapi.ApprovalSlaBreachData()
    assert all(set(data) == set(documented.fields) for data in rows)
    return rows


def test_final_approval_emits_approval_decided_and_it_is_delivered_signed(
    matrix,  # noqa: F811
    subscriber,
    requester,
    site_a1,
    site_manager,
):
    request = raise_request(requester, site_a1, amount="1000.50", odoo_model="purchase.order")

    services.request_approve(actor=site_manager, request_id=request.pk, comment="Fine")
    outbound.deliveries_due_sweep()

    [requested] = events("approval.requested")
    assert (requested["reference"], requested["state"]) == (request.reference, "in_review")
    [decided] = events("approval.decided")
    assert decided["outcome"] == "approved" and decided["fast_path"] is False
    assert (decided["amount"], decided["currency"], decided["site"]) == ("1000.50", "EUR", "A1")
    assert decided["policy_version"] == str(matrix["global"])
    assert decided["odoo"] == {"model": "purchase.order", "id": None}
    assert decided["requester"] == "requester"
    assert [(d["username"], d["outcome"], d["tier"]) for d in decided["deciders"]] == [
        ("site.manager", "approve", 1)
    ]
    assert [item.payload["type"] for item in subscriber.received] == [
        "approval.requested",
        "approval.decided",
    ]
    assert all(item.verified for item in subscriber.received)
    assert subscriber.received[1].payload["data"] == decided


def test_rejection_is_decided_with_outcome_rejected(
    matrix,  # noqa: F811
    subscriber,
    requester,
    site_a1,
    site_manager,
):
    request = raise_request(requester, site_a1, amount="1000")

    services.request_reject(actor=site_manager, request_id=request.pk, reason="No budget")

    [decided] = events("approval.decided")
    assert decided["outcome"] == "rejected"
    assert decided["deciders"][0]["username"] == "site.manager"


def test_fast_path_is_decided_without_being_requested(
    matrix,  # noqa: F811
    subscriber,
    requester,
    site_a1,
):
    raise_request(requester, site_a1, amount="100")

    assert events("approval.requested") == []
    [decided] = events("approval.decided")
    assert decided["outcome"] == "approved" and decided["fast_path"] is True
    assert decided["deciders"] == [
        {
            "username": None,
            "on_behalf_of": None,
            "outcome": "auto_approve",
            "tier": None,
            "at": decided["deciders"][0]["at"],
        }
    ]


def test_write_back_outcomes_are_published(
    matrix,  # noqa: F811
    subscriber,
    requester,
    site_a1,
):
    applied = raise_request(requester, site_a1, amount="100")
    failed = raise_request(requester, site_a1, amount="120")

    services.request_mark_applied(request_id=applied.pk, note="PO confirmed")
    services.request_mark_apply_failed(request_id=failed.pk, error="Record is locked")

    assert [data["reference"] for data in events("approval.applied")] == [applied.reference]
    [failure] = events("approval.apply_failed")
    assert (failure["reference"], failure["error"]) == (failed.reference, "Record is locked")


def test_sla_breach_is_published_once(
    matrix,  # noqa: F811
    subscriber,
    requester,
    site_a1,
):
    request = raise_request(requester, site_a1, amount="1000")
    later = timezone.now() + timedelta(days=10)

    services.sla_sweep(now=later)
    services.sla_sweep(now=later)

    [breach] = events("sla.breached")
    assert (breach["reference"], breach["tier"]) == (request.reference, 1)
    assert breach["action"] in ("escalate", "expire", "reject")
    assert OutboundDelivery.objects.filter(event__type="sla.breached").count() == 1
