"""purchase.order: confirming, approving (with Odoo's approval rule), cancelling, and the
receipt an approved order gets."""

from portal.integrations.odoo.sandbox.actions.common import action, rows_of, user_has_group
from portal.integrations.odoo.sandbox.actions.stock import (
    cancel_pickings,
    create_picking,
    supplier_location,
)
from portal.integrations.odoo.sandbox.errors import UserError


def convert_amount(env, amount: float, from_currency, to_currency) -> float:
    """`amount` in `from_currency` at the currencies' rates, in `to_currency`."""
    rate_from = (env.row("res.currency", from_currency) or {}).get("rate") or 1.0
    rate_to = (env.row("res.currency", to_currency) or {}).get("rate") or 1.0
    return amount / rate_from * rate_to


def approval_allowed(env, order: dict) -> bool:
    """Odoo's `_approval_allowed`, plus the sandbox's refuse marker."""
    if order.get("x_sandbox_refuse_approve"):
        return False
    company = env.row("res.company", order["company_id"]) or {}
    if company.get("po_double_validation") == "one_step":
        return True
    limit = convert_amount(
        env,
        company.get("po_double_validation_amount") or 0.0,
        company.get("currency_id"),
        order.get("currency_id"),
    )
    if env.get("purchase.order", order, "amount_total") < limit:
        return True
    return user_has_group(env, "purchase", "group_purchase_manager")


@action("purchase.order", "button_confirm")
def po_button_confirm(env, model, ids):
    for order in rows_of(env, model, ids):
        if order["state"] not in ("draft", "sent"):
            continue
        if approval_allowed(env, order):
            po_button_approve(env, model, [order["id"]])
        else:
            env.set_state(model, [order["id"]], state="to approve")
    return True


@action("purchase.order", "button_approve")
def po_button_approve(env, model, ids, force=False):
    orders = [o for o in rows_of(env, model, ids) if approval_allowed(env, o)]
    for order in orders:
        company = env.row("res.company", order["company_id"]) or {}
        state = "done" if company.get("po_lock") == "lock" else "purchase"
        env.set_state(model, [order["id"]], state=state, date_approve=env.now)
        if not env.children("stock.picking", "purchase_id", order["id"]):
            create_receipt(env, env.row(model, order["id"]))
    return {}


@action("purchase.order", "button_cancel")
def po_button_cancel(env, model, ids):
    orders = rows_of(env, model, ids)
    for order in orders:
        bills = env.get(model, order, "invoice_ids")
        if any(env.row("account.move", b)["state"] not in ("cancel", "draft") for b in bills):
            raise UserError(
                "Unable to cancel this purchase order. "
                "You must first cancel the related vendor bills."
            )
        pickings = [env.row("stock.picking", p) for p in env.get(model, order, "picking_ids")]
        if any(p["state"] == "done" for p in pickings):
            raise UserError(
                f"Unable to cancel purchase order {order['name']} "
                "as some receptions have already been done."
            )
        open_pickings = [p["id"] for p in pickings if p["state"] != "cancel"]
        cancel_pickings(env, open_pickings)
    env.set_state(model, [o["id"] for o in orders], state="cancel")


@action("purchase.order", "button_draft")
def po_button_draft(env, model, ids):
    env.set_state(model, env.existing(model, ids), state="draft")
    return {}


@action("purchase.order", "button_unlock")
def po_button_unlock(env, model, ids):
    env.set_state(model, env.existing(model, ids), state="purchase")


@action("purchase.order", "button_done")
def po_button_done(env, model, ids):
    env.set_state(model, env.existing(model, ids), state="done", priority="0")


def create_receipt(env, order: dict) -> int:
    ptype = env.row("stock.picking.type", order["picking_type_id"])
    lines = [
        env.row("purchase.order.line", i) for i in env.get("purchase.order", order, "order_line")
    ]
    moves = [
        {
            "product_id": line["product_id"],
            "product_uom_qty": max(line["product_qty"] - (line.get("qty_received") or 0), 0),
            "purchase_line_id": line["id"],
        }
        for line in lines
        if line.get("product_id")
    ]
    return create_picking(
        env,
        picking_type_id=ptype["id"],
        location_id=supplier_location(env),
        location_dest_id=ptype["default_location_dest_id"],
        partner_id=order["partner_id"],
        origin=order["name"],
        moves=[m for m in moves if m["product_uom_qty"] > 0],
        state="assigned",
        extra={"purchase_id": order["id"], "scheduled_date": order.get("date_planned")},
    )
