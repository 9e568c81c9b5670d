"""Policy insight: per rule, how people decided, and which rules could take a fast path."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from approvals import insight, services
from tests.approvals.conftest import WORKING_MORNING, raise_request
from tests.seeded_demo import seed_demo


@pytest.fixture
def decided(matrix, requester, site_a1, site_manager):
    """Six routine purchases approved and one rejected, a week apart; one fast-path purchase."""
    made = []
    for n, amount in enumerate(["1000", "1100", "1200", "1050", "1150", "1250", "1300"]):
        at = WORKING_MORNING + timedelta(weeks=1 + n)
        with time_machine.travel(at, tick=False):
            request = raise_request(requester, site_a1, amount=amount, title=f"Past {n}")
        with time_machine.travel(at + timedelta(hours=3), tick=False):
            if n == 6:
                services.request_reject(actor=site_manager, request_id=request.pk, reason="No.")
            else:
                services.request_approve(actor=site_manager, request_id=request.pk)
        made.append(request)
    raise_request(requester, site_a1, amount="200", title="Small")
    return made


def _later():
    return WORKING_MORNING + timedelta(weeks=9)


def test_each_rule_says_how_people_decided_under_it(decided, administrator):
    found = insight.for_administrator(administrator, days=90, at=_later())

    (routine,) = found.rules
    assert routine.rule.name == "Routine purchases"
    assert (routine.decided, routine.approved_unchanged) == (7, 6)
    assert routine.share_percent == "85.7"
    assert routine.median_hours == 3.0
    # One decision each, ten minutes each.
    assert routine.approver_hours == insight.Decimal("1.2")
    assert not routine.candidate and found.candidates == []


def test_a_rule_approved_nearly_always_is_a_candidate_with_a_threshold_and_its_sampling(
    decided, administrator, monkeypatch
):
    monkeypatch.setattr(insight, "CANDIDATE_MIN", 5)
    monkeypatch.setattr(insight, "CANDIDATE_SHARE", insight.Decimal("0.85"))

    found = insight.for_administrator(administrator, days=90, at=_later())

    (candidate,) = found.candidates
    assert candidate.proposed_threshold == 5000  # the rule's upper limit
    sampling = candidate.sampling
    assert sampling.would_fast_path == 7 and sampling.not_approved == 1
    assert sampling.rate == insight.Decimal("0.05")
    assert 0 <= sampling.caught <= sampling.sampled <= 7


def test_someone_who_administers_nothing_gets_404(client, decided, site_manager):
    client.force_login(site_manager)

    assert client.get(reverse("manage:policy_insight")).status_code == 404


def test_an_administrator_of_another_region_sees_none_of_these_decisions(
    decided, region_b, site_b1
):
    from sites.roles import Role
    from tests.conftest import persona

    other = persona("admin.b", Role.ADMIN, region=region_b)

    assert insight.for_administrator(other, days=90, at=_later()).rules == []


def test_the_page_lists_the_rules_and_links_to_publishing(client, decided, administrator):
    with time_machine.travel(_later(), tick=False):
        client.force_login(administrator)
        response = client.get(reverse("manage:policy_insight"), {"days": "90"})

    assert response.status_code == 200
    page = response.text
    assert "Routine purchases" in page and "6 (85.7 %)" in page
    assert "10 minutes of an approver" in page
    assert "No rule qualifies in this period." in page


def test_a_period_that_is_not_offered_falls_back_to_ninety_days(client, decided, administrator):
    client.force_login(administrator)

    response = client.get(reverse("manage:policy_insight"), {"days": "7x"})

    assert response.status_code == 200
    assert response.context["insight"].days == 90


def test_the_demos_routine_rule_is_a_fast_path_candidate(db):
    """The demo's ninety days of history give the routine purchases rule the numbers."""
    seed_demo()
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")

    found = insight.for_administrator(admin, days=90)

    names = {item.rule.name: item for item in found.candidates}
    routine = names["Routine purchases"]
    assert routine.decided >= 50
    assert routine.share >= insight.Decimal("0.98")
    assert routine.proposed_threshold == 5000
    assert routine.sampling.would_fast_path > 0
