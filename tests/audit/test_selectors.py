"""Who sees which audit events: auditors see their sites and regions; the rest needs all."""

from datetime import date, timedelta

import pytest

from portal.audit.models import AuditEvent
from portal.audit.selectors import (
    REQUEST_TYPE,
    ExportFilters,
    events_for_export,
    events_visible_to,
    trail_for,
)
from tests.audit.activity import _working_morning, activity, company_auditor, matrix, staffed
from tests.factories import UserFactory

__all__ = ["_working_morning", "activity", "company_auditor", "matrix", "staffed"]


def _sites(events) -> set:
    return set(events.values_list("site__code", flat=True))


def test_regional_auditor_sees_the_events_of_their_regions_sites_only(activity, auditor):
    visible = events_visible_to(auditor)

    assert _sites(visible) == {"A1", "A2", None}
    assert set(visible.filter(site__isnull=True).values_list("context__region", flat=True)) == {
        "RA"
    }
    assert visible.filter(object_id=str(activity["approved"].pk), object_type=REQUEST_TYPE)
    assert not visible.filter(object_id=str(activity["in_b1"].pk), object_type=REQUEST_TYPE)


def test_events_about_another_region_or_the_whole_company_are_hidden_from_a_regional_auditor(
    activity, auditor
):
    company_wide = AuditEvent.objects.filter(site__isnull=True, action="policy.published")
    assert company_wide.filter(context__region__isnull=True).exists()
    assert AuditEvent.objects.filter(site__isnull=True, context__region="RB").exists()

    hidden = events_visible_to(auditor).filter(site__isnull=True)
    assert not hidden.filter(context__region__isnull=True).exists()
    assert not hidden.filter(context__region="RB").exists()
    assert hidden.filter(action="membership.granted", context__region="RA").exists()


def test_company_wide_auditor_sees_every_event_in_ledger_order(activity, company_auditor):
    visible = list(events_visible_to(company_auditor).values_list("sequence", flat=True))

    assert visible == list(AuditEvent.objects.values_list("sequence", flat=True))
    assert visible == sorted(visible)


def test_people_without_the_audit_role_see_nothing(activity, outsider, site_manager):
    assert not events_visible_to(outsider).exists()
    assert not events_visible_to(site_manager).exists()


def test_the_superuser_flag_does_not_make_an_auditor(activity):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)

    assert not events_visible_to(root).exists()


def test_export_filters_by_action_family_or_exact_action(activity, auditor):
    family = events_for_export(auditor, ExportFilters(kind="decision."))
    bare = events_for_export(auditor, ExportFilters(kind="decision"))
    exact = events_for_export(auditor, ExportFilters(kind="decision.reject"))

    assert set(family.values_list("action", flat=True)) == {"decision.approve", "decision.reject"}
    assert list(bare) == list(family)
    assert list(exact.values_list("action", flat=True)) == ["decision.reject"]


def test_export_filters_by_site_region_and_actor(activity, company_auditor):
    at_a2 = events_for_export(company_auditor, ExportFilters(sites=("A2",)))
    region_b = events_for_export(company_auditor, ExportFilters(region="RB"))
    by_deputy = events_for_export(company_auditor, ExportFilters(actor="deputy"))

    assert _sites(at_a2) == {"A2"}
    assert _sites(region_b) == {"B1", None}
    assert set(region_b.values_list("context__region", flat=True)) == {"RB"}
    assert set(by_deputy.values_list("action", flat=True)) == {
        "decision.approve",
        "request.approved",
    }


def test_export_filters_by_whole_utc_days(activity, company_auditor):
    today = date(2026, 3, 10)  # the working morning the approvals fixtures travel to

    assert events_for_export(company_auditor, ExportFilters(date_from=today, date_to=today))
    assert not events_for_export(
        company_auditor, ExportFilters(date_from=today + timedelta(days=1))
    ).exists()
    assert not events_for_export(
        company_auditor, ExportFilters(date_to=today - timedelta(days=1))
    ).exists()


def test_request_trail_holds_its_decisions_and_the_delegation_they_used(activity, auditor):
    trail = trail_for(auditor, REQUEST_TYPE, str(activity["approved"].pk))

    actions = [event.action for event in trail]
    assert actions == [
        "delegation.created",
        "request.created",
        "request.submitted",
        "request.in_review",
        "decision.approve",
        "request.approved",
    ]
    assert trail[4].on_behalf_of.username == "site.manager"


def test_trail_out_of_scope_looks_like_no_trail(activity, auditor):
    with pytest.raises(AuditEvent.DoesNotExist):
        trail_for(auditor, REQUEST_TYPE, str(activity["in_b1"].pk))
    with pytest.raises(AuditEvent.DoesNotExist):
        trail_for(auditor, REQUEST_TYPE, "999999")
