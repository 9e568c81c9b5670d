"""The two ways of calling a model method on Odoo, behind one `execute` primitive.

`JsonRpcBackend` drives OdooRPC (unmodified) over `/jsonrpc` for Odoo 16-18; `Json2Backend`
posts to `/json/2/<model>/<method>` for Odoo 19 and later, where `/jsonrpc` is deprecated.
Both take the same named parameters (`domain`, `fields`, `vals`, ...) and raise raw
exceptions; the client classifies them. Each backend keeps its own login, so nothing is shared
between client objects.
"""

import re
from collections import Counter
from typing import Any

import odoorpc

from portal.integrations.odoo.client.config import OdooSettings
from portal.integrations.odoo.client.transport import Transport
from portal.integrations.odoo.client.transport import opener as transport_opener

VERSION_PROBE = ("webclient", "version_info")
# OdooRPC's own models send these parameters positionally; servers and fakes that follow
# OdooRPC (see PROTOCOL.md 1.4) are sure to accept them in that order.
POSITIONAL = {
    "search_read": ("domain", "fields"),
    "search": ("domain",),
    "search_count": ("domain",),
    "read": ("fields",),
    "write": ("vals",),
    "create": ("vals_list",),
}
# Model and method names go into a URL path; anything else is refused before it is sent.
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def positional_args(method: str, ids: list[int] | None, params: dict) -> tuple[list, dict]:
    """Split named parameters into OdooRPC's `args` and `kwargs` for `execute_kw`."""
    args: list = [] if ids is None else [ids]
    kwargs = dict(params)
    for name in POSITIONAL.get(method, ()):
        if name not in kwargs:
            break
        args.append(kwargs.pop(name))
    return args, kwargs


class JsonRpcBackend:
    """Calls Odoo 16-18 through OdooRPC over `/jsonrpc`."""

    protocol = "jsonrpc"

    def __init__(self, config: OdooSettings, calls: Counter, version: str | None = None):
        self._config = config
        self._calls = calls
        self._version = version
        self._server: odoorpc.ODOO | None = None
        self._logged_in = False

    def version(self) -> str:
        """The server version, probed by OdooRPC unless it was configured."""
        return self._connect().version

    def execute(
        self, model: str, method: str, ids: list[int] | None, params: dict, context: dict | None
    ) -> Any:
        """Run `model.method` with `execute_kw`, sending the login context."""
        odoo = self._login()
        args, kwargs = positional_args(method, ids, params)
        kwargs["context"] = {**odoo.env.context, **(context or {})}
        return odoo.execute_kw(model, method, args, kwargs)

    def _connect(self) -> odoorpc.ODOO:
        if self._server is None:
            scheme, host, port = self._config.endpoint
            if self._version is None:
                self._calls[VERSION_PROBE] += 1
            self._server = odoorpc.ODOO(
                host,
                protocol="jsonrpc+ssl" if scheme == "https" else "jsonrpc",
                port=port,
                timeout=self._config.timeout,
                version=self._version,
                opener=transport_opener(cookies=True),
            )
        return self._server

    def _login(self) -> odoorpc.ODOO:
        odoo = self._connect()
        if not self._logged_in:
            config = self._config
            self._calls["common", "login"] += 1
            odoo.login(config.db, config.login, config.api_key)
            # OdooRPC reads the user's context right after a successful login.
            self._calls["res.users", "context_get"] += 1
            self._logged_in = True
        return odoo


class Json2Backend:
    """Calls Odoo 19+ through `POST /json/2/<model>/<method>` with a bearer API key."""

    protocol = "json2"

    def __init__(
        self,
        config: OdooSettings,
        calls: Counter,
        version: str | None = None,
        transport: Transport | None = None,
    ):
        self._config = config
        self._calls = calls
        self._version = version
        self._transport = transport or Transport(config.base_url, config.timeout)

    def version(self) -> str:
        """The server version, probed once unless it was configured."""
        if self._version is None:
            self._calls[VERSION_PROBE] += 1
            self._version = self._transport.server_version()
        return self._version

    def execute(
        self, model: str, method: str, ids: list[int] | None, params: dict, context: dict | None
    ) -> Any:
        """POST the named parameters, plus `ids` and `context`, to the method's URL."""
        for name in (model, method):
            if not NAME_PATTERN.fullmatch(name):
                raise ValueError(f"not an Odoo model or method name: {name!r}")
        body = dict(params)
        if ids is not None:
            body["ids"] = ids
        if context:
            body["context"] = context
        return self._transport.post(f"/json/2/{model}/{method}", body, self._headers())

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"bearer {self._config.api_key}",
            "X-Odoo-Database": self._config.db,
        }
