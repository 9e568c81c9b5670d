"""The page and the API offer the same actions, with the same reasons, on the demo company.

A request's page and its API detail both show approvals.policies.available_actions; a case's
page and its API detail both show exceptions.policies.available_actions. Checked here as each
demo persona sees the demo's own requests and cases, a few in every state, so that the two can
never drift apart again (the API once offered a stand-in a delegation its delegate call refused).
"""

from collections import defaultdict

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from approvals import policies as approval_policies
from approvals import selectors as approval_selectors
from approvals.models import ApprovalRequest
from exceptions import selectors as case_selectors
from sites.demo import PERSONAS
from tests.seeded_demo import seed_demo

# A few of each state are enough: what varies the actions is the state and who looks.
PER_STATE = 2


@pytest.fixture
def demo(db):
    seed_demo()
    return {
        person.username: get_user_model().objects.get(username=person.username)
        for person in PERSONAS
    }


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _sample(user) -> list[ApprovalRequest]:
    """A few requests of each state `user` may open, and every kind of in-review request: one
    they decide themselves, one they decide only for someone else, one they may not decide."""
    visible = list(
        approval_selectors.requests_visible_to(user).select_related("site").order_by("pk")
    )
    by_state = defaultdict(list)
    for approval in visible:
        by_state[approval.state].append(approval)
    chosen = {approval.pk: approval for rows in by_state.values() for approval in rows[:PER_STATE]}
    kinds = {}
    for approval in by_state["in_review"]:
        options = approval_policies.decision_options(user, approval)
        if not options:
            kinds.setdefault("not decidable", approval)
        elif any(option.on_behalf_of_id is None for option in options):
            kinds.setdefault("own tier", approval)
        else:
            kinds.setdefault("for someone else", approval)
        if len(kinds) == 3:
            break
    chosen.update({approval.pk: approval for approval in kinds.values()})
    return list(chosen.values())


def _page_request_actions(client, approval) -> dict[str, str | None]:
    response = client.get(reverse("approvals:detail", args=[approval.pk]))
    assert response.status_code == 200, approval.reference
    actions = response.context["actions"]
    page = response.content.decode()
    # What the page renders follows the same read model: the form, or the reason in its place.
    assert ('id="delegate-form"' in page) == (actions["delegate"] is None), approval.reference
    if actions["delegate"] is not None:
        assert escape(actions["delegate"]) in page, approval.reference
    return dict(actions)


def _api_actions(client, path: str) -> dict[str, str | None]:
    response = client.get(path)
    assert response.status_code == 200, path
    shown = response.json()["available_actions"]
    for name, action in shown.items():
        assert action["allowed"] == (action["reason"] is None), (path, name)
    return {name: action["reason"] for name, action in shown.items()}


def _decides_only_for_someone_else(user, approval) -> bool:
    options = approval_policies.decision_options(user, approval)
    return bool(options) and all(option.on_behalf_of_id for option in options)


def test_request_page_and_api_detail_offer_the_same_actions_for_every_persona_and_state(demo):
    shown = []
    for username, user in demo.items():
        page, api = _signed_in(user), _signed_in(user)
        for approval in _sample(user):
            on_page = _page_request_actions(page, approval)
            in_api = _api_actions(api, f"/api/v1/approvals/{approval.pk}/")
            assert set(on_page) == {"approve", "reject", "withdraw", "resubmit", "delegate"}
            assert in_api == on_page, (username, approval.reference, approval.state)
            shown.append((user, approval, on_page))

    states_in_demo = set(ApprovalRequest.objects.values_list("state", flat=True))
    assert {approval.state for _, approval, _ in shown} == states_in_demo
    assert len(shown) >= 3 * len(states_in_demo)
    # The demo's Rotterdam site manager is on leave and the regional manager decides her tiers:
    # they may approve those, but not hand them further, on the page and in the API alike.
    stand_in = demo["regional.manager"]
    held_for_her = [
        (approval, actions)
        for user, approval, actions in shown
        if user == stand_in and _decides_only_for_someone_else(stand_in, approval)
    ]
    assert held_for_her, "the sample holds no tier the stand-in decides for someone else"
    for approval, actions in held_for_her:
        assert actions["approve"] is None
        assert actions["delegate"] is not None
        assert actions["delegate"] == approval_policies.why_not_delegate(stand_in, approval)


def test_case_page_and_api_detail_offer_the_same_actions_to_finance_and_the_auditor(demo):
    for username in ("finance", "auditor"):
        user = demo[username]
        page, api = _signed_in(user), _signed_in(user)
        cases = defaultdict(list)
        for case in case_selectors.cases_visible_to(user).order_by("pk"):
            cases[case.state].append(case)
        assert cases, username
        allowed_somewhere = False
        for rows in cases.values():
            for case in rows[:PER_STATE]:
                response = page.get(reverse("exceptions:detail", args=[case.pk]))
                assert response.status_code == 200, case.reference
                on_page = dict(response.context["actions"])
                in_api = _api_actions(api, f"/api/v1/exceptions/{case.pk}/")
                assert in_api == on_page, (username, case.reference, case.state)
                allowed_somewhere |= None in on_page.values()
        # Finance works the demo's finance queue; the auditor only reads.
        assert allowed_somewhere == (username == "finance")
