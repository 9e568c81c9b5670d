"""The Odoo API key never leaves the connector as text: not in logs, errors or error pages.

Every path runs with DEBUG logging captured for all loggers (OdooRPC logs each request body,
password included), against a server that echoes the request, key and all, into its errors.
"""

import logging
import traceback

import pytest
from django.views.debug import ExceptionReporter

from portal.integrations.odoo.client import OdooClient
from portal.integrations.odoo.client.config import OdooSettings
from portal.integrations.odoo.errors import OdooError
from portal.integrations.odoo.redaction import REDACTED, RedactSecretsFilter, register_secret
from tests.integrations.odoo.test_client_transport import FakeOdoo, closed_port

SECRET = "k3y-SHOULD-NEVER-LEAK-5b7e0c2d"
VERSIONS = {"jsonrpc": "17.0", "json2": "19.0"}


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def fake():
    with FakeOdoo(api_key=SECRET) as server:
        server.echo = True
        yield server


def texts_of(error: BaseException) -> list[str]:
    """Every text an error shows: str, repr, args and attributes, along its whole chain."""
    texts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [str(error), repr(error), repr(error.args), repr(vars(error))]
        texts.append("".join(traceback.format_exception(error)))
        error = error.__cause__ or error.__context__
    return texts


def error_page(error: BaseException) -> str:
    reporter = ExceptionReporter(None, type(error), error, error.__traceback__)
    return reporter.get_traceback_text() + reporter.get_traceback_html()


def assert_no_secret(logs, error: BaseException | None = None):
    assert SECRET not in logs.text
    for record in logs.records:
        assert SECRET not in record.getMessage()
    if error is not None:
        assert all(SECRET not in text for text in texts_of(error))
        assert SECRET not in error_page(error)


def failing_call(client: OdooClient) -> OdooError:
    with pytest.raises(OdooError) as caught:
        client.call("purchase.order", "button_cancel", [1])
    return caught.value


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_successful_calls_log_no_key(fake, debug_logs, protocol):
    fake.results["purchase.order", "search_read"] = [{"id": 1, "name": "P00001"}]
    fake.results["purchase.order", "create"] = 5
    fake.results["purchase.order", "message_post"] = 8
    client = fake.client(protocol, version=VERSIONS[protocol])

    client.search_read("purchase.order", [["id", "=", 1]], ["name"])
    client.create("purchase.order", {"partner_id": 3})
    client.write("purchase.order", [1], {"origin": "TG"})
    client.call("purchase.order", "button_approve", [1])
    client.message_post("purchase.order", 1, body="note")

    assert_no_secret(debug_logs)
    if protocol == "jsonrpc":
        # OdooRPC did log the requests, with the key replaced.
        sent = [r for r in debug_logs.records if r.name == "odoorpc.rpc.jsonrpclib"]
        assert any(REDACTED in record.getMessage() for record in sent)


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_a_wrong_key_leaks_neither_key(fake, debug_logs, protocol):
    fake.api_key = "the-right-key-8d1f"

    error = failing_call(fake.client(protocol, api_key=SECRET, version=VERSIONS[protocol]))

    assert error.permanent
    assert_no_secret(debug_logs, error)


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
@pytest.mark.parametrize("fault", [None, "502", "hang", "non_json", "reset"])
def test_failures_leak_no_key(fake, debug_logs, protocol, fault):
    fake.errors["purchase.order", "button_cancel"] = ("odoo.exceptions.AccessError", "No: ")
    client = fake.client(protocol, version=VERSIONS[protocol], timeout=0.3)
    client.search_count("purchase.order", [])
    fake.fault = fault

    error = failing_call(client)

    assert_no_secret(debug_logs, error)


@pytest.mark.parametrize("protocol", ["auto", "jsonrpc", "json2"])
def test_connection_refused_leaks_no_key(debug_logs, protocol):
    with FakeOdoo(api_key=SECRET) as fake:
        client = fake.client(protocol, url=f"http://127.0.0.1:{closed_port()}")

    error = failing_call(client)

    assert_no_secret(debug_logs, error)


def test_the_filter_scrubs_messages_arguments_and_tracebacks(debug_logs):
    register_secret(SECRET)
    logger = logging.getLogger("odoorpc.rpc.jsonrpclib")
    logger.addFilter(RedactSecretsFilter())
    try:
        raise RuntimeError(f"sent {SECRET}")
    except RuntimeError:
        logger.exception("(JSON,send) %s", {"args": ["db", 2, SECRET]})

    assert_no_secret(debug_logs)
    assert REDACTED in debug_logs.text


# --- The same paths against the Odoo sandbox ---------------------------------------------------

SANDBOX_VERSIONS = {"jsonrpc": "17.0", "json2": "19.0"}


def sandbox_client(odoo_sandbox_factory, protocol, **overrides):
    sandbox = odoo_sandbox_factory(version=SANDBOX_VERSIONS[protocol])
    # The sandbox keeps API keys on res.users where no RPC can reach; a test sets one directly.
    with sandbox.server.app.store.transaction() as tx:
        tx.update("res.users", 2, {"_api_keys": [sandbox.api_key, SECRET]})
    values = {"url": sandbox.url, "db": sandbox.db, "login": sandbox.login, "api_key": SECRET}
    settings = OdooSettings(**values, protocol=protocol, timeout=0.5, **overrides)
    return sandbox, OdooClient(settings)


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_sandbox_calls_and_failures_leak_no_key(odoo_sandbox_factory, debug_logs, protocol):
    sandbox, client = sandbox_client(odoo_sandbox_factory, protocol)
    order_id = client.search("purchase.order", [], limit=1)[0]
    client.read("purchase.order", [order_id], ["name"])
    client.write("purchase.order", [order_id], {"origin": "TG"})
    client.message_post("purchase.order", order_id, body="note")
    failures = [
        ({"access_error_models": ["purchase.order"]}, True),
        ({"access_error_models": [], "error_rate": 1.0}, False),
        ({"error_rate": 0.0, "timeout_rate": 1.0, "hang_seconds": 1.5}, False),
    ]

    for faults, permanent in failures:
        sandbox.server.faults.update(**faults)
        error = failing_call(client)
        assert error.permanent is permanent
        assert_no_secret(debug_logs, error)
    sandbox.server.stop()
    assert_no_secret(debug_logs, failing_call(client))


@pytest.mark.parametrize("protocol", ["jsonrpc", "json2"])
def test_sandbox_rejecting_the_key_leaks_it_nowhere(odoo_sandbox_factory, debug_logs, protocol):
    sandbox, client = sandbox_client(odoo_sandbox_factory, protocol)
    with sandbox.server.app.store.transaction() as tx:
        tx.update("res.users", 2, {"_api_keys": [sandbox.api_key]})

    error = failing_call(client)

    assert error.permanent
    assert_no_secret(debug_logs, error)
