"""What the write-back tests share: Tollgate pointed at a sandbox, Odoo as its users see it,
requests linked to Odoo records, and a real Celery worker that a test may kill.
"""

import contextlib
import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import odoorpc
from django.contrib.auth import get_user_model

from approvals import policies
from approvals import services as approvals
from approvals.models import ApprovalRequest, RequestState
from sites.models import Site
from tests.seeded_demo import seed_demo

BASE_DIR = Path(__file__).resolve().parents[3]
# A Tuesday morning inside every demo site's business hours, after the demo policy and rates
# took effect: submissions at this moment carry no after-hours flag, whatever the wall clock.
WORKDAY = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
AMS_WAREHOUSE = 1
# The people of the demo company who decide, in the order a test asks them.
DECIDERS = ("site.manager", "regional.manager", "rm.benelux.2", "finance", "sm.dublin", "rm.uki")


def connect_tollgate(settings, sandbox, *, history: bool = False) -> None:
    """Seed the demo company (with its ninety days of history if asked) and point Tollgate's
    Odoo settings at `sandbox`."""
    seed_demo(history=history)
    settings.ODOO_URL = sandbox.url
    settings.ODOO_DB = sandbox.db
    settings.ODOO_LOGIN = sandbox.login
    settings.ODOO_API_KEY = sandbox.api_key
    settings.ODOO_VERSION = "17.0"


def odoo_admin(sandbox) -> odoorpc.ODOO:
    """The real OdooRPC client, logged in as the sandbox's admin, for looking at Odoo."""
    client = odoorpc.ODOO(sandbox.host, port=sandbox.port, version="17.0")
    client.login(sandbox.db, sandbox.login, sandbox.api_key)
    return client


def user(username: str):
    return get_user_model().objects.get(username=username)


# --- Odoo as people see it --------------------------------------------------------------------


def state_in_odoo(odoo, model: str, record_id: int) -> str:
    return odoo.execute_kw(model, "read", [[record_id], ["state"]])[0]["state"]


def notes_on(odoo, model: str, record_id: int) -> list[str]:
    """The chatter messages of one record, as text the way Odoo shows them."""
    rows = odoo.execute_kw(
        "mail.message",
        "search_read",
        [[["model", "=", model], ["res_id", "=", record_id]], ["body"]],
        {"order": "id asc"},
    )
    return [shown(row["body"]) for row in rows]


def notes_by_record(odoo, model: str, record_ids: list[int]) -> dict[int, int]:
    """How many chatter messages each of `record_ids` carries, in one call."""
    rows = odoo.execute_kw(
        "mail.message",
        "search_read",
        [[["model", "=", model], ["res_id", "in", record_ids]], ["res_id"]],
    )
    counts = dict.fromkeys(record_ids, 0)
    for row in rows:
        counts[row["res_id"]] += 1
    return counts


def shown(body: str) -> str:
    """What a person reads in Odoo's chatter for an HTML message body."""
    return html.unescape(re.sub(r"<[^>]+>", "", body or ""))


def new_purchase_orders(odoo, count: int, *, unit_price: float = 40.0) -> list[int]:
    """`count` small orders of Amsterdam waiting for approval, created in one call."""
    template = odoo.execute_kw(
        "purchase.order",
        "search_read",
        [
            [["state", "=", "to approve"], ["picking_type_id.warehouse_id", "=", AMS_WAREHOUSE]],
            ["partner_id", "picking_type_id", "company_id", "currency_id", "order_line"],
        ],
        {"limit": 1},
    )[0]
    line = odoo.execute_kw(
        "purchase.order.line", "read", [template["order_line"][:1], ["product_id", "name"]]
    )[0]
    vals = {
        "partner_id": template["partner_id"][0],
        "picking_type_id": template["picking_type_id"][0],
        "company_id": template["company_id"][0],
        "currency_id": template["currency_id"][0],
        "state": "to approve",
        "order_line": [
            [
                0,
                0,
                {
                    "product_id": line["product_id"][0],
                    "name": line["name"],
                    "product_qty": 1.0,
                    "price_unit": unit_price,
                },
            ]
        ],
    }
    return odoo.execute_kw("purchase.order", "create", [[dict(vals) for _ in range(count)]])


# --- requests linked to Odoo records ----------------------------------------------------------


def raise_linked(
    *,
    odoo_model: str,
    odoo_id: int,
    amount: str,
    kind: str = "purchase",
    site: str = "AMS",
    **fields,
) -> ApprovalRequest:
    """Raise and submit a request for an Odoo record, as the sync does, on a working morning."""
    place = Site.objects.get(code=site)
    fields.setdefault("counterparty", "Demo vendor" if kind == "purchase" else "")
    request = approvals.request_create(
        requester=user("requester"),
        kind=kind,
        site=place,
        title=f"{odoo_model},{odoo_id}",
        reason="Raised from Odoo for a write-back test.",
        amount=Decimal(amount),
        currency=place.currency,
        odoo_model=odoo_model,
        odoo_id=odoo_id,
        by_system=True,
        **fields,
    )
    return approvals.request_submit(actor=None, request_id=request.pk, at=WORKDAY)


def approve_fully(request: ApprovalRequest) -> list[str]:
    """Have the demo deciders approve every tier in turn; return who approved, in order."""
    approvers: list[str] = []
    while True:
        request.refresh_from_db()
        if request.state != RequestState.IN_REVIEW:
            return approvers
        decider = next(
            person
            for name in DECIDERS
            if name not in approvers and policies.decision_options(person := user(name), request)
        )
        approvals.request_approve(actor=decider, request_id=request.pk)
        approvers.append(decider.username)


# --- a real Celery worker -----------------------------------------------------------------


def start_worker(queue: str, env: dict) -> subprocess.Popen:
    """A Celery worker in its own process group, consuming only `queue`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--queues",
            queue,
            "--hostname",
            f"{queue}-{time.monotonic_ns()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,
    )


def kill_worker(worker: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the worker and every process it forked, then reap it."""
    if worker.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, sig)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def wait_for(condition: Callable[[], object], *, timeout: float, what: str):
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
