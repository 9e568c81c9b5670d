"""Injected faults look to a client like the real failures they stand for."""

import http.client
import socket
import threading
import time
import urllib.error

import odoorpc
import pytest


def _client(sandbox, timeout: float = 10) -> odoorpc.ODOO:
    client = odoorpc.ODOO(sandbox.host, port=sandbox.port, protocol="jsonrpc", timeout=timeout)
    client.login(sandbox.db, sandbox.login, sandbox.api_key)
    return client


def test_error_rate_one_answers_502_and_504_in_turn(odoo_sandbox, odoorpc_client):
    orders = odoorpc_client.env["purchase.order"]
    odoo_sandbox.server.faults.update(error_rate=1.0)
    statuses = []
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError) as raised:
            orders.search([], limit=1)
        statuses.append(raised.value.code)
    assert statuses == [502, 504, 502]
    assert odoo_sandbox.server.stats.count("purchase.order", "search") == 3


def test_error_status_can_be_chosen_and_faults_reset(odoo_sandbox, odoorpc_client, odoo_http):
    status, settings = odoo_http.admin("/sandbox/faults", {"error_rate": 1.0, "error_status": 503})
    assert status == 200
    assert settings["error_status"] == 503
    with pytest.raises(urllib.error.HTTPError) as raised:
        odoorpc_client.env["res.partner"].search([], limit=1)
    assert raised.value.code == 503
    assert odoo_http.admin("/sandbox/reset-faults", {})[1]["error_rate"] == 0.0
    assert odoorpc_client.env["res.partner"].search([], limit=1)


def test_errors_spare_the_version_probe_and_common_login(odoo_sandbox, odoo_http):
    odoo_sandbox.server.faults.update(error_rate=1.0)
    client = odoorpc.ODOO(odoo_sandbox.host, port=odoo_sandbox.port, protocol="jsonrpc")
    assert client.version == "17.0"
    reply = odoo_http.jsonrpc("common", "login", odoo_sandbox.db, "admin", "admin")
    assert reply["result"] == 2


def test_latency_delays_every_rpc(odoo_sandbox, odoorpc_client):
    odoo_sandbox.server.faults.latency_ms = 300
    started = time.monotonic()
    odoorpc_client.env["res.partner"].search([], limit=1)
    assert time.monotonic() - started >= 0.3


def test_timeout_answering_late_hits_the_client_timeout(odoo_sandbox):
    client = _client(odoo_sandbox, timeout=0.3)
    odoo_sandbox.server.faults.update(timeout_rate=1.0, hang_seconds=0.8)
    with pytest.raises((TimeoutError, socket.timeout)):
        client.env["res.partner"].search([], limit=1)


def test_timeout_dropping_the_connection(odoo_sandbox):
    client = _client(odoo_sandbox)
    odoo_sandbox.server.faults.update(timeout_rate=1.0, hang_seconds=0.1, timeout_mode="drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        client.env["res.partner"].search([], limit=1)


def test_seeded_faults_repeat(odoo_sandbox, odoorpc_client):
    partners = odoorpc_client.env["res.partner"]

    def run() -> list[bool]:
        odoo_sandbox.server.faults.update(error_rate=0.5, seed=42)
        outcomes = []
        for _ in range(12):
            try:
                partners.search([], limit=1)
                outcomes.append(True)
            except urllib.error.HTTPError:
                outcomes.append(False)
        return outcomes

    first = run()
    assert first == run()
    assert True in first and False in first


def test_restart_refuses_then_comes_back_with_the_data(odoo_sandbox, odoorpc_client, odoo_http):
    partner_id = odoorpc_client.env["res.partner"].create({"name": "Survives restarts"})
    status, reply = odoo_http.admin("/sandbox/faults", {"restart": True, "restart_seconds": 0.8})
    assert (status, reply["restarting"]) == (200, True)
    time.sleep(0.3)
    with pytest.raises(urllib.error.URLError) as raised:
        odoorpc_client.env["res.partner"].search([], limit=1)
    assert isinstance(raised.value.reason, ConnectionRefusedError)
    deadline = time.monotonic() + 5
    while True:
        try:
            rows = odoorpc_client.env["res.partner"].read([partner_id], ["name"])
            break
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the sandbox did not come back"
            time.sleep(0.1)
    assert rows == [{"id": partner_id, "name": "Survives restarts"}]


def test_restart_drops_calls_in_flight(odoo_sandbox):
    client = _client(odoo_sandbox)
    odoo_sandbox.server.faults.latency_ms = 1500
    failures = []

    def slow_call():
        try:
            client.env["res.partner"].search([], limit=1)
        except (OSError, http.client.HTTPException) as error:
            failures.append(error)

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(0.3)
    odoo_sandbox.server.restart(seconds=0.2)
    caller.join(5)
    assert len(failures) == 1


def test_stats_count_object_calls_and_reset(odoo_sandbox, odoorpc_client, odoo_http):
    odoo_http.admin("/sandbox/stats/reset", {})
    odoorpc_client.env["purchase.order"].search_read([], ["name"], limit=2)
    odoorpc_client.env["purchase.order"].search_read([], ["name"], limit=2)
    odoorpc_client.env["sale.order"].search([], limit=1)
    status, stats = odoo_http.admin("/sandbox/stats")
    assert status == 200
    assert stats["calls"]["purchase.order"]["search_read"] == 2
    assert stats["calls"]["sale.order"]["search"] == 1
    assert stats["total"] == sum(n for calls in stats["calls"].values() for n in calls.values())
    assert odoo_http.admin("/sandbox/stats/reset", {})[1] == {"total": 0, "calls": {}}


def test_admin_endpoints_need_the_admin_key(odoo_http):
    assert odoo_http.admin("/sandbox/faults", key="wrong")[0] == 401
    assert odoo_http.admin("/sandbox/faults", {"latency_ms": 5}, key="buyer")[0] == 401
    status, _, _ = odoo_http.post("/sandbox/faults", b'{"api_key": "admin", "latency_ms": 5}')
    assert status == 200
    assert odoo_http.admin("/sandbox/faults")[1]["latency_ms"] == 5


def test_bad_fault_settings_are_refused(odoo_http):
    status, reply = odoo_http.admin("/sandbox/faults", {"error_rate": 2})
    assert status == 400
    assert "error_rate" in reply["error"]
    assert odoo_http.admin("/sandbox/faults", {"explode": True})[0] == 400


def test_access_error_models_through_the_endpoint(odoo_http, odoorpc_client):
    odoo_http.admin("/sandbox/faults", {"access_error_models": ["stock.scrap"]})
    with pytest.raises(odoorpc.error.RPCError) as raised:
        odoorpc_client.env["stock.scrap"].search([], limit=1)
    assert raised.value.info["data"]["name"] == "odoo.exceptions.AccessError"


def test_concurrent_requests_are_served(odoo_sandbox):
    clients = [_client(odoo_sandbox) for _ in range(6)]
    odoo_sandbox.server.faults.latency_ms = 300
    results = []

    def call(client):
        results.append(client.env["res.partner"].search_count([]))

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(results) == 6
    assert time.monotonic() - started < 1.5
