"""Deciding a morning's items one after the other: "Approve and next" through two tiers, the
keyboard, and the purchase order approved in Odoo after the last tier."""

import re

from playwright.sync_api import expect

from approvals.models import ApprovalRequest, RequestState
from tests.e2e.conftest import PHONE
from tests.integrations.odoo import conftest as odoo_fixtures
from tests.integrations.odoo import push_support

odoo_sandbox_template = odoo_fixtures.odoo_sandbox_template
odoo_sandbox_factory = odoo_fixtures.odoo_sandbox_factory
odoo_sandbox = odoo_fixtures.odoo_sandbox

WIDE = {"width": 1366, "height": 900}
LINES = [
    {
        "product": "[TG-0011] Frozen Fries 4x2.5kg",
        "product_ref": "product.product,11",
        "quantity": "400",
        "uom": "Units",
        "unit_price": "10.50",
        "subtotal": "4200.00",
        "last_price": "10.00",
    },
    {
        "product": "[TG-0002] Lemonade 12x1L",
        "product_ref": "product.product,2",
        "quantity": "180",
        "uom": "Units",
        "unit_price": "10.00",
        "subtotal": "1800.00",
        "last_price": "10.20",
    },
]


def _state(request) -> str:
    return ApprovalRequest.objects.get(pk=request.pk).state


def _detail_url(request) -> re.Pattern:
    return re.compile(rf"/approvals/{request.pk}/\?from=")


def test_two_tiers_decided_with_approve_and_next(
    demo, settings, odoo_sandbox, page_for, screenshot, console_errors
):
    push_support.connect_tollgate(settings, odoo_sandbox)
    odoo = push_support.odoo_admin(odoo_sandbox)
    (order,) = push_support.new_purchase_orders(odoo, 1, unit_price=6000.0)
    # 6,000 EUR at Amsterdam is a material purchase: the site manager, then the regional manager.
    first = demo.raise_request(
        "requester",
        "AMS",
        "6000",
        title="Harbour restock from Vendor 1",
        odoo_model="purchase.order",
        odoo_id=order,
        odoo_snapshot={"line_items": LINES, "lines": [1, 2]},
        details={"counterparty_since": "2019-03-01", "odoo_reference": "P00042"},
    )
    second = demo.raise_request(
        "requester",
        "AMS",
        "6200",
        title="Harbour racking from Vendor 2",
        details={"counterparty_since": "2019-01-01", "line_items": LINES[:1]},
    )

    # Outside the filter: "next" must never land on it.
    elsewhere = demo.raise_request("requester", "AMS", "6300")

    # The site manager narrows the inbox to the harbour items and opens the first.
    manager = page_for(demo.users["site.manager"], viewport=WIDE)
    manager.get_by_label("Search").fill("Harbour")
    manager.get_by_label("Search").press("Enter")
    expect(manager.locator("#inbox-list")).not_to_contain_text(elsewhere.reference)
    manager.get_by_role("link", name=re.compile("Harbour restock")).click()
    expect(manager.locator("#line-items")).to_contain_text("Frozen Fries")
    expect(manager.locator("#keys-hint")).to_be_visible()

    # `a` brings the approve choice into focus; Enter decides and goes on.
    manager.locator("h1").click()
    manager.keyboard.press("a")
    expect(manager.get_by_role("button", name="Approve and next")).to_be_focused()
    manager.keyboard.press("Enter")

    expect(manager).to_have_url(_detail_url(second))
    expect(manager.locator(".messages")).to_contain_text(f"You approved {first.reference}.")
    manager.get_by_role("button", name="Approve and next").click()
    expect(manager).to_have_url(re.compile(r":\d+/\?q=Harbour$"))
    expect(manager.locator(".messages")).to_contain_text("Nothing else waits for you")

    # The regional manager decides the second tier of both, the same way.
    regional = page_for(demo.users["regional.manager"], viewport=WIDE)
    regional.get_by_label("Search").fill("Harbour")
    regional.get_by_label("Search").press("Enter")
    expect(regional).to_have_url(re.compile(r"q=Harbour"))
    regional.get_by_role("link", name=re.compile("Harbour restock")).click()
    expect(regional.locator("#line-items")).to_contain_text("+€0.50 (+5 %)")
    expect(regional.locator("#odoo-link")).to_have_attribute(
        "href", f"{odoo_sandbox.url}/web#id={order}&model=purchase.order&view_type=form"
    )
    screenshot(regional, "request-page")
    regional.get_by_label("Comment (optional)").fill("Within the quarterly budget")
    regional.get_by_role("button", name="Approve and next").click()

    expect(regional).to_have_url(_detail_url(second))
    regional.get_by_role("button", name="Approve and next").click()
    expect(regional).to_have_url(re.compile(r":\d+/\?q=Harbour$"))

    assert _state(first) == RequestState.APPLIED
    assert push_support.state_in_odoo(odoo, "purchase.order", order) == "purchase"
    assert _state(second) in (RequestState.APPROVED, RequestState.APPLIED)
    assert _state(elsewhere) == RequestState.IN_REVIEW
    assert console_errors == []


def test_request_page_with_line_items_at_phone_width(demo, page_for, screenshot):
    request = demo.raise_request(
        "requester",
        "AMS",
        "6000",
        title="Harbour restock from Vendor 1",
        details={"counterparty_since": "2019-03-01", "line_items": LINES},
    )
    page = page_for(demo.users["site.manager"], viewport=PHONE)
    page.goto(f"/approvals/{request.pk}/")

    expect(page.locator("#line-items")).to_contain_text("Lemonade 12x1L")
    screenshot(page, "request-page-phone")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the request page scrolls sideways by {overflow}px at phone width"
