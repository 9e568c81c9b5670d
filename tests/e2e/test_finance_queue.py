"""Finance works its queue in a real browser on the seeded demo company.

Femke opens the exception queues and sees the queues she works; she reads an invoice mismatch
as a three-way-match table with the differing line marked, takes three cases at once, and
resolves one.
"""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from playwright.sync_api import expect

from exceptions import titles
from exceptions.models import CaseState, ExceptionCase
from exceptions.services import case_raise
from sites.models import Site
from tests.e2e.conftest import PHONE

WIDE = {"width": 1366, "height": 900}
D = Decimal


def _bill(number: int, order: int, billed_price: str, *, site="AMS"):
    """An invoice mismatch as the Odoo sync raises it: one line billed above the order."""
    quantity, price = D("100"), D("18.40")
    asked = D(billed_price)
    difference = (asked - price) * quantity
    expected = quantity * price + D("60") * D("7.10")
    bill = f"BILL/2026/{number:05d}"
    evidence = {
        "order": f"P{order:05d}",
        "order_id": order,
        "bill": bill,
        "lines": [
            {
                "product": "[TG-0011] Frozen Fries 4x2.5kg",
                "ordered": quantity,
                "received": quantity,
                "order_price": price,
                "billed_quantity": quantity,
                "billed_price": asked,
                "difference": difference,
            },
            {
                "product": "[TG-0003] Sparkling Water 24x0.5L",
                "ordered": D("60"),
                "received": D("60"),
                "order_price": D("7.10"),
                "billed_quantity": D("60"),
                "billed_price": D("7.10"),
                "difference": D("0.00"),
            },
        ],
        "expected": expected,
        "billed": expected + difference,
        "difference": difference,
        "tolerance_pct": D("2"),
    }
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=Site.objects.get(code=site),
        severity="high" if difference >= 1000 else "medium",
        title=titles.invoice_mismatch(
            bill=bill, order=evidence["order"], difference=difference, currency="EUR"
        ),
        source="odoo",
        dedupe_key=f"odoo:account.move:{number}:invoice_mismatch",
        payload={"id": number, "name": bill, "move_type": "in_invoice", "state": "posted"},
        evidence=evidence,
        amount_at_stake=abs(difference),
        currency="EUR",
        odoo_model="account.move",
        odoo_id=number,
    )
    return case


def _late_shipment():
    """A warehouse case finance does not work: a shipment 99 days late."""
    case, _ = case_raise(
        kind="shipment_delay",
        site=Site.objects.get(code="AMS"),
        severity="high",
        title=titles.shipment_late(picking="AMS/OUT/00042", days=99.2),
        source="odoo",
        dedupe_key="stock.picking:AMS/OUT/00042:shipment_delay",
        payload={"name": "AMS/OUT/00042"},
        evidence={
            "scheduled_date": (timezone.now() - timedelta(days=99)).strftime("%Y-%m-%d %H:%M:%S"),
            "days_late": 99.2,
            "origin": "S00042",
            "partner": "Brasserie Lumière",
            "state": "assigned",
        },
        odoo_model="stock.picking",
        odoo_id=42,
    )
    return case


def test_finance_reads_a_three_way_match_takes_three_cases_and_resolves_one(
    demo, page_for, screenshot, console_errors
):
    big = _bill(42, 284, "31.00")  # 1,260 EUR above the order
    small = _bill(43, 285, "18.89")  # 49 EUR
    third = _bill(44, 286, "19.98")  # 158 EUR
    shipment = _late_shipment()
    page = page_for(demo.users["finance"], viewport=WIDE)

    page.get_by_role("link", name="Queues").click()
    cases = page.locator("#queue-cases")
    expect(page.locator("#queue-scope")).to_contain_text("The queues you work: Finance")
    expect(cases).to_contain_text(big.title)
    expect(cases).not_to_contain_text(shipment.title)
    expect(cases.locator(".queue-row").first).to_contain_text("High severity · €1,260.00 at stake")
    screenshot(page, "exception-queue")

    # One click shows every queue; the warehouse case is there, read-only.
    page.locator("#show-every-queue").click()
    expect(cases).to_contain_text(shipment.title)
    expect(page.locator(f'.queue-row[data-case="{shipment.pk}"]')).to_contain_text("read-only")
    page.get_by_role("link", name="Clear").click()

    # The keyboard opens the first case: j to move, Enter to open.
    expect(cases).not_to_contain_text(shipment.title)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(big.title)
    table = page.locator("#three-way-match")
    outside = table.locator("tbody tr.outside")
    expect(outside).to_have_count(1)
    expect(outside).to_contain_text("[TG-0011] Frozen Fries 4x2.5kg")
    expect(outside).to_contain_text("outside tolerance")
    expect(page.locator("#match-difference")).to_have_text("+€1,260.00")
    expect(page.locator("#evidence")).to_contain_text("2 % of the order value")
    expect(page.get_by_role("link", name="Purchase order P00284")).to_be_visible()
    screenshot(page, "exception-case")

    page.get_by_role("link", name="Queues").first.click()
    for case in (big, small, third):
        page.get_by_label(f"Select {case.reference}").check()
    page.get_by_role("button", name="Assign selected to me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("3 cases assigned to you")
    for case in (big, small, third):
        assert ExceptionCase.objects.get(pk=case.pk).owner == demo.users["finance"]

    page.get_by_role("link", name=small.reference).click()
    expect(page.locator("#case-owner")).to_contain_text("Femke")
    page.get_by_label("Resolution").select_option("credit_note_requested")
    page.get_by_label("What was done (required)").fill("Supplier credits the 49.00 difference")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#case-state")).to_have_text("Resolved")
    assert ExceptionCase.objects.get(pk=small.pk).state == CaseState.RESOLVED

    phone = page_for(demo.users["finance"], viewport=PHONE)
    phone.goto("/exceptions/")
    expect(phone.locator("#queue-cases")).to_contain_text(big.title)
    screenshot(phone, "exception-queue-phone")
    phone.goto(f"/exceptions/{big.pk}/")
    expect(phone.locator("#three-way-match")).to_be_visible()
    screenshot(phone, "exception-case-phone")
    for text in ("{'", "['"):
        assert text not in page.content() and text not in phone.content()
    assert console_errors == []
