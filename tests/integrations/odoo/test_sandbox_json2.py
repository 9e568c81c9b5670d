"""Odoo 19's JSON-2 endpoints: named arguments in, bare results or HTTP errors out."""

import pytest


@pytest.fixture
def json2(odoo_sandbox_factory, raw_http):
    return raw_http(odoo_sandbox_factory(version="19.0"))


def test_search_read_with_named_arguments(json2):
    status, rows = json2.json2(
        "purchase.order",
        "search_read",
        {
            "domain": [["state", "=", "to approve"]],
            "fields": ["name", "state"],
            "limit": 3,
            "offset": 1,
            "order": "id asc",
            "context": {"lang": "en_US"},
        },
    )
    assert status == 200
    assert len(rows) == 3
    assert all(set(r) == {"id", "name", "state"} and r["state"] == "to approve" for r in rows)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_search_count_and_read(json2):
    assert (
        json2.json2("res.partner", "search_count", {"domain": [["is_company", "=", True]]})[0]
        == 200
    )
    status, rows = json2.json2(
        "purchase.order", "read", {"ids": [1, 999999], "fields": ["partner_id"]}
    )
    assert status == 200
    assert [r["id"] for r in rows] == [1]
    assert isinstance(rows[0]["partner_id"], list)


def test_create_write_unlink(json2):
    status, ids = json2.json2(
        "res.partner", "create", {"vals_list": [{"name": "J2 One"}, {"name": "J2 Two"}]}
    )
    assert status == 200 and len(ids) == 2
    assert json2.json2("res.partner", "write", {"ids": ids, "vals": {"city": "Ghent"}}) == (
        200,
        True,
    )
    _, rows = json2.json2("res.partner", "read", {"ids": ids, "fields": ["city"]})
    assert {r["city"] for r in rows} == {"Ghent"}
    assert json2.json2("res.partner", "unlink", {"ids": ids}) == (200, True)
    assert json2.json2("res.partner", "search", {"domain": [["id", "in", ids]]}) == (200, [])


def test_actions_return_their_odoo_values(json2):
    _, (order_id,) = json2.json2(
        "purchase.order",
        "search",
        {
            "domain": [["state", "=", "to approve"], ["x_sandbox_refuse_approve", "=", True]],
            "limit": 1,
        },
    )
    assert json2.json2("purchase.order", "button_approve", {"ids": [order_id]}) == (200, {})
    assert json2.json2("purchase.order", "button_cancel", {"ids": [order_id]}) == (200, None)
    status, message_id = json2.json2(
        "purchase.order", "message_post", {"ids": [order_id], "body": "Cancelled by Tollgate"}
    )
    assert status == 200 and isinstance(message_id, int)


@pytest.mark.parametrize(
    ("key", "expected"), [("wrong-key", 401), (None, 401)], ids=["wrong", "missing"]
)
def test_bad_or_missing_key_is_401(json2, key, expected):
    headers = {"Authorization": f"bearer {key}"} if key else {}
    status, _, body = json2.post("/json/2/res.partner/search", b'{"domain": []}', headers)
    assert status == expected
    assert b"werkzeug.exceptions.Unauthorized" in body


def test_another_users_key_acts_as_that_user(json2):
    status, context = json2.json2("res.users", "context_get", {}, key="buyer")
    assert status == 200
    assert context["lang"] == "en_US"
    status, rows = json2.json2("res.users", "read", {"ids": [3], "fields": ["login"]}, key="buyer")
    assert rows == [{"id": 3, "login": "buyer"}]


@pytest.mark.parametrize(
    ("model", "method", "body", "status", "name"),
    [
        ("purchase.order", "_approval_allowed", {"ids": [1]}, 403, "odoo.exceptions.AccessError"),
        (
            "purchase.order",
            "write",
            {"ids": [999999], "vals": {"origin": "x"}},
            404,
            "odoo.exceptions.MissingError",
        ),
        ("no.such.model", "search", {"domain": []}, 404, "werkzeug.exceptions.NotFound"),
        ("purchase.order", "fly", {"ids": [1]}, 404, "werkzeug.exceptions.NotFound"),
        ("sale.order", "action_confirm", {"ids": [1]}, None, None),
        (
            "purchase.order.line",
            "write",
            {"ids": [1], "vals": {"product_qty": -5}},
            422,
            "odoo.exceptions.ValidationError",
        ),
        ("res.partner", "search", {"domain": [], "badparameter": 1}, 422, "builtins.TypeError"),
        ("res.partner", "search", {"domain": ["&"]}, 422, "builtins.ValueError"),
    ],
)
def test_errors_map_to_http_statuses(json2, model, method, body, status, name):
    if status is None:  # confirming a confirmed order: find one first
        _, (order_id,) = json2.json2(
            "sale.order", "search", {"domain": [["state", "=", "sale"]], "limit": 1}
        )
        body, status, name = {"ids": [order_id]}, 422, "odoo.exceptions.UserError"
    got, error = json2.json2(model, method, body)
    assert got == status
    assert error["name"] == name
    assert set(error) == {"name", "message", "arguments", "context", "debug"}


def test_invalid_json_body_is_400(json2):
    status, _, body = json2.post(
        "/json/2/res.partner/search", b"{nope", {"Authorization": "bearer admin"}
    )
    assert status == 400
    assert b"werkzeug.exceptions.BadRequest" in body


def test_json2_is_absent_before_odoo_19(odoo_http):
    status, _, _ = odoo_http.post(
        "/json/2/res.partner/search", b"{}", {"Authorization": "bearer admin"}
    )
    assert status == 404


def test_json2_calls_are_counted_and_faulted(json2):
    json2.sandbox.server.faults.update(error_rate=1.0, error_status=502)
    status, _, _ = json2.post(
        "/json/2/res.partner/search", b'{"domain": []}', {"Authorization": "bearer admin"}
    )
    assert status == 502
    assert json2.sandbox.server.stats.count("res.partner", "search") == 1
