"""Fields that Odoo computes: totals, statuses, related values and display names.

They are worked out when read, from the stored rows, so they can never drift from the lines
they sum. Each function takes the call's environment and one stored row and returns the value
in storage form (a many2one is an id or None, an x2many a list of ids).
"""

DISCOUNT_BASE = 100.0
# The demo's price-override rules: a sale line priced below cost * 1.05, or discounted by more
# than 15 %, needs a Tollgate decision.
PRICE_FLOOR_MARGIN = 1.05
DISCOUNT_CAP_PERCENT = 15.0


def _lines(env, model: str, inverse: str, row: dict) -> list[dict]:
    return [env.row(model, line_id) for line_id in env.children(model, inverse, row["id"])]


def _related(env, model: str, record_id, field: str):
    target = env.row(model, record_id) if record_id else None
    return target.get(field) if target else None


def _subtotal(row: dict, qty_field: str) -> float:
    qty = row.get(qty_field) or 0.0
    discount = row.get("discount") or 0.0
    return round(qty * (row.get("price_unit") or 0.0) * (1 - discount / DISCOUNT_BASE), 2)


def subtotal(qty_field: str):
    """Quantity times unit price less discount; the sandbox charges no tax."""

    def compute(env, row: dict) -> float:
        return _subtotal(row, qty_field)

    return compute


def _sum_lines(env, model: str, row: dict, qty_field: str) -> float:
    lines = _lines(env, model, _PARENT[model], row)
    return round(sum(_subtotal(line, qty_field) for line in lines), 2)


_PARENT = {
    "purchase.order.line": "order_id",
    "sale.order.line": "order_id",
    "account.move.line": "move_id",
}


def po_amount(env, row: dict) -> float:
    return _sum_lines(env, "purchase.order.line", row, "product_qty")


def so_amount(env, row: dict) -> float:
    return _sum_lines(env, "sale.order.line", row, "product_uom_qty")


def move_amount(env, row: dict) -> float:
    return _sum_lines(env, "account.move.line", row, "quantity")


def price_floor(env, row: dict) -> float:
    cost = _related(env, "product.product", row.get("product_id"), "standard_price") or 0.0
    return round(cost * PRICE_FLOOR_MARGIN, 2)


def no_tax(env, row: dict) -> float:
    return 0.0


def move_residual(env, row: dict) -> float:
    if row.get("state") != "posted" or row.get("payment_state") == "paid":
        return 0.0
    return move_amount(env, row)


def po_line_state(env, row: dict):
    return _related(env, "purchase.order", row.get("order_id"), "state")


def po_line_partner(env, row: dict):
    return _related(env, "purchase.order", row.get("order_id"), "partner_id")


def so_line_state(env, row: dict):
    return _related(env, "sale.order", row.get("order_id"), "state")


def po_line_qty_invoiced(env, row: dict) -> float:
    bill_lines = _lines(env, "account.move.line", "purchase_line_id", row)
    return sum(
        line.get("quantity") or 0.0
        for line in bill_lines
        if _related(env, "account.move", line.get("move_id"), "state") != "cancel"
    )


def po_invoice_ids(env, row: dict) -> list[int]:
    move_ids = set()
    for line in _lines(env, "purchase.order.line", "order_id", row):
        for bill_line in _lines(env, "account.move.line", "purchase_line_id", line):
            move_ids.add(bill_line["move_id"])
    return sorted(move_ids)


def po_invoice_status(env, row: dict) -> str:
    if row.get("state") not in ("purchase", "done"):
        return "no"
    lines = _lines(env, "purchase.order.line", "order_id", row)
    invoiced = [po_line_qty_invoiced(env, line) for line in lines]
    if any(
        inv < (line.get("qty_received") or 0.0) for line, inv in zip(lines, invoiced, strict=True)
    ):
        return "to invoice"
    if lines and all(inv >= line["product_qty"] for line, inv in zip(lines, invoiced, strict=True)):
        return "invoiced"
    return "no"


def po_receipt_status(env, row: dict):
    states = [p["state"] for p in _lines(env, "stock.picking", "purchase_id", row)]
    states = [state for state in states if state != "cancel"]
    if not states:
        return None
    if all(state == "done" for state in states):
        return "full"
    return "partial" if "done" in states else "pending"


def picking_type_code(env, row: dict):
    return _related(env, "stock.picking.type", row.get("picking_type_id"), "code")


def scrap_value(env, row: dict) -> float:
    cost = _related(env, "product.product", row.get("product_id"), "standard_price") or 0.0
    return round((row.get("scrap_qty") or 0.0) * cost, 2)


def qty_available(env, row: dict) -> float:
    total = 0.0
    for quant in _lines(env, "stock.quant", "product_id", row):
        if _related(env, "stock.location", quant["location_id"], "usage") == "internal":
            total += quant.get("quantity") or 0.0
    return total


def complete_name_of(model: str):
    """`All / Goods / Beverages`: the names from the root of a parent_id tree."""

    def complete_name(env, row: dict) -> str:
        names = []
        current = row
        while current:
            names.append(current.get("name") or "")
            parent_id = current.get("parent_id")
            current = env.row(model, parent_id) if parent_id else None
        return " / ".join(reversed(names))

    return complete_name


def location_name(env, row: dict) -> str:
    """`AMS/Stock`: a view location stands for itself, as in Odoo."""
    parent = env.row("stock.location", row["location_id"]) if row.get("location_id") else None
    if parent is None or row.get("usage") == "view":
        return row.get("name") or ""
    return f"{location_name(env, parent)}/{row.get('name') or ''}"


def product_name(env, row: dict) -> str:
    code = row.get("default_code")
    return f"[{code}] {row.get('name')}" if code else row.get("name") or ""


def picking_type_name(env, row: dict) -> str:
    warehouse = _related(env, "stock.warehouse", row.get("warehouse_id"), "name")
    return f"{warehouse}: {row.get('name')}" if warehouse else row.get("name") or ""


def move_display(env, row: dict) -> str:
    if row.get("name") and row["name"] != "/":
        return row["name"]
    return f"Draft {'Bill' if row.get('move_type') == 'in_invoice' else 'Entry'} ({row['id']})"


def message_ids_of(model: str):
    """The chatter of a record, newest first."""

    def message_ids(env, row: dict) -> list[int]:
        found = env.children("mail.message", ("model", "res_id"), (model, row["id"]))
        return sorted(found, reverse=True)

    return message_ids
