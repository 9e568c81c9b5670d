"""The approvals resource: reading requests in scope, raising, deciding, withdrawing, delegating.

Each change is checked where a user would notice it: the request's state, the response, and the
audit ledger, which must read the same as when the browser takes the decision.
"""

from decimal import Decimal
from unittest.mock import patch

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import policies, services
from approvals.models import ApprovalRequest, Decision, Delegation, RequestState
from approvals.serializers import ApprovalRequestSerializer
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed
from tests.conftest import persona

__all__ = ["_working_morning", "matrix", "staffed"]

URL = "/api/v1/approvals/"


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def _events(request) -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(
        object_type="approvals.approvalrequest", object_id=str(request.pk)
    )
    return [(event.action, event.actor_label) for event in events]


@pytest.fixture
def purchase_a1(matrix, requester, site_a1):
    """A purchase at A1 waiting for its one site-manager tier."""
    return raise_request(requester, site_a1, amount="1000")


@pytest.fixture
def purchase_b1(matrix, staffed, site_b1):
    return raise_request(staffed["requester_b"], site_b1, amount="900")


# --- reading ----------------------------------------------------------------------------------


def test_site_manager_lists_the_requests_of_their_site_only(
    site_manager_api, purchase_a1, purchase_b1
):
    assert _ids(site_manager_api.get(URL)) == {purchase_a1.pk}


def test_outsider_lists_nothing_of_region_a(outsider_api, purchase_a1, purchase_b1):
    assert _ids(outsider_api.get(URL)) == {purchase_b1.pk}


def test_list_filters_narrow_by_state_kind_mine_region_and_amount(
    requester_api, site_manager_api, requester, site_a1, site_a2, purchase_a1, matrix
):
    draft = raise_request(requester, site_a1, kind="write_off", amount="2000", submit=False)

    assert _ids(requester_api.get(URL, {"state": "draft"})) == {draft.pk}
    assert _ids(requester_api.get(URL, {"kind": "purchase"})) == {purchase_a1.pk}
    assert _ids(requester_api.get(URL, {"mine": "true"})) == {purchase_a1.pk, draft.pk}
    assert _ids(site_manager_api.get(URL, {"mine": "true"})) == set()
    assert _ids(site_manager_api.get(URL, {"inbox": "true"})) == {purchase_a1.pk}
    assert _ids(requester_api.get(URL, {"region": "RB"})) == set()
    assert _ids(requester_api.get(URL, {"amount_min": "999", "amount_max": "1001"})) == {
        purchase_a1.pk
    }


def test_list_answers_422_for_a_filter_value_it_does_not_know(requester_api, purchase_a1):
    response = requester_api.get(URL, {"state": "lost"})

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "state" in response.json()["errors"]


@pytest.mark.parametrize(
    "params",
    [
        {"state": ""},
        {"mine": "1"},
        {"created_after": "0001-01-01T00:00:00+14:00"},
        {"site": "99999999999999999999"},
        {"amount_min": "NaN"},
    ],
)
def test_a_filter_value_the_schema_does_not_allow_is_refused_not_ignored(
    requester_api, purchase_a1, params
):
    response = requester_api.get(URL, params)

    assert response.status_code == 422
    assert set(response.json()["errors"]) == set(params)


def test_inbox_refuses_a_blank_parameter(site_manager_api, purchase_a1):
    response = site_manager_api.get(f"{URL}inbox/", {"q": ""})

    assert response.status_code == 422
    assert response.json()["errors"] == {"q": ["Give a value, or leave the parameter out."]}


def test_request_detail_shows_tiers_flags_and_what_the_caller_may_do(
    site_manager_api, requester_api, purchase_a1
):
    body = site_manager_api.get(f"{URL}{purchase_a1.pk}/").json()

    assert body["reference"] == purchase_a1.reference
    assert (body["amount"], body["currency"], body["base_currency"]) == ("1000.00", "EUR", "EUR")
    assert body["created_at"].endswith("Z")
    assert [(s["role"], s["state"]) for s in body["steps"]] == [("site_manager", "active")]
    assert body["decidable_step_ids"] == [body["steps"][0]["id"]]
    assert body["available_actions"]["approve"] == {"allowed": True, "reason": None}
    assert body["available_actions"]["withdraw"]["allowed"] is False
    assert body["risk_flag_details"] == []

    mine = requester_api.get(f"{URL}{purchase_a1.pk}/").json()
    assert mine["available_actions"]["approve"] == {
        "allowed": False,
        "reason": "You raised this request, so someone else must decide it.",
    }
    assert mine["available_actions"]["withdraw"]["allowed"] is True


def test_request_out_of_scope_answers_404_like_one_that_does_not_exist(outsider_api, purchase_a1):
    out_of_scope = outsider_api.get(f"{URL}{purchase_a1.pk}/")
    missing = outsider_api.get(f"{URL}999999/")

    assert out_of_scope.status_code == missing.status_code == 404
    assert out_of_scope.json() == missing.json()


# --- raising ----------------------------------------------------------------------------------


def _purchase(site, **overrides) -> dict:
    return {
        "kind": "purchase",
        "site_id": site.pk,
        "title": "Pallets of sparkling water",
        "reason": "Spring season stock",
        "amount": "7200.00",
        "counterparty": "Acme Supplies",
        "details": {"counterparty_since": "2019-01-01"},
    } | overrides


def test_requester_raises_and_submits_a_request(requester_api, requester, site_a1, matrix):
    response = requester_api.post(URL, _purchase(site_a1), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["state"], body["currency"], body["amount"]) == ("in_review", "EUR", "7200.00")
    assert [s["role"] for s in body["steps"]] == ["site_manager", "regional_manager"]
    created = ApprovalRequest.objects.get(pk=body["id"])
    assert created.requester == requester
    assert _events(created)[:2] == [
        ("request.created", "requester"),
        ("request.submitted", "requester"),
    ]


def test_a_draft_stays_a_draft_when_asked(requester_api, site_a1, matrix):
    response = requester_api.post(URL, _purchase(site_a1, submit=False), format="json")

    assert response.status_code == 201
    assert response.json()["state"] == "draft"


def test_raising_at_a_site_out_of_scope_is_refused_and_creates_nothing(
    requester_api, site_b1, matrix
):
    response = requester_api.post(URL, _purchase(site_b1), format="json")

    # As for a site that does not exist: the answer tells nothing about other regions' sites.
    assert response.status_code == 404
    assert response.json()["detail"] == "No site with this id among your sites."
    assert not ApprovalRequest.objects.exists()


def test_raising_without_what_the_kind_needs_names_each_missing_field(
    requester_api, site_a1, matrix
):
    response = requester_api.post(
        URL, _purchase(site_a1, kind="transfer", details={}), format="json"
    )

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) >= {"category", "details.destination_site"}
    assert not ApprovalRequest.objects.exists()


def test_a_request_no_policy_routes_is_not_left_behind_as_a_draft(requester_api, site_a1):
    """Well-formed, but the policy as it stands cannot route it: a conflict with that state,
    which an administrator resolves, not bad input (the preview says the same, 200)."""
    response = requester_api.post(URL, _purchase(site_a1), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_routable"
    assert "No approval policy is in force" in response.json()["detail"]
    assert not ApprovalRequest.objects.exists()


def test_a_request_no_rule_routes_answers_409_and_leaves_nothing(requester_api, site_a1, matrix):
    events_before = AuditEvent.objects.count()
    response = requester_api.post(
        URL,
        _purchase(
            site_a1,
            kind="price_override",
            amount="0.01",
            category="Beverages",
            customer_class="retail",
            counterparty="Corner shop",
            details={"product": "Cola", "unit_price": "1.10", "floor_price": 1},
        ),
        format="json",
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "not_routable"
    assert "routes a price_override" in response.json()["detail"]
    assert not ApprovalRequest.objects.exists()
    assert AuditEvent.objects.count() == events_before


def test_an_auditor_may_not_raise_requests(auditor_api, site_a1, matrix):
    response = auditor_api.post(URL, _purchase(site_a1), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not ApprovalRequest.objects.exists()


# --- deciding ---------------------------------------------------------------------------------


def test_site_manager_approves_and_the_ledger_reads_as_in_the_browser(
    site_manager_api, purchase_a1
):
    response = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/approve/", {"comment": "Within budget"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "approved"
    assert response.json()["decisions"][0]["comment"] == "Within budget"
    purchase_a1.refresh_from_db()
    assert purchase_a1.state == RequestState.APPROVED
    assert _events(purchase_a1)[-2:] == [
        ("decision.approve", "site.manager"),
        ("request.approved", "site.manager"),
    ]
    decision_event = AuditEvent.objects.get(action="decision.approve")
    assert decision_event.comment == "Within budget"
    assert decision_event.policy_version_label == str(purchase_a1.policy_version)


def test_approving_a_request_someone_already_decided_answers_409(
    site_manager_api, regional_manager_api, purchase_a1
):
    assert site_manager_api.post(f"{URL}{purchase_a1.pk}/approve/").status_code == 200
    events_before = AuditEvent.objects.count()

    response = regional_manager_api.post(f"{URL}{purchase_a1.pk}/approve/")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "already approved" in response.json()["detail"]
    assert AuditEvent.objects.count() == events_before


def test_requester_may_not_decide_their_own_request(requester_api, purchase_a1):
    response = requester_api.post(f"{URL}{purchase_a1.pk}/approve/")

    assert response.status_code == 403
    assert "someone else must decide" in response.json()["detail"]
    assert not Decision.objects.filter(outcome="approve").exists()


def test_approving_a_tier_of_another_request_answers_404(
    site_manager_api, purchase_a1, requester, site_a1
):
    other = raise_request(requester, site_a1, amount="1200")
    foreign_step = other.steps.get().pk

    response = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/approve/", {"step_id": foreign_step}, format="json"
    )

    assert response.status_code == 404


def test_rejecting_needs_a_reason(site_manager_api, purchase_a1):
    refused = site_manager_api.post(f"{URL}{purchase_a1.pk}/reject/", {}, format="json")
    assert refused.status_code == 422
    assert "reason" in refused.json()["errors"]

    response = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/reject/", {"reason": "Over budget"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["state"] == "rejected"
    assert ("request.rejected", "site.manager") in _events(purchase_a1)


def test_requester_withdraws_and_only_the_requester_may(
    requester_api, site_manager_api, purchase_a1
):
    refused = site_manager_api.post(f"{URL}{purchase_a1.pk}/withdraw/", {}, format="json")
    assert refused.status_code == 403

    response = requester_api.post(
        f"{URL}{purchase_a1.pk}/withdraw/", {"reason": "Ordered elsewhere"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    event = AuditEvent.objects.get(action="request.withdrawn")
    assert (event.actor_label, event.comment) == ("requester", "Ordered elsewhere")

    again = requester_api.post(f"{URL}{purchase_a1.pk}/withdraw/", {}, format="json")
    assert again.status_code == 409


def test_decisions_of_an_outsider_answer_404_and_change_nothing(outsider_api, purchase_a1):
    for action, body in [("approve", {}), ("reject", {"reason": "x"}), ("withdraw", {})]:
        response = outsider_api.post(f"{URL}{purchase_a1.pk}/{action}/", body, format="json")
        assert response.status_code == 404, action
    purchase_a1.refresh_from_db()
    assert purchase_a1.state == RequestState.IN_REVIEW


# --- delegating -------------------------------------------------------------------------------


def test_site_manager_delegates_their_tier_to_a_colleague_who_then_decides_it(
    site_manager_api, api_client_for, staffed, purchase_a1, site_manager, regional_manager
):
    ends = (timezone.now() + timezone.timedelta(days=5)).isoformat()
    response = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/delegate/",
        {"delegate": "rm.a.second", "ends_at": ends},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["delegator"], body["delegate"], body["site"], body["kind"]) == (
        "site.manager",
        "rm.a.second",
        "A1",
        "purchase",
    )
    assert Decimal(body["max_amount"]) == purchase_a1.amount_base
    delegation = Delegation.objects.get()
    assert AuditEvent.objects.filter(
        action="delegation.created", object_id=str(delegation.pk)
    ).exists()

    deputy = api_client_for(staffed["regional_manager_2"])
    approved = deputy.post(f"{URL}{purchase_a1.pk}/approve/")
    assert approved.status_code == 200, approved.content
    assert approved.json()["decisions"][0]["on_behalf_of"] == "site.manager"


def test_delegating_needs_a_tier_of_ones_own_and_a_colleague_at_the_site(
    site_manager_api, requester_api, purchase_a1, staffed
):
    ends = (timezone.now() + timezone.timedelta(days=5)).isoformat()
    not_mine = requester_api.post(
        f"{URL}{purchase_a1.pk}/delegate/",
        {"delegate": "site.manager", "ends_at": ends},
        format="json",
    )
    assert not_mine.status_code == 403

    outside = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/delegate/", {"delegate": "rm.b", "ends_at": ends}, format="json"
    )
    assert outside.status_code == 404
    assert outside.json()["detail"].startswith("delegate: ")

    past = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/delegate/",
        {"delegate": "rm.a.second", "ends_at": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert past.status_code == 422
    assert not Delegation.objects.exists()


def test_delegating_to_a_name_that_is_no_colleague_answers_404_and_changes_nothing(
    site_manager_api, requester_api, purchase_a1, staffed, site_b1
):
    """A name that finds no one to delegate to is not found, as a site outside one's sites is:
    the same problem document, its detail naming the field, and nothing written."""
    ends = (timezone.now() + timezone.timedelta(days=5)).isoformat()
    site_out_of_scope = requester_api.post(URL, _purchase(site_b1), format="json")
    events = AuditEvent.objects.count()

    # Someone who works in another region, and a name that is nobody's.
    for name in ("rm.b", "nobody.of.that.name"):
        response = site_manager_api.post(
            f"{URL}{purchase_a1.pk}/delegate/", {"delegate": name, "ends_at": ends}, format="json"
        )

        assert response.status_code == 404, name
        assert response["Content-Type"] == site_out_of_scope["Content-Type"]
        body = response.json()
        assert body == {
            "type": "urn:tollgate:problem:not_found",
            "title": site_out_of_scope.json()["title"],
            "status": 404,
            "detail": "delegate: No colleague of that name holds a role at A1.",
            "code": "not_found",
        }
        assert set(body) == set(site_out_of_scope.json())
    assert not Delegation.objects.exists()
    assert AuditEvent.objects.count() == events
    assert not AuditEvent.objects.filter(action="delegation.created").exists()


def test_the_browser_form_still_shows_the_refusal_of_a_name_on_its_field(
    client, site_manager, purchase_a1, staffed
):
    """The service's refusal stays a field error to the form: a colleague the page offered who
    no longer holds a role at the site when the form comes back (rm.b works in region B)."""
    someone_gone = staffed["regional_manager_b"]
    client.force_login(site_manager)
    until = (timezone.now() + timezone.timedelta(days=5)).date().isoformat()

    with patch("approvals.views._colleagues", return_value=[someone_gone]):
        response = client.post(
            f"/approvals/{purchase_a1.pk}/delegate/",
            {"delegate": someone_gone.pk, "until": until},
        )

    assert response.status_code == 400
    assert "No colleague of that name holds a role at A1." in response.content.decode()
    assert response.context["delegate_form"].errors["delegate"] == [
        "No colleague of that name holds a role at A1."
    ]
    assert not Delegation.objects.exists()


def test_a_stand_in_is_refused_delegation_with_the_reason_the_detail_gives(
    api_client_for, purchase_a1, site_manager, site_a1
):
    # A colleague at A1 (a delegate must work where they stand in) who decides nothing there.
    stand_in = persona("stand.in", Role.REQUESTER, site=site_a1)
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=stand_in,
        starts_at=timezone.now() - timezone.timedelta(hours=1),
        ends_at=timezone.now() + timezone.timedelta(days=3),
    )
    client = api_client_for(stand_in)
    ends = (timezone.now() + timezone.timedelta(days=2)).isoformat()

    detail = client.get(f"{URL}{purchase_a1.pk}/").json()["available_actions"]
    refused = client.post(
        f"{URL}{purchase_a1.pk}/delegate/",
        {"delegate": "rm.a.second", "ends_at": ends},
        format="json",
    )

    reason = policies.why_not_delegate(stand_in, purchase_a1)
    assert reason
    assert detail["approve"] == {"allowed": True, "reason": None}
    assert detail["delegate"] == {"allowed": False, "reason": reason}
    assert refused.status_code == 403
    assert refused.json()["detail"] == reason
    assert not Delegation.objects.filter(delegator=stand_in).exists()


# --- the inbox --------------------------------------------------------------------------------


def test_inbox_pages_through_what_the_caller_may_decide_soonest_due_first(
    site_manager_api, requester, site_a1, purchase_a1, purchase_b1
):
    second = raise_request(requester, site_a1, amount="1500")

    first_page = site_manager_api.get(f"{URL}inbox/", {"page_size": 1})
    assert first_page.status_code == 200
    assert [r["id"] for r in first_page.json()["results"]] == [purchase_a1.pk]
    next_url = first_page.json()["next"]
    assert next_url

    second_page = site_manager_api.get(next_url)
    assert [r["id"] for r in second_page.json()["results"]] == [second.pk]
    assert second_page.json()["next"] is None


def test_inbox_lists_each_request_as_the_request_list_does(
    site_manager_api, requester, site_a1, purchase_a1
):
    second = raise_request(requester, site_a1, amount="1500", title="Second")

    listed = site_manager_api.get(f"{URL}inbox/").json()["results"]
    expected = ApprovalRequestSerializer(
        ApprovalRequest.objects.filter(pk__in=[purchase_a1.pk, second.pk]).order_by("due_at", "pk"),
        many=True,
    ).data

    assert [r["id"] for r in listed] == [purchase_a1.pk, second.pk]
    assert listed == [dict(row) for row in expected]


def test_inbox_refuses_a_cursor_it_did_not_give_out(site_manager_api, purchase_a1):
    response = site_manager_api.get(f"{URL}inbox/", {"cursor": "bm90LWEtY3Vyc29y"})

    assert response.status_code == 404
    assert "cursor" in response.json()["detail"]


def test_inbox_of_someone_with_nothing_to_decide_is_empty(requester_api, purchase_a1):
    response = requester_api.get(f"{URL}inbox/")

    assert response.json() == {"next": None, "results": []}


def test_an_api_decision_carries_where_it_came_from_like_a_browser_one(
    site_manager_api, purchase_a1
):
    response = site_manager_api.post(
        f"{URL}{purchase_a1.pk}/approve/",
        HTTP_X_REQUEST_ID="n8n-run-42",
        HTTP_USER_AGENT="n8n/1.0",
    )

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="decision.approve")
    assert event.context["correlation_id"] == "n8n-run-42"
    assert event.context["user_agent"] == "n8n/1.0"
    assert event.context["path"] == f"{URL}{purchase_a1.pk}/approve/"


def test_a_retried_approval_with_its_idempotency_key_decides_once(site_manager_api, purchase_a1):
    url = f"{URL}{purchase_a1.pk}/approve/"
    first = site_manager_api.post(url, {"comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    retry = site_manager_api.post(url, {"comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert AuditEvent.objects.filter(action="decision.approve").count() == 1


def test_a_token_narrowed_to_listing_may_list_but_not_approve(
    api_client_for, site_manager, purchase_a1
):
    client = api_client_for(site_manager, actions=("approvals.list", "approvals.retrieve"))

    assert _ids(client.get(URL)) == {purchase_a1.pk}
    refused = client.post(f"{URL}{purchase_a1.pk}/approve/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "token_action_not_allowed"
    assert "approvals.approve" in refused.json()["detail"]
    purchase_a1.refresh_from_db()
    assert purchase_a1.state == RequestState.IN_REVIEW


def test_the_browser_session_reads_but_needs_its_csrf_token_to_decide(site_manager, purchase_a1):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(site_manager)
    assert _ids(browser.get(URL)) == {purchase_a1.pk}

    without_token = browser.post(f"{URL}{purchase_a1.pk}/approve/")
    assert without_token.status_code == 403
    purchase_a1.refresh_from_db()
    assert purchase_a1.state == RequestState.IN_REVIEW
