"""Classification of everything that can go wrong on a call to Odoo.

The retry policy reads only `OdooError.permanent`, so each case here is one retry decision.
"""

import http.client
import json
import pickle
import socket
import ssl
from email.message import Message
from io import BytesIO
from urllib.error import HTTPError, URLError

import pytest
from odoorpc.error import RPCError

from portal.integrations.odoo.errors import ErrorKind, OdooError, from_exception


def classify(exc: BaseException) -> OdooError:
    return from_exception(exc, model="purchase.order", method="button_approve")


def rpc_error(name: str, message: str = "text") -> RPCError:
    data = {"name": name, "message": message, "debug": "Traceback ...", "arguments": [message]}
    return RPCError(message, {"code": 200, "message": "Odoo Server Error", "data": data})


def http_error(status: int, body: bytes = b"") -> HTTPError:
    return HTTPError("http://odoo/jsonrpc", status, "status", Message(), BytesIO(body))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("odoo.exceptions.AccessDenied", ErrorKind.AUTH),
        ("odoo.exceptions.AccessError", ErrorKind.ACCESS),
        ("odoo.exceptions.UserError", ErrorKind.USER),
        ("odoo.exceptions.ValidationError", ErrorKind.VALIDATION),
        ("odoo.exceptions.MissingError", ErrorKind.MISSING),
        ("builtins.ValueError", ErrorKind.BAD_REQUEST),
        ("builtins.AttributeError", ErrorKind.NOT_FOUND),
        ("odoo.addons.some_module.models.CustomError", ErrorKind.UNEXPECTED),
    ],
)
def test_odoo_exceptions_are_permanent(name, kind):
    error = classify(rpc_error(name))

    assert (error.permanent, error.kind, error.name) == (True, kind, name)
    assert (error.model, error.method, error.debug) == (
        "purchase.order",
        "button_approve",
        "Traceback ...",
    )


def test_an_unknown_model_is_not_found():
    error = classify(rpc_error("odoo.exceptions.UserError", "Object purchase.nope doesn't exist"))

    assert (error.permanent, error.kind) == (True, ErrorKind.NOT_FOUND)


def test_a_concurrent_update_is_transient():
    error = classify(rpc_error("psycopg2.errors.SerializationFailure", "could not serialize"))

    assert (error.permanent, error.kind) == (False, ErrorKind.CONFLICT)


def test_a_wrong_database_is_permanent_though_reported_as_operational_error():
    error = classify(rpc_error("psycopg2.OperationalError", 'database "nope" does not exist'))

    assert error.permanent


def test_wrong_login_raised_by_odoorpc_is_a_permanent_auth_error():
    error = classify(RPCError("Wrong login ID or password"))

    assert (error.permanent, error.kind) == (True, ErrorKind.AUTH)
    assert error.name == "odoo.exceptions.AccessDenied"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError("timed out"), ErrorKind.TIMEOUT),
        (TimeoutError("timed out"), ErrorKind.TIMEOUT),
        (URLError(TimeoutError("timed out")), ErrorKind.TIMEOUT),
        (ConnectionRefusedError(111, "Connection refused"), ErrorKind.CONNECTION),
        (URLError(ConnectionRefusedError(111, "Connection refused")), ErrorKind.CONNECTION),
        (ConnectionResetError(104, "reset by peer"), ErrorKind.CONNECTION),
        (http.client.RemoteDisconnected("closed"), ErrorKind.CONNECTION),
        (socket.gaierror(-3, "Temporary failure in name resolution"), ErrorKind.CONNECTION),
        (http.client.IncompleteRead(b"{", 10), ErrorKind.BAD_RESPONSE),
        (json.JSONDecodeError("Expecting value", "<html>", 0), ErrorKind.BAD_RESPONSE),
        (KeyError("result"), ErrorKind.BAD_RESPONSE),
        (KeyError("data"), ErrorKind.BAD_RESPONSE),
    ],
)
def test_transport_failures_are_transient(exc, kind):
    error = classify(exc)

    assert (error.permanent, error.kind) == (False, kind)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_and_rate_limit_statuses_are_transient(status):
    error = classify(http_error(status, b"<html>Bad Gateway</html>"))

    assert (error.permanent, error.kind, error.status) == (False, ErrorKind.UNAVAILABLE, status)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.ACCESS),
        (404, ErrorKind.NOT_FOUND),
    ],
)
def test_other_client_statuses_are_permanent(status, kind):
    error = classify(http_error(status, b"Invalid JSON data"))

    assert (error.permanent, error.kind, error.status) == (True, kind, status)


def test_a_json2_error_body_names_the_odoo_exception():
    body = json.dumps({"name": "odoo.exceptions.AccessError", "message": "Not allowed"}).encode()

    error = classify(http_error(403, body))

    assert (error.permanent, error.kind, error.name, error.message) == (
        True,
        ErrorKind.ACCESS,
        "odoo.exceptions.AccessError",
        "Not allowed",
    )


def test_a_gateway_status_stays_transient_whatever_the_body_says():
    body = json.dumps({"name": "odoo.exceptions.UserError", "message": "?"}).encode()

    assert not classify(http_error(503, body)).permanent


def test_a_bad_certificate_is_permanent():
    error = classify(URLError(ssl.SSLCertVerificationError("certificate verify failed")))

    assert (error.permanent, error.kind) == (True, ErrorKind.CONNECTION)


def test_an_argument_that_cannot_be_sent_is_permanent():
    assert classify(TypeError("Object of type Decimal is not JSON serializable")).permanent
    assert classify(KeyError("some_field")).permanent


def test_the_retry_policy_can_build_its_own_errors():
    assert OdooError("boom", permanent=False).transient
    assert OdooError("boom").permanent
    assert not OdooError("slow", kind=ErrorKind.TIMEOUT).permanent


def test_an_error_survives_pickling_for_celery():
    error = classify(rpc_error("odoo.exceptions.MissingError", "gone"))

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own bytes

    assert (copy.message, copy.kind, copy.permanent, copy.name, copy.model) == (
        "gone",
        ErrorKind.MISSING,
        True,
        "odoo.exceptions.MissingError",
        "purchase.order",
    )
    assert str(copy) == "gone"


def test_repr_says_what_failed_and_whether_to_retry():
    text = repr(classify(TimeoutError()))

    assert "kind=timeout" in text
    assert "permanent=False" in text
    assert "purchase.order.button_approve" in text
