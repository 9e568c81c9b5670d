"""Tier deadlines in the site's own hours, and the sweep that reminds, escalates and expires."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from approvals import policies, services, sla, tasks
from approvals.models import (
    ApprovalRequest,
    Decision,
    HeldAt,
    OnBreach,
    Outcome,
    RequestState,
    StepState,
)
from approvals.selectors import inbox_for
from approvals.specs import RuleSpec, VersionSpec
from portal.audit.models import AuditEvent
from portal.celery import app
from sites import services as site_services
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request, tier
from tests.factories import SiteFactory

D = Decimal
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LONDON = ZoneInfo("Europe/London")
# Routine purchases (1 000 EUR) open one site-manager tier of 24 clock hours that escalates to
# the regional managers: a reminder is due after 18 hours, the breach after 24.
REMIND = WORKING_MORNING + timedelta(hours=18)
BREACH = WORKING_MORNING + timedelta(hours=24)


@pytest.fixture
def clock(_working_morning):
    return _working_morning


def _local(year, month, day, hour, minute=0, tz=AMSTERDAM) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def _publish_site_policy(site, *tiers):
    """Give `site` its own purchase policy, so that a test chooses its tiers' SLA settings."""
    policy = services.policy_create(actor=None, name=f"{site.code} purchases", site=site)
    rule = RuleSpec(name="Purchases", kinds=("purchase",), tiers=tiers)
    return services.policy_publish(actor=None, policy=policy, spec=VersionSpec(rules=(rule,)))


def _active_step(request):
    return request.steps.get(state=StepState.ACTIVE)


def _reload(request) -> ApprovalRequest:
    return ApprovalRequest.objects.get(pk=request.pk)


def _events(action: str, request) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_id=str(request.pk)))


# --- due times ------------------------------------------------------------------------------


def test_clock_hours_tier_falls_due_its_sla_hours_after_it_opens(matrix, requester, site_a1, clock):
    opened = WORKING_MORNING + timedelta(minutes=1)
    clock.move_to(opened, tick=False)

    target = raise_request(requester, site_a1, amount="1000")

    step = _active_step(target)
    assert step.activated_at == opened
    assert step.remind_at == opened + timedelta(hours=18)
    assert step.due_at == opened + timedelta(hours=24)
    assert _reload(target).due_at == step.due_at
    assert step.due_at.astimezone(AMSTERDAM) == _local(2026, 3, 11, 10, 1)


def test_clock_hours_count_real_hours_across_a_dst_change(site_a1):
    # Amsterdam moves its clocks forward at 02:00 on Sunday 29 March 2026.
    saturday_noon = _local(2026, 3, 28, 12)

    due = sla.deadline(saturday_noon, D("24"), site=site_a1, business_hours=False)

    assert due - saturday_noon == timedelta(hours=24)
    assert due.astimezone(AMSTERDAM) == _local(2026, 3, 29, 13)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        pytest.param(_local(2026, 3, 13, 17), "4", _local(2026, 3, 16, 11), id="friday-evening"),
        pytest.param(_local(2026, 3, 27, 17), "4", _local(2026, 3, 30, 11), id="over-dst-change"),
        pytest.param(_local(2026, 3, 14, 12), "2", _local(2026, 3, 16, 10), id="from-saturday"),
        pytest.param(_local(2026, 3, 16, 6), "10", _local(2026, 3, 16, 18), id="before-opening"),
        pytest.param(_local(2026, 3, 16, 9), "25", _local(2026, 3, 18, 14), id="several-days"),
        pytest.param(
            _local(2026, 10, 23, 16), "5", _local(2026, 10, 26, 11), id="over-autumn-change"
        ),
    ],
)
def test_business_hours_count_only_the_sites_working_hours(site_a1, start, hours, due):
    assert sla.deadline(start, D(hours), site=site_a1, business_hours=True) == due


def test_business_hours_follow_the_sites_own_time_zone(site_b1):
    friday_five_in_london = _local(2026, 3, 13, 17, tz=LONDON)

    due = sla.deadline(friday_five_in_london, D("4"), site=site_b1, business_hours=True)

    assert due == _local(2026, 3, 16, 11, tz=LONDON)
    assert due.tzinfo == UTC


def test_a_site_working_saturdays_counts_them(region_a):
    shop = SiteFactory(code="SAT", region=region_a)
    shop = site_services.site_update(actor=None, site=shop, business_days="123456")

    due = sla.deadline(_local(2026, 3, 13, 17), D("4"), site=shop, business_hours=True)

    assert due == _local(2026, 3, 14, 11)


def test_business_hours_across_a_dst_change_count_real_hours(region_a):
    # A night shift open 01:00–05:00 every day: on Sunday 29 March 2026 the clocks jump from
    # 02:00 to 03:00, so that window holds three real hours, not four.
    night = SiteFactory(code="NITE", region=region_a)
    night = site_services.site_update(
        actor=None, site=night, opens_at=time(1), closes_at=time(5), business_days="1234567"
    )

    due = sla.deadline(_local(2026, 3, 29, 1), D("3.5"), site=night, business_hours=True)

    assert due == _local(2026, 3, 30, 1, 30)


def test_business_hours_tier_raised_on_friday_evening_is_due_monday_late_morning(
    matrix, requester, site_a1, site_manager, clock
):
    _publish_site_policy(site_a1, tier(Role.SITE_MANAGER, sla="4", business_hours=True))
    clock.move_to(_local(2026, 3, 13, 17), tick=False)

    target = raise_request(requester, site_a1, amount="1000")

    step = _active_step(target)
    assert step.due_at == _local(2026, 3, 16, 11)
    assert step.remind_at == _local(2026, 3, 16, 10)
    assert _reload(target).due_at == _local(2026, 3, 16, 11)


# --- the sweep ------------------------------------------------------------------------------


def test_nothing_happens_before_three_quarters_of_the_sla(
    matrix, requester, site_a1, clock, mailoutbox, django_capture_on_commit_callbacks
):
    target = raise_request(requester, site_a1, amount="1000")
    clock.move_to(REMIND - timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sla_sweep()

    assert result == services.SweepResult()
    assert _active_step(target).reminded_at is None
    assert mailoutbox == []


def test_reminder_at_three_quarters_mails_the_eligible_people_once(
    matrix,
    requester,
    site_a1,
    site_manager,
    clock,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    target = raise_request(requester, site_a1, amount="1000")
    clock.move_to(REMIND + timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sla_sweep()

    assert result == services.SweepResult(reminded=1)
    assert [m.to for m in mailoutbox] == [[site_manager.email]]
    assert mailoutbox[0].subject.startswith(f"[Tollgate] Reminder: {target.reference}")
    [event] = _events("step.reminded", target)
    assert (event.actor, event.after["tier"]) == (None, 1)
    assert _active_step(target).reminded_at is not None

    clock.shift(timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        again = services.sla_sweep()

    assert again == services.SweepResult()
    assert len(mailoutbox) == 1
    assert len(_events("step.reminded", target)) == 1


def test_reminder_mail_gives_the_due_time_in_the_sites_time_zone(
    matrix, requester, site_a1, clock, mailoutbox, django_capture_on_commit_callbacks
):
    raise_request(requester, site_a1, amount="1000")
    clock.move_to(REMIND + timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        services.sla_sweep()

    # Due 09:00 UTC on Wednesday 11 March 2026, which is 10:00 in Amsterdam, on the day of the
    # reminder.
    [mail] = mailoutbox
    assert "Due:    today 10:00 CET" in mail.body


def test_escalation_at_the_deadline_lets_the_escalation_role_decide(
    matrix,
    requester,
    site_a1,
    site_manager,
    regional_manager,
    staffed,
    clock,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    target = raise_request(requester, site_a1, amount="1000")
    assert inbox_for(regional_manager).requests == []
    assert policies.decision_options(regional_manager, target) == []
    clock.move_to(BREACH + timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sla_sweep()

    assert result.escalated == 1
    step = _active_step(target)
    assert step.roles == [Role.SITE_MANAGER, Role.REGIONAL_MANAGER]
    [event] = _events("step.escalated", target)
    assert event.after == {"tier": 1, "added_role": Role.REGIONAL_MANAGER}
    escalated = [m for m in mailoutbox if m.subject.startswith("[Tollgate] Escalated:")]
    assert sorted(m.to[0] for m in escalated) == sorted(
        [site_manager.email, regional_manager.email, staffed["regional_manager_2"].email]
    )
    assert inbox_for(regional_manager).requests == [target]
    assert inbox_for(site_manager).requests == [target]

    services.request_approve(actor=regional_manager, request_id=target.pk, step_id=step.pk)
    assert _reload(target).state == RequestState.APPROVED


def test_a_tier_found_past_its_deadline_is_escalated_without_a_late_reminder(
    matrix, requester, site_a1, clock, mailoutbox, django_capture_on_commit_callbacks
):
    # The sweep did not run between 75 % and 100 % (beat was down): "due soon" would be wrong.
    target = raise_request(requester, site_a1, amount="1000")
    clock.move_to(BREACH + timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sla_sweep()

    assert result == services.SweepResult(escalated=1)
    assert _events("step.reminded", target) == []
    assert mailoutbox and all("Escalated" in m.subject for m in mailoutbox)


def test_escalation_gives_the_added_people_a_new_deadline(matrix, requester, site_a1, clock):
    target = raise_request(requester, site_a1, amount="1000")
    swept_at = BREACH + timedelta(minutes=5)

    services.sla_sweep(now=swept_at)

    step = _active_step(target)
    assert (step.escalated_at, step.due_at) == (swept_at, swept_at + timedelta(hours=24))
    assert _reload(target).due_at == step.due_at


def test_breach_of_an_expiring_tier_expires_the_request(
    matrix,
    requester,
    site_a1,
    site_manager,
    clock,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    _publish_site_policy(site_a1, tier(Role.SITE_MANAGER, sla="8", on_breach=OnBreach.EXPIRE))
    target = raise_request(requester, site_a1, amount="1000")
    clock.move_to(WORKING_MORNING + timedelta(hours=8, minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sla_sweep()

    assert result == services.SweepResult(expired=1)
    target = _reload(target)
    assert (target.state, target.due_at) == (RequestState.EXPIRED, None)
    assert target.steps.get().state == StepState.EXPIRED
    assert target.decisions.count() == 0
    [event] = _events("request.expired", target)
    assert "passed its SLA of 8.00 h" in event.comment
    assert mailoutbox[-1].to == [requester.email]
    assert "expired" in mailoutbox[-1].subject
    assert inbox_for(site_manager).requests == []


def test_breach_of_a_rejecting_tier_rejects_with_a_system_decision(
    matrix, requester, site_a1, site_manager, clock, mailoutbox, django_capture_on_commit_callbacks
):
    _publish_site_policy(
        site_a1,
        tier(Role.SITE_MANAGER, sla="8", on_breach=OnBreach.REJECT),
        tier(Role.FINANCE, stage=2, held_at=HeldAt.REGION),
    )
    target = raise_request(requester, site_a1, amount="1000")
    clock.move_to(WORKING_MORNING + timedelta(hours=8, minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sla_sweep()

    assert result == services.SweepResult(rejected=1)
    target = _reload(target)
    assert target.state == RequestState.REJECTED
    assert [s.state for s in target.steps.order_by("position")] == [
        StepState.EXPIRED,
        StepState.CLOSED,
    ]
    [decision] = target.decisions.all()
    assert (decision.outcome, decision.actor, decision.step.position) == (Outcome.REJECT, None, 1)
    assert decision.policy_version == target.policy_version
    [event] = _events("request.rejected", target)
    assert (event.actor, event.actor_label) == (None, "tollgate")
    assert "rejected" in mailoutbox[-1].subject


def test_sweep_run_twice_acts_once(
    matrix, requester, site_a1, clock, mailoutbox, django_capture_on_commit_callbacks
):
    overdue = raise_request(requester, site_a1, amount="1000")
    clock.shift(timedelta(hours=6))
    due_soon = raise_request(requester, site_a1, kind="transfer", amount="100")
    _publish_site_policy(site_a1, tier(Role.SITE_MANAGER, sla="20", on_breach=OnBreach.EXPIRE))
    expired = raise_request(requester, site_a1, amount="1200")
    moment = WORKING_MORNING + timedelta(hours=26, minutes=30)

    with django_capture_on_commit_callbacks(execute=True):
        first = services.sla_sweep(now=moment)
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        second = services.sla_sweep(now=moment)

    assert first == services.SweepResult(reminded=1, escalated=1, expired=1)
    assert second == services.SweepResult()
    assert len(mailoutbox) == sent
    assert len(_events("step.escalated", overdue)) == 1
    assert len(_events("step.reminded", due_soon)) == 1
    assert _reload(expired).state == RequestState.EXPIRED
    assert Decision.objects.count() == 0


def test_finished_tiers_are_left_alone(matrix, requester, site_a1, site_manager, clock):
    decided = raise_request(requester, site_a1, amount="1000")
    withdrawn = raise_request(requester, site_a1, amount="1100")
    services.request_approve(actor=site_manager, request_id=decided.pk)
    services.request_withdraw(actor=requester, request_id=withdrawn.pk)

    result = services.sla_sweep(now=BREACH + timedelta(days=3))

    assert result == services.SweepResult()
    assert not AuditEvent.objects.filter(action__startswith="step.").exists()


# --- scheduling -----------------------------------------------------------------------------


def test_beat_runs_the_sweep_every_minute_by_default():
    entries = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "approvals.sla_sweep"
    ]

    assert len(entries) == 1
    assert entries[0]["schedule"] == 60
    assert "approvals.sla_sweep" in app.tasks


def test_the_celery_task_runs_the_sweep(matrix, requester, site_a1, clock):
    target = raise_request(requester, site_a1, amount="1000")
    clock.move_to(REMIND + timedelta(minutes=1))

    outcome = tasks.sla_sweep.delay().get()

    assert outcome == {"reminded": 1, "escalated": 0, "expired": 0, "rejected": 0}
    assert _active_step(target).reminded_at is not None
