"""The exception queues in a real browser: finance resolves an invoice mismatch."""

from decimal import Decimal

from playwright.sync_api import expect

from exceptions.models import CaseState, ExceptionCase
from exceptions.services import case_raise
from sites.models import Site


def _invoice_mismatch(key: str, amount: str):
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=Site.objects.get(code="AMS"),
        severity="high",
        title=f"BILL/2026/{key}: billed above the order",
        source="odoo",
        dedupe_key=f"e2e:bill:{key}",
        payload={"bill": f"BILL/2026/{key}", "order": "PO00042"},
        evidence={"bill_total": "1240.00", "order_total": "1200.00", "difference": amount},
        amount_at_stake=Decimal(amount),
        currency="EUR",
    )
    return case


def test_finance_resolves_an_invoice_mismatch_from_the_queue(
    demo, page_for, screenshot, console_errors
):
    case = _invoice_mismatch("0042", "40.00")
    _invoice_mismatch("0043", "12.00")
    page = page_for(demo.users["finance"])

    page.get_by_role("link", name="Queues").click()
    expect(page.locator("#queue-summary")).to_contain_text("Finance")
    expect(page.locator("#queue-list")).to_contain_text("€40.00 at stake")
    screenshot(page, "exception-queue-resolve")
    page.get_by_role("link", name="BILL/2026/0042").click()
    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator("#case-owner")).to_contain_text("Femke")
    page.get_by_label("Resolution").select_option("credit_note_requested")
    page.get_by_label("What was done (required)").fill("Supplier credits the 40.00 difference")
    page.get_by_role("button", name="Resolve").click()

    expect(page.locator("#case-state")).to_have_text("Resolved")
    expect(page.locator("#case-resolution")).to_contain_text("Credit note requested")
    screenshot(page, "exception-case-resolved")
    assert ExceptionCase.objects.get(pk=case.pk).state == CaseState.RESOLVED
    assert console_errors == []
