"""Delegations, notification preferences, and the administrators' policy pages."""

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from approvals import preferences, services
from approvals.models import ApprovalPolicy, Delegation, NotificationPreference, PolicyVersion
from portal.audit.models import AuditEvent
from portal.core import formatting
from sites.roles import Role
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed
from tests.conftest import persona
from tests.factories import grant

__all__ = ["_working_morning", "matrix", "staffed"]

pytestmark = pytest.mark.django_db
FORMAT = "%Y-%m-%d"


def period(days: int = 7) -> dict:
    """From today to `days` later, as the date inputs send them (days in the sites' zone)."""
    today = timezone.now().astimezone(ZoneInfo("Europe/Amsterdam")).date()
    return {
        "starts_at": today.strftime(FORMAT),
        "ends_at": (today + timedelta(days=days)).strftime(FORMAT),
    }


# --- delegations ------------------------------------------------------------------------------


def test_site_manager_delegates_and_the_delegate_can_decide(
    client, matrix, requester, site_manager, site_a1, staffed
):
    deputy = staffed["regional_manager_2"]
    client.force_login(site_manager)
    response = client.post(
        reverse("manage:delegations"),
        {"delegate": deputy.pk, "site": site_a1.pk, "note": "Holiday", **period()},
    )
    assert response.status_code == 302
    delegation = Delegation.objects.get(delegator=site_manager)
    assert (delegation.delegate, delegation.site) == (deputy, site_a1)
    assert AuditEvent.objects.filter(action="delegation.created", actor=site_manager).exists()
    request = raise_request(requester, site_a1, amount="1000")
    services.request_approve(actor=deputy, request_id=request.pk, comment="for the manager")
    page = client.get(reverse("manage:delegations")).content.decode()
    assert deputy.get_full_name() in page and "in force" in page


def test_delegation_form_reports_bad_input_and_changes_nothing(client, site_manager, staffed):
    deputy = staffed["site_manager_a2"]
    client.force_login(site_manager)
    response = client.post(reverse("manage:delegations"), {"delegate": "nobody.here", **period()})
    assert response.status_code == 400
    assert "Choose someone from the list" in response.content.decode()
    backwards = period()
    backwards["starts_at"], backwards["ends_at"] = backwards["ends_at"], backwards["starts_at"]
    response = client.post(reverse("manage:delegations"), {"delegate": deputy.pk, **backwards})
    assert response.status_code == 400
    assert "must end after it starts" in response.content.decode()
    for far in ("0001-01-01", "9999-12-31"):
        response = client.post(
            reverse("manage:delegations"),
            {"delegate": deputy.pk, "starts_at": far, "ends_at": far},
        )
        assert response.status_code == 400 and "between the years 2000 and 9998" in response.text
    # Oneself is never on the list, so choosing oneself is refused like any stranger.
    response = client.post(reverse("manage:delegations"), {"delegate": site_manager.pk, **period()})
    assert response.status_code == 400
    assert "Choose someone from the list" in response.content.decode()
    assert not Delegation.objects.exists()


@pytest.mark.parametrize("site_field", ["every site", "A1"])
def test_approvals_cannot_be_handed_to_someone_from_another_region(
    client, matrix, requester, site_manager, site_a1, outsider, stranger, site_field
):
    from approvals import selectors

    client.force_login(site_manager)
    chosen = {"site": site_a1.pk} if site_field == "A1" else {}
    page = client.get(reverse("manage:delegations")).text
    offered = re.search(r'<select name="delegate".*?</select>', page, re.S).group(0)
    answers = {
        person.username: client.post(
            reverse("manage:delegations"), {"delegate": person.pk, **chosen, **period()}
        )
        for person in (outsider, stranger)
    }
    unknown = client.post(reverse("manage:delegations"), {"delegate": 999999, **chosen, **period()})

    for person in (outsider, stranger):
        assert f'value="{person.pk}"' not in offered and person.get_full_name() not in page
        response = answers[person.username]
        assert response.status_code == 400
        assert "Choose someone from the list" in response.text
    # Worded alike, so the form tells nobody who exists elsewhere.
    assert unknown.status_code == 400 and "Choose someone from the list" in unknown.text
    assert not Delegation.objects.exists()
    request = raise_request(requester, site_a1, amount="1000")
    assert not selectors.requests_visible_to(outsider).filter(pk=request.pk).exists()


@pytest.mark.parametrize(
    ("site_field", "reason"), [("every site", "holds no role in Region A"), ("A1", "at A1")]
)
def test_someone_on_the_list_who_does_not_work_where_delegated_is_refused_by_the_service(
    client, matrix, regional_manager, site_a1, region_b, staffed, site_field, reason
):
    # Deciding in both regions, the regional manager is offered region B's people too; the
    # service refuses one of them for region A's approvals, and the form says why.
    grant(regional_manager, Role.REGIONAL_MANAGER, region=region_b)
    elsewhere = staffed["finance_b"]
    client.force_login(regional_manager)
    chosen = {"site": site_a1.pk} if site_field == "A1" else {}
    offered = client.get(reverse("manage:delegations")).text

    response = client.post(
        reverse("manage:delegations"), {"delegate": elsewhere.pk, **chosen, **period()}
    )

    assert f'value="{elsewhere.pk}"' in offered
    assert response.status_code == 400
    assert "holds no role" in response.text and reason in response.text
    assert not Delegation.objects.exists()
    assert not AuditEvent.objects.filter(action="delegation.created").exists()


def test_delegate_is_picked_from_the_people_the_rule_allows(
    client, site_manager, requester, regional_manager, outsider, site_a1, region_a, staffed
):
    client.force_login(site_manager)
    page = client.get(reverse("manage:delegations")).text
    offered = re.search(r'<select name="delegate".*?</select>', page, re.S).group(0)
    labels = re.findall(r'<option value="\d+" data-regions="[\d ]+">([^<]+)</option>', offered)

    allowed = [
        requester,
        regional_manager,
        staffed["regional_manager_2"],
        staffed["site_manager_a2"],
    ]
    assert sorted(label.split(" — ")[0] for label in labels) == sorted(
        person.get_full_name() for person in allowed
    )
    # Each person is named with what they do, never with a username.
    assert f"{requester.get_full_name()} — requester, {site_a1.name}" in labels
    assert f"{regional_manager.get_full_name()} — regional manager, {region_a.name}" in labels
    assert site_manager.get_full_name() not in offered  # never oneself
    assert "data-people" in offered and "/static/js/people." in page
    assert "username" not in page.lower()


def test_delegation_days_are_the_sites_days_and_the_zone_is_named_once(
    client, site_manager, staffed
):
    client.force_login(site_manager)
    page = client.get(reverse("manage:delegations")).text
    assert page.count("Europe/Amsterdam") == 1 and "Times are Europe/Amsterdam (CET)" in page
    assert "(UTC)" not in page

    response = client.post(
        reverse("manage:delegations"),
        {
            "delegate": staffed["site_manager_a2"].pk,
            "starts_at": "2026-03-16",
            "ends_at": "2026-03-20",
        },
    )

    assert response.status_code == 302
    delegation = Delegation.objects.get()
    # Monday 00:00 to the end of Friday in Amsterdam (CET, UTC+1), stored in UTC.
    assert delegation.starts_at == datetime(2026, 3, 15, 23, 0, tzinfo=UTC)
    assert delegation.ends_at == datetime(2026, 3, 20, 23, 0, tzinfo=UTC)
    given = client.get(reverse("manage:delegations")).text
    assert "Mon 16 Mar 2026 to Fri 20 Mar 2026" in given


def test_delegator_revokes_and_someone_else_gets_404(client, site_manager, requester, outsider):
    now = timezone.now()
    delegation = services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=requester,
        starts_at=now,
        ends_at=now + timedelta(days=3),
    )
    url = reverse("manage:delegation_revoke", args=[delegation.pk])
    client.force_login(outsider)
    assert client.post(url).status_code == 404
    client.force_login(requester)  # the delegate cannot end it either
    assert client.post(url).status_code == 404
    delegation.refresh_from_db()
    assert delegation.revoked_at is None
    client.force_login(site_manager)
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    delegation.refresh_from_db()
    assert delegation.revoked_at is not None
    assert AuditEvent.objects.filter(action="delegation.revoked").count() == 1


def test_delegations_page_lists_what_was_received(client, site_manager, requester):
    now = timezone.now()
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=requester,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=3),
    )
    client.force_login(requester)
    page = client.get(reverse("manage:delegations")).content.decode()
    assert "Handed to me" in page and site_manager.get_full_name() in page and "upcoming" in page


# --- notification preferences ------------------------------------------------------------------


def test_preferences_are_saved_and_audited(client, site_manager):
    client.force_login(site_manager)
    page = client.get(reverse("manage:preferences"))
    assert page.context["form"].initial["new_steps"] == "immediate"
    response = client.post(reverse("manage:preferences"), {"new_steps": "digest", "reminders": ""})
    assert response.status_code == 302
    saved = NotificationPreference.objects.get(user=site_manager)
    assert (saved.new_steps, saved.reminders, saved.decisions_on_my_requests) == (
        "digest",
        False,
        False,
    )
    assert AuditEvent.objects.filter(action="notifications.preferences_changed").count() == 1
    assert client.post(reverse("manage:preferences"), {"new_steps": "loud"}).status_code == 400


def _mail_to(user) -> list:
    return [message for message in mail.outbox if user.email in message.to]


def test_new_step_mail_respects_the_choice(
    matrix, requester, site_manager, site_a1, staffed, django_capture_on_commit_callbacks
):
    preferences.notification_preference_set(
        actor=site_manager,
        user=site_manager,
        new_steps="off",
        reminders=True,
        decisions_on_my_requests=True,
    )
    other = persona("sm.a1.second", Role.SITE_MANAGER, site=site_a1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        raise_request(requester, site_a1, amount="1000")
    assert _mail_to(site_manager) == []
    assert len(_mail_to(other)) == 1  # people who did not choose keep getting it


def test_requester_can_turn_off_decision_mail(
    matrix, requester, site_manager, site_a1, django_capture_on_commit_callbacks
):
    request = raise_request(requester, site_a1, amount="1000")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(actor=site_manager, request_id=request.pk)
    assert len(_mail_to(requester)) == 1
    preferences.notification_preference_set(
        actor=requester,
        user=requester,
        new_steps="immediate",
        reminders=True,
        decisions_on_my_requests=False,
    )
    second = raise_request(requester, site_a1, amount="1100")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(actor=site_manager, request_id=second.pk)
    assert _mail_to(requester) == []


def test_muted_reads_each_reason(site_manager, requester):
    preferences.notification_preference_set(
        actor=site_manager,
        user=site_manager,
        new_steps="digest",
        reminders=False,
        decisions_on_my_requests=True,
    )
    people = [site_manager.pk, requester.pk]
    assert preferences.muted(people, "activated") == {site_manager.pk}
    assert preferences.muted(people, "reminder") == {site_manager.pk}
    assert preferences.muted(people, "escalated") == set()
    assert preferences.muted(people, "decided") == set()


def test_digest_lists_what_waits_once_a_day(matrix, requester, site_manager, site_a1):
    preferences.notification_preference_set(
        actor=site_manager,
        user=site_manager,
        new_steps="digest",
        reminders=True,
        decisions_on_my_requests=True,
    )
    request = raise_request(requester, site_a1, amount="1000")
    mail.outbox.clear()
    assert preferences.send_daily_digests() == 1
    (digest,) = _mail_to(site_manager)
    assert request.reference in digest.body and "1 decision waits" in digest.body
    assert "€1,000.00" in digest.body and "1000.00 EUR" not in digest.body
    assert preferences.send_daily_digests() == 0  # not twice the same day


def test_nobody_changes_someone_elses_preferences(site_manager, requester):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        preferences.notification_preference_set(
            actor=requester,
            user=site_manager,
            new_steps="off",
            reminders=False,
            decisions_on_my_requests=False,
        )
    assert not NotificationPreference.objects.exists()


# --- policies ---------------------------------------------------------------------------------


@pytest.fixture
def region_admin(region_a, site_a1, site_a2):
    return persona("region.admin", Role.ADMIN, region=region_a)


def test_policy_pages_are_for_administrators_only(client, matrix, site_manager):
    client.force_login(site_manager)
    assert client.get(reverse("manage:policies")).status_code == 404
    assert client.get(reverse("manage:policy_preview")).status_code == 404
    policy = ApprovalPolicy.objects.get(name="Enterprise framework")
    assert client.get(reverse("manage:policy", args=[policy.pk])).status_code == 404


def test_administrator_sees_versions_rules_and_tiers(client, matrix, region_admin):
    client.force_login(region_admin)
    page = client.get(reverse("manage:policies")).content.decode()
    assert "Enterprise framework" in page
    assert "UK thresholds" not in page  # region B's policy is outside region A's reach
    global_policy = ApprovalPolicy.objects.get(name="Enterprise framework")
    detail = client.get(reverse("manage:policy", args=[global_policy.pk])).content.decode()
    assert "Routine purchases" in detail and "Site manager" in detail
    assert "Publish a new version" not in detail  # only a superuser publishes global policy
    local = ApprovalPolicy.objects.get(name="UK thresholds")
    assert client.get(reverse("manage:policy", args=[local.pk])).status_code == 404


def test_policy_rules_name_kinds_and_amounts_as_people_read_them(client, matrix, region_admin):
    client.force_login(region_admin)
    policy = ApprovalPolicy.objects.get(name="Enterprise framework")

    detail = client.get(reverse("manage:policy", args=[policy.pk])).text

    assert "Kinds: Write-off." in detail and "write_off" not in detail
    assert "Fast path below €100.00." in detail
    assert "Amount from €1,000.00." in detail


def test_preview_shows_route_and_people(client, matrix, region_admin, site_manager, site_a1):
    client.force_login(region_admin)
    query = {"kind": "purchase", "site": site_a1.pk, "amount": "1000", "currency": "EUR"}
    page = client.get(reverse("manage:policy_preview"), query).content.decode()
    assert "Routine purchases" in page and site_manager.username in page
    flagged = client.get(
        reverse("manage:policy_preview"), {**query, "risk_flags": ["after_hours"]}
    ).content.decode()
    assert "Risk review" in flagged and "finance" in flagged
    fast = client.get(reverse("manage:policy_preview"), {**query, "amount": "100"}).content
    assert b"Fast path" in fast
    bad = client.get(reverse("manage:policy_preview"), {**query, "currency": "euro"})
    assert bad.status_code == 400 and b"three-letter" in bad.content


@pytest.fixture
def site_policy(matrix, region_admin, site_a1):
    policy = services.policy_create(actor=region_admin, name="A1 local", site=site_a1)
    from approvals.specs import VersionSpec
    from tests.approvals.conftest import enterprise_rules

    services.policy_publish(
        actor=region_admin, policy=policy, spec=VersionSpec(rules=enterprise_rules())
    )
    return policy


def _spec_of(client, policy) -> dict:
    page = client.get(reverse("manage:policy_publish", args=[policy.pk]))
    assert page.status_code == 200
    return json.loads(page.context["form"].initial["spec"])


def test_publish_with_lint_errors_changes_nothing(client, site_policy, region_admin):
    client.force_login(region_admin)
    spec = _spec_of(client, site_policy)
    spec["rules"][0]["tiers"][0]["role"] = "auditor"  # auditors read; they decide nothing
    spec["rules"].append(dict(spec["rules"][1]))  # a duplicate name
    response = client.post(
        reverse("manage:policy_publish", args=[site_policy.pk]),
        {"spec": json.dumps(spec), "publish": "1"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Not published: nothing was changed" in page
    assert "two rules have this name" in page
    assert "tier 1: the auditor role decides nothing" in page
    assert PolicyVersion.objects.filter(policy=site_policy).count() == 1


def test_publish_check_then_publish(client, site_policy, region_admin):
    client.force_login(region_admin)
    spec = _spec_of(client, site_policy)
    spec["note"] = "Raise the routine threshold"
    spec["rules"][0]["auto_approve_below"] = "600"
    url = reverse("manage:policy_publish", args=[site_policy.pk])
    checked = client.post(url, {"spec": json.dumps(spec), "check": "1"})
    assert checked.status_code == 200 and b"No problems" in checked.content
    assert PolicyVersion.objects.filter(policy=site_policy).count() == 1
    assert client.post(url, {"spec": json.dumps(spec), "publish": "1"}).status_code == 302
    latest = PolicyVersion.objects.filter(policy=site_policy).order_by("-number").first()
    assert latest.number == 2 and latest.note == "Raise the routine threshold"
    assert AuditEvent.objects.filter(action="policy.published", actor=region_admin).exists()


def test_publish_explains_malformed_json(client, site_policy, region_admin):
    client.force_login(region_admin)
    url = reverse("manage:policy_publish", args=[site_policy.pk])
    for text, message in (
        ("{not json", "Not valid JSON"),
        ('{"rules": [{"name": "x", "colour": 1}]}', "unknown field"),
        ('{"rules": [{"name": "x", "tiers": [{"role": "site_manager"}]}]}', "sla_hours"),
        ('{"rules": [{"name": "x", "min_amount": "lots"}]}', "is not a number"),
    ):
        response = client.post(url, {"spec": text, "publish": "1"})
        assert response.status_code == 400, text
        assert message in response.content.decode(), text
    assert PolicyVersion.objects.filter(policy=site_policy).count() == 1


def test_publish_of_a_policy_outside_reach_is_404(client, matrix, region_admin):
    client.force_login(region_admin)
    global_policy = ApprovalPolicy.objects.get(name="Enterprise framework")
    url = reverse("manage:policy_publish", args=[global_policy.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"spec": "{}", "publish": "1"}).status_code == 404


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_delegations_page_costs_the_same_queries_whatever_the_count(
    client, site_manager, site_a1, staffed
):
    client.force_login(site_manager)
    url = reverse("manage:delegations")
    now = timezone.now()

    def delegate_to(user):
        services.delegation_create(
            actor=site_manager,
            delegator=site_manager,
            delegate=user,
            starts_at=now,
            ends_at=now + timedelta(days=2),
        )

    delegate_to(staffed["site_manager_a2"])
    few = _queries(client, url)
    delegate_to(staffed["regional_manager_2"])
    for n in range(3):
        delegate_to(persona(f"deputy.{n}", Role.REQUESTER, site=site_a1))
    assert _queries(client, url) == few


def test_policy_pages_cost_the_same_queries_whatever_the_versions(
    client, site_policy, region_admin
):
    client.force_login(region_admin)
    urls = [reverse("manage:policies"), reverse("manage:policy", args=[site_policy.pk])]
    few = [_queries(client, url) for url in urls]
    from approvals.specs import version_spec

    spec = version_spec(site_policy.versions.order_by("-number").first())
    for _ in range(3):
        services.policy_publish(actor=region_admin, policy=site_policy, spec=spec)
    assert [_queries(client, url) for url in urls] == few


def test_digest_shows_each_due_time_in_its_own_sites_zone(matrix, requester, site_a1, site_b1):
    from zoneinfo import ZoneInfo

    from tests.factories import grant

    manager = persona("two.sites", Role.SITE_MANAGER, site=site_a1)
    grant(manager, Role.SITE_MANAGER, site=site_b1)
    preferences.notification_preference_set(
        actor=manager,
        user=manager,
        new_steps="digest",
        reminders=True,
        decisions_on_my_requests=True,
    )
    grant(requester, Role.REQUESTER, site=site_b1)
    waiting = [raise_request(requester, site, amount="1000") for site in (site_a1, site_b1)]
    mail.outbox.clear()

    assert preferences.send_daily_digests() == 1

    (digest,) = _mail_to(manager)
    for request in waiting:
        request.refresh_from_db()
        assert request.due_at is not None
        local = request.due_at.astimezone(ZoneInfo(request.site.time_zone))
        assert f"due {formatting.moment(request.due_at, request.site)}" in digest.body
        assert local.tzname() in formatting.moment(request.due_at, request.site)


@pytest.mark.parametrize(
    ("version", "status"), [("\N{SUPERSCRIPT TWO}", 200), (str(10**30), 404), ("1", 200)]
)
def test_a_version_that_is_not_a_plain_number_never_errors(
    client, matrix, region_admin, version, status
):
    client.force_login(region_admin)
    framework = ApprovalPolicy.objects.get(name="Enterprise framework")
    url = reverse("manage:policy", args=[framework.pk])

    # Not a number: the newest version is shown; a number no version has: 404.
    assert client.get(url, {"version": version}).status_code == status
