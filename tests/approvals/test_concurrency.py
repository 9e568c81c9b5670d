"""Deciding and sweeping racing each other, on real connections with real row locks.

Every thread waits at a barrier and then calls one service on its own database connection, so
the calls really overlap; whatever the interleaving, exactly one of them may win.
"""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection

from approvals import services
from approvals.models import ApprovalRequest, Decision, Outcome, RequestState, StepState
from portal.audit.models import AuditEvent
from portal.core.errors import Conflict
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request
from tests.conftest import persona

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs row locks between connections; SQLite serialises every writer anyway",
    ),
    pytest.mark.django_db(transaction=True),
]

THREADS = 20


def race(actions: list[Callable]) -> list:
    """Run `actions` at once, one thread and connection each; returns each one's result or
    the exception it raised, in the order given."""
    barrier = threading.Barrier(len(actions))
    outcomes: list = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = action()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racing call never returned"
    return outcomes


def _split(outcomes: list) -> tuple[list, list[Exception]]:
    errors = [o for o in outcomes if isinstance(o, Exception)]
    return [o for o in outcomes if not isinstance(o, Exception)], errors


def _assert_all_conflicts(errors: list[Exception], *phrases: str) -> None:
    assert [type(e) for e in errors] == [Conflict] * len(errors), errors
    for error in errors:
        assert any(phrase in str(error) for phrase in phrases), str(error)
        assert "nothing was changed" in str(error) or "can no longer" in str(error)


@pytest.fixture
def deciders(matrix, site_a1):
    """Twenty site managers at A1, each of whom may decide a routine purchase's only tier."""
    return [persona(f"sm.a1.{n:02}", Role.SITE_MANAGER, site=site_a1) for n in range(THREADS)]


@pytest.fixture
def routine(matrix, requester, site_a1):
    """A routine purchase: one site-manager tier, so one approval makes it final."""
    request = raise_request(requester, site_a1, amount="1000")
    assert request.steps.count() == 1
    return request


def _approve(actor, request):
    step = request.steps.get()
    return partial(services.request_approve, actor=actor, request_id=request.pk, step_id=step.pk)


def _reject(actor, request):
    return partial(
        services.request_reject, actor=actor, request_id=request.pk, reason="Not this quarter"
    )


def test_twenty_approvals_at_once_leave_one_decision(deciders, routine):
    outcomes = race([_approve(person, routine) for person in deciders])

    wins, errors = _split(outcomes)
    assert len(wins) == 1 and isinstance(wins[0], Decision)
    _assert_all_conflicts(errors, "already approved")
    request = ApprovalRequest.objects.get(pk=routine.pk)
    assert request.state == RequestState.APPROVED
    assert list(request.decisions.values_list("actor", flat=True)) == [wins[0].actor_id]
    assert request.steps.get().state == StepState.APPROVED
    assert AuditEvent.objects.filter(action="decision.approve").count() == 1
    assert AuditEvent.objects.filter(action="request.approved").count() == 1


def test_approvals_racing_rejections_leave_one_consistent_outcome(deciders, routine):
    actions = [
        (_approve if n % 2 else _reject)(person, routine) for n, person in enumerate(deciders)
    ]

    wins, errors = _split(race(actions))

    assert len(wins) == 1
    [decision] = Decision.objects.filter(request=routine.pk)
    assert decision.pk == wins[0].pk
    expected = {Outcome.APPROVE: RequestState.APPROVED, Outcome.REJECT: RequestState.REJECTED}
    request = ApprovalRequest.objects.get(pk=routine.pk)
    assert request.state == expected[decision.outcome]
    _assert_all_conflicts(errors, f"already {request.get_state_display().lower()}")
    final_events = AuditEvent.objects.filter(action__in=["request.approved", "request.rejected"])
    assert final_events.count() == 1


def test_approvals_racing_the_requesters_withdrawal_leave_one_winner(deciders, routine, requester):
    withdraw = partial(services.request_withdraw, actor=requester, request_id=routine.pk)
    actions = [_approve(person, routine) for person in deciders[:-1]]
    actions.insert(THREADS // 2, withdraw)

    wins, errors = _split(race(actions))

    assert len(wins) == 1
    request = ApprovalRequest.objects.get(pk=routine.pk)
    if isinstance(wins[0], ApprovalRequest):
        assert request.state == RequestState.WITHDRAWN
        assert request.decisions.count() == 0
        assert request.steps.get().state == StepState.CLOSED
        _assert_all_conflicts(errors, "already withdrawn")
    else:
        assert request.state == RequestState.APPROVED
        assert request.decisions.count() == 1
        _assert_all_conflicts(errors, "already approved")
    assert len(errors) == THREADS - 1


def test_two_sweeps_at_once_remind_and_escalate_each_tier_once(
    matrix,
    requester,
    site_a1,
    site_manager,
    regional_manager,
    staffed,
    _working_morning,
    mailoutbox,
):
    requests = [raise_request(requester, site_a1, amount=str(1000 + n)) for n in range(6)]
    mailoutbox.clear()  # the "decision needed" mails, sent on commit when the tiers opened
    # Routine purchases: reminders fall due after 18 hours, breaches after 24.
    reminder_time = WORKING_MORNING + timedelta(hours=18, minutes=1)
    breach_time = WORKING_MORNING + timedelta(hours=24, minutes=1)

    _working_morning.move_to(reminder_time)
    race([partial(services.sla_sweep, now=reminder_time) for _ in range(4)])
    _working_morning.move_to(breach_time)
    race([partial(services.sla_sweep, now=breach_time) for _ in range(4)])

    ids = {str(r.pk) for r in requests}
    for action in ("step.reminded", "step.escalated"):
        events = AuditEvent.objects.filter(action=action)
        assert Counter(events.values_list("object_id", flat=True)) == dict.fromkeys(ids, 1)
    sent = Counter((m.subject.split(":")[0], m.to[0]) for m in mailoutbox)
    escalation_audience = [site_manager, regional_manager, staffed["regional_manager_2"]]
    assert sent == {
        ("[Tollgate] Reminder", site_manager.email): len(requests),
        **{("[Tollgate] Escalated", p.email): len(requests) for p in escalation_audience},
    }
