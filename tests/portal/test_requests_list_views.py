"""The requests list page and its CSV: scope, tabs, filters, pages, errors and query counts."""

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import services
from portal.core.spreadsheet import restore
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed

LIST = reverse("approvals:list")
EXPORT = reverse("approvals:export")
FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)"]


@pytest.fixture
def company(matrix, requester, site_a1, site_a2, site_b1, site_manager, regional_manager, staffed):
    routine = raise_request(requester, site_a1, amount="1000", title="Routine pallets")
    material = raise_request(requester, site_a1, amount="6000", title="Material forklift")
    services.request_approve(actor=site_manager, request_id=material.pk)
    uk = raise_request(staffed["requester_b"], site_b1, amount="1000", title="UK racking")
    return {"routine": routine, "material": material, "uk": uk}


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("who", "tab", "shown"),
    [
        ("requester", "raised", {"routine", "material"}),
        ("requester", "waiting", set()),
        ("site_manager", "waiting", {"routine"}),
        ("site_manager", "decided", {"material"}),
        ("regional_manager", "waiting", {"material"}),
        ("regional_manager", "all", {"routine", "material"}),
        ("auditor", "all", {"routine", "material"}),
        ("auditor", "waiting", set()),
        ("outsider", "all", {"uk"}),
        ("outsider", "waiting", {"uk"}),
    ],
)
def test_each_tab_shows_only_what_the_person_may_see_in_page_and_csv(
    client, company, request, who, tab, shown
):
    client.force_login(request.getfixturevalue(who))

    page = client.get(LIST, {"tab": tab}).text
    rows = _csv(client.get(EXPORT, {"tab": tab}))

    for name, approval in company.items():
        assert (approval.reference in page) == (name in shown), (name, tab)
    assert {row["reference"] for row in rows} == {company[name].reference for name in shown}


def test_the_page_reads_as_words_with_names_money_and_moments(client, company, regional_manager):
    client.force_login(regional_manager)

    page = client.get(LIST).text

    requester = company["routine"].requester
    assert requester.get_full_name() in page
    assert "A1 · Site A1" in page
    assert "€6,000.00" in page
    assert "Purchase order" in page
    assert "today 10:00 CET" in page  # submitted, in the site's zone
    site_manager = company["material"].decisions.get().actor
    assert f"Approved by {site_manager.get_full_name()}" in page
    assert 'href="/approvals/"' in page and ">Requests</a>" in page  # in the main navigation
    assert "{'" not in page and "['" not in page


def test_typed_days_name_the_zone_they_are_counted_in(client, company, regional_manager, site_a2):
    client.force_login(regional_manager)

    first_site = client.get(LIST, {"from": "2026-03-10"}).text
    chosen = client.get(LIST, {"from": "2026-03-10", "site": site_a2.pk}).text

    assert "in Europe/Amsterdam, the time zone of A1, your first site" in first_site
    assert company["routine"].reference in first_site
    assert "in Europe/Brussels, the time zone of A2." in chosen


def test_requester_with_nothing_raised_is_invited_to_raise_one(client, matrix, requester):
    client.force_login(requester)

    page = client.get(LIST, {"tab": "raised"}).text

    assert "Nothing raised by you yet." in page
    assert 'href="/approvals/new/"' in page


def test_decided_by_me_last_seven_days_is_one_link_away(client, company, site_manager):
    client.force_login(site_manager)

    page = client.get(LIST).text
    link = re.search(r'href="\?([^"]+)">Decided by me, last 7 days<', page).group(1)
    decided = client.get(LIST + "?" + link.replace("&amp;", "&")).text

    assert company["material"].reference in decided
    assert company["routine"].reference not in decided


def test_filters_narrow_and_the_url_keeps_them(client, company, regional_manager):
    client.force_login(regional_manager)

    page = client.get(LIST, {"amount_min": "5000", "q": "forklift", "state": "in_review"}).text

    assert company["material"].reference in page
    assert company["routine"].reference not in page
    assert "1</strong> request matches these filters" in page
    assert 'name="amount_min" value="5000"' in page
    assert f"{EXPORT}?tab=all&amp;state=in_review&amp;amount_min=5000&amp;q=forklift" in page


@pytest.mark.parametrize(
    ("query", "slot", "words"),
    [
        ({"amount_min": "lots"}, "amount_min", "Enter an amount"),
        ({"from": "31/12/2026"}, "from", "year-month-day"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to", "before the start"),
        ({"site": "999999"}, "site", "one of your sites"),
    ],
)
def test_bad_filter_values_answer_400_with_the_message_beside_the_filter(
    client, company, regional_manager, query, slot, words
):
    client.force_login(regional_manager)

    response = client.get(LIST, {"q": "forklift", **query})

    assert response.status_code == 400
    message = re.search(rf'id="error-{slot}">([^<]*)<', response.text).group(1)
    assert words in message
    # The list stays, under the filters that were understood.
    assert company["material"].reference in response.text
    assert company["routine"].reference not in response.text


def test_htmx_refresh_with_a_bad_value_sets_the_message_out_of_band(
    client, company, regional_manager
):
    client.force_login(regional_manager)

    response = client.get(LIST, {"amount_max": "1e999"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert '<div id="requests-list"' in response.text
    assert "<form" not in response.text
    slot = re.search(r'<p[^>]*id="error-amount_max"[^>]*>([^<]*)<', response.text)
    assert "hx-swap-oob" in slot.group(0) and "Enter an amount" in slot.group(1)


def test_csv_refuses_bad_filters_with_a_message(client, company, regional_manager):
    client.force_login(regional_manager)

    response = client.get(EXPORT, {"to": "not a day"})

    assert response.status_code == 400
    assert "year-month-day" in response.text


def test_pages_follow_the_next_link_and_a_tampered_cursor_answers_400(
    client, matrix, requester, site_a1, monkeypatch
):
    from approvals import listing

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    made = [raise_request(requester, site_a1, amount=str(1000 + i)) for i in range(3)]
    client.force_login(requester)

    first = client.get(LIST, {"tab": "raised", "sort": "amount"}).text
    after = re.search(r'href="\?[^"]*after=([^"]+)"', first).group(1)
    second = client.get(f"{LIST}?tab=raised&sort=amount&after={after}")
    tampered = client.get(f"{LIST}?tab=raised&sort=amount&after={after[:-3]}abc")

    assert made[0].reference in first and made[2].reference not in first
    assert made[2].reference in second.text and made[0].reference not in second.text
    assert tampered.status_code == 400
    assert "That page link is damaged" in tampered.text
    assert made[0].reference in tampered.text  # the first page instead


def test_csv_has_names_beside_ids_and_neutralises_formulas(
    client, matrix, requester, site_a1, site_manager
):
    for title in FORMULAS:
        raise_request(requester, site_a1, amount="1000", title=title)
    client.force_login(site_manager)

    response = client.get(EXPORT)
    rows = _csv(response)

    assert re.fullmatch(
        r'attachment; filename="tollgate-requests-\d{8}T\d{6}Z\.csv"',
        response["Content-Disposition"],
    )
    assert {row["title"] for row in rows} == {"'" + title for title in FORMULAS}
    assert {restore(row["title"]) for row in rows} == set(FORMULAS)
    row = rows[0]
    assert row["site_code"] == "A1" and row["site_name"] == "Site A1"
    assert row["requester_username"] == "requester"
    assert row["requester_name"] == requester.get_full_name()
    assert (row["amount"], row["currency"]) == ("1000.00", "EUR")
    assert row["time_zone"] == "Europe/Amsterdam"
    assert row["submitted_at"].endswith("+01:00")
    assert row["kind_label"] == "Purchase order" and row["state_label"] == "In review"


def test_csv_names_who_decided_and_for_whom(client, company, regional_manager, site_manager):
    client.force_login(regional_manager)

    rows = {row["reference"]: row for row in _csv(client.get(EXPORT))}

    decided = rows[company["material"].reference]
    assert decided["last_decision"] == "Approved"
    assert decided["last_decided_by_username"] == "site.manager"
    assert decided["last_decided_by_name"] == site_manager.get_full_name()
    assert rows[company["routine"].reference]["last_decision"] == ""


def test_csv_stops_at_its_limit_and_says_so(client, matrix, requester, site_a1, monkeypatch):
    from approvals import list_views

    monkeypatch.setattr(list_views, "EXPORT_MAX", 2)
    monkeypatch.setattr(list_views, "EXPORT_BATCH", 1)
    for i in range(3):
        raise_request(requester, site_a1, amount=str(1000 + i))
    client.force_login(requester)

    text = b"".join(client.get(EXPORT).streaming_content).decode()

    lines = text.strip().splitlines()
    assert len(lines) == 4  # the header, two rows, and the note
    assert "stops at 2 rows" in lines[-1]


@pytest.mark.parametrize("tab", ["all", "waiting", "raised", "decided"])
def test_a_page_costs_the_same_queries_however_many_rows(
    client,
    matrix,
    requester,
    site_a1,
    site_manager,
    regional_manager,
    tab,
    django_assert_max_num_queries,
):
    def grow(n):
        for i in range(n):
            made = raise_request(requester, site_a1, amount=str(6000 + i), title=f"Item {i}")
            services.request_approve(actor=site_manager, request_id=made.pk)

    person = requester if tab == "raised" else regional_manager
    if tab == "decided":
        person = site_manager
    client.force_login(person)
    grow(2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST, {"tab": tab}).status_code == 200
    grow(12)

    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(LIST, {"tab": tab})
    assert page.text.count('class="request-row') == 14


def test_csv_costs_the_same_queries_however_many_rows_and_keeps_the_odoo_reference(
    client, matrix, requester, site_a1, site_manager, django_assert_max_num_queries
):
    def grow(n):
        for i in range(n):
            details = {"counterparty_since": "2019-01-01", "odoo_reference": f"PO0{i:04d}"}
            raise_request(requester, site_a1, amount=str(900 + i), details=details)

    client.force_login(site_manager)
    grow(2)
    with CaptureQueriesContext(connection) as few:
        assert len(_csv(client.get(EXPORT))) == 2
    grow(10)

    with django_assert_max_num_queries(len(few.captured_queries)):
        rows = _csv(client.get(EXPORT))
    assert {row["odoo_reference"] for row in rows} == {f"PO0{i:04d}" for i in range(10)}
