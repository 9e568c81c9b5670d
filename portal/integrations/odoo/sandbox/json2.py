"""Odoo 19's JSON-2 API: `POST /json/2/<model>/<method>` with a bearer API key.

The body is a JSON object of named arguments: `ids`, `context`, and the method's own
parameters (`domain`, `fields`, `limit`, `offset`, `order`, `vals_list`, `vals`, ...). Success
is HTTP 200 with the bare result as JSON. A failure is a 4xx/5xx with
`{"name", "message", "arguments", "context", "debug"}`, as the Odoo 19 documentation shows.

Status mapping (the documentation gives 401 and 422 by example; the rest is the sandbox's
reading of Odoo's HTTP layer, documented here so clients can key on it):

| cause                                              | status | name                              |
|----------------------------------------------------|--------|-----------------------------------|
| missing or unknown API key                         | 401    | werkzeug.exceptions.Unauthorized  |
| AccessDenied, AccessError (incl. private methods)  | 403    | odoo.exceptions.Access...         |
| MissingError                                       | 404    | odoo.exceptions.MissingError      |
| unknown model, unknown method, unknown database    | 404    | werkzeug.exceptions.NotFound      |
| UserError, ValidationError, bad arguments          | 422    | odoo.exceptions.* / builtins.*    |
| body that is not a JSON object                     | 400    | werkzeug.exceptions.BadRequest    |
| anything else                                      | 500    | the exception's own name          |

The endpoint exists from Odoo 19 on; a sandbox serving an older version answers 404.
"""

import json

from portal.integrations.odoo.sandbox.errors import (
    AccessDenied,
    AccessError,
    DatabaseMissing,
    MissingError,
    OdooError,
    error_data,
)
from portal.integrations.odoo.sandbox.models import REGISTRY


class HttpFailure(OdooError):
    def __init__(self, status: int, name: str, message: str):
        super().__init__(message)
        self.status = status
        self.odoo_name = name


def unauthorized() -> HttpFailure:
    return HttpFailure(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey")


def not_found(message: str) -> HttpFailure:
    return HttpFailure(404, "werkzeug.exceptions.NotFound", message)


def status_of(error: BaseException) -> int:
    if isinstance(error, HttpFailure):
        return error.status
    if isinstance(error, AccessDenied | AccessError):
        return 403
    if isinstance(error, MissingError):
        return 404
    if isinstance(error, OdooError | TypeError | ValueError):
        return 422
    return 500


def bearer_key(headers) -> str | None:
    scheme, _, key = (headers.get("Authorization") or "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def handle_json2(app, model: str, method: str, headers, raw: bytes) -> tuple[int, object]:
    """(status, JSON body) for one JSON-2 request."""
    context = {}
    try:
        body = _body(raw)
        context = body.get("context") or {}
        return 200, _run(app, model, method, headers, body)
    except Exception as error:  # every failure becomes a JSON-2 error body
        data = error_data(error, context if isinstance(context, dict) else {})
        return status_of(error), data


def _body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise HttpFailure(400, "werkzeug.exceptions.BadRequest", "Invalid JSON data") from None
    if not isinstance(body, dict):
        raise HttpFailure(400, "werkzeug.exceptions.BadRequest", "Invalid JSON data")
    return body


def _run(app, model: str, method: str, headers, body: dict):
    database = headers.get("X-Odoo-Database")
    if database is not None and database != app.db_name:
        raise not_found(f"database {database!r} not found")
    with app.store.transaction() as tx:
        uid = app.uid_for_key(tx, bearer_key(headers))
        if uid is None:
            raise unauthorized()
        if model not in REGISTRY:
            raise not_found(f"the model {model!r} does not exist")
        kwargs = {k: v for k, v in body.items() if k not in ("ids", "context")}
        try:
            return app.execute_named(
                tx, uid, model, method, body.get("ids"), kwargs, body.get("context") or {}
            )
        except AttributeError as error:
            raise not_found(str(error)) from None
        except DatabaseMissing as error:
            raise not_found(error.message) from None
