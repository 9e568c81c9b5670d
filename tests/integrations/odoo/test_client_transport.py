"""The client against a small local server that answers like Odoo or fails on request.

These pin down what goes over the wire for each backend and how every transport failure is
classified; the sandbox tests (test_client_sandbox.py) check behaviour against a fuller Odoo.
"""

import json
import socket
import threading
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.integrations.odoo.client import OdooClient, get_client
from portal.integrations.odoo.client.config import OdooSettings
from portal.integrations.odoo.errors import ErrorKind, OdooError
from portal.integrations.odoo.records import Warehouse

API_KEY = "fake-api-key-0001"
UID = 2
LOGIN_CONTEXT = {"lang": "en_US", "tz": "Europe/Brussels"}
# The HTTP status Odoo 19 gives each error on JSON-2.
JSON2_STATUS = {
    "odoo.exceptions.AccessDenied": 401,
    "odoo.exceptions.AccessError": 403,
    "odoo.exceptions.MissingError": 404,
    "odoo.exceptions.UserError": 422,
    "odoo.exceptions.ValidationError": 422,
}


class FakeOdoo:
    """A local HTTP server speaking just enough JSON-RPC and JSON-2 for the client."""

    def __init__(self, *, version: str = "17.0", api_key: str = API_KEY, db: str = "fake"):
        self.version, self.api_key, self.db = version, api_key, db
        self.results: dict[tuple[str, str], object] = {}
        self.errors: dict[tuple[str, str], tuple[str, str]] = {}
        self.fault: str | None = None  # see FakeOdooHandler.FAULTS
        self.echo = False  # put the raw request into error replies, as a careless proxy might
        self.requests: list[tuple[str, dict, object]] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOdooHandler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def settings(self, protocol: str, **overrides) -> OdooSettings:
        values = {"url": self.url, "db": self.db, "login": "admin", "api_key": self.api_key}
        values |= {"protocol": protocol, "timeout": 1.0, "version": None} | overrides
        return OdooSettings(**values)

    def client(self, protocol: str, **overrides) -> OdooClient:
        return OdooClient(self.settings(protocol, **overrides))

    def model_calls(self) -> list[tuple[str, object]]:
        """The model calls received, without logins and version probes."""
        return [
            (path, body)
            for path, _, body in self.requests
            if path.startswith("/json/2/") or _is_model_call(body)
        ]


def _is_model_call(body) -> bool:
    return isinstance(body, dict) and body.get("params", {}).get("method") == "execute_kw"


class FakeOdooHandler(BaseHTTPRequestHandler):
    FAULTS = ("502", "500", "429", "418", "non_json", "hang", "reset", "envelope")

    def log_message(self, *args):
        pass

    @property
    def fake(self) -> FakeOdoo:
        return self.server.fake

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw)
        self.fake.requests.append((self.path, dict(self.headers), body))
        if self.path == "/web/webclient/version_info":
            return self._envelope(body, result={"server_version": self.fake.version})
        if self.fake.fault and self._faulted(raw):
            return None
        if self.path == "/jsonrpc":
            return self._jsonrpc(body)
        if self.path.startswith("/json/2/"):
            return self._json2(body, raw)
        return self._send(404, b"not found", "text/plain")

    def _faulted(self, raw: bytes) -> bool:
        fault, echo = self.fake.fault, raw if self.fake.echo else b""
        if fault == "hang":
            self.fake.release.wait(10)
        elif fault == "reset":
            self.close_connection = True
        elif fault == "non_json":
            self._send(200, b"<html>Odoo is restarting</html>" + echo, "text/html")
        elif fault == "envelope":
            self._send(200, json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": 200}}))
        else:
            self._send(int(fault), b"proxy says no " + echo, "text/plain")
        return True

    def _jsonrpc(self, body):
        params = body["params"]
        args = params["args"]
        if params["service"] == "common":
            return self._envelope(body, result=UID if args[2] == self.fake.api_key else False)
        if args[2] != self.fake.api_key:
            return self._error(body, "odoo.exceptions.AccessDenied", "Access Denied")
        model, method = args[3], args[4]
        if method == "context_get":
            return self._envelope(body, result=LOGIN_CONTEXT)
        return self._answer(body, model, method)

    def _json2(self, body, raw):
        _, _, _, model, method = self.path.split("/")
        if self.headers.get("Authorization") != f"bearer {self.fake.api_key}":
            return self._json2_error("werkzeug.exceptions.Unauthorized", "Invalid apikey", raw)
        if (model, method) in self.fake.errors:
            name, message = self.fake.errors[model, method]
            return self._json2_error(name, message, raw)
        result = self.fake.results.get((model, method))
        return self._send(200, json.dumps(result))

    def _answer(self, body, model, method):
        if (model, method) in self.fake.errors:
            return self._error(body, *self.fake.errors[model, method])
        if (model, method) not in self.fake.results:
            return self._send(200, json.dumps({"jsonrpc": "2.0", "id": body["id"]}))
        return self._envelope(body, result=self.fake.results[model, method])

    def _envelope(self, body, **reply):
        self._send(200, json.dumps({"jsonrpc": "2.0", "id": body["id"], **reply}))

    def _error(self, body, name, message):
        echo = json.dumps(body) if self.fake.echo else ""
        data = {"name": name, "message": message + echo, "debug": f"Traceback\n{echo}"}
        error = {"code": 200, "message": "Odoo Server Error", "data": data}
        self._envelope(body, error=error)

    def _json2_error(self, name, message, raw):
        echo = raw.decode() + json.dumps(dict(self.headers)) if self.fake.echo else ""
        status = 401 if name.startswith("werkzeug") else JSON2_STATUS.get(name, 500)
        payload = {"name": name, "message": message + echo, "arguments": [message]}
        self._send(status, json.dumps(payload | {"debug": echo, "context": {}}))

    def _send(self, status: int, payload, content_type="application/json"):
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def closed_port() -> int:
    """A local port nothing listens on."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake():
    with FakeOdoo() as server:
        yield server


BACKENDS = ["jsonrpc", "json2"]


# --- What goes over the wire ---------------------------------------------------------------


def test_jsonrpc_search_read_sends_domain_and_fields_positionally(fake):
    fake.results["purchase.order", "search_read"] = [{"id": 7, "name": "P00007"}]
    client = fake.client("jsonrpc", version="17.0")

    rows = client.search_read(
        "purchase.order", [["state", "=", "to approve"]], ["name"], order="id", limit=5
    )

    assert rows == [{"id": 7, "name": "P00007"}]
    ((_, body),) = fake.model_calls()
    assert body["params"]["args"] == [
        "fake",
        UID,
        API_KEY,
        "purchase.order",
        "search_read",
        [[["state", "=", "to approve"]], ["name"]],
        {"limit": 5, "order": "id", "context": {**LOGIN_CONTEXT, "uid": UID}},
    ]


def test_json2_search_read_posts_named_arguments_with_bearer_key(fake):
    fake.results["purchase.order", "search_read"] = [{"id": 7, "name": "P00007"}]
    client = fake.client("json2", version="19.0")

    rows = client.search_read(
        "purchase.order", [["state", "=", "to approve"]], ["name"], offset=10, limit=5
    )

    assert rows == [{"id": 7, "name": "P00007"}]
    path, headers, body = fake.requests[-1]
    assert path == "/json/2/purchase.order/search_read"
    assert headers["Authorization"] == f"bearer {API_KEY}"
    assert headers["X-Odoo-Database"] == "fake"
    assert body == {
        "domain": [["state", "=", "to approve"]],
        "fields": ["name"],
        "offset": 10,
        "limit": 5,
    }


def test_jsonrpc_action_and_note_send_ids_first(fake):
    fake.results["purchase.order", "message_post"] = 91
    client = fake.client("jsonrpc", version="17.0")

    assert client.call("purchase.order", "button_approve", [7]) is None
    assert client.message_post("purchase.order", 7, body="Approved in Tollgate") == 91

    (_, approve), (_, note) = fake.model_calls()
    assert approve["params"]["args"][5:] == [[[7]], {"context": {**LOGIN_CONTEXT, "uid": UID}}]
    assert note["params"]["args"][5] == [[7]]
    assert note["params"]["args"][6] | {"context": None} == {
        "body": "Approved in Tollgate",
        "message_type": "comment",
        "subtype_xmlid": "mail.mt_note",
        "context": None,
    }


def test_json2_write_create_and_action_send_ids_and_context(fake):
    fake.results["stock.picking", "write"] = True
    fake.results["stock.picking", "create"] = [12]
    fake.results["stock.picking", "button_validate"] = True
    client = fake.client("json2", version="19.0")
    skip = {"skip_backorder": True, "picking_ids_not_to_backorder": [12]}

    assert client.write("stock.picking", [12], {"origin": "TG-1"}) is True
    assert client.create("stock.picking", {"origin": "TG-2"}) == 12
    assert client.call("stock.picking", "button_validate", [12], context=skip) is True

    bodies = [body for _, body in fake.model_calls()]
    assert bodies == [
        {"ids": [12], "vals": {"origin": "TG-1"}},
        {"vals_list": [{"origin": "TG-2"}]},
        {"ids": [12], "context": skip},
    ]


@pytest.mark.parametrize("protocol", BACKENDS)
def test_read_and_counts_return_what_odoo_sent(fake, protocol):
    fake.results["res.partner", "read"] = [{"id": 3, "name": "Acme"}]
    fake.results["res.partner", "search_count"] = 4
    fake.results["res.partner", "search"] = [3, 4]
    client = fake.client(protocol, version="17.0" if protocol == "jsonrpc" else "19.0")

    assert client.read("res.partner", [3], ["name"]) == [{"id": 3, "name": "Acme"}]
    assert client.search_count("res.partner", [["is_company", "=", True]]) == 4
    assert client.search("res.partner", [], limit=2) == [3, 4]


def test_reading_without_a_field_list_is_refused_before_calling(fake):
    client = fake.client("json2", version="19.0")

    with pytest.raises(ValueError, match="fields"):
        client.search_read("purchase.order", [], [])

    assert fake.requests == []


# --- Choosing the backend, and counting calls ------------------------------------------------


@pytest.mark.parametrize(
    ("version", "protocol"), [("17.0", "jsonrpc"), ("saas~18.3", "jsonrpc"), ("19.0", "json2")]
)
def test_auto_picks_the_protocol_from_the_server_version(version, protocol):
    with FakeOdoo(version=version) as fake:
        client = fake.client("auto")

        assert client.protocol == protocol
        assert client.version() == version
        assert client.calls["webclient", "version_info"] == 1


def test_a_configured_version_skips_the_probe(fake):
    client = fake.client("auto", version="17.0")

    client.search_count("purchase.order", [])

    assert [path for path, _, _ in fake.requests] == ["/jsonrpc"] * 3  # login, context, call


def test_calls_are_counted_by_model_and_method(fake):
    client = fake.client("jsonrpc")

    for _ in range(3):
        client.search_read("purchase.order", [], ["name"])
    client.call("purchase.order", "button_approve", [1])

    assert client.calls["purchase.order", "search_read"] == 3
    assert client.calls["purchase.order", "button_approve"] == 1
    # One version probe and one login (two requests) for the life of the client.
    assert client.calls.total() == 4 + 3
    assert client.calls.total() == len(fake.requests)


def test_get_client_reads_django_settings(fake, settings):
    settings.ODOO_URL, settings.ODOO_DB, settings.ODOO_API_KEY = fake.url, "fake", API_KEY
    settings.ODOO_PROTOCOL, settings.ODOO_TIMEOUT = "json2", 2

    client = get_client()

    assert (client.protocol, client.config.timeout) == ("json2", 2.0)
    assert API_KEY not in repr(client) + repr(client.config)


# --- Errors ----------------------------------------------------------------------------------

SERVER_ERRORS = [
    (
        "odoo.exceptions.AccessError",
        "You are not allowed to modify 'Purchase Order'",
        ErrorKind.ACCESS,
    ),
    (
        "odoo.exceptions.MissingError",
        "Record does not exist or has been deleted.",
        ErrorKind.MISSING,
    ),
    ("odoo.exceptions.UserError", "Unable to cancel this purchase order.", ErrorKind.USER),
    ("odoo.exceptions.ValidationError", "The operation cannot be completed", ErrorKind.VALIDATION),
    ("builtins.ValueError", "Expected singleton: purchase.order(1, 2)", ErrorKind.BAD_REQUEST),
    (
        "builtins.AttributeError",
        "The method 'purchase.order.nope' does not exist",
        ErrorKind.NOT_FOUND,
    ),
    ("odoo.exceptions.UserError", "Object purchase.nope doesn't exist", ErrorKind.NOT_FOUND),
    ("odoo.addons.tollgate.SomethingNew", "no one has seen this before", ErrorKind.UNEXPECTED),
]


def call_and_catch(client: OdooClient) -> OdooError:
    with pytest.raises(OdooError) as caught:
        client.call("purchase.order", "button_cancel", [1])
    return caught.value


@pytest.mark.parametrize("protocol", BACKENDS)
@pytest.mark.parametrize(("name", "message", "kind"), SERVER_ERRORS)
def test_server_errors_are_permanent_and_keep_odoo_name(fake, protocol, name, message, kind):
    fake.errors["purchase.order", "button_cancel"] = (name, message)

    error = call_and_catch(
        fake.client(protocol, version="17.0" if protocol == "jsonrpc" else "19.0")
    )

    assert (error.permanent, error.kind, error.name) == (True, kind, name)
    assert (error.model, error.method, error.message) == (
        "purchase.order",
        "button_cancel",
        message,
    )


@pytest.mark.parametrize("protocol", BACKENDS)
def test_a_wrong_api_key_is_a_permanent_auth_error(fake, protocol):
    client = fake.client(
        protocol, api_key="not-the-key", version="17.0" if protocol == "jsonrpc" else "19.0"
    )

    error = call_and_catch(client)

    assert (error.permanent, error.kind) == (True, ErrorKind.AUTH)
    assert error.name in {"odoo.exceptions.AccessDenied", "werkzeug.exceptions.Unauthorized"}


TRANSPORT_FAULTS = [
    ("502", ErrorKind.UNAVAILABLE, 502),
    ("500", ErrorKind.UNAVAILABLE, 500),
    ("429", ErrorKind.UNAVAILABLE, 429),
    ("non_json", ErrorKind.BAD_RESPONSE, None),
    ("hang", ErrorKind.TIMEOUT, None),
    ("reset", ErrorKind.CONNECTION, None),
]


@pytest.mark.parametrize("protocol", BACKENDS)
@pytest.mark.parametrize(("fault", "kind", "status"), TRANSPORT_FAULTS)
def test_transport_failures_are_transient(fake, protocol, fault, kind, status):
    client = fake.client(protocol, version="17.0" if protocol == "jsonrpc" else "19.0", timeout=0.3)
    client.search_count("purchase.order", [])  # logged in before things go wrong
    fake.fault = fault

    error = call_and_catch(client)

    assert (error.permanent, error.kind, error.status) == (False, kind, status)


@pytest.mark.parametrize("protocol", BACKENDS)
def test_other_client_errors_are_permanent(fake, protocol):
    fake.fault = "418"

    error = call_and_catch(
        fake.client(protocol, version="17.0" if protocol == "jsonrpc" else "19.0")
    )

    assert (error.permanent, error.kind, error.status) == (True, ErrorKind.BAD_REQUEST, 418)


def test_an_error_envelope_without_data_is_transient(fake):
    fake.fault = "envelope"

    error = call_and_catch(fake.client("jsonrpc", version="17.0"))

    assert (error.permanent, error.kind) == (False, ErrorKind.BAD_RESPONSE)


@pytest.mark.parametrize("protocol", ["auto", *BACKENDS])
def test_a_closed_port_is_a_transient_connection_error(protocol):
    with FakeOdoo() as fake:
        client = fake.client(protocol, url=f"http://127.0.0.1:{closed_port()}")

    error = call_and_catch(client)

    assert (error.permanent, error.kind) == (False, ErrorKind.CONNECTION)


def test_the_version_probe_failure_is_classified_too(fake):
    fake.fault = "502"
    fake.server.RequestHandlerClass = type(
        "ProbeFails", (FakeOdooHandler,), {"do_POST": lambda self: self._send(502, b"down")}
    )

    with pytest.raises(OdooError) as caught:
        fake.client("auto").version()

    assert (caught.value.permanent, caught.value.method) == (False, "version_info")


@pytest.mark.parametrize("protocol", BACKENDS)
def test_search_records_reads_the_record_fields_and_types_them(fake, protocol):
    row = dict.fromkeys(Warehouse.FIELDS, False) | {"id": 4, "code": "WH2", "active": True}
    fake.results["stock.warehouse", "search_read"] = [row]
    client = fake.client(protocol, version="17.0" if protocol == "jsonrpc" else "19.0")

    (warehouse,) = client.search_records(Warehouse, [["code", "=", "WH2"]], limit=1)

    assert (warehouse.id, warehouse.code, warehouse.active) == (4, "WH2", True)
    sent = fake.model_calls()[0][1]
    fields = sent["fields"] if protocol == "json2" else sent["params"]["args"][5][1]
    assert fields == list(Warehouse.FIELDS)
