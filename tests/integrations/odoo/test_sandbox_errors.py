"""Failures come back in Odoo's own envelope, with the `data.name` a client keys on."""

import json

import odoorpc
import pytest


def _error(call) -> dict:
    with pytest.raises(odoorpc.error.RPCError) as raised:
        call()
    return raised.value.info


def test_error_envelope_has_odoo_shape(odoo_http):
    reply = odoo_http.execute_kw("no.such.model", "search", [[]])
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == 7
    assert "result" not in reply
    error = reply["error"]
    assert error["code"] == 200
    assert error["message"] == "Odoo Server Error"
    assert set(error["data"]) == {"name", "message", "arguments", "debug", "context"}
    assert error["data"]["name"] == "odoo.exceptions.UserError"
    assert error["data"]["message"] == "Object no.such.model doesn't exist"
    assert error["data"]["arguments"] == ["Object no.such.model doesn't exist"]


def test_wrong_password_on_an_object_call_is_access_denied(odoo_http):
    reply = odoo_http.execute_kw("res.partner", "search", [[]], password="wrong")
    assert reply["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    assert reply["error"]["data"]["message"] == "Access Denied"


def test_unknown_uid_or_database_is_refused(odoo_http, odoo_sandbox):
    reply = odoo_http.jsonrpc(
        "object", "execute_kw", odoo_sandbox.db, 99, "admin", "res.partner", "search", [[]]
    )
    assert reply["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    reply = odoo_http.jsonrpc("common", "login", "other-db", "admin", "admin")
    assert reply["error"]["data"]["name"] == "psycopg2.OperationalError"


def test_private_method_is_an_access_error(odoorpc_client):
    info = _error(lambda: odoorpc_client.execute_kw("purchase.order", "_approval_allowed", [[1]]))
    assert info["data"]["name"] == "odoo.exceptions.AccessError"
    assert info["data"]["message"] == (
        "Private methods (such as 'purchase.order._approval_allowed') cannot be called remotely."
    )


def test_faulted_model_is_an_access_error(odoo_sandbox, odoorpc_client):
    odoo_sandbox.server.faults.access_error_models = ["purchase.order"]
    info = _error(lambda: odoorpc_client.env["purchase.order"].search([]))
    assert info["data"]["name"] == "odoo.exceptions.AccessError"
    assert "(purchase.order)" in info["data"]["message"]
    assert odoorpc_client.env["sale.order"].search([], limit=1)


def test_missing_record_is_a_missing_error(odoorpc_client):
    info = _error(
        lambda: odoorpc_client.execute_kw("purchase.order", "write", [[999], {"origin": "x"}])
    )
    assert info["data"]["name"] == "odoo.exceptions.MissingError"
    assert info["data"]["message"] == (
        "Record does not exist or has been deleted.\n(Record: purchase.order(999,), User: 2)"
    )
    for method in ("unlink", "button_approve"):
        info = _error(lambda m=method: odoorpc_client.execute_kw("purchase.order", m, [[999]]))
        assert info["data"]["name"] == "odoo.exceptions.MissingError"


def test_deleted_record_is_missing_afterwards(odoorpc_client):
    partner_id = odoorpc_client.env["res.partner"].create({"name": "Short-lived"})
    odoorpc_client.execute_kw("res.partner", "unlink", [[partner_id]])
    info = _error(lambda: odoorpc_client.execute_kw("res.partner", "write", [[partner_id], {}]))
    assert info["data"]["name"] == "odoo.exceptions.MissingError"


def test_negative_quantity_is_a_validation_error_and_changes_nothing(odoorpc_client):
    env = odoorpc_client.env
    line = env["purchase.order.line"].search_read([], ["product_qty"], limit=1)[0]
    info = _error(lambda: env["purchase.order.line"].write([line["id"]], {"product_qty": -1}))
    assert info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert info["data"]["message"].startswith("The operation cannot be completed")
    assert env["purchase.order.line"].read([line["id"]], ["product_qty"]) == [line]


def test_missing_required_field_is_a_validation_error(odoorpc_client):
    info = _error(lambda: odoorpc_client.env["purchase.order"].create({"picking_type_id": 1}))
    assert info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert "partner_id" in info["data"]["message"]


def test_failed_call_rolls_back_every_write(odoorpc_client):
    env = odoorpc_client.env
    before = env["res.partner"].search_count([])
    info = _error(
        lambda: odoorpc_client.execute_kw(
            "res.partner", "create", [[{"name": "Kept?"}, {"name": "Bad", "no_such_field": 1}]]
        )
    )
    assert info["data"]["name"] == "builtins.ValueError"
    assert env["res.partner"].search_count([]) == before


def test_unlinking_a_confirmed_order_is_a_user_error(odoorpc_client):
    (order_id,) = odoorpc_client.env["purchase.order"].search([("state", "=", "purchase")], limit=1)
    info = _error(lambda: odoorpc_client.execute_kw("purchase.order", "unlink", [[order_id]]))
    assert info["data"]["name"] == "odoo.exceptions.UserError"


def test_missing_method_is_an_attribute_error_worded_by_version(
    odoorpc_client, odoo_sandbox_factory
):
    info = _error(lambda: odoorpc_client.execute_kw("purchase.order", "fly", [[1]]))
    assert info["data"]["name"] == "builtins.AttributeError"
    assert (
        info["data"]["message"] == "The method 'fly' does not exist on the model 'purchase.order'"
    )
    newer = odoo_sandbox_factory(version="18.0")
    client = odoorpc.ODOO(newer.host, port=newer.port, protocol="jsonrpc")
    client.login(newer.db, newer.login, newer.api_key)
    info = _error(lambda: client.execute_kw("purchase.order", "fly", [[1]]))
    assert info["data"]["message"] == "The method 'purchase.order.fly' does not exist"


def test_odoo_19_error_code_is_zero(odoo_sandbox_factory, raw_http):
    sandbox = odoo_sandbox_factory(version="19.0")
    reply = raw_http(sandbox).execute_kw("no.such.model", "search", [[]])
    assert reply["error"]["code"] == 0
    assert reply["error"]["data"]["name"] == "odoo.exceptions.UserError"


def test_malformed_json_is_http_400_outside_the_envelope(odoo_http):
    status, content_type, body = odoo_http.post("/jsonrpc", b"{not json")
    assert (status, content_type, body) == (400, "text/plain", b"Invalid JSON data")


def test_unknown_route_is_404(odoo_http):
    status, _, _ = odoo_http.post("/web/dataset/nothing", json.dumps({}).encode())
    assert status == 404
    status, _, _ = odoo_http.get("/jsonrpc")
    assert status == 404


def test_method_returning_none_omits_result(odoo_http):
    reply = odoo_http.execute_kw("purchase.order", "button_unlock", [[2]])
    assert "result" not in reply
    assert "error" not in reply
