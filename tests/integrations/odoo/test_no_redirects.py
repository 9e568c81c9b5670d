"""The Odoo API key never follows a redirect to another host.

urllib's default opener re-sends every header, Authorization included, to wherever a 301, 302
or 303 points. A real local server answers with a redirect to a second local server, which
records everything it is sent: it must see nothing at all.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.integrations.odoo.client import OdooClient
from portal.integrations.odoo.client.config import OdooSettings
from portal.integrations.odoo.client.transport import Transport
from portal.integrations.odoo.errors import OdooError

API_KEY = "redirect-test-api-key-0001"


class Recorder(BaseHTTPRequestHandler):
    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))

    def do_GET(self):
        self._record()
        self._answer()

    def do_POST(self):
        self._record()
        self._answer()

    def _answer(self):
        if self.server.redirect_to:
            self.send_response(self.server.status)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"jsonrpc": "2.0", "id": 1, "result": {"server_version": "19.0"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, redirect_to: str | None = None, status: int = 302):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        self.httpd.daemon_threads = True
        self.httpd.seen = []
        self.httpd.redirect_to = redirect_to
        self.httpd.status = status
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    @property
    def seen(self):
        return self.httpd.seen

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=[301, 302, 303, 307, 308])
def redirecting(request):
    with Server() as elsewhere, Server(redirect_to=elsewhere.url, status=request.param) as odoo:
        yield odoo, elsewhere


def test_the_transport_refuses_a_redirect_and_sends_nothing_to_its_target(redirecting):
    odoo, elsewhere = redirecting

    try:
        Transport(odoo.url, timeout=2).post(
            "/json/2/res.partner/search_read", {}, {"Authorization": f"bearer {API_KEY}"}
        )
    except OdooError as error:
        refused = error
    else:
        refused = None

    keys_elsewhere = [h for _, _, h, _ in elsewhere.seen if API_KEY in h.get("Authorization", "")]
    assert keys_elsewhere == [], "the API key reached the host the redirect named"
    assert refused is not None and "redirect" in str(refused)
    assert len(odoo.seen) == 1
    assert elsewhere.seen == []
    assert refused.permanent
    assert API_KEY not in str(refused)


@pytest.mark.parametrize("protocol", ["json2", "jsonrpc"])
def test_neither_backend_follows_a_redirect_with_the_key(redirecting, protocol):
    odoo, elsewhere = redirecting
    config = OdooSettings(
        url=odoo.url,
        db="fake",
        login="admin",
        api_key=API_KEY,
        protocol=protocol,
        timeout=2.0,
        version="19.0" if protocol == "json2" else "17.0",
    )

    with pytest.raises(OdooError):
        OdooClient(config).search_read("res.partner", [], ["name"])

    assert elsewhere.seen == []
