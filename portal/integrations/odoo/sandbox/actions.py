"""The business buttons of PROTOCOL.md section 4, with the quirks a client must survive.

Each action takes the call's `Env`, the model name and the record ids the client sent, and
returns what Odoo 17 returns (None makes the reply omit `result`). Rules worth knowing:

- `purchase.order.button_approve` silently skips orders the user may not approve and returns
  `{}` either way. An order may be approved when its company approves in one step, or its
  total is below the company's `po_double_validation_amount` (converted to the order's
  currency), or the user is in `purchase.group_purchase_manager`; never when the order has
  `x_sandbox_refuse_approve` set. The demo `admin` is a purchase manager; `buyer` is not.
  Like Odoo, it does not look at the state.
- `stock.picking.button_validate` answers the backorder wizard when a move is short, unless
  the context holds `skip_backorder`; pickings listed in `picking_ids_not_to_backorder` then
  get no backorder, the others do. Receipts add to `qty_received` on purchase lines.
- `stock.scrap.action_validate` answers the insufficient-quantity wizard when the source
  location holds less than the scrap quantity.
"""

import html
from collections.abc import Callable

from portal.integrations.odoo.sandbox.errors import UserError, singleton_expected

ACTIONS: dict[tuple[str, str], Callable] = {}


def action(model: str, name: str):
    def register(func):
        ACTIONS[(model, name)] = func
        return func

    return register


def xmlid_res_id(env, module: str, name: str) -> int | None:
    for row in env.rows("ir.model.data").values():
        if row["module"] == module and row["name"] == name:
            return row["res_id"]
    return None


def user_has_group(env, module: str, name: str) -> bool:
    group_id = xmlid_res_id(env, module, name)
    return group_id in ((env.row("res.users", env.uid) or {}).get("groups_id") or [])


def _rows(env, model: str, ids: list[int]) -> list[dict]:
    return [env.row(model, i) for i in env.existing(model, ids)]


# -- purchase.order ----------------------------------------------------------------------


def _convert(env, amount: float, from_currency, to_currency) -> float:
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
    limit = _convert(
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
    for order in _rows(env, model, ids):
        if order["state"] not in ("draft", "sent"):
            continue
        if approval_allowed(env, order):
            po_button_approve(env, model, [order["id"]])
        else:
            env.set_state(model, [order["id"]], state="to approve")
    return True


@action("purchase.order", "button_approve")
def po_button_approve(env, model, ids, force=False):
    orders = [o for o in _rows(env, model, ids) if approval_allowed(env, o)]
    for order in orders:
        company = env.row("res.company", order["company_id"]) or {}
        state = "done" if company.get("po_lock") == "lock" else "purchase"
        env.set_state(model, [order["id"]], state=state, date_approve=env.now)
        if not env.children("stock.picking", "purchase_id", order["id"]):
            create_receipt(env, env.row(model, order["id"]))
    return {}


@action("purchase.order", "button_cancel")
def po_button_cancel(env, model, ids):
    orders = _rows(env, model, ids)
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
        _cancel_pickings(env, open_pickings)
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


# -- stock.picking -----------------------------------------------------------------------


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
    for picking in _rows(env, model, ids):
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
    for picking in _rows(env, model, ids):
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
    pickings = [p for p in _rows(env, model, ids) if p["state"] != "done"]
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
    pickings = _rows(env, model, ids)
    _cancel_pickings(env, [p["id"] for p in pickings])
    return True


def _cancel_pickings(env, ids: list[int]) -> None:
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


# -- sale.order --------------------------------------------------------------------------


@action("sale.order", "action_confirm")
def so_action_confirm(env, model, ids):
    orders = _rows(env, model, ids)
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
    orders = _rows(env, model, ids)
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
        _cancel_pickings(env, [p["id"] for p in pickings if p["state"] not in ("done", "cancel")])
    env.set_state(model, [o["id"] for o in orders], state="cancel")
    return True


@action("sale.order", "action_draft")
def so_action_draft(env, model, ids):
    orders = [o["id"] for o in _rows(env, model, ids) if o["state"] in ("cancel", "sent")]
    env.set_state(model, orders, state="draft")
    return True


@action("sale.order", "action_quotation_sent")
def so_action_quotation_sent(env, model, ids):
    orders = [o["id"] for o in _rows(env, model, ids) if o["state"] == "draft"]
    env.set_state(model, orders, state="sent")
    return True


# -- account.move ------------------------------------------------------------------------

MOVE_PREFIX = {"in_invoice": "BILL", "out_invoice": "INV", "in_refund": "RBILL"}
MOVE_PREFIX |= {"out_refund": "RINV", "entry": "MISC"}


def move_number(env, move: dict) -> str:
    prefix = (
        f"{MOVE_PREFIX.get(move.get('move_type'), 'MISC')}/{(move.get('date') or env.now)[:4]}/"
    )
    return f"{prefix}{env.next_number(prefix):05d}"


@action("account.move", "action_post")
def move_action_post(env, model, ids):
    for move in _rows(env, model, ids):
        if move["state"] == "posted":
            raise UserError(f"The entry {move['name']} (id {move['id']}) is already posted.")
        if move.get("move_type") != "entry" and not env.get(model, move, "invoice_line_ids"):
            raise UserError("You need to add a line before posting.")
        name = move["name"] if move.get("name") not in (None, "", "/") else move_number(env, move)
        env.set_state(model, [move["id"]], state="posted", name=name)
    return False


@action("account.move", "button_draft")
def move_button_draft(env, model, ids):
    moves = _rows(env, model, ids)
    if any(m["state"] not in ("cancel", "posted") for m in moves):
        raise UserError("Only posted/cancelled journal entries can be reset to draft.")
    env.set_state(model, [m["id"] for m in moves], state="draft")


@action("account.move", "button_cancel")
def move_button_cancel(env, model, ids):
    moves = _rows(env, model, ids)
    posted = [m["id"] for m in moves if m["state"] == "posted"]
    move_button_draft(env, model, posted)
    if any(env.row(model, m["id"])["state"] != "draft" for m in moves):
        raise UserError("Only draft journal entry can be cancelled.")
    env.set_state(model, [m["id"] for m in moves], state="cancel")


# -- mail.thread -------------------------------------------------------------------------


def message_post(
    env,
    model,
    ids,
    *,
    body="",
    subject=None,
    message_type="notification",
    subtype_xmlid=None,
    subtype_id=False,
    partner_ids=None,
    attachments=None,
    attachment_ids=None,
    body_is_html=False,
    author_id=None,
    **kwargs,
):
    """A note or message in the record's chatter; keyword-only, one record, returns its id."""
    ids = env.existing(model, ids)
    if len(ids) != 1:
        raise singleton_expected(model, ids)
    if subtype_xmlid:
        module, _, name = subtype_xmlid.partition(".")
        subtype_id = xmlid_res_id(env, module, name)
    if not subtype_id and message_type == "comment":
        subtype_id = xmlid_res_id(env, "mail", "mt_note")
    text = str(body or "")
    author = author_id or (env.row("res.users", env.uid) or {}).get("partner_id")
    return env.create(
        "mail.message",
        {
            "model": model,
            "res_id": ids[0],
            "record_name": env.display_name(model, ids[0]),
            "body": text if body_is_html else f"<p>{html.escape(text)}</p>",
            "subject": subject or False,
            "message_type": message_type,
            "subtype_id": subtype_id or False,
            "author_id": author or False,
            "date": env.now,
        },
    )
