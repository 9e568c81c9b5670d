"""sale.order: confirming (which makes the delivery), cancelling, back to quotation, sent."""

from portal.integrations.odoo.sandbox.actions.common import action, rows_of
from portal.integrations.odoo.sandbox.actions.stock import (
    cancel_pickings,
    create_picking,
    customer_location,
)
from portal.integrations.odoo.sandbox.errors import UserError


@action("sale.order", "action_confirm")
def so_action_confirm(env, model, ids):
    orders = rows_of(env, model, ids)
    wrong = [o for o in orders if o["state"] not in ("draft", "sent")]
    if wrong:
        names = ", ".join(env.display_name(model, o["id"]) for o in wrong)
        raise UserError(f"The following orders are not in a state requiring confirmation: {names}")
    for order in orders:
        env.set_state(model, [order["id"]], state="sale", date_order=env.now)
        _create_delivery(env, env.row(model, order["id"]))
    return True


def _create_delivery(env, order: dict) -> None:
    warehouse = env.row("stock.warehouse", order.get("warehouse_id"))
    if warehouse is None:
        return
    ptype = env.row("stock.picking.type", warehouse["out_type_id"])
    lines = [env.row("sale.order.line", i) for i in env.get("sale.order", order, "order_line")]
    create_picking(
        env,
        picking_type_id=ptype["id"],
        location_id=warehouse["lot_stock_id"],
        location_dest_id=customer_location(env),
        partner_id=order["partner_id"],
        origin=order["name"],
        moves=[
            {
                "product_id": line["product_id"],
                "product_uom_qty": line["product_uom_qty"],
                "sale_line_id": line["id"],
            }
            for line in lines
            if line.get("product_id") and line["product_uom_qty"] > 0
        ],
        state="confirmed",
        extra={"sale_id": order["id"]},
    )


@action("sale.order", "action_cancel")
def so_action_cancel(env, model, ids):
    orders = rows_of(env, model, ids)
    if any(o.get("locked") for o in orders):
        raise UserError("You cannot cancel a locked order. Please unlock it first.")
    warn = not env.context.get("disable_cancel_warning")
    if warn and any(o["state"] != "draft" for o in orders):
        return {
            "name": "Cancel Sales Order",
            "view_mode": "form",
            "res_model": "sale.order.cancel",
            "view_id": False,
            "type": "ir.actions.act_window",
            "context": {"default_order_id": orders[0]["id"]},
            "target": "new",
        }
    for order in orders:
        pickings = [env.row("stock.picking", p) for p in env.get(model, order, "picking_ids")]
        cancel_pickings(env, [p["id"] for p in pickings if p["state"] not in ("done", "cancel")])
    env.set_state(model, [o["id"] for o in orders], state="cancel")
    return True


@action("sale.order", "action_draft")
def so_action_draft(env, model, ids):
    orders = [o["id"] for o in rows_of(env, model, ids) if o["state"] in ("cancel", "sent")]
    env.set_state(model, orders, state="draft")
    return True


@action("sale.order", "action_quotation_sent")
def so_action_quotation_sent(env, model, ids):
    orders = [o["id"] for o in rows_of(env, model, ids) if o["state"] == "draft"]
    env.set_state(model, orders, state="sent")
    return True
