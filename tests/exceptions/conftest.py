"""A subscriber to the case events: Tollgate records an outbound event only when one wants it."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.webhooks import outbound

CASE_EVENTS = ["exception.opened", "exception.resolved", "sla.breached"]


class _Accepting(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def subscriber(db, settings):
    """A subscription to every case event, at a local receiver that accepts each delivery."""
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/tollgate"
    subscription, _ = outbound.subscription_create(
        actor=None, name="case-events", url=url, event_types=CASE_EVENTS
    )
    yield subscription
    server.shutdown()
    server.server_close()
