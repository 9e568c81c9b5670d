"""A running Odoo sandbox with fresh demo data for every test.

Fixtures:

- `odoo_sandbox`: an `OdooSandbox` serving Odoo 17.0, seeded with the demo company. Its
  attributes are stable, other test files rely on them:
  `.url` ("http://127.0.0.1:<port>"), `.host`, `.port`, `.db` ("tollgate-demo"),
  `.login` ("admin"), `.api_key` ("admin", also the password), `.server` (the
  `SandboxServer`: `.faults`, `.stats`, `.restart(seconds)`, `.stop()`).
- `odoo_sandbox_factory(version="17.0", **faults)`: starts further sandboxes, e.g. an Odoo
  19.0 one for the JSON-2 endpoints; each gets its own copy of the demo data.
- `odoorpc_client`: the real OdooRPC client, logged in as admin to `odoo_sandbox`.
- `odoo_http`: raw HTTP calls to `odoo_sandbox`, for what OdooRPC cannot send or hides
  (the `raw_http` fixture is the `RawHttp` class, to wrap a sandbox from the factory).

The demo data is seeded once per session into a template file; each sandbox serves a copy, so
a test may change anything without affecting the next one. No test here needs Django's
database.
"""

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import odoorpc
import pytest

from portal.integrations.odoo.sandbox.faults import Faults
from portal.integrations.odoo.sandbox.seed import DEMO_DB, seed_demo
from portal.integrations.odoo.sandbox.server import SandboxServer

DEMO_LOGIN = "admin"
DEMO_API_KEY = "admin"


@dataclass(frozen=True)
class OdooSandbox:
    server: SandboxServer
    url: str
    host: str
    port: int
    db: str = DEMO_DB
    login: str = DEMO_LOGIN
    api_key: str = DEMO_API_KEY


@pytest.fixture(scope="session")
def odoo_sandbox_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("odoo-sandbox") / "template.sqlite3"
    seed_demo(path)
    return path


@pytest.fixture
def odoo_sandbox_factory(odoo_sandbox_template, tmp_path) -> Callable[..., OdooSandbox]:
    servers: list[SandboxServer] = []

    def start(version: str = "17.0", **faults) -> OdooSandbox:
        path = tmp_path / f"odoo-sandbox-{len(servers)}.sqlite3"
        shutil.copyfile(odoo_sandbox_template, path)
        server = SandboxServer(path, version=version, faults=Faults(**faults)).start()
        servers.append(server)
        return OdooSandbox(server=server, url=server.url, host=server.host, port=server.port)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def odoo_sandbox(odoo_sandbox_factory) -> OdooSandbox:
    return odoo_sandbox_factory()


@pytest.fixture
def odoorpc_client(odoo_sandbox) -> odoorpc.ODOO:
    client = odoorpc.ODOO(odoo_sandbox.host, port=odoo_sandbox.port, protocol="jsonrpc")
    client.login(odoo_sandbox.db, odoo_sandbox.login, odoo_sandbox.api_key)
    return client


class RawHttp:
    """Plain urllib calls to a sandbox, for what OdooRPC cannot send or hides."""

    def __init__(self, sandbox: OdooSandbox):
        self.sandbox = sandbox

    def post(self, path: str, body: bytes, headers: dict | None = None, timeout: float = 10):
        """(status, content type, body bytes) of a POST; HTTP errors are answers too."""
        request = urllib.request.Request(
            self.sandbox.url + path,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        return self._send(request, timeout)

    def get(self, path: str, headers: dict | None = None, timeout: float = 10):
        request = urllib.request.Request(self.sandbox.url + path, headers=headers or {})
        return self._send(request, timeout)

    def _send(self, request, timeout):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get_content_type(), error.read()

    def jsonrpc(self, service: str, method: str, *args) -> dict:
        """The whole JSON-RPC reply envelope of one `/jsonrpc` call."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 7,
            "params": {"service": service, "method": method, "args": list(args)},
        }
        status, _, body = self.post("/jsonrpc", json.dumps(payload).encode())
        assert status == 200
        return json.loads(body)

    def execute_kw(
        self,
        model: str,
        method: str,
        args: list,
        kwargs: dict | None = None,
        password: str | None = None,
    ) -> dict:
        sandbox = self.sandbox
        return self.jsonrpc(
            "object",
            "execute_kw",
            sandbox.db,
            2,
            password or sandbox.api_key,
            model,
            method,
            args,
            kwargs or {},
        )

    def json2(self, model: str, method: str, body: dict, key: str | None = None):
        """(status, decoded JSON) of one JSON-2 call with a bearer key."""
        headers = {"Authorization": f"bearer {key or self.sandbox.api_key}"}
        status, _, raw = self.post(f"/json/2/{model}/{method}", json.dumps(body).encode(), headers)
        return status, json.loads(raw)

    def admin(self, path: str, body: dict | None = None, key: str | None = None):
        """(status, decoded JSON) of an admin endpoint; GET when there is no body."""
        headers = {"Authorization": f"bearer {key or self.sandbox.api_key}"}
        if body is None:
            status, _, raw = self.get(path, headers)
        else:
            status, _, raw = self.post(path, json.dumps(body).encode(), headers)
        return status, json.loads(raw)


@pytest.fixture
def odoo_http(odoo_sandbox) -> RawHttp:
    """Raw HTTP access to `odoo_sandbox` (`.post`, `.jsonrpc`, `.execute_kw`, `.json2`)."""
    return RawHttp(odoo_sandbox)


@pytest.fixture
def raw_http() -> type[RawHttp]:
    """`RawHttp` itself, to wrap a sandbox from `odoo_sandbox_factory`."""
    return RawHttp
