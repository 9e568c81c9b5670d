"""The sandbox's HTTP server: routes, fault injection, and a Python handle for tests.

Routes:
- `POST /web/webclient/version_info`, `POST /jsonrpc`, `POST /web/database/list` (JSON-RPC)
- `POST /json/2/<model>/<method>` (JSON-2, Odoo 19 and later)
- `GET|POST /sandbox/faults`, `POST /sandbox/reset-faults`, `GET /sandbox/stats`,
  `POST /sandbox/stats/reset`: the admin endpoints (see faults.py for the settings). They take
  the admin user's API key as `Authorization: bearer <key>`, or for a POST as the body field
  `api_key`. `POST /sandbox/faults` with `"restart": true` restarts the server after replying.
Anything else answers 404; a JSON-RPC body that is not JSON answers 400 `Invalid JSON data`.

    server = SandboxServer(db_path, port=0).start()
    server.url, server.port, server.faults.error_rate = 1.0, server.stats.count()
    server.restart(seconds=1); server.stop()
"""

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from portal.integrations.odoo.sandbox import json2, rpc
from portal.integrations.odoo.sandbox.app import DEFAULT_DB, SandboxApp
from portal.integrations.odoo.sandbox.faults import Faults

ADMIN_UID = 2
RPC_ROUTES = {
    "/web/webclient/version_info": rpc.handle_version_info,
    "/jsonrpc": rpc.handle_jsonrpc,
    "/web/database/list": rpc.handle_database_list,
}
JSON2_PREFIX = "/json/2/"
RESTART_GRACE_SECONDS = 0.05
POLL_SECONDS = 0.02  # how soon serve_forever notices a shutdown


class DropConnection(Exception):
    """Close the connection without a reply (a hung or restarting server)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, sandbox: "SandboxServer"):
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        """Dropped connections are part of the job; stay quiet about them."""

    def drop_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class _Handler(BaseHTTPRequestHandler):
    server_version = "Werkzeug/3.0.1"
    sys_version = "Python/3"
    server: _HTTPServer

    def setup(self):
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format, *args):
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, verb: str) -> None:
        try:
            self.server.sandbox.route(self, verb)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def send_json(self, status: int, payload) -> None:
        self.send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def send_text(self, status: int, text: str, content_type="text/plain; charset=utf-8"):
        self.send(status, text.encode(), content_type)


class SandboxServer:
    """A running sandbox on a background thread; see the module docstring."""

    def __init__(
        self,
        db_path: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "17.0",
        db_name: str = DEFAULT_DB,
        faults: Faults | None = None,
        verbose: bool = False,
    ):
        self.app = SandboxApp(db_path, version=version, db_name=db_name, faults=faults)
        self.host = host
        self.port = port
        self.verbose = verbose
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._restart_lock = threading.Lock()
        self._restarting: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def stats(self):
        return self.app.stats

    @property
    def version(self) -> str:
        return self.app.version

    @property
    def db_name(self) -> str:
        return self.app.db_name

    def start(self) -> "SandboxServer":
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name=f"odoo-sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until stopped or interrupted, through restarts (the management command)."""
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopped.set()
        restarting = self._restarting
        if restarting is not None and restarting is not threading.current_thread():
            restarting.join()
        self._shutdown()
        self.app.store.close()

    def _shutdown(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.drop_connections()

    def restart(self, seconds: float | None = None, wait: bool = True) -> None:
        """Drop every connection, refuse new ones for `seconds`, then serve the same data."""
        seconds = self.faults.restart_seconds if seconds is None else seconds
        with self._restart_lock:
            if self._restarting is not None and self._restarting.is_alive():
                return
            self._restarting = threading.Thread(
                target=self._restart, args=(seconds,), name="odoo-sandbox-restart", daemon=True
            )
            self._restarting.start()
        if wait:
            self._restarting.join()

    def _restart(self, seconds: float) -> None:
        time.sleep(RESTART_GRACE_SECONDS)  # lets the reply that asked for the restart leave
        self._shutdown()
        self.app.reopen()
        time.sleep(seconds)
        if not self._stopped.is_set():
            self.start()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- routing -------------------------------------------------------------------------

    def route(self, handler: _Handler, verb: str) -> None:
        path = handler.path.split("?", 1)[0]
        if path.startswith("/sandbox/"):
            return self._admin(handler, verb, path)
        if verb == "POST" and path in RPC_ROUTES:
            return self._jsonrpc(handler, RPC_ROUTES[path], path)
        if verb == "POST" and path.startswith(JSON2_PREFIX) and self.app.major >= 19:
            model, _, method = path[len(JSON2_PREFIX) :].partition("/")
            if model and method and "/" not in method:
                return self._json2(handler, model, method)
        handler.send_text(404, _NOT_FOUND, "text/html; charset=utf-8")
        return None

    def _inject_delay(self) -> None:
        if self.faults.draw_timeout():
            time.sleep(self.faults.hang_seconds)
            if self.faults.timeout_mode == "drop":
                raise DropConnection
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)

    def _transient_failure(self, handler: _Handler, target) -> bool:
        if target is None:
            return False
        self.stats.record(*target)
        status = self.faults.draw_error()
        if status is None:
            return False
        handler.send_text(status, _transient_page(status), "text/html; charset=utf-8")
        return True

    def _jsonrpc(self, handler: _Handler, route, path: str) -> None:
        raw = handler.body()
        self._inject_delay()
        try:
            payload = json.loads(raw)
        except ValueError:
            handler.send_text(400, "Invalid JSON data")
            return
        if not isinstance(payload, dict):
            handler.send_text(400, "Invalid JSON-RPC data")
            return
        target = rpc.object_target(payload.get("params")) if path == "/jsonrpc" else None
        if self._transient_failure(handler, target):
            return
        handler.send_json(200, route(self.app, payload))

    def _json2(self, handler: _Handler, model: str, method: str) -> None:
        raw = handler.body()
        self._inject_delay()
        if self._transient_failure(handler, (model, method)):
            return
        status, payload = json2.handle_json2(self.app, model, method, handler.headers, raw)
        handler.send_json(status, payload)

    # -- admin endpoints -----------------------------------------------------------------

    def _admin(self, handler: _Handler, verb: str, path: str) -> None:
        body = {}
        if verb == "POST":
            try:
                body = json.loads(handler.body() or b"{}")
            except ValueError:
                handler.send_json(400, {"error": "Invalid JSON data"})
                return
            if not isinstance(body, dict):
                handler.send_json(400, {"error": "The body must be a JSON object"})
                return
        if not self._is_admin(json2.bearer_key(handler.headers) or body.pop("api_key", None)):
            handler.send_json(401, {"error": "The admin API key is required"})
            return
        endpoint = ADMIN_ROUTES.get((verb, path))
        if endpoint is None:
            handler.send_text(404, _NOT_FOUND, "text/html; charset=utf-8")
            return
        try:
            status, payload = endpoint(self, body)
        except (TypeError, ValueError) as error:
            status, payload = 400, {"error": str(error)}
        handler.send_json(status, payload)
        if body.get("restart") is True and status == 200:
            self.restart(body.get("restart_seconds"), wait=False)

    def _is_admin(self, key) -> bool:
        with self.app.store.transaction() as tx:
            return self.app.uid_for_key(tx, key) == ADMIN_UID

    def _get_faults(self, body: dict):
        return 200, self.faults.as_dict()

    def _set_faults(self, body: dict):
        settings = {k: v for k, v in body.items() if k != "restart"}
        self.faults.update(**settings)
        return 200, {**self.faults.as_dict(), "restarting": body.get("restart") is True}

    def _reset_faults(self, body: dict):
        self.faults.reset()
        return 200, self.faults.as_dict()

    def _get_stats(self, body: dict):
        return 200, self.stats.as_dict()

    def _reset_stats(self, body: dict):
        self.stats.reset()
        return 200, self.stats.as_dict()


ADMIN_ROUTES = {
    ("GET", "/sandbox/faults"): SandboxServer._get_faults,
    ("POST", "/sandbox/faults"): SandboxServer._set_faults,
    ("POST", "/sandbox/reset-faults"): SandboxServer._reset_faults,
    ("GET", "/sandbox/stats"): SandboxServer._get_stats,
    ("POST", "/sandbox/stats/reset"): SandboxServer._reset_stats,
}

_NOT_FOUND = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server.</p>\n"
)


def _transient_page(status: int) -> str:
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Time-out"}
    text = f"{status} {reason.get(status, 'Error')}"
    return f"<html><head><title>{text}</title></head><body><h1>{text}</h1></body></html>\n"
