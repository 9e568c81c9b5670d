"""Sites and the policy matrix over the API: read-only, and only what governs one's own sites."""

import pytest

from approvals.models import ApprovalRequest
from tests.approvals.conftest import _working_morning, matrix, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

SITES = "/api/v1/sites/"
POLICIES = "/api/v1/policies/"


def _codes(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["code"] for row in response.json()["results"]]


def test_a_regional_manager_lists_every_site_of_their_region(regional_manager_api, site_b1):
    assert _codes(regional_manager_api.get(SITES)) == ["A1", "A2"]


def test_site_list_filters_by_region(regional_manager_api, site_b1):
    assert _codes(regional_manager_api.get(SITES, {"region": "RA"})) == ["A1", "A2"]
    assert _codes(regional_manager_api.get(SITES, {"region": "RB"})) == []


def test_site_detail_gives_its_time_zone_currency_and_hours(site_manager_api, site_a1):
    body = site_manager_api.get(f"{SITES}{site_a1.pk}/").json()

    assert body["code"] == "A1"
    assert body["region"]["code"] == "RA"
    assert (body["time_zone"], body["currency"]) == ("Europe/Amsterdam", "EUR")
    assert (body["opens_at"], body["closes_at"], body["business_days"]) == (
        "08:00:00",
        "18:00:00",
        "12345",
    )


def test_a_site_out_of_scope_answers_404(site_manager_api, site_a2, site_b1):
    assert site_manager_api.get(f"{SITES}{site_b1.pk}/").status_code == 404
    assert site_manager_api.get(f"{SITES}{site_a2.pk}/").status_code == 404


def test_someone_without_a_role_sees_no_site_and_no_policy(stranger_api, matrix):
    assert _codes(stranger_api.get(SITES)) == []
    assert stranger_api.get(POLICIES).json()["results"] == []


def _policies(client) -> dict[str, dict]:
    response = client.get(POLICIES)
    assert response.status_code == 200, response.content
    return {row["name"]: row for row in response.json()["results"]}


def test_policies_are_those_governing_ones_sites_with_versions_rules_and_tiers(
    site_manager_api, outsider_api, matrix
):
    mine = _policies(site_manager_api)
    assert set(mine) == {"Enterprise framework"}
    framework = mine["Enterprise framework"]
    assert framework["scope"] == "global"
    [version] = framework["versions"]
    assert version["number"] == 1
    routine = version["rules"][0]
    assert (routine["name"], routine["max_amount"], routine["auto_approve_below"]) == (
        "Routine purchases",
        "5000.00",
        "500.00",
    )
    assert [tier["role"] for tier in routine["tiers"]] == ["site_manager"]

    assert set(_policies(outsider_api)) == {"Enterprise framework", "UK thresholds"}


def test_a_regional_policy_of_another_region_answers_404(site_manager_api, matrix):
    local = matrix["region_b"].policy

    assert site_manager_api.get(f"{POLICIES}{local.pk}/").status_code == 404


def test_who_would_approve_names_the_route_and_the_people(requester_api, site_a1, site_b1, matrix):
    response = requester_api.get(
        f"{POLICIES}preview/", {"site": site_a1.pk, "kind": "purchase", "amount": "7200"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["routable"], body["reason"]) == (True, None)
    assert (body["rule"], body["fast_path"]) == ("Material purchases", False)
    assert [(t["role"], t["people"]) for t in body["tiers"]] == [
        ("site_manager", ["site.manager"]),
        ("regional_manager", ["regional.manager", "rm.a.second"]),
    ]
    assert not ApprovalRequest.objects.exists()

    outside = requester_api.get(
        f"{POLICIES}preview/", {"site": site_b1.pk, "kind": "purchase", "amount": "7200"}
    )
    assert outside.status_code == 404


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (
            {"kind": "price_override", "amount": "800", "customer_class": "wholesale"},
            "No rule of Enterprise framework v1 routes a price_override of 800.00 EUR; "
            "ask an administrator to extend the policy.",
        ),
        (
            {"kind": "purchase", "amount": "7200", "currency": "USD"},
            "There is no exchange rate for USD; an administrator must add one.",
        ),
    ],
    ids=["no-rule-routes-it", "no-exchange-rate"],
)
def test_who_would_approve_answers_that_a_request_would_be_refused_and_why(
    requester_api, site_a1, matrix, query, reason
):
    """Whether a request can be routed depends on data: the preview answers the question
    (200, not routable, the reason the service gives) rather than calling it bad input."""
    response = requester_api.get(f"{POLICIES}preview/", {"site": site_a1.pk, **query})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "routable": False,
        "reason": reason,
        "version": None,
        "rule": None,
        "fast_path": False,
        "tiers": [],
    }
    assert not ApprovalRequest.objects.exists()
