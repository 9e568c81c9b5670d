"""Transfers and scraps: confirming, reserving, validating (with the backorder and
insufficient-quantity wizards), cancelling; and creating a transfer for another model."""

from portal.integrations.odoo.sandbox.actions.common import action, rows_of, xmlid_res_id
from portal.integrations.odoo.sandbox.errors import UserError, singleton_expected


def supplier_location(env) -> int:
    return xmlid_res_id(env, "stock", "stock_location_suppliers")


def customer_location(env) -> int:
    return xmlid_res_id(env, "stock", "stock_location_customers")


def create_picking(
    env,
    *,
    picking_type_id,
    location_id,
    location_dest_id,
    partner_id,
    origin,
    moves,
    state,
    extra=None,
) -> int:
    """A transfer with its moves; moves are dicts with product_id and product_uom_qty."""
    ptype = env.row("stock.picking.type", picking_type_id)
    vals = {
        "picking_type_id": picking_type_id,
        "location_id": location_id,
        "location_dest_id": location_dest_id,
        "partner_id": partner_id,
        "origin": origin,
        "state": state,
        "company_id": ptype.get("company_id"),
        **{k: v for k, v in (extra or {}).items() if v is not None},
    }
    picking_id = env.create("stock.picking", vals)
    picking = env.row("stock.picking", picking_id)
    for move in moves:
        product = env.row("product.product", move["product_id"])
        env.create(
            "stock.move",
            {
                "name": product["name"],
                "picking_id": picking_id,
                "location_id": location_id,
                "location_dest_id": location_dest_id,
                "state": state,
                "date": picking["scheduled_date"],
                "company_id": ptype.get("company_id"),
                "quantity": move.get(
                    "quantity", move["product_uom_qty"] if state == "assigned" else 0.0
                ),
                **move,
            },
        )
    return picking_id


def _moves(env, picking: dict) -> list[dict]:
    return [
        env.row("stock.move", m) for m in env.children("stock.move", "picking_id", picking["id"])
    ]


def _is_internal(env, location_id) -> bool:
    return (env.row("stock.location", location_id) or {}).get("usage") == "internal"


def on_hand(env, product_id: int, location_id: int) -> float:
    quants = env.children("stock.quant", ("product_id", "location_id"), (product_id, location_id))
    return sum(env.row("stock.quant", q)["quantity"] for q in quants)


def _add_quant(env, product_id: int, location_id: int, qty: float) -> None:
    if not _is_internal(env, location_id) or not qty:
        return
    quants = env.children("stock.quant", ("product_id", "location_id"), (product_id, location_id))
    if quants:
        quant = env.row("stock.quant", quants[0])
        env.write("stock.quant", [quant["id"]], {"quantity": quant["quantity"] + qty})
        return
    env.create(
        "stock.quant", {"product_id": product_id, "location_id": location_id, "quantity": qty}
    )


@action("stock.picking", "action_confirm")
def picking_action_confirm(env, model, ids):
    for picking in rows_of(env, model, ids):
        if picking["state"] != "draft":
            continue
        state = "confirmed" if _is_internal(env, picking["location_id"]) else "assigned"
        for move in _moves(env, picking):
            env.set_state("stock.move", [move["id"]], state=state)
        env.set_state(model, [picking["id"]], state=state)
    return True


@action("stock.picking", "action_assign")
def picking_action_assign(env, model, ids):
    picking_action_confirm(env, model, ids)
    for picking in rows_of(env, model, ids):
        if picking["state"] in ("done", "cancel"):
            continue
        reserved = [_reserve(env, move) for move in _moves(env, picking)]
        state = "assigned" if any(reserved) else "confirmed"
        env.set_state(model, [picking["id"]], state=state)
    return True


def _reserve(env, move: dict) -> float:
    if move["state"] in ("done", "cancel"):
        return 0.0
    demand = move["product_uom_qty"]
    available = demand
    if _is_internal(env, move["location_id"]):
        available = max(on_hand(env, move["product_id"], move["location_id"]), 0.0)
    quantity = min(demand, available)
    full = quantity >= demand
    state = "assigned" if full else ("partially_available" if quantity else "confirmed")
    env.write("stock.move", [move["id"]], {"quantity": quantity, "state": state})
    return quantity


def _backorder_wizard(env, ids: list[int]) -> dict:
    return {
        "name": "Create Backorder?",
        "type": "ir.actions.act_window",
        "view_mode": "form",
        "res_model": "stock.backorder.confirmation",
        "views": [[False, "form"]],
        "view_id": False,
        "target": "new",
        "context": {
            **env.context,
            "button_validate_picking_ids": ids,
            "default_show_transfers": False,
            "default_pick_ids": [[4, i] for i in ids],
        },
    }


@action("stock.picking", "button_validate")
def picking_button_validate(env, model, ids):
    pickings = [p for p in rows_of(env, model, ids) if p["state"] != "done"]
    if any(p["state"] == "cancel" for p in pickings):
        raise UserError("You cannot validate a transfer if it is cancelled.")
    picking_action_confirm(env, model, [p["id"] for p in pickings if p["state"] == "draft"])
    pickings = [env.row(model, p["id"]) for p in pickings]
    for picking in pickings:
        if not any((m.get("quantity") or 0) > 0 for m in _moves(env, picking)):
            raise UserError(
                "You cannot validate a transfer if no quantities are reserved nor done. "
                "You can use the info button on the top right corner of your screen to set "
                "the quantities."
            )
    short = [p["id"] for p in pickings if _is_short(env, p)]
    if short and not env.context.get("skip_backorder"):
        return _backorder_wizard(env, [p["id"] for p in pickings])
    no_backorder = set(env.context.get("picking_ids_not_to_backorder") or [])
    for picking in pickings:
        if picking["id"] in short and picking["id"] not in no_backorder:
            _create_backorder(env, picking)
        _done(env, picking)
    return True


def _is_short(env, picking: dict) -> bool:
    return any((m.get("quantity") or 0) < m["product_uom_qty"] for m in _moves(env, picking))


def _create_backorder(env, picking: dict) -> int:
    moves = [
        {
            "product_id": m["product_id"],
            "product_uom_qty": m["product_uom_qty"] - (m.get("quantity") or 0),
            "purchase_line_id": m.get("purchase_line_id"),
            "sale_line_id": m.get("sale_line_id"),
            "quantity": 0.0,
        }
        for m in _moves(env, picking)
        if (m.get("quantity") or 0) < m["product_uom_qty"]
    ]
    return create_picking(
        env,
        picking_type_id=picking["picking_type_id"],
        location_id=picking["location_id"],
        location_dest_id=picking["location_dest_id"],
        partner_id=picking.get("partner_id"),
        origin=picking.get("origin"),
        moves=[{k: v for k, v in m.items() if v is not None} for m in moves],
        state="confirmed",
        extra={
            "backorder_id": picking["id"],
            "purchase_id": picking.get("purchase_id"),
            "sale_id": picking.get("sale_id"),
            "scheduled_date": picking.get("scheduled_date"),
            "x_tollgate_approval": picking.get("x_tollgate_approval"),
        },
    )


def _done(env, picking: dict) -> None:
    for move in _moves(env, picking):
        qty = move.get("quantity") or 0.0
        if not qty:
            env.set_state("stock.move", [move["id"]], state="cancel")
            continue
        # As Odoo splits a short move, the done move keeps only the quantity done.
        demand = min(move["product_uom_qty"], qty)
        env.set_state("stock.move", [move["id"]], state="done", product_uom_qty=demand)
        _add_quant(env, move["product_id"], move["location_id"], -qty)
        _add_quant(env, move["product_id"], move["location_dest_id"], qty)
        _record_delivery(env, move, qty)
    env.set_state("stock.picking", [picking["id"]], state="done", date_done=env.now)


def _record_delivery(env, move: dict, qty: float) -> None:
    for link, model, field in (
        ("purchase_line_id", "purchase.order.line", "qty_received"),
        ("sale_line_id", "sale.order.line", "qty_delivered"),
    ):
        line = env.row(model, move.get(link))
        if line:
            env.write(model, [line["id"]], {field: (line.get(field) or 0.0) + qty})


@action("stock.picking", "action_cancel")
def picking_action_cancel(env, model, ids):
    pickings = rows_of(env, model, ids)
    cancel_pickings(env, [p["id"] for p in pickings])
    return True


def cancel_pickings(env, ids: list[int]) -> None:
    """Cancel the pickings and their moves; refused when a move is done."""
    for picking_id in ids:
        picking = env.row("stock.picking", picking_id)
        moves = _moves(env, picking)
        if any(m["state"] == "done" for m in moves):
            raise UserError(
                "You cannot cancel a stock move that has been set to 'Done'. "
                "Create a return in order to reverse the moves which took place."
            )
        for move in moves:
            env.set_state("stock.move", [move["id"]], state="cancel")
        env.set_state("stock.picking", [picking_id], state="cancel")


# -- stock.scrap -------------------------------------------------------------------------


@action("stock.scrap", "action_validate")
def scrap_action_validate(env, model, ids):
    ids = env.existing(model, ids)
    if len(ids) != 1:
        raise singleton_expected(model, ids)
    scrap = env.row(model, ids[0])
    if (scrap.get("scrap_qty") or 0) <= 0:
        raise UserError("You can only enter positive quantities.")
    if scrap["state"] == "done":
        return True
    if on_hand(env, scrap["product_id"], scrap["location_id"]) < scrap["scrap_qty"]:
        return _insufficient_scrap_wizard(scrap)
    _add_quant(env, scrap["product_id"], scrap["location_id"], -scrap["scrap_qty"])
    env.set_state(model, ids, state="done", date_done=env.now)
    return True


def _insufficient_scrap_wizard(scrap: dict) -> dict:
    return {
        "name": "Insufficient Quantity",
        "view_mode": "form",
        "res_model": "stock.warn.insufficient.qty.scrap",
        "view_id": False,
        "type": "ir.actions.act_window",
        "context": {
            "default_product_id": scrap["product_id"],
            "default_location_id": scrap["location_id"],
            "default_scrap_id": scrap["id"],
            "default_quantity": scrap["scrap_qty"],
            "default_product_uom_name": "Units",
        },
        "target": "new",
    }
