"""The requests list: tabs within the person's scope, filters, sorting and keyset pages."""

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.http import QueryDict
from django.utils import timezone

from approvals import listing, services
from approvals.listing import ListFilters, parse_filters
from approvals.models import ApprovalRequest
from approvals.selectors import inbox_for
from sites.roles import Role
from tests.approvals.conftest import raise_request
from tests.conftest import persona

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _all(user, filters=None, *, limit=50) -> list[ApprovalRequest]:
    """Every row of the list under `filters`, walking the pages."""
    filters = filters or ListFilters()
    rows, cursor = [], ""
    while True:
        page = listing.requests_page(user, filters, after=cursor, limit=limit, zone=AMSTERDAM)
        rows += [row.request for row in page.rows]
        cursor = page.next_cursor
        if not cursor:
            return rows


def _refs(user, **chosen) -> set[str]:
    return {r.reference for r in _all(user, ListFilters(**chosen))}


@pytest.fixture
def company(matrix, requester, site_a1, site_a2, site_b1, site_manager, regional_manager, staffed):
    """Requests at A1 (one waiting for the site manager, one past it), A2, and B1 elsewhere."""
    routine = raise_request(requester, site_a1, amount="1000", title="Routine pallets")
    material = raise_request(requester, site_a1, amount="6000", title="Material forklift")
    services.request_approve(actor=site_manager, request_id=material.pk)
    brussels = raise_request(regional_manager, site_a2, amount="1500", title="Brussels shelving")
    elsewhere = raise_request(staffed["requester_b"], site_b1, amount="1000", title="UK racking")
    return {"routine": routine, "material": material, "brussels": brussels, "uk": elsewhere}


def _r(company, *names) -> set[str]:
    return {company[name].reference for name in names}


# --- tabs, per persona ---------------------------------------------------------------------------


def test_requester_sees_what_they_raised_and_nothing_to_decide(company, requester):
    assert _refs(requester, tab="raised") == _r(company, "routine", "material")
    assert _refs(requester, tab="waiting") == set()
    assert _refs(requester, tab="decided") == set()
    assert _refs(requester, tab="all") == _r(company, "routine", "material")


def test_site_manager_tabs_split_waiting_from_decided(company, site_manager):
    assert _refs(site_manager, tab="waiting") == _r(company, "routine")
    assert _refs(site_manager, tab="decided") == _r(company, "material")
    assert _refs(site_manager, tab="raised") == set()
    assert _refs(site_manager, tab="all") == _r(company, "routine", "material")


def test_regional_manager_waits_on_the_second_tier_and_sees_the_whole_region(
    company, regional_manager
):
    assert _refs(regional_manager, tab="waiting") == _r(company, "material")
    assert _refs(regional_manager, tab="raised") == _r(company, "brussels")
    assert _refs(regional_manager, tab="all") == _r(company, "routine", "material", "brussels")


def test_auditor_sees_the_region_read_only(company, auditor):
    assert _refs(auditor, tab="all") == _r(company, "routine", "material", "brussels")
    assert _refs(auditor, tab="waiting") == set()
    assert _refs(auditor, tab="decided") == set()


def test_outsider_never_sees_another_regions_requests(company, outsider):
    for tab in listing.TABS:
        assert _refs(outsider, tab=tab) <= _r(company, "uk"), tab
    assert _refs(outsider, tab="waiting") == _r(company, "uk")


def test_stranger_sees_nothing(company, stranger):
    assert all(_refs(stranger, tab=tab) == set() for tab in listing.TABS)


def test_waiting_for_me_is_what_the_inbox_shows(company, site_manager, regional_manager, outsider):
    for person in (site_manager, regional_manager, outsider):
        inbox = {r.reference for r in inbox_for(person).requests}
        assert _refs(person, tab="waiting") == inbox


def test_decided_by_me_counts_decisions_made_on_behalf_of_someone(
    company, requester, site_a1, site_manager
):
    deputy = persona("deputy", Role.REQUESTER, site=site_a1)
    now = timezone.now()
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=deputy,
        starts_at=now,
        ends_at=now + timedelta(days=7),
    )
    services.request_approve(actor=deputy, request_id=company["routine"].pk)

    assert _refs(deputy, tab="decided") == _r(company, "routine")
    assert company["routine"].reference not in _refs(site_manager, tab="decided")


# --- filters ----------------------------------------------------------------------------------


def test_filters_by_state_kind_site_and_amount(company, regional_manager, site_a2):
    assert _refs(regional_manager, state="approved") == set()
    assert _refs(regional_manager, state="in_review") == _r(
        company, "routine", "material", "brussels"
    )
    assert _refs(regional_manager, kind="write_off") == set()
    assert _refs(regional_manager, site_id=site_a2.pk) == _r(company, "brussels")
    assert _refs(regional_manager, min_amount=Decimal("1200")) == _r(
        company, "material", "brussels"
    )
    assert _refs(regional_manager, min_amount=Decimal("1000"), max_amount=Decimal("1500")) == _r(
        company, "routine", "brussels"
    )


def test_text_searches_reference_title_counterparty_and_odoo_reference(
    company, requester, site_a1, regional_manager
):
    from_odoo = raise_request(
        requester,
        site_a1,
        amount="900",
        title="Cleaning supplies",
        counterparty="Brightwash BV",
        details={"counterparty_since": "2019-01-01", "odoo_reference": "P00042"},
    )
    reference = company["material"].reference

    assert _refs(regional_manager, text=reference) == {reference}
    assert _refs(regional_manager, text=reference.lower()[3:]) == {reference}
    assert _refs(regional_manager, text="forklift") == {reference}
    assert _refs(regional_manager, text="brightwash") == {from_odoo.reference}
    assert _refs(regional_manager, text="p00042") == {from_odoo.reference}


def test_overdue_only_lists_requests_past_their_due_time(company, site_manager, _working_morning):
    _working_morning.shift(timedelta(hours=30))
    late = raise_request(company["routine"].requester, company["routine"].site, amount="1100")

    assert company["routine"].reference in _refs(site_manager, overdue=True)
    assert late.reference not in _refs(site_manager, overdue=True)


def test_last_seven_days_and_custom_days_in_the_sites_zone(
    company, requester, site_a1, _working_morning
):
    _working_morning.shift(timedelta(days=10))
    recent = raise_request(requester, site_a1, amount="1000", title="Recent")
    today = timezone.now().astimezone(AMSTERDAM).date()

    assert _refs(requester, period="7d") == {recent.reference}
    assert _refs(requester, period="30d") == {recent.reference} | _r(company, "routine", "material")
    assert _refs(requester, period="custom", date_from=today, date_to=today) == {recent.reference}
    assert _refs(requester, period="custom", date_to=today - timedelta(days=1)) == _r(
        company, "routine", "material"
    )


def test_decided_by_me_last_seven_days_counts_when_i_decided(
    company, site_manager, _working_morning
):
    _working_morning.shift(timedelta(days=8))
    services.request_approve(actor=site_manager, request_id=company["routine"].pk)

    assert _refs(site_manager, tab="decided", dates_of="decided", period="7d") == _r(
        company, "routine"
    )
    assert _refs(site_manager, tab="decided", dates_of="decided") == _r(
        company, "routine", "material"
    )


# --- sorting and keyset pages -------------------------------------------------------------------


@pytest.fixture
def same_moment(matrix, requester, site_a1, _working_morning):
    """Seven requests submitted at the very same instant, two of them for the same amount."""
    _working_morning.move_to(timezone.now(), tick=False)
    amounts = ["1000", "1200", "1200", "1300", "1400", "1500", "1600"]
    return [raise_request(requester, site_a1, amount=a) for a in amounts]


@pytest.mark.parametrize("sort", ["-submitted", "submitted", "amount", "-amount", "due", "-due"])
def test_pages_are_stable_under_equal_values(same_moment, requester, sort):
    filters = ListFilters(tab="raised", sort=sort)
    whole = _all(requester, filters, limit=100)
    paged = _all(requester, filters, limit=3)

    assert len({r.submitted_at for r in whole}) == 1  # every tie is broken by the id
    assert [r.pk for r in paged] == [r.pk for r in whole]
    assert len({r.pk for r in paged}) == len(same_moment)
    key = listing.SORTS[filters.sort_key]
    pairs = [(getattr(r, key), r.pk) for r in whole]
    assert pairs == sorted(pairs, reverse=filters.descending)


def test_decided_sort_puts_undecided_requests_last(company, site_manager, regional_manager):
    newest_first = _all(regional_manager, ListFilters(sort="-decided"), limit=1)
    oldest_first = _all(regional_manager, ListFilters(sort="decided"), limit=1)

    assert newest_first[0] == company["material"]
    assert oldest_first[0] == company["material"]
    assert len(newest_first) == len(oldest_first) == 3


def test_a_tampered_or_foreign_cursor_is_refused(same_moment, requester):
    filters = ListFilters(tab="raised", sort="amount")
    cursor = listing.requests_page(requester, filters, limit=2, zone=AMSTERDAM).next_cursor

    with pytest.raises(listing.CursorError):
        listing.requests_page(requester, filters, after=cursor[:-2] + "xx", zone=AMSTERDAM)
    with pytest.raises(listing.CursorError):
        listing.requests_page(
            requester, ListFilters(tab="raised", sort="-due"), after=cursor, zone=AMSTERDAM
        )
    with pytest.raises(listing.CursorError):
        listing.requests_page(requester, filters, after="not-a-cursor", zone=AMSTERDAM)


# --- parsing the query string -----------------------------------------------------------------


def test_parse_reads_every_filter():
    filters, errors = parse_filters(
        QueryDict(
            "tab=decided&state=approved&kind=purchase&site=3&amount_min=10&amount_max=2,500.50"
            "&period=custom&from=2026-12-01&to=2026-12-06&overdue=1&q=PO42&sort=amount"
        ),
        site_ids={3},
    )

    assert errors == {}
    assert filters.max_amount == Decimal("2500.50")
    assert (filters.tab, filters.site_id, filters.dates_of, filters.sort) == (
        "decided",
        3,
        "decided",
        "amount",
    )
    assert filters.date_to.isoformat() == "2026-12-06" and filters.overdue


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("amount_min=lots", "amount_min", "Enter an amount"),
        ("amount_min=NaN", "amount_min", "Enter an amount"),
        ("amount_max=-5", "amount_max", "Enter an amount"),
        ("amount_min=900&amount_max=100", "amount_max", "below the lower"),
        ("from=yesterday", "from", "year-month-day"),
        ("from=2026-12-06&to=2026-12-01", "to", "before the start"),
        ("site=99", "site", "one of your sites"),
        ("state=lost", "state", "Choose a state"),
        ("sort=title", "sort", "cannot be sorted"),
        ("tab=everything", "tab", "no such tab"),
    ],
)
def test_bad_values_say_what_is_wrong_and_are_left_out(query, field, words):
    filters, errors = parse_filters(QueryDict(query), site_ids={3})

    assert words in errors[field]
    assert filters.min_amount is None or field != "amount_min"
    assert filters.date_from is None or field != "from"


# --- reading in batches and site by site --------------------------------------------------------


@pytest.fixture
def second_tier(matrix, requester, site_a1, site_a2, regional_manager, site_manager, staffed):
    """Requests in review at two sites, only every third of them past the site manager's tier
    (so the regional manager decides few of what waits at their sites), one the regional
    manager raised themself, and two drafts."""
    at_a2 = persona("requester.a2", Role.REQUESTER, site=site_a2)
    made = []
    for i in range(12):
        by, at, manager = (
            (requester, site_a1, site_manager)
            if i % 2
            else (at_a2, site_a2, staffed["site_manager_a2"])
        )
        made.append(raise_request(by, at, amount=str(6000 + i)))
        if i % 3 == 0:
            services.request_approve(actor=manager, request_id=made[-1].pk)
    made.append(raise_request(regional_manager, site_a2, amount="1500", title="Own shelving"))
    # Drafts have no submission or due time: they sort last either way.
    made.append(raise_request(requester, site_a1, amount="700", submit=False))
    made.append(raise_request(regional_manager, site_a2, amount="800", submit=False))
    return made


def _whole(user, filters: ListFilters) -> list[int]:
    """The list in one query, the per-tier test on every row: what the pages must add up to."""
    query = listing.scoped(user, filters, zone=AMSTERDAM, at=timezone.now())
    return [r.pk for r in listing.ordered(query, filters)]


@pytest.mark.parametrize("sort", ["due", "-due", "-submitted", "submitted", "-amount", "-decided"])
@pytest.mark.parametrize("tab", ["waiting", "all"])
def test_pages_read_in_batches_or_site_by_site_add_up_to_the_whole_list(
    second_tier, regional_manager, tab, sort
):
    filters = ListFilters(tab=tab, sort=sort)
    whole = _whole(regional_manager, filters)

    assert whole, "the fixture gives every tab rows"
    for limit in (1, 2, 5, 50):
        assert [r.pk for r in _all(regional_manager, filters, limit=limit)] == whole, limit


def test_waiting_for_me_runs_out_of_batches_and_finishes_with_every_remaining_request(
    second_tier, regional_manager, monkeypatch
):
    monkeypatch.setattr(listing, "WAITING_BATCHES", 1)
    filters = ListFilters(tab="waiting", sort="due")

    first = listing.requests_page(regional_manager, filters, limit=3, zone=AMSTERDAM)

    assert [row.request.pk for row in first.rows] == _whole(regional_manager, filters)[:3]
    assert first.next_cursor
