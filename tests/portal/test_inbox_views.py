"""The inbox page: what the person can act on now, filtered, counted and paged."""

import base64
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import services
from exceptions.services import case_raise
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

# The staffed company and its policy matrix, shared with the approvals tests.
_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed
colleague = approval_fixtures.colleague

HOME = reverse("inbox:home")


def _case(site, key, *, kind="invoice_mismatch", severity="medium", amount=None):
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity=severity,
        title=f"Case {key}",
        source="odoo",
        dedupe_key=f"inbox-test:{key}",
        payload={},
        evidence={"bill": key},
        amount_at_stake=Decimal(amount) if amount else None,
        currency="EUR" if amount else "",
    )
    return case


def test_site_manager_inbox_lists_requests_soonest_due_first_with_counts(
    client, matrix, requester, site_a1, site_manager
):
    first = raise_request(requester, site_a1, amount="1000", title="First raised")
    second = raise_request(requester, site_a1, amount="1200", title="Second raised")
    client.force_login(site_manager)

    page = client.get(HOME).text

    assert page.index(first.reference) < page.index(second.reference)
    assert "<strong>2</strong> requests to decide" in page
    assert "Your reach" in page  # the sites and roles stay on the page


def test_requester_sees_nothing_to_decide(client, matrix, requester, site_a1):
    raise_request(requester, site_a1, amount="1000")
    client.force_login(requester)

    page = client.get(HOME).text

    assert 'id="no-approvals"' in page
    assert "Nothing waits for your decision." in page


def test_outsider_inbox_shows_nothing_of_another_region(
    client, matrix, requester, site_a1, outsider
):
    request = raise_request(requester, site_a1, amount="1000")
    _case(site_a1, "a1-case")
    client.force_login(outsider)

    page = client.get(HOME).text

    assert request.reference not in page
    assert "Case a1-case" not in page


def test_filters_narrow_by_kind_site_and_amount(
    client, matrix, requester, site_a1, site_a2, regional_manager, staffed
):
    small = raise_request(requester, site_a1, amount="6000", title="Small material")
    big = raise_request(requester, site_a1, amount="60000", title="Major purchase")
    # Both wait for the site manager first; approving tier 1 opens the regional tier.
    for request in (small, big):
        services.request_approve(actor=_site_manager_of(site_a1), request_id=request.pk)
    client.force_login(regional_manager)

    everything = client.get(HOME).text
    over_10k = client.get(HOME, {"min_amount": "10000"}).text
    transfers = client.get(HOME, {"kind": "transfer"}).text
    other_site = client.get(HOME, {"site": site_a2.pk}).text

    assert small.reference in everything and big.reference in everything
    assert big.reference in over_10k and small.reference not in over_10k
    assert small.reference not in transfers and big.reference not in transfers
    assert small.reference not in other_site


def _site_manager_of(site):
    from sites.models import Membership
    from sites.roles import Role

    return Membership.objects.filter(site=site, role=Role.SITE_MANAGER).first().user


def test_overdue_items_stand_out_and_can_be_filtered(
    client, matrix, requester, site_a1, site_manager
):
    late = raise_request(requester, site_a1, amount="1000", title="Late one")
    with time_machine.travel(timezone.now() + timedelta(hours=30), tick=False):
        fresh = raise_request(requester, site_a1, amount="1100", title="Fresh one")
        client.force_login(site_manager)
        page = client.get(HOME).text
        overdue_only = client.get(HOME, {"overdue": "on"}).text

    assert "<strong>1</strong> overdue" in page
    assert 'class="item overdue"' in page
    assert late.reference in overdue_only and fresh.reference not in overdue_only


def test_bad_filter_input_says_what_was_wrong_and_keeps_the_rest(
    client, matrix, requester, site_a1, site_manager
):
    request = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)

    response = client.get(HOME, {"min_amount": "lots", "after": "garbage"})

    assert response.status_code == 200
    assert "Amount from: Enter a number." in response.text
    assert "That page link is not valid any more" in response.text
    assert request.reference in response.text


def test_inbox_pages_with_the_selector_cursor(client, matrix, requester, site_a1, site_manager):
    from portal.inbox import views

    made = [raise_request(requester, site_a1, amount=str(1000 + i)) for i in range(3)]
    client.force_login(site_manager)
    original, views.PAGE_SIZE = views.PAGE_SIZE, 2
    try:
        first = client.get(HOME)
        next_link = first.context["next_cursor"]
        second = client.get(HOME, {"after": next_link})
    finally:
        views.PAGE_SIZE = original

    assert made[0].reference in first.text and made[1].reference in first.text
    assert made[2].reference not in first.text
    assert made[2].reference in second.text and made[0].reference not in second.text
    assert 'rel="next"' in first.text and 'rel="next"' not in second.text


def test_finance_sees_cases_of_their_queue_with_the_queue_filter(
    client, matrix, site_a1, finance, site_manager
):
    invoice = _case(site_a1, "bill-1", kind="invoice_mismatch", amount="320")
    delay = _case(site_a1, "late-1", kind="shipment_delay", severity="high")
    client.force_login(finance)

    page = client.get(HOME).text
    warehouse = client.get(HOME, {"queue": "warehouse"}).text

    assert invoice.reference in page
    assert delay.reference not in page  # the warehouse queue is not finance's
    assert invoice.reference not in warehouse
    client.force_login(site_manager)
    assert delay.reference in client.get(HOME).text


def test_htmx_filter_request_gets_only_the_list(client, matrix, requester, site_a1, site_manager):
    request = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)

    response = client.get(HOME, {"kind": "purchase"}, headers={"HX-Request": "true"})

    assert request.reference in response.text
    assert 'id="inbox-list"' in response.text
    assert "<html" not in response.text


def test_due_times_show_in_the_sites_zone(client, matrix, site_b1, outsider, staffed):
    request = raise_request(staffed["requester_b"], site_b1, amount="1000")
    client.force_login(outsider)  # the site manager at B1 (Europe/London)

    page = client.get(HOME).text

    london = request.due_at.astimezone(ZoneInfo("Europe/London"))
    assert london.strftime("%H:%M GMT") in page


def _rendered_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    return len(queries)


def test_inbox_renders_with_a_constant_number_of_queries(
    client, matrix, requester, site_a1, site_manager, colleague
):
    client.force_login(site_manager)
    for i in range(2):
        raise_request(requester, site_a1, amount=str(1000 + i))
        _case(site_a1, f"few-{i}", kind="shipment_delay")
    few = _rendered_queries(client)
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=timezone.now() - timedelta(hours=1),
        ends_at=timezone.now() + timedelta(days=1),
    )
    for i in range(12):
        raise_request(requester, site_a1, amount=str(2000 + i))
        _case(site_a1, f"many-{i}", kind="shipment_delay")

    many = _rendered_queries(client)
    client.force_login(colleague)
    delegated = _rendered_queries(client)

    assert few == many
    # A stand-in reads the page's tiers and votes, and the people they stand in for.
    assert delegated <= many + 3


def test_pages_carry_a_strict_content_security_policy(client, site_manager):
    client.force_login(site_manager)

    policy = client.get(HOME)["Content-Security-Policy"]

    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_the_500_page_is_friendly_and_needs_no_request(client):
    from django.template.loader import render_to_string

    page = render_to_string("500.html")

    assert "Something went wrong" in page
    assert "nothing half-done was kept" in page
    assert "Sign out" not in page


def test_requester_finds_the_requests_they_raised_and_only_those(
    client, matrix, requester, site_a1, site_manager
):
    from sites.roles import Role
    from tests.conftest import persona

    colleague = persona("requester.two", Role.REQUESTER, site=site_a1)
    mine = raise_request(requester, site_a1, amount="1000", title="Pallets I asked for")
    services.request_withdraw(actor=requester, request_id=mine.pk)
    theirs = raise_request(colleague, site_a1, amount="1100", title="Someone else's pallets")
    client.force_login(requester)

    page = client.get(HOME).text

    assert 'id="own-requests"' in page
    assert reverse("approvals:detail", args=[mine.pk]) in page and "Withdrawn" in page
    assert theirs.title not in page
    client.force_login(site_manager)
    assert 'id="own-requests"' not in client.get(HOME).text


@pytest.mark.parametrize("pk", ["\N{SUPERSCRIPT TWO}", "\N{ARABIC-INDIC DIGIT THREE}", str(10**30)])
def test_a_page_link_with_a_number_no_row_has_shows_the_first_page(
    client, matrix, requester, site_a1, site_manager, pk
):
    request = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)

    after = base64.urlsafe_b64encode(f"2026-01-01T00:00:00+00:00|{pk}".encode()).decode()
    response = client.get(HOME, {"after": after})

    assert response.status_code == 200
    assert request.reference in response.text


def test_counts_stop_at_the_cap_and_say_so(
    client, matrix, requester, site_a1, site_manager, monkeypatch
):
    from approvals import selectors
    from portal.inbox import views

    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    monkeypatch.setattr(views, "COUNT_CAP", 2)
    client.force_login(site_manager)
    raise_request(requester, site_a1, amount="1000")
    _case(site_a1, "cap-0", kind="shipment_delay")
    _case(site_a1, "cap-1", kind="shipment_delay")
    exact = client.get(HOME).text
    for i in range(2):
        raise_request(requester, site_a1, amount=str(1100 + i))
        _case(site_a1, f"cap-more-{i}", kind="shipment_delay")

    capped = client.get(HOME).text

    assert "<strong>1</strong> request to decide" in exact
    assert "<strong>2</strong> cases in your queues" in exact
    assert "<strong>2+</strong> requests to decide" in capped
    assert "<strong>2+</strong> cases in your queues" in capped
    assert all(f"Case cap-more-{i}" in capped for i in range(2))  # the list is not capped at 2


def test_new_request_is_offered_only_to_people_who_may_raise_somewhere(
    client, matrix, requester, auditor
):
    client.force_login(requester)
    raising = client.get(HOME).text
    client.force_login(auditor)
    reading = client.get(HOME).text

    assert 'id="new-request"' in raising
    assert 'id="new-request"' not in reading
    assert "Auditor" in reading  # their role is listed in their reach all the same


@pytest.mark.parametrize("cap", [2, 100])
def test_cases_read_queue_by_queue_for_many_sites_make_the_same_list(
    client, matrix, site_a1, site_a2, site_b1, regional_manager, monkeypatch, cap
):
    # Someone who works a queue at many sites has their cases read queue by queue and state by
    # state (on PostgreSQL); the list and its counts are those of the site-by-site read.
    from approvals import selectors
    from exceptions.services import case_assign, case_start
    from portal.inbox import views

    on_postgresql = connection.vendor == "postgresql"
    monkeypatch.setattr(selectors, "COUNT_CAP", cap)
    monkeypatch.setattr(views, "COUNT_CAP", cap)
    kinds = ("shipment_delay", "receipt_discrepancy", "return_damage")
    made = [
        _case(site, f"queue-{i}", kind=kinds[i % 3], amount=str(100 + i))
        for i, site in enumerate([site_a1, site_a2, site_b1] * 3)
    ]
    case_assign(actor=regional_manager, case_id=made[1].pk, owner=regional_manager)
    case_assign(actor=regional_manager, case_id=made[3].pk, owner=regional_manager)
    case_start(actor=regional_manager, case_id=made[3].pk)
    client.force_login(regional_manager)

    def cases_section(page: str) -> str:
        start = page.index('id="inbox-counts"')
        return page[start : page.index("</section>", page.index('id="cases-heading"'))]

    merged = []
    real = views._merged_ranges

    def merging(*args):
        merged.append(real(*args))
        return merged[-1]

    monkeypatch.setattr(views, "_merged_ranges", merging)
    by_site = cases_section(client.get(HOME).text)
    monkeypatch.setattr(views, "CASE_SITES_MAX", 0)
    by_queue = cases_section(client.get(HOME).text)
    filtered = client.get(HOME, {"kind": "shipment_delay", "min_amount": "101"}).text

    assert by_queue == by_site
    # Read as one statement, from the text Django compiled for one queue and state.
    assert len(merged) == (2 if on_postgresql else 0)
    assert all(window is not None for window in merged)
    assert "Case queue-3" in filtered and "Case queue-0" not in filtered
    assert "Case queue-0" in by_site and "Case queue-3" in by_site
    assert "Case queue-2" not in by_site  # at B1, outside the regional manager's region
    monkeypatch.setattr(views, "CASE_SITES_MAX", 24)
    by_site_filtered = client.get(HOME, {"kind": "shipment_delay", "min_amount": "101"}).text
    assert cases_section(by_site_filtered) == cases_section(filtered)
