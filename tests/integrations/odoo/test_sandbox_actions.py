"""The sandbox's business buttons keep Odoo's return values and quirks (PROTOCOL.md 4)."""

import odoorpc
import pytest


def _state(env, model: str, record_id: int) -> str:
    return env[model].read([record_id], ["state"])[0]["state"]


def _login(sandbox, login: str) -> odoorpc.ODOO:
    client = odoorpc.ODOO(sandbox.host, port=sandbox.port, protocol="jsonrpc")
    client.login(sandbox.db, login, login)
    return client


def _order(env, qty: float, price: float = 100.0, **vals) -> int:
    return env["purchase.order"].create(
        {
            "partner_id": 7,
            "picking_type_id": 1,
            **vals,
            "order_line": [(0, 0, {"product_id": 1, "product_qty": qty, "price_unit": price})],
        }
    )


def test_button_confirm_below_the_limit_approves_and_creates_a_receipt(odoorpc_client):
    env = odoorpc_client.env
    order_id = _order(env, qty=2)
    assert env["purchase.order"].browse(order_id).button_confirm() is True
    order = env["purchase.order"].read([order_id], ["state", "picking_ids", "date_approve"])[0]
    assert order["state"] == "purchase"
    assert order["date_approve"]
    assert len(order["picking_ids"]) == 1


def test_buyer_cannot_approve_above_the_limit_and_is_skipped_silently(odoo_sandbox):
    buyer = _login(odoo_sandbox, "buyer").env
    order_id = _order(buyer, qty=100)  # 10,000 EUR against a 5,000 EUR limit
    buyer["purchase.order"].browse(order_id).button_confirm()
    assert _state(buyer, "purchase.order", order_id) == "to approve"
    assert buyer["purchase.order"].browse(order_id).button_approve() == {}
    assert _state(buyer, "purchase.order", order_id) == "to approve"
    admin = _login(odoo_sandbox, "admin").env
    assert admin["purchase.order"].browse(order_id).button_approve() == {}
    assert _state(admin, "purchase.order", order_id) == "purchase"


def test_button_approve_skips_an_order_that_refuses_approval(odoorpc_client):
    env = odoorpc_client.env
    (order_id,) = env["purchase.order"].search(
        [("state", "=", "to approve"), ("x_sandbox_refuse_approve", "=", True)], limit=1
    )
    others = env["purchase.order"].search(
        [("state", "=", "to approve"), ("x_sandbox_refuse_approve", "=", False)], limit=1
    )
    result = odoorpc_client.execute_kw(
        "purchase.order", "button_approve", [[order_id, *others]], {"force": False}
    )
    assert result == {}
    assert _state(env, "purchase.order", order_id) == "to approve"
    assert _state(env, "purchase.order", others[0]) == "purchase"


def test_button_cancel_returns_nothing(odoorpc_client):
    env = odoorpc_client.env
    (order_id,) = env["purchase.order"].search([("state", "=", "to approve")], limit=1)
    assert odoorpc_client.execute_kw("purchase.order", "button_cancel", [[order_id]]) is None
    assert _state(env, "purchase.order", order_id) == "cancel"
    assert env["purchase.order"].browse(order_id).button_draft() == {}
    assert _state(env, "purchase.order", order_id) == "draft"


def test_button_cancel_refuses_an_order_with_a_posted_bill(odoorpc_client):
    env = odoorpc_client.env
    bill = env["account.move"].search_read(
        [("move_type", "=", "in_invoice"), ("state", "=", "posted")], ["invoice_origin"], limit=1
    )[0]
    (order_id,) = env["purchase.order"].search([("name", "=", bill["invoice_origin"])])
    with pytest.raises(odoorpc.error.RPCError) as raised:
        env["purchase.order"].browse(order_id).button_cancel()
    assert raised.value.info["data"]["name"] == "odoo.exceptions.UserError"
    assert "cancel the related vendor bills" in str(raised.value)
    assert _state(env, "purchase.order", order_id) != "cancel"


def _short_internal_transfer(env) -> int:
    (picking_id,) = env["stock.picking"].search(
        [("picking_type_code", "=", "internal"), ("state", "=", "assigned")], limit=1
    )
    move = env["stock.move"].search_read([("picking_id", "=", picking_id)], ["product_uom_qty"])[0]
    env["stock.move"].write([move["id"]], {"quantity": move["product_uom_qty"] - 1})
    return picking_id


def test_button_validate_with_a_short_move_answers_the_backorder_wizard(odoorpc_client):
    env = odoorpc_client.env
    picking_id = _short_internal_transfer(env)
    wizard = env["stock.picking"].browse(picking_id).button_validate()
    assert wizard["res_model"] == "stock.backorder.confirmation"
    assert wizard["type"] == "ir.actions.act_window"
    assert _state(env, "stock.picking", picking_id) == "assigned"


def test_button_validate_without_backorder_when_the_context_says_so(odoorpc_client):
    env = odoorpc_client.env
    picking_id = _short_internal_transfer(env)
    context = {**env.context, "skip_backorder": True, "picking_ids_not_to_backorder": [picking_id]}
    result = odoorpc_client.execute_kw(
        "stock.picking", "button_validate", [[picking_id]], {"context": context}
    )
    assert result is True
    assert _state(env, "stock.picking", picking_id) == "done"
    assert env["stock.picking"].search([("backorder_id", "=", picking_id)]) == []


def test_button_validate_with_skip_backorder_alone_creates_the_backorder(odoorpc_client):
    env = odoorpc_client.env
    picking_id = _short_internal_transfer(env)
    context = {**env.context, "skip_backorder": True}
    odoorpc_client.execute_kw(
        "stock.picking", "button_validate", [[picking_id]], {"context": context}
    )
    backorders = env["stock.picking"].search_read([("backorder_id", "=", picking_id)], ["state"])
    assert [b["state"] for b in backorders] == ["confirmed"]


def test_validating_a_receipt_records_the_received_quantity(odoorpc_client):
    env = odoorpc_client.env
    order_id = _order(env, qty=10, price=5)
    env["purchase.order"].browse(order_id).button_confirm()
    (picking_id,) = env["purchase.order"].read([order_id], ["picking_ids"])[0]["picking_ids"]
    assert (
        env["stock.picking"].read([picking_id], ["picking_type_code"])[0]["picking_type_code"]
        == "incoming"
    )
    move = env["stock.move"].search([("picking_id", "=", picking_id)])
    env["stock.move"].write(move, {"quantity": 12})
    assert env["stock.picking"].browse(picking_id).button_validate() is True
    line = env["purchase.order.line"].search_read([("order_id", "=", order_id)], ["qty_received"])
    assert line[0]["qty_received"] == 12
    receipt = env["purchase.order"].read([order_id], ["receipt_status"])[0]
    assert receipt["receipt_status"] == "full"


def test_picking_confirm_assign_and_cancel(odoorpc_client):
    env = odoorpc_client.env
    (picking_id,) = env["stock.picking"].search(
        [("picking_type_code", "=", "internal"), ("state", "=", "draft")], limit=1
    )
    picking = env["stock.picking"].browse(picking_id)
    assert picking.action_confirm() is True
    assert _state(env, "stock.picking", picking_id) == "confirmed"
    assert picking.action_assign() is True
    assert _state(env, "stock.picking", picking_id) in ("assigned", "confirmed")
    assert picking.action_cancel() is True
    assert _state(env, "stock.picking", picking_id) == "cancel"


def test_scrap_validate_paths(odoorpc_client):
    env = odoorpc_client.env
    Scrap = env["stock.scrap"]
    location = env["stock.warehouse"].read([1], ["lot_stock_id"])[0]["lot_stock_id"][0]
    quant = env["stock.quant"].search_read(
        [("location_id", "=", location), ("quantity", ">", 1)], ["product_id", "quantity"], limit=1
    )[0]
    product = quant["product_id"][0]

    short_id = Scrap.create(
        {"product_id": product, "scrap_qty": quant["quantity"] + 5, "location_id": location}
    )
    wizard = Scrap.browse(short_id).action_validate()
    assert wizard["res_model"] == "stock.warn.insufficient.qty.scrap"
    assert _state(env, "stock.scrap", short_id) == "draft"

    scrap_id = Scrap.create({"product_id": product, "scrap_qty": 1, "location_id": location})
    assert Scrap.browse(scrap_id).action_validate() is True
    assert _state(env, "stock.scrap", scrap_id) == "done"
    left = env["stock.quant"].read([quant["id"]], ["quantity"])[0]["quantity"]
    assert left == quant["quantity"] - 1

    zero_id = Scrap.create({"product_id": product, "scrap_qty": 0, "location_id": location})
    with pytest.raises(odoorpc.error.RPCError, match="positive quantities") as raised:
        Scrap.browse(zero_id).action_validate()
    assert raised.value.info["data"]["name"] == "odoo.exceptions.UserError"

    with pytest.raises(odoorpc.error.RPCError, match="Expected singleton") as raised:
        odoorpc_client.execute_kw("stock.scrap", "action_validate", [[scrap_id, zero_id]])
    assert raised.value.info["data"]["name"] == "builtins.ValueError"


def test_scrap_value_follows_cost(odoorpc_client):
    scrap = odoorpc_client.env["stock.scrap"].search_read(
        [], ["scrap_qty", "product_id", "x_scrap_value"], limit=1
    )[0]
    cost = odoorpc_client.env["product.product"].read([scrap["product_id"][0]], ["standard_price"])
    assert scrap["x_scrap_value"] == round(scrap["scrap_qty"] * cost[0]["standard_price"], 2)


def test_sale_order_confirm_and_cancel(odoorpc_client):
    env = odoorpc_client.env
    SO = env["sale.order"]
    (draft_id,) = SO.search([("state", "=", "draft")], limit=1)
    assert SO.browse(draft_id).action_confirm() is True
    assert _state(env, "sale.order", draft_id) == "sale"
    with pytest.raises(odoorpc.error.RPCError, match="not in a state requiring confirmation"):
        SO.browse(draft_id).action_confirm()
    wizard = SO.browse(draft_id).action_cancel()
    assert wizard["res_model"] == "sale.order.cancel"
    assert _state(env, "sale.order", draft_id) == "sale"
    context = {**env.context, "disable_cancel_warning": True}
    assert (
        odoorpc_client.execute_kw("sale.order", "action_cancel", [[draft_id]], {"context": context})
        is True
    )
    assert _state(env, "sale.order", draft_id) == "cancel"


def test_account_move_post_draft_and_cancel_return_values(odoorpc_client):
    env = odoorpc_client.env
    (bill_id,) = env["account.move"].search(
        [("move_type", "=", "in_invoice"), ("state", "=", "draft")], limit=1
    )
    assert odoorpc_client.execute_kw("account.move", "action_post", [[bill_id]]) is False
    bill = env["account.move"].read([bill_id], ["state", "name"])[0]
    assert bill["state"] == "posted"
    assert bill["name"].startswith("BILL/")
    assert odoorpc_client.execute_kw("account.move", "button_draft", [[bill_id]]) is None
    assert _state(env, "account.move", bill_id) == "draft"
    assert odoorpc_client.execute_kw("account.move", "button_cancel", [[bill_id]]) is None
    assert _state(env, "account.move", bill_id) == "cancel"
    with pytest.raises(odoorpc.error.RPCError, match="Only posted/cancelled"):
        (draft_id,) = env["account.move"].search([("state", "=", "draft")], limit=1)
        odoorpc_client.execute_kw("account.move", "button_draft", [[draft_id]])


def test_message_post_records_a_note_on_the_record(odoorpc_client):
    env = odoorpc_client.env
    message_id = (
        env["purchase.order"]
        .browse(3)
        .message_post(
            body="Approved by <Rosa>", message_type="comment", subtype_xmlid="mail.mt_note"
        )
    )
    messages = env["mail.message"].search_read(
        [("model", "=", "purchase.order"), ("res_id", "=", 3)], ["body", "subtype_id"]
    )
    assert [m["id"] for m in messages] == [message_id]
    assert messages[0]["body"] == "<p>Approved by &lt;Rosa&gt;</p>"
    assert messages[0]["subtype_id"][1] == "Note"
    assert env["purchase.order"].read([3], ["message_ids"])[0]["message_ids"] == [message_id]


def test_message_post_is_keyword_only_and_for_one_record(odoorpc_client):
    with pytest.raises(odoorpc.error.RPCError) as raised:
        odoorpc_client.execute_kw("purchase.order", "message_post", [[3], "positional body"])
    assert raised.value.info["data"]["name"] == "builtins.TypeError"
    with pytest.raises(odoorpc.error.RPCError, match="Expected singleton") as raised:
        odoorpc_client.execute_kw("purchase.order", "message_post", [[3, 4]], {"body": "x"})
    assert raised.value.info["data"]["name"] == "builtins.ValueError"
    count = odoorpc_client.env["mail.message"].search_count([("model", "=", "purchase.order")])
    assert count == 0
