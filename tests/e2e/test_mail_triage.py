"""A carrier's mail that Tollgate was not sure of, confirmed in triage in a real browser.

Sander, the Amsterdam site manager, works the warehouse queue there. A delay notice from the
carrier names an Amsterdam shipment but no tracking number, so it waits in triage. He opens it,
reads the mail beside the prefilled form, adds the tracking number from the carrier's portal
and confirms: the delay becomes a case in Amsterdam's warehouse queue.
"""

from io import StringIO
from pathlib import Path

from django.core.management import call_command
from playwright.sync_api import expect

from exceptions.models import ExceptionCase
from portal.integrations.mail.models import LabelledExample, TriageItem
from tests.e2e.conftest import PHONE, WIDE

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "integrations/mail/samples/12_carrier_delay_missing_tracking.eml"
)


def test_site_manager_confirms_a_carrier_mail_into_the_warehouse_queue(
    demo, page_for, screenshot, console_errors
):
    call_command("ingest_mail", str(SAMPLE), "--mailbox", "carrier", stdout=StringIO())
    item = TriageItem.objects.get()
    page = page_for(demo.users["site.manager"], viewport=WIDE)

    page.get_by_role("link", name="Mail triage").click()
    expect(page.locator("#triage-list")).to_contain_text("template found no tracking number")
    screenshot(page, "mail-triage-list")
    page.get_by_role("link", name="Delay notice: your consignment to Amsterdam").click()
    expect(page.locator("#mail-text")).to_contain_text("missed connection at hub")
    expect(page.get_by_label("Shipment (Odoo transfer)")).to_have_value("AMS/OUT/00057")
    expect(page.get_by_label("Tracking number")).to_have_value("")
    screenshot(page, "mail-triage-item")
    page.get_by_label("Tracking number").fill("1Z999AA10198765432")
    page.get_by_role("button", name="Confirm and raise the event").click()

    expect(page.locator("#case-state")).to_have_text("New")
    expect(page.locator("#live")).to_contain_text("is confirmed as EX-")
    case = ExceptionCase.objects.get(kind="shipment_delay", site__code="AMS")
    assert case.queue == "warehouse"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queues").click()
    page.get_by_role("link", name="Warehouse").first.click()
    expect(page.locator("#queue-list")).to_contain_text("AMS/OUT/00057")
    assert LabelledExample.objects.get().fields["tracking_number"] == "1Z999AA10198765432"
    assert TriageItem.objects.get(pk=item.pk).state == "confirmed"
    assert console_errors == []


def test_the_triage_pages_fit_a_phone(demo, page_for, screenshot, console_errors):
    call_command("ingest_mail", str(SAMPLE), "--mailbox", "carrier", stdout=StringIO())
    page = page_for(demo.users["site.manager"], viewport=PHONE)

    page.goto("/mail/triage/")
    screenshot(page, "mail-triage-list-phone")
    page.get_by_role("link", name="Delay notice: your consignment to Amsterdam").click()
    expect(page.get_by_role("button", name="Confirm and raise the event")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, "mail-triage-item-phone")
    assert width <= PHONE["width"]
    assert console_errors == []
