"""Plain JSON over HTTP POST, for JSON-2 and for the version probe.

OdooRPC owns the `/jsonrpc` traffic; this is the little that the connector sends itself. It
raises urllib's own errors and lets `errors.from_exception` classify them in one place.

Neither this transport nor OdooRPC's follows a redirect: urllib's default opener re-sends every
header, the API key's `Authorization` included, to whatever host a 301/302/303 names. ODOO_URL
must name the address Odoo answers at; a redirect is refused before anything else is sent.
"""

import json
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlsplit
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

from portal.integrations.odoo.errors import ErrorKind, OdooError

USER_AGENT = "Tollgate-Odoo-connector"


class RefuseRedirects(HTTPRedirectHandler):
    """Turns every redirect into a permanent error that names where it pointed, not the URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        fp.close()
        target = urlsplit(newurl)
        where = f"{target.scheme}://{target.hostname}" if target.hostname else "another address"
        raise OdooError(
            f"Odoo answered HTTP {code}, a redirect to {where}; Tollgate does not follow "
            "redirects, so that the API key goes nowhere else. Set ODOO_URL to the address "
            "Odoo answers at (its https:// address, say).",
            kind=ErrorKind.UNEXPECTED,
            permanent=True,
            status=code,
        )


def opener(*, cookies: bool = False):
    """An opener that refuses redirects; with `cookies`, it keeps a session as OdooRPC needs."""
    handlers = [RefuseRedirects()]
    if cookies:
        handlers.append(HTTPCookieProcessor(CookieJar()))
    return build_opener(*handlers)


class Transport:
    """POSTs JSON to one Odoo server and returns the decoded reply."""

    def __init__(self, base_url: str, timeout: float):
        self.base_url = base_url
        self.timeout = timeout
        # No cookie processor: neither JSON-2 nor the probe has a session to keep.
        self._opener = opener()

    def post(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """POST `payload` as JSON to `path`; return the decoded body (None when empty)."""
        # The scheme was checked to be http(s) when the settings were read.
        request = Request(  # noqa: S310
            self.base_url + path,
            data=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                **(headers or {}),
            },
            method="POST",
        )
        with self._opener.open(request, timeout=self.timeout) as response:
            body = response.read()
        return json.loads(body) if body.strip() else None

    def server_version(self) -> str:
        """Ask Odoo for its version, as OdooRPC's probe does."""
        reply = self.post(
            "/web/webclient/version_info",
            {"jsonrpc": "2.0", "method": "call", "params": {}, "id": 1},
        )
        result = reply.get("result") if isinstance(reply, dict) else None
        if not isinstance(result, dict) or not isinstance(result.get("server_version"), str):
            raise OdooError(
                "Odoo's version_info reply has no server_version",
                kind=ErrorKind.BAD_RESPONSE,
                model="webclient",
                method="version_info",
            )
        return result["server_version"]
