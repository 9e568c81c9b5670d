"""The requests list in a real browser: finding what one decided, and taking it away as CSV."""

import csv
import re

from playwright.sync_api import expect

from approvals import services
from tests.e2e.conftest import PHONE

WIDE = {"width": 1366, "height": 900}


def test_manager_finds_what_they_decided_this_week_and_downloads_it(
    demo, page_for, screenshot, console_errors
):
    manager = demo.users["site.manager"]
    approved = demo.raise_request("requester", "AMS", "1500", title="PO00901 pallet wrap")
    rejected = demo.raise_request("requester", "AMS", "1700", title="PO00902 spare forks")
    waiting = demo.raise_request("requester", "AMS", "1800", title="PO00903 still waiting")
    services.request_approve(actor=manager, request_id=approved.pk, comment="Fine")
    services.request_reject(actor=manager, request_id=rejected.pk, reason="Not this month")
    page = page_for(manager, viewport=WIDE)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    page.get_by_role("link", name="Decided by me", exact=True).click()
    page.get_by_label("When").select_option(label="Last 7 days")

    listing = page.locator("#requests-list")
    expect(page).to_have_url(re.compile(r"period=7d"))  # the filter is in the address
    expect(listing).to_contain_text(approved.reference)
    expect(listing).to_contain_text(rejected.reference)
    expect(listing).not_to_contain_text(waiting.reference)
    expect(page.locator("#announce")).to_contain_text("2 requests")
    expect(listing.get_by_role("row", name=re.compile(rejected.reference))).to_contain_text(
        "Rejected by"
    )
    screenshot(page, "requests-list")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download these as CSV").click()
    download = download_info.value
    assert re.fullmatch(r"tollgate-requests-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    with open(download.path(), newline="", encoding="utf-8") as handle:
        rows = {row["reference"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {approved.reference, rejected.reference}
    assert rows[approved.reference]["last_decided_by_username"] == "site.manager"
    assert rows[rejected.reference]["last_decision"] == "Rejected"

    page.keyboard.press("j")
    page.keyboard.press("Enter")  # the one keyboard scheme opens the first row
    expect(page.get_by_role("heading", level=1)).to_contain_text("AR-")
    assert console_errors == []


def test_requests_list_at_phone_width_has_no_sideways_scroll(demo, page_for, screenshot):
    request = demo.raise_request("requester", "AMS", "1500", title="PO00904 cold-room door")
    page = page_for(demo.users["regional.manager"], viewport=PHONE)

    page.goto("/approvals/")

    expect(page.locator("#requests-list")).to_contain_text(request.reference)
    screenshot(page, "requests-list-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_bad_amount_is_explained_beside_its_filter_and_clears_when_fixed(
    demo, page_for, console_errors
):
    small = demo.raise_request("requester", "AMS", "1200", title="PO00905 tape")
    large = demo.raise_request("requester", "AMS", "4200", title="PO00906 racking")
    page = page_for(demo.users["site.manager"])
    page.goto("/approvals/?tab=waiting")

    page.get_by_text("More filters").click()
    page.get_by_label("Amount from (EUR)").fill("lots")
    page.get_by_label("Amount from (EUR)").press("Tab")

    expect(page.locator("#error-amount_min")).to_contain_text("Enter an amount")
    expect(page.locator("#requests-list")).to_contain_text(small.reference)  # nothing changed
    page.get_by_label("Amount from (EUR)").fill("4000")
    page.get_by_label("Amount from (EUR)").press("Tab")
    expect(page.locator("#error-amount_min")).to_be_empty()
    expect(page.locator("#requests-list")).not_to_contain_text(small.reference)
    expect(page.locator("#requests-list")).to_contain_text(large.reference)
    assert [e for e in console_errors if "400" not in e] == []
