"""A requester raises a write-off in a real browser, on the seeded demo and the Odoo sandbox."""

import re

from playwright.sync_api import expect

from approvals.models import ApprovalRequest, RequestState
from tests.e2e.conftest import PHONE
from tests.integrations.odoo import conftest as odoo_fixtures
from tests.integrations.odoo import push_support

odoo_sandbox_template = odoo_fixtures.odoo_sandbox_template
odoo_sandbox_factory = odoo_fixtures.odoo_sandbox_factory
odoo_sandbox = odoo_fixtures.odoo_sandbox

DESKTOP_1366 = {"width": 1366, "height": 900}
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
FRIES = "[TG-0011] Frozen Fries 4x2.5kg"


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def _offered(page, label: str) -> None:
    """The search offers `label`. The search is a round trip to the Odoo sandbox, which shares
    two cores with the rest of the suite, hence the long wait; a failure shows what the form
    told the person instead."""
    try:
        expect(page.locator(f"datalist option[value='{label}']")).to_have_count(1, timeout=15_000)
    except AssertionError:
        said = page.locator(".search-status").all_inner_texts()
        raise AssertionError(f"{label!r} was not offered; the form said {said}") from None


def test_requester_raises_a_write_off_with_lines_and_a_pdf_and_sees_who_will_approve(
    demo, settings, odoo_sandbox, page_for, screenshot, console_errors
):
    push_support.connect_tollgate(settings, odoo_sandbox)
    page = page_for(demo.users["requester"], viewport=DESKTOP_1366)
    page.goto("/")
    page.locator("#new-request").click()
    page.get_by_role("link", name=re.compile("^Write-off")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New write-off")
    expect(page.get_by_label("Site")).to_have_value(str(_site_pk("AMS")))

    page.get_by_label("Title").fill("Thawed frozen stock after the freezer failed")
    # The first line's product comes from Odoo, searched as it is typed.
    product = page.locator("[name=lines-0-product]")
    product.fill("Frozen Fr")
    _offered(page, FRIES)
    product.fill(FRIES)
    expect(page.locator("[name=lines-0-product_ref]")).to_have_value("product.product,11")
    expect(page.locator("[name=lines-0-unit_price]")).to_have_value("13.20")
    expect(page.get_by_label("Product category")).to_have_value("All / Goods / Frozen")
    page.locator("[name=lines-0-quantity]").fill("40")
    # The second is typed by hand.
    page.get_by_role("button", name="Add a line").click()
    page.locator("[name=lines-1-product]").fill("Ice cream tubs, mixed")
    page.locator("[name=lines-1-quantity]").fill("10")
    page.locator("[name=lines-1-unit_price]").fill("52")
    page.locator("[name=lines-1-unit_price]").press("Tab")
    expect(page.get_by_label("Amount", exact=True)).to_have_value("1048.00")
    page.get_by_label("Justification").fill("The freezer in aisle 4 failed on Sunday night.")
    page.get_by_label("Add files (optional)").set_input_files(
        {"name": "freezer-log.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )

    route = page.locator("#route-preview")
    expect(route).to_contain_text("Tier 1")
    expect(route).to_contain_text("Sander de Vries")
    expect(route).to_contain_text("Tier 2")
    expect(route).to_contain_text("finance officer")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "new-request")
    _no_sideways_scroll(page)

    page.get_by_role("button", name="Submit for approval").click()

    request = ApprovalRequest.objects.get(title="Thawed frozen stock after the freezer failed")
    expect(page).to_have_url(re.compile(rf"/approvals/{request.pk}/$"))
    assert request.state == RequestState.IN_REVIEW
    lines = page.locator("#line-items")
    expect(lines).to_contain_text(FRIES)
    expect(lines).to_contain_text("Ice cream tubs, mixed")
    expect(page.locator("#attachments")).to_contain_text("freezer-log.pdf")
    attachment = request.attachments.get()
    expect(page.locator("#attachments .digest")).to_have_attribute("title", attachment.sha256)

    # Later, the requester finds it again among the requests they raised.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    page.get_by_role("link", name="Raised by me", exact=True).click()
    expect(page).to_have_url(re.compile(r"tab=raised"))
    row = page.locator("#requests-list tbody tr", has_text=request.reference)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Thawed frozen stock after the freezer failed")
    expect(row).to_contain_text("In review")
    assert not [error for error in console_errors if "Content Security Policy" in error]


def test_a_missing_field_keeps_everything_typed_and_names_the_field(
    demo, page_for, screenshot, console_errors
):
    page = page_for(demo.users["requester"], viewport=PHONE)
    page.goto("/approvals/new/write_off/")
    page.get_by_label("Title").fill("Broken pallets in the yard")
    page.locator("[name=lines-0-product]").fill("Sparkling water crates")
    page.locator("[name=lines-0-quantity]").fill("6")
    page.locator("[name=lines-0-unit_price]").fill("6.90")
    page.get_by_label("Justification").fill("A forklift reversed into the stack.")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "new-request-phone")
    _no_sideways_scroll(page)

    page.get_by_role("button", name="Submit for approval").click()

    expect(page.locator("#id_category-error")).to_have_text("Give the product category.")
    expect(page.get_by_label("Title")).to_have_value("Broken pallets in the yard")
    expect(page.locator("[name=lines-0-product]")).to_have_value("Sparkling water crates")
    expect(page.locator("[name=lines-0-quantity]")).to_have_value("6")
    expect(page.get_by_label("Justification")).to_have_value("A forklift reversed into the stack.")
    assert not ApprovalRequest.objects.filter(title="Broken pallets in the yard").exists()
    _no_sideways_scroll(page)
    assert not [error for error in console_errors if "Content Security Policy" in error]


def _site_pk(code: str) -> int:
    from sites.models import Site

    return Site.objects.get(code=code).pk
