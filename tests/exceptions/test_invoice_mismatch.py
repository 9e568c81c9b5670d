"""How the Odoo sync turns a vendor bill into an invoice mismatch: a three-way match of order,
receipt and bill, with the evidence a finance officer needs to decide."""

from decimal import Decimal

import pytest

from exceptions.models import ExceptionCase
from portal.integrations.odoo.mapping import Context, VendorBills

WAREHOUSE, PICKING_TYPE, ORDER, PO_LINE, BILL = 7, 3, 17, 170, 900


@pytest.fixture
def sync(site_a1):
    """One sync run over bill 900 for one line of PO00017: 10 ordered at 12.00."""

    def run(*, received, billed_quantity, billed_price="12.00"):
        ctx = Context(client=None)
        ctx.sites = {WAREHOUSE: site_a1}
        ctx.picking_types = {PICKING_TYPE: {"warehouse_id": [WAREHOUSE, "A1"]}}
        ctx.orders = {ORDER: {"id": ORDER, "name": "PO00017", "picking_type_id": [PICKING_TYPE]}}
        ctx.po_lines = {
            PO_LINE: {
                "id": PO_LINE,
                "order_id": [ORDER, "PO00017"],
                "product_id": [5, "Espresso beans 1 kg"],
                "product_qty": 10,
                "qty_received": received,
                "price_unit": 12.0,
            }
        }
        ctx.lines = {
            ("account.move.line", BILL): [
                {
                    "move_id": [BILL, "BILL/2026/0009"],
                    "product_id": [5, "Espresso beans 1 kg"],
                    "quantity": billed_quantity,
                    "price_unit": float(billed_price),
                    "purchase_line_id": [PO_LINE, "PO00017: Espresso beans"],
                }
            ]
        }
        row = {
            "id": BILL,
            "name": "BILL/2026/0009",
            "state": "draft",
            "move_type": "in_invoice",
            "invoice_origin": "PO00017",
            "currency_id": [1, "EUR"],
        }
        return VendorBills().handle(row, ctx)

    return run


def test_a_bill_drafted_before_anything_arrived_is_no_mismatch(sync):
    # Odoo drafts a bill for received quantities: nothing received, nothing billed.
    assert sync(received=0, billed_quantity=0) == "matched"
    assert not ExceptionCase.objects.exists()


def test_a_bill_for_more_than_was_received_is_a_mismatch_with_its_evidence(sync, settings):
    settings.ODOO_MATCH_TOLERANCE_PCT = 2

    assert sync(received=8, billed_quantity=10) == "case_opened"

    case = ExceptionCase.objects.get()
    assert (case.kind, case.queue, case.amount_at_stake, case.currency) == (
        "invoice_mismatch",
        "finance",
        Decimal("24.00"),
        "EUR",
    )
    assert case.evidence["order"] == "PO00017"
    assert case.evidence["tolerance_pct"] == "2"
    [line] = case.evidence["lines"]
    assert (line["ordered"], line["received"], line["billed_quantity"], line["difference"]) == (
        "10.00",
        "8.00",
        "10.00",
        "24.00",
    )
