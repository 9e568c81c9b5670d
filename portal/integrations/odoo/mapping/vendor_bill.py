"""A vendor bill (`account.move`, `in_invoice`) whose lines differ from order price × received
quantity beyond tolerance (the three-way match: exceptions.detection) → an invoice-mismatch
case.
"""

from decimal import Decimal

from django.conf import settings

from exceptions import titles
from exceptions.detection import BilledLine, Match, three_way_match
from exceptions.services import case_raise
from portal.integrations.odoo.mapping.common import Context, decimal, id_of, name_of


class VendorBills:
    model = "account.move"
    fields = [
        "name",
        "state",
        "move_type",
        "partner_id",
        "invoice_origin",
        "amount_total",
        "currency_id",
        "invoice_line_ids",
        "write_date",
    ]
    domain: list = [["move_type", "=", "in_invoice"]]

    def prepare(self, rows, ctx: Context) -> None:
        bills = [r["id"] for r in rows if r["state"] in ("draft", "posted")]
        ctx.children(
            "account.move.line",
            "move_id",
            bills,
            ["move_id", "product_id", "quantity", "price_unit", "purchase_line_id"],
        )
        po_lines = [
            id_of(line["purchase_line_id"])
            for b in bills
            for line in ctx.lines[("account.move.line", b)]
        ]
        ctx.fill(
            "purchase.order.line",
            po_lines,
            ["order_id", "product_id", "product_qty", "qty_received", "price_unit"],
            ctx.po_lines,
        )
        orders = {id_of(line["order_id"]) for line in ctx.po_lines.values()}
        ctx.fill("purchase.order", orders, ["name", "picking_type_id", "picking_ids"], ctx.orders)
        ctx.fill(
            "stock.picking.type",
            [id_of(o["picking_type_id"]) for o in ctx.orders.values()],
            ["warehouse_id"],
            ctx.picking_types,
        )
        # The receipts of those orders, so that a mismatch links the goods that arrived.
        receipts = [
            p for o in orders if o in ctx.orders for p in ctx.orders[o].get("picking_ids") or []
        ]
        ctx.fill("stock.picking", receipts, ["name", "state"], ctx.receipts)

    def handle(self, row, ctx: Context) -> str:
        if row["state"] not in ("draft", "posted"):
            return "ignored"
        comparison = _three_way(ctx.lines[("account.move.line", row["id"])], ctx)
        if comparison is None:
            return "not_from_an_order"
        match, order = comparison
        if match.matches:
            return "matched"
        expected, billed, lines = match.expected, match.billed, match.lines
        tolerance = Decimal(settings.ODOO_MATCH_TOLERANCE_PCT)
        site = ctx.site_of_picking_type(id_of(order["picking_type_id"]))
        at_stake = abs(billed - expected)
        _, created = case_raise(
            kind="invoice_mismatch",
            site=site,
            severity="high" if at_stake >= 1000 else "medium",
            title=titles.invoice_mismatch(
                bill=row["name"],
                order=order["name"],
                difference=billed - expected,
                currency=name_of(row["currency_id"]),
                vendor=name_of(row.get("partner_id")),
            ),
            source="odoo",
            dedupe_key=f"odoo:account.move:{row['id']}:invoice_mismatch",
            payload=row,
            evidence={
                "order": order["name"],
                "order_id": order["id"],
                **_receipt_of(order, ctx),
                "bill": row["name"],
                "lines": lines,
                "expected": expected,
                "billed": billed,
                "difference": billed - expected,
                "tolerance_pct": tolerance,
            },
            amount_at_stake=at_stake,
            currency=name_of(row["currency_id"]),
            odoo_model=self.model,
            odoo_id=row["id"],
            at=ctx.now,
        )
        return "case_opened" if created else "case_updated"


def _receipt_of(order: dict, ctx: Context) -> dict:
    """The order's last validated receipt, named and linked in the evidence; none yet: nothing."""
    done = [
        ctx.receipts[p]
        for p in order.get("picking_ids") or []
        if p in ctx.receipts and ctx.receipts[p].get("state") == "done"
    ]
    if not done:
        return {}
    receipt = max(done, key=lambda picking: picking["id"])
    return {"receipt": receipt["name"], "receipt_id": receipt["id"]}


def _three_way(bill_lines: list[dict], ctx: Context) -> tuple[Match, dict] | None:
    """The bill's lines as facts for the three-way match, with the order they bill; None for
    a bill that bills no order line."""
    billed, order = [], None
    for line in bill_lines:
        po_line = ctx.po_lines.get(id_of(line["purchase_line_id"]))
        if po_line is None:
            continue
        order = ctx.orders[id_of(po_line["order_id"])]
        billed.append(
            BilledLine(
                product=name_of(line["product_id"]),
                ordered=decimal(po_line["product_qty"]),
                received=decimal(po_line["qty_received"]),
                order_price=decimal(po_line["price_unit"]),
                billed_quantity=decimal(line["quantity"]),
                billed_price=decimal(line["price_unit"]),
            )
        )
    if order is None:
        return None
    return three_way_match(billed), order
