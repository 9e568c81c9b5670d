"""Every transition of a case and who may make it: queue workers in scope; others see 404.

Finance works the finance queue at every site of its region; a site manager works the
operational queues of their own site; a regional manager those of every site of the region.
Anyone else with a role at the site sees the case but may not work it (403); a person with no
role there gets 404, from the services and from the selector alike.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from exceptions import selectors, services
from exceptions.models import CaseState, ExceptionCase
from exceptions.services import case_raise
from portal.audit.models import AuditEvent
from portal.core.errors import Conflict
from portal.webhooks import openapi
from portal.webhooks.models import OutboundEvent
from sites.roles import Role
from tests.conftest import persona


def raised(site, *, kind="invoice_mismatch", key="bill-42"):
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity="medium",
        title="A case",
        source="manual",
        dedupe_key=key,
        payload={},
        evidence={},
        amount_at_stake=Decimal("75.50"),
        currency="EUR",
    )
    return case


def resolve(actor, case, code="bill_corrected"):
    return services.case_resolve(actor=actor, case_id=case.pk, code=code, note="Fixed in Odoo")


def test_finance_works_an_invoice_case_through_every_state_at_any_site_of_its_region(
    site_a2, finance
):
    case = raised(site_a2)

    steps = [
        services.case_assign(actor=finance, case_id=case.pk, owner=finance).state,
        services.case_start(actor=finance, case_id=case.pk).state,
        resolve(finance, case).state,
        services.case_reopen(actor=finance, case_id=case.pk, reason="Bill came back").state,
        services.case_start(actor=finance, case_id=case.pk).state,
        services.case_dismiss(actor=finance, case_id=case.pk, reason="Superseded").state,
    ]

    assert steps == ["assigned", "in_progress", "resolved", "assigned", "in_progress", "dismissed"]
    events = AuditEvent.objects.filter(object_type="exceptions.exceptioncase", object_id=case.pk)
    assert list(events.values_list("action", flat=True)) == [
        "case.opened",
        "case.assigned",
        "case.started",
        "case.resolved",
        "case.reopened",
        "case.started",
        "case.dismissed",
    ]
    assert all(event.site_id == site_a2.pk for event in events)


def test_a_new_case_may_be_resolved_without_being_assigned(site_a1, finance):
    assert resolve(finance, raised(site_a1)).state == CaseState.RESOLVED


def test_a_regional_manager_works_warehouse_cases_at_every_site_of_the_region(
    site_a2, regional_manager
):
    case = raised(site_a2, kind="shipment_delay")

    services.case_assign(actor=regional_manager, case_id=case.pk, owner=regional_manager)
    done = resolve(regional_manager, case, code="delivered_late")

    assert (done.state, done.owner) == (CaseState.RESOLVED, regional_manager)


def test_only_the_owner_starts_work(site_a1, finance, region_a):
    colleague = persona("finance.2", Role.FINANCE, region=region_a)
    case = raised(site_a1)
    services.case_assign(actor=finance, case_id=case.pk, owner=finance)

    with pytest.raises(PermissionDenied, match="owner"):
        services.case_start(actor=colleague, case_id=case.pk)
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.ASSIGNED


@pytest.mark.parametrize("persona_name", ["requester", "auditor", "site_manager"])
def test_people_who_see_the_case_but_do_not_work_its_queue_are_refused(
    request, site_a1, persona_name
):
    actor = request.getfixturevalue(persona_name)
    case = raised(site_a1)

    assert selectors.case_for(actor, case.pk) == case
    for attempt in (
        lambda: services.case_assign(actor=actor, case_id=case.pk, owner=actor),
        lambda: resolve(actor, case),
        lambda: services.case_dismiss(actor=actor, case_id=case.pk, reason="Not needed"),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.NEW


@pytest.mark.parametrize("persona_name", ["outsider", "stranger"])
def test_out_of_scope_is_not_found_for_every_service_and_the_selector(
    request, site_a1, finance, persona_name
):
    actor = request.getfixturevalue(persona_name)
    case = raised(site_a1)
    closed = raised(site_a1, key="closed")
    services.case_dismiss(actor=finance, case_id=closed.pk, reason="Duplicate")

    with pytest.raises(ExceptionCase.DoesNotExist):
        selectors.case_for(actor, case.pk)
    for attempt in (
        lambda: services.case_assign(actor=actor, case_id=case.pk, owner=finance),
        lambda: services.case_start(actor=actor, case_id=case.pk),
        lambda: resolve(actor, case),
        lambda: services.case_dismiss(actor=actor, case_id=case.pk, reason="x"),
        lambda: services.case_reopen(actor=actor, case_id=closed.pk, reason="x"),
    ):
        with pytest.raises(Http404):
            attempt()


def test_a_site_manager_of_another_site_gets_404_for_a_case_in_the_same_region(
    site_a2, site_manager
):
    case = raised(site_a2, kind="shipment_delay")

    with pytest.raises(Http404):
        resolve(site_manager, case, code="delivered_late")


def test_only_a_closed_case_is_reopened_and_only_by_its_queue(site_a1, finance, site_manager):
    case = raised(site_a1)
    with pytest.raises(Conflict, match="not closed"):
        services.case_reopen(actor=finance, case_id=case.pk, reason="Again")

    resolve(finance, case)
    with pytest.raises(PermissionDenied, match="Only workers of its queue"):
        services.case_reopen(actor=site_manager, case_id=case.pk, reason="Again")
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.RESOLVED


def test_starting_a_case_that_is_already_in_progress_is_a_conflict(site_a1, finance):
    case = raised(site_a1)
    services.case_assign(actor=finance, case_id=case.pk, owner=finance)
    services.case_start(actor=finance, case_id=case.pk)

    with pytest.raises(Conflict, match="does not apply"):
        services.case_start(actor=finance, case_id=case.pk)


def test_subscribers_hear_when_a_case_opens_and_how_it_closes(site_a1, finance, subscriber):
    resolved = raised(site_a1, key="a")
    dismissed = raised(site_a1, key="b")
    raised(site_a1, key="a")  # a second sighting is no new case

    resolve(finance, resolved)
    services.case_dismiss(actor=finance, case_id=dismissed.pk, reason="Duplicate bill")

    events = [(e.type, e.data["id"]) for e in OutboundEvent.objects.order_by("id")]
    assert events == [
        ("exception.opened", resolved.pk),
        ("exception.opened", dismissed.pk),
        ("exception.resolved", resolved.pk),
        ("exception.resolved", dismissed.pk),
    ]
    closed = OutboundEvent.objects.filter(type="exception.resolved").order_by("id")
    assert [(e.data["outcome"], e.data["resolution_code"]) for e in closed] == [
        ("resolved", "bill_corrected"),
        ("dismissed", None),
    ]
    assert all(set(e.data) == set(openapi.CaseResolvedData().fields) for e in closed)
    opened = OutboundEvent.objects.filter(type="exception.opened").first()
    assert set(opened.data) == set(openapi.CaseData().fields)
    assert opened.data["amount"] == "75.50"
    assert opened.data["due_at"].endswith("+00:00")
    assert opened.site == site_a1
