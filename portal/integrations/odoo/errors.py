"""One error type for everything that goes wrong between Tollgate and Odoo.

OdooRPC leaves transport failures raw (urllib, socket, json) and folds every server error into
`RPCError`; JSON-2 answers with an HTTP status and an error object. The retry policy should not
know any of that: it reads `OdooError.permanent` and nothing else. `kind` says what happened,
for people and for callers that treat, say, a deleted record differently from a refusal.

An `OdooError` is always built fresh from redacted text and raised with no live link to the
exception it replaces, because those carry request bodies, URLs and server tracebacks.
"""

import http.client
import json
import ssl
from enum import StrEnum
from urllib.error import HTTPError, URLError

from odoorpc.error import RPCError

from portal.integrations.odoo.redaction import redact


class ErrorKind(StrEnum):
    AUTH = "auth"  # wrong login or API key
    ACCESS = "access"  # access rights or record rules refuse the operation
    USER = "user"  # a business rule refused it (UserError)
    VALIDATION = "validation"  # a constraint refused the values
    MISSING = "missing"  # the record does not exist (any more)
    NOT_FOUND = "not_found"  # unknown model, method or endpoint
    BAD_REQUEST = "bad_request"  # Odoo could not use the arguments sent
    UNEXPECTED = "unexpected"  # anything not recognised below
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused, reset, unreachable
    UNAVAILABLE = "unavailable"  # HTTP 5xx or 429: Odoo or a proxy in front of it is failing
    CONFLICT = "conflict"  # a concurrent transaction won; the same call can succeed later
    BAD_RESPONSE = "bad_response"  # not JSON, or not the envelope Odoo sends


TRANSIENT_KINDS = frozenset(
    {
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.UNAVAILABLE,
        ErrorKind.CONFLICT,
        ErrorKind.BAD_RESPONSE,
    }
)

# Exception names Odoo reports (JSON-RPC `error.data.name`, JSON-2 `name`).
KIND_BY_NAME = {
    "odoo.exceptions.AccessDenied": ErrorKind.AUTH,
    "odoo.http.SessionExpiredException": ErrorKind.AUTH,
    "werkzeug.exceptions.Unauthorized": ErrorKind.AUTH,
    "odoo.exceptions.AccessError": ErrorKind.ACCESS,
    "werkzeug.exceptions.Forbidden": ErrorKind.ACCESS,
    "odoo.exceptions.UserError": ErrorKind.USER,
    "odoo.exceptions.RedirectWarning": ErrorKind.USER,
    "odoo.exceptions.ValidationError": ErrorKind.VALIDATION,
    "odoo.exceptions.MissingError": ErrorKind.MISSING,
    "builtins.AttributeError": ErrorKind.NOT_FOUND,
    "werkzeug.exceptions.NotFound": ErrorKind.NOT_FOUND,
    "builtins.ValueError": ErrorKind.BAD_REQUEST,
    "builtins.TypeError": ErrorKind.BAD_REQUEST,
    "werkzeug.exceptions.BadRequest": ErrorKind.BAD_REQUEST,
    "werkzeug.exceptions.UnprocessableEntity": ErrorKind.BAD_REQUEST,
    "odoo.exceptions.ConcurrencyError": ErrorKind.CONFLICT,
    "psycopg2.errors.SerializationFailure": ErrorKind.CONFLICT,
    "psycopg2.errors.DeadlockDetected": ErrorKind.CONFLICT,
    "psycopg2.errors.LockNotAvailable": ErrorKind.CONFLICT,
    "psycopg2.extensions.TransactionRollbackError": ErrorKind.CONFLICT,
    "psycopg2.OperationalError": ErrorKind.UNAVAILABLE,
    "werkzeug.exceptions.InternalServerError": ErrorKind.UNAVAILABLE,
    "werkzeug.exceptions.BadGateway": ErrorKind.UNAVAILABLE,
    "werkzeug.exceptions.ServiceUnavailable": ErrorKind.UNAVAILABLE,
    "werkzeug.exceptions.GatewayTimeout": ErrorKind.UNAVAILABLE,
    "werkzeug.exceptions.TooManyRequests": ErrorKind.UNAVAILABLE,
}
# Statuses that come from whatever stands in front of Odoo, whatever the body says.
GATEWAY_STATUSES = frozenset({429, 502, 503, 504})
# OdooRPC indexes these keys of the reply without checking: a KeyError on one is a bad envelope.
ENVELOPE_KEYS = frozenset({"result", "error", "data", "message"})
AUTH_NAME = "odoo.exceptions.AccessDenied"


class OdooError(Exception):
    """A failed Odoo call; `permanent` tells the retry policy whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool | None = None,
        kind: ErrorKind = ErrorKind.UNEXPECTED,
        name: str | None = None,
        model: str | None = None,
        method: str | None = None,
        status: int | None = None,
        debug: str | None = None,
    ):
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.kind = ErrorKind(kind)
        self.permanent = self.kind not in TRANSIENT_KINDS if permanent is None else permanent
        self.name = name
        self.model = model
        self.method = method
        self.status = status
        # Odoo's server-side traceback, kept off str() so that it reaches logs only on purpose.
        self.debug = redact(debug) if debug else None

    @property
    def transient(self) -> bool:
        """True when the same call may succeed if tried again later."""
        return not self.permanent

    def __repr__(self) -> str:
        target = f"{self.model}.{self.method}" if self.model else self.method
        return (
            f"OdooError({self.message!r}, kind={self.kind.value}, permanent={self.permanent}, "
            f"name={self.name!r}, call={target!r})"
        )

    def __reduce__(self):
        # Celery and the cache pickle exceptions; keyword-only arguments need spelling out.
        state = {k: v for k, v in self.__dict__.items() if k != "message"}
        return (_rebuild, (type(self), self.message, state))


def _rebuild(cls: type[OdooError], message: str, state: dict) -> OdooError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.message = message
    error.__dict__.update(state)
    return error


class ErrorDetail(Exception):
    """The redacted type and text of the low-level exception an `OdooError` replaced."""

    @classmethod
    def of(cls, exc: BaseException) -> "ErrorDetail":
        """Describe `exc` in one redacted line."""
        kind = type(exc)
        return cls(redact(f"{kind.__module__}.{kind.__qualname__}: {exc}"))


def kind_for_name(name: str | None, message: str = "") -> ErrorKind:
    """Map an Odoo exception name to a kind; names not listed are permanent."""
    # An exception Odoo names but this table does not know was raised by the method itself
    # (a bug, an addon's own error class): the same input will fail the same way, so a retry
    # would only hide it. Transport trouble never arrives with a server-side name.
    kind = KIND_BY_NAME.get(name or "", ErrorKind.UNEXPECTED)
    if kind is ErrorKind.USER and message.startswith("Object ") and "doesn't exist" in message:
        return ErrorKind.NOT_FOUND
    if kind is ErrorKind.UNAVAILABLE and "does not exist" in message:
        # psycopg2.OperationalError also reports a wrong database name: configuration.
        return ErrorKind.NOT_FOUND
    return kind


def from_odoo_error(
    name: str | None,
    message: str,
    *,
    model: str | None,
    method: str | None,
    status: int | None = None,
    debug: str | None = None,
) -> OdooError:
    """Build the error for an exception Odoo reported in its reply."""
    kind = kind_for_name(name, message)
    if status in GATEWAY_STATUSES:
        kind = ErrorKind.UNAVAILABLE
    text = message or name or "Odoo reported an error"
    return OdooError(
        text, kind=kind, name=name, model=model, method=method, status=status, debug=debug
    )


def from_http_status(
    status: int, body: bytes, *, model: str | None, method: str | None
) -> OdooError:
    """Build the error for an HTTP error reply, reading JSON-2's error object when present."""
    payload = _json_object(body)
    if isinstance(payload.get("name"), str):
        return from_odoo_error(
            payload["name"],
            str(payload.get("message") or ""),
            model=model,
            method=method,
            status=status,
            debug=payload.get("debug") if isinstance(payload.get("debug"), str) else None,
        )
    transient = status >= 500 or status in GATEWAY_STATUSES
    kind = ErrorKind.UNAVAILABLE if transient else _kind_for_client_status(status)
    return OdooError(
        f"Odoo answered HTTP {status}", kind=kind, model=model, method=method, status=status
    )


def _kind_for_client_status(status: int) -> ErrorKind:
    return {
        401: ErrorKind.AUTH,
        403: ErrorKind.ACCESS,
        404: ErrorKind.NOT_FOUND,
    }.get(status, ErrorKind.BAD_REQUEST)


def _json_object(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def from_exception(exc: BaseException, *, model: str | None, method: str | None) -> OdooError:
    """Classify any exception raised while calling Odoo."""
    if isinstance(exc, OdooError):
        return exc
    if isinstance(exc, RPCError):
        return _from_rpc_error(exc, model=model, method=method)
    if isinstance(exc, HTTPError):
        return from_http_status(exc.code, _read_body(exc), model=model, method=method)
    kind, permanent = _transport_kind(exc)
    text = _TRANSPORT_TEXT.get(kind, "Odoo call failed") + f" ({type(exc).__name__})"
    return OdooError(text, kind=kind, permanent=permanent, model=model, method=method)


_TRANSPORT_TEXT = {
    ErrorKind.TIMEOUT: "Odoo did not answer in time",
    ErrorKind.CONNECTION: "Could not reach Odoo",
    ErrorKind.BAD_RESPONSE: "Odoo sent a reply that is not a JSON-RPC answer",
    ErrorKind.BAD_REQUEST: "The request could not be sent to Odoo",
}


def _transport_kind(exc: BaseException) -> tuple[ErrorKind, bool | None]:
    if isinstance(exc, URLError) and isinstance(exc.reason, BaseException):
        return _transport_kind(exc.reason)
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT, None
    if isinstance(exc, ssl.SSLCertVerificationError):
        # Retrying will meet the same certificate; someone has to fix the configuration.
        return ErrorKind.CONNECTION, True
    if isinstance(exc, (ConnectionError, URLError, OSError)):
        return ErrorKind.CONNECTION, None
    if isinstance(exc, (http.client.HTTPException, json.JSONDecodeError, UnicodeDecodeError)):
        return ErrorKind.BAD_RESPONSE, None
    if isinstance(exc, KeyError) and exc.args and exc.args[0] in ENVELOPE_KEYS:
        return ErrorKind.BAD_RESPONSE, None
    if isinstance(exc, (ValueError, TypeError)):
        return ErrorKind.BAD_REQUEST, None
    return ErrorKind.UNEXPECTED, None


def _from_rpc_error(exc: RPCError, *, model: str | None, method: str | None) -> OdooError:
    info = exc.info if isinstance(exc.info, dict) else {}
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    if not info:
        # Raised by OdooRPC itself when `common.login` answers false: wrong login or key.
        return OdooError(
            str(exc) or "Wrong login ID or password",
            kind=ErrorKind.AUTH,
            name=AUTH_NAME,
            model=model,
            method=method,
        )
    debug = data.get("debug") if isinstance(data.get("debug"), str) else None
    return from_odoo_error(data.get("name"), str(exc), model=model, method=method, debug=debug)


def _read_body(exc: HTTPError) -> bytes:
    try:
        return exc.read()
    except Exception:  # the body is only a hint; a broken one must not mask the status
        return b""
