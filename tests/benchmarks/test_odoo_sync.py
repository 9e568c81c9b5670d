"""Odoo sync: 10,000 changed purchase orders pulled by Tollgate versus the naive OdooRPC loop.

Measures records per second and RPC calls of `manage.py sync_odoo` (the real code path:
batched `search_read` by `write_date` cursor, lookups read once per batch, every row mapped and
checked against Tollgate's requests) over 10,000 purchase orders changed in the Odoo sandbox
since the last run — drafts and RFQs sent, the bulk of what changes in a purchasing Odoo. The
sandbox runs as its own process (`manage.py odoo_sandbox`) and counts the object calls it
serves (`GET /sandbox/stats`).

Floor: the naive loop with the unmodified OdooRPC client over the same changed orders and
fields — `env["purchase.order"].search(domain)`, then `browse(id).read(fields)` record by record.

Target: ≥ 20× fewer RPC calls and ≥ 10× faster than the naive loop.

Also measured, without a target: a further run after WAITING orders came to wait for approval,
which raises a request for each (routing, risk assessment, steps, audit events) — Tollgate's
own work, which no way of reading Odoo avoids — and re-reads the orders changed within the
overlap window (ODOO_SYNC_OVERLAP_SECONDS), skipping them as already seen.

Tollgate's side writes into a database of its own, `<bench database>_odoo`, rebuilt (migrated
and seeded with the demo company) on every run, so the benchmark datasets stay untouched.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import odoorpc
import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from approvals.models import ApprovalRequest, RequestKind
from portal.integrations.odoo import mapping
from portal.integrations.odoo.sandbox.seed import DEMO_DB
from tests.benchmarks.harness import ROOT, database_url, use_database

CHANGED = 10_000
WAITING = 20
CHANGED_STATES = ("draft", "sent")
CREATE_BATCH = 2_000
MODEL = "purchase.order"
FIELDS = mapping.PurchaseOrders.fields
ODOO_LOGIN = ODOO_KEY = "admin"  # the sandbox's demo login; demo only
SECTION = "odoo sync"


@pytest.fixture(scope="module")
def tollgate_db() -> Iterator[str]:
    """A fresh Tollgate database with the demo company, whose sites map the sandbox's warehouses."""
    name = f"{connection.settings_dict['NAME']}_odoo"
    _recreate(name)
    with use_database(name):
        call_command("migrate", interactive=False, verbosity=0)
        call_command(
            "seed_demo", force=True, history=False, stdout=io.StringIO()
        )  # a throwaway database
        yield name


def _recreate(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def odoo_sandbox(data: Path) -> Iterator[str]:
    """`manage.py odoo_sandbox` on a free port with fresh demo data; yields its URL."""
    command = [sys.executable, "manage.py", "odoo_sandbox", "--port=0", "--seed=demo"]
    command += [f"--data={data}", "--reset"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url = None
        for line in process.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        if url is None:
            raise RuntimeError(f"the Odoo sandbox exited with status {process.wait()}")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _odoorpc(url: str) -> odoorpc.ODOO:
    host, port = url.removeprefix("http://").split(":")
    client = odoorpc.ODOO(host, port=int(port), protocol="jsonrpc", version="17.0")
    client.login(DEMO_DB, ODOO_LOGIN, ODOO_KEY)
    return client


def _admin(url: str, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(
        url + path,
        data=b"{}" if method == "POST" else None,
        headers={"Authorization": f"bearer {ODOO_KEY}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _calls(url: str) -> int:
    return _admin(url, "/sandbox/stats")["total"]


def _reset_calls(url: str) -> None:
    _admin(url, "/sandbox/stats/reset", "POST")


def _last_change(odoo: odoorpc.ODOO) -> str:
    """The newest write_date among the orders; the changes made after it are the run's."""
    newest = odoo.execute_kw(
        MODEL, "search_read", [[], ["write_date"]], {"order": "write_date desc", "limit": 1}
    )[0]["write_date"]
    time.sleep(1.1)  # write_date has one-second resolution: change on a later second
    return newest


def _change_orders(odoo: odoorpc.ODOO, count: int, states: tuple[str, ...]) -> None:
    """Create `count` orders like a demo one waiting for approval, in `states` by turns."""
    template = odoo.execute_kw(
        MODEL, "search_read", [[["state", "=", "to approve"]], ["partner_id", "picking_type_id"]]
    )[0]
    for start in range(0, count, CREATE_BATCH):
        vals = [
            {
                "partner_id": template["partner_id"][0],
                "picking_type_id": template["picking_type_id"][0],
                "state": states[n % len(states)],
            }
            for n in range(start, min(start + CREATE_BATCH, count))
        ]
        odoo.execute_kw(MODEL, "create", [vals])


def _naive_loop(url: str, since: str) -> tuple[int, float, int]:
    """The floor: (records read, seconds, object calls) of search-then-read-one-by-one."""
    odoo = _odoorpc(url)
    _reset_calls(url)
    started = time.perf_counter()
    orders = odoo.env[MODEL]
    ids = orders.search([["write_date", ">", since]])
    read = [orders.browse(record_id).read(FIELDS)[0] for record_id in ids]
    seconds = time.perf_counter() - started
    assert [row["id"] for row in read] == ids
    return len(read), seconds, _calls(url)


def _tollgate_sync(url: str) -> tuple[str, float, int]:
    """(`sync_odoo`'s report, seconds, object calls) of one pull of the purchase orders."""
    _reset_calls(url)
    out = io.StringIO()
    started = time.perf_counter()
    call_command("sync_odoo", model=[MODEL], stdout=out, stderr=io.StringIO())
    seconds = time.perf_counter() - started
    return out.getvalue(), seconds, _calls(url)


def test_sync_of_10k_changed_orders_against_the_naive_loop(
    tollgate_db, settings, results, tmp_path
):
    with odoo_sandbox(tmp_path / "odoo.sqlite3") as url:
        settings.ODOO_URL = url
        settings.ODOO_DB = DEMO_DB
        settings.ODOO_LOGIN = ODOO_LOGIN
        settings.ODOO_API_KEY = ODOO_KEY
        settings.ODOO_VERSION = "17.0"
        odoo = _odoorpc(url)
        _tollgate_sync(url)  # catch up with the demo data first
        since = _last_change(odoo)
        _change_orders(odoo, CHANGED, CHANGED_STATES)

        report, sync_seconds, sync_calls = _tollgate_sync(url)
        naive_read, naive_seconds, naive_calls = _naive_loop(url, since)

        before = ApprovalRequest.objects.filter(kind=RequestKind.PURCHASE).count()
        _last_change(odoo)
        _change_orders(odoo, WAITING, ("to approve",))
        waiting_report, waiting_seconds, _ = _tollgate_sync(url)
        raised = ApprovalRequest.objects.filter(kind=RequestKind.PURCHASE).count() - before

    print(f"\n  sync_odoo: {report.strip()}\n  then: {waiting_report.strip()}")
    assert naive_read == CHANGED
    assert _read(report) >= CHANGED
    assert f"ignored {CHANGED}" in report, report
    assert raised == WAITING, waiting_report

    sync_rate, naive_rate = CHANGED / sync_seconds, CHANGED / naive_seconds
    fewer_calls, faster = naive_calls / sync_calls, naive_seconds / sync_seconds
    label = "naive OdooRPC loop"
    results.add(
        SECTION,
        f"sync_odoo, {CHANGED:,} changed orders",
        sync_seconds,
        "s",
        floor=naive_seconds,
        floor_label=label,
    )
    results.add(
        SECTION,
        "sync_odoo records/s",
        sync_rate,
        "rec/s",
        floor=naive_rate,
        floor_label=label,
        target="≥ 10× the naive loop",
        ok=faster >= 10,
        note=f"{faster:.1f}× faster",
    )
    results.add(
        SECTION,
        "sync_odoo RPC calls",
        sync_calls,
        "calls",
        floor=naive_calls,
        floor_label=label,
        target="≥ 20× fewer than the naive loop",
        ok=fewer_calls >= 20,
        note=f"{fewer_calls:.0f}× fewer calls",
    )
    results.add(
        SECTION,
        f"a further sync_odoo raising {WAITING} requests",
        waiting_seconds,
        "s",
        note="also re-reads the orders inside the 2-minute overlap window; no target",
    )


def _read(report: str) -> int:
    return int(re.search(rf"{re.escape(MODEL)}: read (\d+)", report).group(1))
