"""The inbox in a real browser: filtering, deciding, keyboard, phone width."""

import re

from playwright.sync_api import expect

from approvals import services
from approvals.models import ApprovalRequest, StepState
from tests.e2e.conftest import PHONE
from tests.integrations.odoo import conftest as odoo_fixtures
from tests.integrations.odoo import push_support


def test_regional_manager_filters_opens_a_purchase_and_approves_to_the_next_tier(
    demo, page_for, screenshot, console_errors
):
    major = demo.raise_request("requester", "AMS", "60000", title="PO00777 forklifts")
    routine = demo.raise_request("requester", "AMS", "6000")
    for request in (major, routine):
        services.request_approve(actor=demo.users["site.manager"], request_id=request.pk)
    page = page_for(demo.users["regional.manager"])

    expect(page.locator("#inbox-list")).to_contain_text(major.reference)
    screenshot(page, "inbox-regional-manager")
    page.get_by_label("Amount from").fill("50000")
    page.get_by_label("Amount from").press("Enter")  # filters act at once; no Apply button
    expect(page.locator("#inbox-list")).not_to_contain_text(routine.reference)
    expect(page.locator("#announce")).to_contain_text("1 request to decide")
    expect(page.locator("#inbox-list")).to_contain_text(major.reference)

    page.get_by_role("link", name=re.compile("PO00777 forklifts")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(major.reference)
    screenshot(page, "request-page-from-inbox")
    page.get_by_label("Comment (optional)").fill("Agreed with the site lead")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator(".messages")).to_contain_text(f"You approved {major.reference}.")
    expect(page.locator(".messages li")).to_be_focused()  # swapped in place by htmx
    expect(page.locator("#policy-path")).to_contain_text("Agreed with the site lead")
    steps = dict(major.steps.values_list("position", "state"))
    assert steps == {1: StepState.APPROVED, 2: StepState.APPROVED, 3: StepState.ACTIVE}
    expect(page.locator("#policy-path .tier-active")).to_contain_text("Finance")
    assert console_errors == []  # htmx and the page's script ran under the strict CSP


def test_keyboard_moves_through_the_inbox_and_opens_an_item(demo, page_for, console_errors):
    first = demo.raise_request("requester", "AMS", "1500")
    second = demo.raise_request("regional.manager", "AMS", "1600")
    page = page_for(demo.users["site.manager"])

    page.locator("body").press("j")
    page.keyboard.press("j")
    expect(page.locator(".item.is-current")).to_contain_text(second.reference)
    page.keyboard.press("k")
    expect(page.locator(".item.is-current")).to_contain_text(first.reference)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/approvals/{first.pk}/(\?from=.*)?$"))
    assert console_errors == []


def test_inbox_at_phone_width_is_usable(demo, page_for, screenshot):
    request = demo.raise_request("requester", "AMS", "1500")
    page = page_for(demo.users["site.manager"], viewport=PHONE)

    expect(page.locator("#inbox-list")).to_contain_text(request.reference)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    screenshot(page, "inbox-phone-site-manager")
    assert overflow <= 0, f"the inbox scrolls sideways by {overflow}px at phone width"
    page.get_by_role("link", name=re.compile(request.title)).click()
    page.get_by_label("Comment (optional)").fill("Fine")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator(".messages")).to_contain_text(f"You approved {request.reference}.")
    assert ApprovalRequest.objects.get(pk=request.pk).decisions.count() == 1
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


# --- the last tier, written back to the Odoo sandbox -------------------------------------------

odoo_sandbox_template = odoo_fixtures.odoo_sandbox_template
odoo_sandbox_factory = odoo_fixtures.odoo_sandbox_factory
odoo_sandbox = odoo_fixtures.odoo_sandbox


def test_regional_manager_approves_the_last_tier_and_the_purchase_order_is_approved_in_odoo(
    demo, settings, odoo_sandbox, page_for
):
    push_support.connect_tollgate(settings, odoo_sandbox)
    odoo = push_support.odoo_admin(odoo_sandbox)
    (order,) = push_support.new_purchase_orders(odoo, 1, unit_price=6000.0)
    request = demo.raise_request(
        "requester", "AMS", "6000", odoo_model="purchase.order", odoo_id=order
    )
    services.request_approve(actor=demo.users["site.manager"], request_id=request.pk)
    page = page_for(demo.users["regional.manager"])
    page.goto(f"/approvals/{request.pk}/")
    expect(page.locator("#odoo-record")).to_contain_text("Purchase order")
    expect(page.get_by_role("link", name="Open in Odoo")).to_have_attribute(
        "href", f"{odoo_sandbox.url}/web#id={order}&model=purchase.order&view_type=form"
    )

    page.get_by_label("Comment (optional)").fill("Within the quarterly budget")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator(".messages")).to_contain_text(f"You approved {request.reference}.")
    page.reload()
    expect(page.locator("#request-state")).to_have_text("Applied in Odoo")
    assert push_support.state_in_odoo(odoo, "purchase.order", order) == "purchase"
