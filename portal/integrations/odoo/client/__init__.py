"""The Odoo client: the one interface through which Tollgate reads from and writes to Odoo.

`OdooClient` offers the handful of ORM calls Tollgate needs and hides which wire protocol
carries them (`/jsonrpc` through OdooRPC, or JSON-2). Every failure leaves it as an
`OdooError`, classified permanent or transient and free of the API key; every call is counted
in `client.calls` so that tests and benchmarks can hold the sync to a call budget.

A client keeps its login for its own lifetime only; build one per task or request with
`get_client()` rather than sharing one between threads.
"""

import http.client
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import odoorpc.error

from portal.integrations.odoo import errors
from portal.integrations.odoo.client.backends import (
    VERSION_PROBE,
    Json2Backend,
    JsonRpcBackend,
)
from portal.integrations.odoo.client.config import JSON2_SINCE, OdooSettings, major_version
from portal.integrations.odoo.client.transport import Transport
from portal.integrations.odoo.records import OdooRecord
from portal.integrations.odoo.redaction import CONNECTOR_LOGGER, guard_loggers, register_secret

__all__ = ["OdooClient", "OdooSettings", "get_client"]

logger = logging.getLogger(CONNECTOR_LOGGER)
T = TypeVar("T")
R = TypeVar("R", bound=OdooRecord)
Backend = JsonRpcBackend | Json2Backend
# What a call to Odoo can raise on its way out: OdooRPC's errors, urllib's and socket's
# (OSError), http.client's, and the ValueError/KeyError/TypeError of a broken reply or an
# argument that cannot be sent. Anything else is a bug here and keeps its own traceback.
CALL_FAILURES = (
    errors.OdooError,
    odoorpc.error.Error,
    OSError,
    http.client.HTTPException,
    ValueError,
    KeyError,
    TypeError,
)


class OdooClient:
    """Reads and writes Odoo records over whichever protocol the server speaks."""

    def __init__(self, config: OdooSettings):
        register_secret(config.api_key)
        guard_loggers()
        self.config = config
        # Calls made, by (model, method); `calls.total()` is the sum.
        self.calls: Counter[tuple[str, str]] = Counter()
        self._transport = Transport(config.base_url, config.timeout)
        self._backend: Backend | None = None

    def __repr__(self) -> str:
        return f"<OdooClient {self.config.protocol} {self.config.base_url} db={self.config.db}>"

    @property
    def protocol(self) -> str:
        """The wire protocol in use, "jsonrpc" or "json2" (probes the server under `auto`)."""
        return self._get_backend().protocol

    def version(self) -> str:
        """The Odoo server version, e.g. "17.0"."""
        return self._guarded(*VERSION_PROBE, lambda: self._get_backend().version())

    def search_read(
        self,
        model: str,
        domain: list,
        fields: Sequence[str],
        *,
        order: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        context: dict | None = None,
    ) -> list[dict]:
        """Records matching `domain`, as dicts of the named fields."""
        params = {"domain": domain, "fields": _field_list(fields)}
        params |= _present(offset=offset or None, limit=limit, order=order)
        return self.execute(model, "search_read", params=params, context=context)

    def search_records(
        self,
        record_class: type[R],
        domain: list,
        *,
        order: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        context: dict | None = None,
    ) -> list[R]:
        """Records matching `domain` as typed records, reading exactly `record_class.FIELDS`."""
        rows = self.search_read(
            record_class.MODEL,
            domain,
            record_class.FIELDS,
            order=order,
            limit=limit,
            offset=offset,
            context=context,
        )
        return [record_class.from_odoo(row) for row in rows]

    def search(
        self,
        model: str,
        domain: list,
        *,
        order: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        context: dict | None = None,
    ) -> list[int]:
        """Ids of the records matching `domain`."""
        params = {"domain": domain} | _present(offset=offset or None, limit=limit, order=order)
        return self.execute(model, "search", params=params, context=context)

    def search_count(self, model: str, domain: list, *, context: dict | None = None) -> int:
        """How many records match `domain`."""
        return self.execute(model, "search_count", params={"domain": domain}, context=context)

    def read(
        self,
        model: str,
        ids: Iterable[int],
        fields: Sequence[str],
        *,
        context: dict | None = None,
    ) -> list[dict]:
        """The named fields of the records `ids`."""
        params = {"fields": _field_list(fields)}
        return self.execute(model, "read", _id_list(ids), params=params, context=context)

    def write(
        self, model: str, ids: Iterable[int], vals: dict, *, context: dict | None = None
    ) -> bool:
        """Write `vals` on the records `ids`."""
        return bool(
            self.execute(model, "write", _id_list(ids), params={"vals": vals}, context=context)
        )

    def create(self, model: str, vals: dict, *, context: dict | None = None) -> int:
        """Create one record and return its id."""
        result = self.execute(model, "create", params={"vals_list": [vals]}, context=context)
        return _single_id(result, model, "create")

    def call(
        self,
        model: str,
        method: str,
        ids: Iterable[int] | None,
        *,
        context: dict | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call a public method (e.g. `button_approve`) on `ids`, or on the model when None."""
        record_ids = None if ids is None else _id_list(ids)
        return self.execute(model, method, record_ids, params=kwargs, context=context)

    def message_post(
        self,
        model: str,
        record_id: int,
        *,
        body: str,
        subtype_xmlid: str = "mail.mt_note",
        message_type: str = "comment",
        context: dict | None = None,
    ) -> int:
        """Leave a message (an internal note by default) on a record; return its id."""
        params = {"body": body, "message_type": message_type, "subtype_xmlid": subtype_xmlid}
        result = self.execute(model, "message_post", [record_id], params=params, context=context)
        return _single_id(result, model, "message_post")

    def execute(
        self,
        model: str,
        method: str,
        ids: list[int] | None = None,
        *,
        params: dict,
        context: dict | None = None,
    ) -> Any:
        """Run `model.method` with named parameters; the primitive under every other call."""

        def run() -> Any:
            backend = self._get_backend()
            self.calls[model, method] += 1
            return backend.execute(model, method, ids, params, context)

        return self._guarded(model, method, run)

    def _get_backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._guarded(*VERSION_PROBE, self._choose_backend)
        return self._backend

    def _choose_backend(self) -> Backend:
        config, version = self.config, self.config.version
        protocol = config.protocol
        if protocol == "auto":
            if version is None:
                self.calls[VERSION_PROBE] += 1
                version = self._transport.server_version()
            protocol = "json2" if major_version(version) >= JSON2_SINCE else "jsonrpc"
        if protocol == "json2":
            return Json2Backend(config, self.calls, version, self._transport)
        return JsonRpcBackend(config, self.calls, version)

    def _guarded(self, model: str, method: str, operation: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            result = operation()
        except CALL_FAILURES as exc:
            error = errors.from_exception(exc, model=model, method=method)
            cause = None if error is exc else errors.ErrorDetail.of(exc)
        else:
            logger.debug("odoo %s.%s ok in %.0f ms", model, method, _ms_since(started))
            return result
        logger.info("odoo %s.%s failed in %.0f ms: %r", model, method, _ms_since(started), error)
        # Raised here, outside the handler, so that the original exception is neither the
        # cause nor the context: it may carry the request, the key or a server traceback.
        if cause is None:
            raise error
        raise error from cause


def get_client() -> OdooClient:
    """A new client configured from Django settings."""
    return OdooClient(OdooSettings.from_django())


def _present(**values: Any) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def _field_list(fields: Sequence[str]) -> list[str]:
    # An empty list makes Odoo return every field, computed ones included: never wanted here.
    if isinstance(fields, str) or not fields:
        raise ValueError("name the fields to read as a non-empty list")
    return list(fields)


def _id_list(ids: Iterable[int]) -> list[int]:
    return [int(record_id) for record_id in ids]


def _single_id(result: Any, model: str, method: str) -> int:
    # `create` answers an id for a dict and a list for a list; message_post one id.
    if isinstance(result, list) and len(result) == 1:
        result = result[0]
    if isinstance(result, bool) or not isinstance(result, int):
        # Permanent: the call itself went through, so repeating it could act twice.
        raise errors.OdooError(
            f"Odoo answered {type(result).__name__} where a record id was expected",
            kind=errors.ErrorKind.BAD_RESPONSE,
            permanent=True,
            model=model,
            method=method,
        )
    return result


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
