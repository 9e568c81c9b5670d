"""Decision support on the request page: similar requests, a recommendation, and its trail.

Advice is read from history within the viewer's scope, shown beside the decision, recorded in
the decision's ledger event, and never changes what happens to a request.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import advice, services
from approvals.models import ApprovalRequest, Decision
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request
from tests.conftest import persona

D = Decimal


def _history(requester, site, decider, amounts, *, reject=(), start_week=1, **fields):
    """Purchases raised a week apart (so none is flagged as a split) and decided by `decider`.

    They are raised in the weeks after the test's morning, since the personas' roles start
    then; what matters to advice is that they were decided within its window."""
    made = []
    for n, amount in enumerate(amounts):
        at = WORKING_MORNING + timedelta(weeks=start_week + n)
        with time_machine.travel(at, tick=False):
            request = raise_request(requester, site, amount=amount, title=f"Past {n}", **fields)
        with time_machine.travel(at + timedelta(hours=2), tick=False):
            if n in reject:
                services.request_reject(actor=decider, request_id=request.pk, reason="Too dear.")
            else:
                services.request_approve(
                    actor=decider, request_id=request.pk, comment=f"Fine, as usual ({n})."
                )
        made.append(request)
    return made


def test_a_request_like_many_approved_ones_is_routine(matrix, requester, site_a1, site_manager):
    _history(requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150", "1250"])
    request = raise_request(requester, site_a1, amount="1180")

    shown = advice.for_request(request, site_manager)

    assert shown.recommendation.label == advice.ROUTINE
    assert 50 <= shown.recommendation.confidence <= 95
    assert shown.similar.count == 6 and shown.similar.approval_rate == 100
    assert shown.similar.median_hours == 2.0
    assert "with Acme Supplies" in shown.similar.described
    # The last three decisions, newest first, by name and with their comments.
    assert [e.comment for e in shown.similar.last] == [
        "Fine, as usual (5).",
        "Fine, as usual (4).",
        "Fine, as usual (3).",
    ]
    assert {e.by for e in shown.similar.last} == {site_manager.get_full_name()}
    assert any("6 purchase order requests" in reason for reason in shown.recommendation.reasons)


def test_a_request_like_often_rejected_ones_asks_for_a_closer_look(
    matrix, requester, site_a1, site_manager
):
    _history(
        requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150"], reject={0, 2}
    )
    request = raise_request(requester, site_a1, amount="1100")

    shown = advice.for_request(request, site_manager)

    assert shown.recommendation.label == advice.LOOK_CLOSER
    assert shown.similar.approval_rate == 60
    assert shown.similar.last[0].outcome == "Approved"
    assert "Rejected" in {e.outcome for e in shown.similar.last}


def test_a_flagged_request_is_unusual_whatever_its_history(
    matrix, requester, site_a1, site_manager
):
    _history(requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150"])
    request = raise_request(requester, site_a1, amount="1100")
    flagged = ApprovalRequest.objects.get(pk=request.pk)
    flagged.risk_flags = [{"code": "amount_outlier", "explanation": "", "numbers": {}}]

    shown = advice.recommend(flagged, advice.similar_requests(flagged, site_manager))

    assert shown.label == advice.UNUSUAL
    assert "Risk signal: amount far outside history." in shown.reasons


def test_too_little_history_asks_for_a_closer_look_and_says_so(
    matrix, requester, site_a1, site_manager
):
    request = raise_request(requester, site_a1, amount="1100")

    shown = advice.for_request(request, site_manager)

    assert shown.recommendation.label == advice.LOOK_CLOSER
    assert shown.similar.count == 0
    assert "No purchase order requests in" in shown.recommendation.reasons[-1]


def test_similar_requests_come_only_from_the_viewers_scope(
    matrix, requester, site_a1, site_a2, site_manager, regional_manager, staffed
):
    """History at A1 informs the regional manager about an A2 request, never A2's site
    manager, who may not see A1."""
    _history(requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150"])
    a2_requester = persona("req.a2", Role.REQUESTER, site=site_a2)
    request = raise_request(a2_requester, site_a2, amount="1100")

    regional = advice.for_request(request, regional_manager)
    local = advice.for_request(request, staffed["site_manager_a2"])

    assert regional.similar.count == 5 and "in " in regional.similar.described
    assert local.similar.count == 0 and local.similar.last == []


def test_switched_off_there_is_no_advice(settings, matrix, requester, site_a1, site_manager):
    settings.DECISION_ADVICE = False
    request = raise_request(requester, site_a1, amount="1100")

    assert advice.for_request(request, site_manager) is None


def _page(client, request):
    return client.get(reverse("approvals:detail", args=[request.pk]))


def _shown_advice(page: str) -> str:
    found = re.search(r'name="advice" value="([a-z_]*)"', page)
    return found.group(1) if found else ""


def test_the_page_shows_the_advice_and_the_decision_records_it(
    client, matrix, requester, site_a1, site_manager
):
    _history(requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150"])
    request = raise_request(requester, site_a1, amount="1100")
    client.force_login(site_manager)

    page = _page(client, request).text
    assert "Similar requests and a recommendation" in page
    assert 'id="recommendation"' in page and "Routine" in page
    assert "Fine, as usual (4)." in page
    assert _shown_advice(page) == "routine"

    response = client.post(
        reverse("approvals:approve", args=[request.pk]), {"advice": _shown_advice(page)}
    )

    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="decision.approve", object_id=str(request.pk)).get()
    assert event.context["advice_shown"] == "routine"


def test_a_recommendation_tollgate_does_not_give_is_refused_and_changes_nothing(
    client, matrix, requester, site_a1, site_manager
):
    request = raise_request(requester, site_a1, amount="1100")
    client.force_login(site_manager)

    response = client.post(
        reverse("approvals:reject", args=[request.pk]),
        {"advice": "approve it", "reason": "Too dear."},
    )

    assert response.status_code == 400
    assert "not one Tollgate gives" in response.text
    assert not Decision.objects.filter(request=request).exists()


def test_the_service_refuses_an_unknown_recommendation(matrix, requester, site_a1, site_manager):
    request = raise_request(requester, site_a1, amount="1100")

    with pytest.raises(Exception, match="Unknown recommendation"):
        services.request_approve(actor=site_manager, request_id=request.pk, advice="sure")

    assert not Decision.objects.filter(request=request).exists()


def _script(client, requester, site, people, prefix: str) -> list[tuple]:
    """Raise, decide and fast-path the same requests through the portal, taking whatever
    advice each page shows along with the decision; the states they end in."""
    plan = [
        ("300", None),  # fast path
        ("1200", "approve"),
        ("1300", "reject"),
        ("6000", "approve"),  # two tiers: the site manager, then the regional manager
        ("1250", "approve"),
        ("4800", None),  # left waiting
    ]
    made = []
    for n, (amount, verdict) in enumerate(plan):
        request = raise_request(requester, site, amount=amount, title=f"{prefix} {n}")
        for person in people if verdict else ():
            client.force_login(person)
            page = _page(client, request).text
            if 'id="approve-form"' not in page:
                continue
            data = {"advice": _shown_advice(page)}
            if verdict == "reject":
                data["reason"] = "Not now."
            client.post(reverse(f"approvals:{verdict}", args=[request.pk]), data)
        made.append(request)
    outcome = []
    for request in made:
        request.refresh_from_db()
        steps = tuple(request.steps.order_by("position").values_list("state", flat=True))
        outcome.append((request.state, request.fast_path, steps, request.decisions.count()))
    return outcome


class _Forget(Exception):
    """Carries a run's outcome out of the transaction it rolls back."""


def _run_and_forget(client, requester, site, people) -> tuple[list[tuple], int]:
    """The script's outcome and how many decisions recorded advice, from the same starting
    point every time: the run is rolled back, so the next one sees the same history."""
    try:
        with transaction.atomic():
            outcome = _script(client, requester, site, people, "Run")
            shown = AuditEvent.objects.filter(
                action__startswith="decision.", context__has_key="advice_shown"
            ).count()
            raise _Forget(outcome, shown)
    except _Forget as done:
        return done.args


def test_advice_never_changes_a_state(
    client, settings, matrix, requester, site_a1, site_manager, regional_manager
):
    _history(requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150"])
    people = [site_manager, regional_manager]

    settings.DECISION_ADVICE = False
    without, shown_without = _run_and_forget(client, requester, site_a1, people)
    settings.DECISION_ADVICE = True
    with_advice, shown_with = _run_and_forget(client, requester, site_a1, people)

    assert with_advice == without
    assert [state for state, *_ in without] == [
        "approved",
        "approved",
        "rejected",
        "approved",
        "approved",
        "in_review",
    ]
    # Each decision taken with advice on records it; none taken with it off does.
    assert (shown_without, shown_with) == (0, 5)


def test_the_page_costs_the_same_queries_however_long_the_history(
    client, matrix, requester, site_a1, site_manager
):
    _history(requester, site_a1, site_manager, ["1000", "1100"], start_week=20)
    first = raise_request(requester, site_a1, amount="1100")
    client.force_login(site_manager)

    def queries(request):
        with CaptureQueriesContext(connection) as captured:
            assert _page(client, request).status_code == 200
        return len(captured)

    few = queries(first)
    services.request_approve(actor=site_manager, request_id=first.pk)
    _history(requester, site_a1, site_manager, ["1000", "1100", "1200", "1050", "1150"] * 2)
    second = raise_request(requester, site_a1, amount="1100")

    assert queries(second) == few
