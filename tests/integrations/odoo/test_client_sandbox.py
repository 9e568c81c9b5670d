"""The client against the Odoo sandbox, through both backends.

The same calls and the same failures must look identical to Tollgate whether they travel over
`/jsonrpc` (OdooRPC) or JSON-2: same results, same error kind, same `permanent` flag.
"""

import pytest

from portal.integrations.odoo.client import OdooClient
from portal.integrations.odoo.client.config import OdooSettings
from portal.integrations.odoo.errors import ErrorKind, OdooError
from portal.integrations.odoo.records import PurchaseOrder, SaleOrder

# The sandbox serves JSON-2 from Odoo 19 on, as Odoo does.
VERSION_FOR = {"jsonrpc": "17.0", "json2": "19.0"}


@pytest.fixture(params=list(VERSION_FOR))
def protocol(request):
    return request.param


@pytest.fixture
def sandbox(odoo_sandbox_factory, protocol):
    return odoo_sandbox_factory(version=VERSION_FOR[protocol])


def client_for(sandbox, protocol: str, **overrides) -> OdooClient:
    values = {"url": sandbox.url, "db": sandbox.db, "login": sandbox.login}
    values |= {"api_key": sandbox.api_key, "protocol": protocol, "timeout": 5.0} | overrides
    return OdooClient(OdooSettings(**values))


@pytest.fixture
def odoo(sandbox, protocol):
    return client_for(sandbox, protocol)


def set_faults(sandbox, **faults):
    sandbox.server.faults.update(**faults)


def caught(call) -> OdooError:
    with pytest.raises(OdooError) as error:
        call()
    return error.value


# --- Reads and writes ------------------------------------------------------------------------


def test_search_read_filters_by_domain(odoo):
    domain = [["state", "in", ["draft", "to approve"]]]

    orders = odoo.search_records(PurchaseOrder, domain, order="id asc")

    assert orders
    assert {order.state for order in orders} <= {"draft", "to approve"}
    assert [order.id for order in orders] == sorted(order.id for order in orders)
    assert odoo.search_count("purchase.order", domain) == len(orders)


def test_read_returns_the_named_fields(odoo):
    ids = odoo.search("purchase.order", [], limit=2)

    rows = odoo.read("purchase.order", ids, ["name", "partner_id"])

    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert all(set(row) == {"id", "name", "partner_id"} for row in rows)


def test_write_then_read_back(odoo):
    (order_id,) = odoo.search("purchase.order", [], limit=1)

    assert odoo.write("purchase.order", [order_id], {"origin": "TG-REQ-0042"}) is True

    (row,) = odoo.read("purchase.order", [order_id], ["origin"])
    assert row["origin"] == "TG-REQ-0042"


def test_create_returns_the_new_id(odoo):
    partner_id = odoo.create("res.partner", {"name": "Tollgate Test Supplier"})

    (row,) = odoo.read("res.partner", [partner_id], ["name"])
    assert row["name"] == "Tollgate Test Supplier"


def test_an_action_changes_the_state_in_odoo(odoo):
    (order,) = odoo.search_records(SaleOrder, [["state", "=", "draft"]], limit=1)

    odoo.call("sale.order", "action_confirm", [order.id])

    (after,) = odoo.search_records(SaleOrder, [["id", "=", order.id]])
    assert after.state == "sale"


def test_message_post_leaves_a_note(odoo):
    (order_id,) = odoo.search("purchase.order", [], limit=1)

    message_id = odoo.message_post("purchase.order", order_id, body="Approved in Tollgate")

    (message,) = odoo.read("mail.message", [message_id], ["body", "res_id", "model"])
    assert (message["model"], message["res_id"]) == ("purchase.order", order_id)
    assert "Approved in Tollgate" in message["body"]


@pytest.mark.parametrize(("version", "expected"), [("17.0", "jsonrpc"), ("19.0", "json2")])
def test_auto_speaks_what_the_server_version_offers(odoo_sandbox_factory, version, expected):
    odoo = client_for(odoo_sandbox_factory(version=version), "auto")

    assert odoo.search_count("purchase.order", []) > 0
    assert (odoo.protocol, odoo.version()) == (expected, version)


# --- Failures --------------------------------------------------------------------------------


def test_a_wrong_key_is_permanent(sandbox, protocol):
    odoo = client_for(sandbox, protocol, api_key="not-the-sandbox-key")

    error = caught(lambda: odoo.search_count("purchase.order", []))

    assert (error.permanent, error.kind) == (True, ErrorKind.AUTH)


def test_an_access_error_is_permanent(sandbox, odoo):
    set_faults(sandbox, access_error_models=["purchase.order"])

    error = caught(lambda: odoo.search_count("purchase.order", []))

    assert (error.permanent, error.kind, error.name) == (
        True,
        ErrorKind.ACCESS,
        "odoo.exceptions.AccessError",
    )


def test_a_deleted_record_is_permanent(odoo):
    error = caught(lambda: odoo.write("purchase.order", [987654], {"origin": "x"}))

    assert (error.permanent, error.kind, error.name) == (
        True,
        ErrorKind.MISSING,
        "odoo.exceptions.MissingError",
    )


def test_a_refused_business_action_is_permanent(odoo):
    (order_id,) = odoo.search("sale.order", [["state", "=", "sale"]], limit=1)

    error = caught(lambda: odoo.call("sale.order", "action_confirm", [order_id]))

    assert (error.permanent, error.kind, error.name) == (
        True,
        ErrorKind.USER,
        "odoo.exceptions.UserError",
    )


@pytest.mark.parametrize(
    ("model", "method"), [("purchase.nothing", "search_count"), ("purchase.order", "no_such")]
)
def test_unknown_models_and_methods_are_permanent(odoo, model, method):
    error = caught(lambda: odoo.call(model, method, None, domain=[]))

    assert (error.permanent, error.kind) == (True, ErrorKind.NOT_FOUND)


def test_server_errors_are_transient(sandbox, odoo):
    odoo.search_count("purchase.order", [])
    set_faults(sandbox, error_rate=1.0)

    error = caught(lambda: odoo.search_count("purchase.order", []))

    assert (error.permanent, error.kind) == (False, ErrorKind.UNAVAILABLE)


def test_a_hanging_server_is_a_transient_timeout(sandbox, protocol):
    # The first call signs in; a loaded CI machine needs well over 0.3 s for that, so the
    # timeout leaves room for it and the hang is far longer than the timeout.
    odoo = client_for(sandbox, protocol, timeout=1.5)
    odoo.search_count("purchase.order", [])
    set_faults(sandbox, timeout_rate=1.0, hang_seconds=4)

    error = caught(lambda: odoo.search_count("purchase.order", []))

    assert (error.permanent, error.kind) == (False, ErrorKind.TIMEOUT)
