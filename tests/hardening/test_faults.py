"""Faults while Tollgate runs: Odoo down, the broker restarted, a worker killed, the database
connections dropped. After recovery every accepted decision and event is applied exactly once.

The processes are real (gunicorn, a Celery worker on a Redis of the test's own, the Odoo
sandbox). In the short form Odoo is down for seconds and the write-backs retry on a
compressed schedule (a few seconds apart); `make soak` keeps Odoo down for four minutes with
back-off of up to a minute, as an outage in production would be lived through. The beat's
sweeps (outbox drain, stranded webhook deliveries) are run by hand where a test needs them, at
the moment beat would run them.
"""

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from celery.app.task import Task
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from approvals.models import ApprovalRequest, RequestState
from portal.audit.models import AuditEvent
from portal.integrations.odoo import services as odoo_services
from portal.integrations.odoo import tasks as odoo_tasks
from portal.integrations.odoo.errors import ErrorKind, OdooError
from portal.integrations.odoo.models import OutboxItem, OutboxState
from portal.webhooks import demo as webhook_demo
from portal.webhooks import services as webhook_services
from portal.webhooks.models import DeliveryStatus, InboundDelivery
from tests import ledger
from tests.hardening import load, stack
from tests.hardening.fullstack import (
    _working_morning,
    full_stack,
    odoo_sandbox_factory,
    odoo_sandbox_template,
    running_stack,
    soak,
    token_for,
)
from tests.integrations.odoo.push_support import (
    approve_fully,
    connect_tollgate,
    new_purchase_orders,
    notes_by_record,
    odoo_admin,
    raise_linked,
    user,
)
from tests.webhooks.conftest import carrier_event, signed_headers

# Fixtures of the running stack, imported above.
__all__ = ["_working_morning", "odoo_sandbox_factory", "odoo_sandbox_template"]
__all__ += ["running_stack", "soak"]


PO = "purchase.order"
# Retries a few seconds apart, so that a short outage is retried through several times.
SHORT_RETRIES = {
    "ODOO_PUSH_BACKOFF_SECONDS": 1,
    "ODOO_PUSH_BACKOFF_MAX_SECONDS": 3,
    "ODOO_PUSH_SETTLE_SECONDS": 2,
    "ODOO_PUSH_MAX_ATTEMPTS": 40,
    "ODOO_TIMEOUT": 5,
}
# Production's base back-off, capped at a minute, enough attempts to outlive the outage.
SOAK_RETRIES = SHORT_RETRIES | {
    "ODOO_PUSH_BACKOFF_SECONDS": 5,
    "ODOO_PUSH_BACKOFF_MAX_SECONDS": 60,
    "ODOO_PUSH_MAX_ATTEMPTS": 40,
}


def linked_requests(sandbox, count: int, amount: str = "1200.00") -> tuple[list, list[int]]:
    """`count` Odoo orders waiting for approval, each with its request in review."""
    odoo = odoo_admin(sandbox)
    orders = new_purchase_orders(odoo, count, unit_price=float(amount))
    requests = [raise_linked(odoo_model=PO, odoo_id=order, amount=amount) for order in orders]
    assert {r.state for r in requests} == {RequestState.IN_REVIEW}
    return requests, orders


def items_of(requests):
    return OutboxItem.objects.filter(request__in=requests)


def applied_exactly_once(tollgate, requests, orders) -> None:
    """Tollgate says every approval was applied; Odoo shows each order approved by one call
    and carrying one note."""
    odoo = odoo_admin(tollgate.sandbox)
    assert Counter(items_of(requests).values_list("state", flat=True)) == {
        OutboxState.APPLIED: len(requests)
    }
    states = ApprovalRequest.objects.filter(pk__in=[r.pk for r in requests])
    assert set(states.values_list("state", flat=True)) == {RequestState.APPLIED}
    in_odoo = odoo.execute_kw(PO, "read", [orders, ["state"]])
    assert {row["state"] for row in in_odoo} == {"purchase"}
    assert notes_by_record(odoo, PO, orders) == dict.fromkeys(orders, 1)
    assert tollgate.odoo.stats.count(PO, "button_approve") == len(orders)
    assert tollgate.odoo.stats.count(PO, "message_post") == len(orders)
    call_command("verify_audit")


def drained() -> bool:
    return not OutboxItem.objects.filter(state=OutboxState.PENDING).exists()


def retrying_on_dashboard(client) -> dict[str, int]:
    """The "Outbox items retrying" column of the write-back chart, by site, as a person sees it."""
    response = client.get("/dashboards/failed-write-backs.csv")
    assert response.status_code == 200
    header, *rows = [line.split(",") for line in response.content.decode().splitlines()]
    column = header.index("Outbox items retrying")
    return {row[0]: int(row[column]) for row in rows if int(row[column])}


def pending_in_metrics(tollgate) -> int:
    for line in tollgate.metrics().splitlines():
        if line.startswith('tollgate_odoo_outbox_items{state="pending"}'):
            return int(float(line.split()[-1]))
    return 0


# --- the dashboard shows write-backs that are being retried ------------------------------------


def test_a_write_back_odoo_did_not_answer_shows_as_retrying_until_it_is_applied(
    db, settings, odoo_sandbox_factory, client, monkeypatch
):
    sandbox = odoo_sandbox_factory()
    connect_tollgate(settings, sandbox)
    # The write-back is run by hand below, not by the task its decision enqueues.
    monkeypatch.setattr(odoo_services, "_schedule", lambda item_id, countdown: None)
    (request,), _ = linked_requests(sandbox, 1)
    approve_fully(request)
    (item,) = items_of([request])
    client.force_login(user("regional.manager"))
    assert retrying_on_dashboard(client) == {}

    def unreachable():
        raise OdooError("Odoo did not answer.", permanent=False, kind=ErrorKind.CONNECTION)

    assert odoo_services.outbox_apply(item_id=item.pk, client_factory=unreachable).status == (
        "retry"
    )
    assert retrying_on_dashboard(client) == {"AMS": 1}
    client.force_login(user("outsider"))
    assert retrying_on_dashboard(client) == {}

    client.force_login(user("regional.manager"))
    item.refresh_from_db()
    item.next_attempt_at = timezone.now()  # as if the retry's time had come
    item.save(update_fields=["next_attempt_at"])
    assert odoo_services.outbox_apply(item_id=item.pk).status == "applied"
    assert retrying_on_dashboard(client) == {}


def test_a_decision_taken_while_the_broker_is_unreachable_answers_200_and_waits_for_the_drain(
    db, settings, odoo_sandbox_factory, client, monkeypatch, django_capture_on_commit_callbacks
):
    sandbox = odoo_sandbox_factory()
    connect_tollgate(settings, sandbox)
    (request,), _ = linked_requests(sandbox, 1)

    def unreachable(*args, **kwargs):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Task, "apply_async", unreachable)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/approvals/{request.pk}/approve/",
            {"comment": "Within budget."},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token_for('site.manager')}"},
        )

    assert response.status_code == 200, response.content
    assert response.json()["state"] == RequestState.APPROVED
    (item,) = items_of([request])
    assert (item.state, item.attempts) == (OutboxState.PENDING, 0)
    assert odoo_services.outbox_due() == [item.pk]  # what beat's drain enqueues next


# --- (a) Odoo down ------------------------------------------------------------------------------


@full_stack
def test_odoo_down_while_decisions_are_made_is_shown_retried_and_applied_once(
    running_stack, soak, client
):
    # Long enough, even in the short form, that the approvals and two retries of each write-back
    # fit inside the outage on a loaded machine (they take 2-3 s on an idle one).
    outage = 240 if soak else 30
    count = 40 if soak else 4
    tollgate = running_stack(**(SOAK_RETRIES if soak else SHORT_RETRIES))
    requests, orders = linked_requests(tollgate.sandbox, count)
    tollgate.odoo.stats.reset()
    client.force_login(user("regional.manager"))

    tollgate.odoo.restart(seconds=outage, wait=False)
    went_down = time.monotonic()
    stack.wait_for(lambda: not tollgate.ready()["odoo"], timeout=10, what="Odoo to be down")
    for request in requests:
        approve_fully(request)
    stack.wait_for(
        lambda: all(item.attempts >= 2 for item in items_of(requests)),
        timeout=outage,
        what="every write-back to be retried at least once",
    )
    # While Odoo is down: the probe, the metrics and the dashboard all say so.
    assert tollgate.ready() == {
        "database": True,
        "broker": True,
        "odoo": False,
        "audit_seal": True,
        "status": 503,
    }
    assert pending_in_metrics(tollgate) == count
    assert retrying_on_dashboard(client) == {"AMS": count}
    assert time.monotonic() - went_down < outage, "the outage ended before it was observed"

    stack.wait_for(drained, timeout=outage + 120, what="the outbox to drain after the outage")
    print(
        f"\nOdoo down {outage} s: {count} write-backs applied after "
        f"{time.monotonic() - went_down:.0f} s; attempts "
        f"{dict(Counter(items_of(requests).values_list('attempts', flat=True)))}"
    )
    applied_exactly_once(tollgate, requests, orders)
    assert retrying_on_dashboard(client) == {}
    assert pending_in_metrics(tollgate) == 0
    assert tollgate.ready()["status"] == 200


# --- (b) the broker restarted -------------------------------------------------------------------


def carrier_delay(number: int) -> dict:
    body = carrier_event(
        tracking_number=f"1ZBROKER{number:08d}", picking_ref=f"AMS/OUT/{number:05d}", site="AMS"
    )
    secret = webhook_demo.demo_secret("carrier")
    return {
        "method": "POST",
        "path": "/api/v1/webhooks/carrier/",
        "body": body.decode(),
        "headers": signed_headers(body, secret=secret, webhook_id=f"msg_broker_{number}"),
    }


@full_stack
def test_decisions_and_events_taken_while_the_broker_is_down_are_applied_after_the_sweeps(
    running_stack, soak
):
    count = 30 if soak else 3
    tollgate = running_stack(**SHORT_RETRIES)
    requests, orders = linked_requests(tollgate.sandbox, count)
    tollgate.odoo.stats.reset()
    token = token_for("site.manager")

    tollgate.redis.stop()  # it keeps nothing on disk: whatever was queued is gone
    stack.wait_for(lambda: not tollgate.ready()["broker"], timeout=10, what="the broker down")
    answers = [
        load.perform(
            tollgate.web.url,
            {
                "method": "POST",
                "path": f"/api/v1/approvals/{request.pk}/approve/",
                "token": token,
                "json": {"comment": "Within budget."},
            },
        )
        for request in requests
    ]
    answers += [load.perform(tollgate.web.url, carrier_delay(n)) for n in range(count)]
    assert [a["status"] for a in answers] == [200] * count + [202] * count, [
        a.get("detail", "")[:2000] for a in answers
    ]
    assert tollgate.ready() == {
        "database": True,
        "broker": False,
        "odoo": True,
        "audit_seal": True,
        "status": 503,
    }
    tollgate.redis.start()
    stack.wait_for(lambda: tollgate.ready()["broker"], timeout=30, what="the broker back")

    # Nothing reached the broker; beat's sweeps find the work in the database.
    assert odoo_tasks.drain_outbox() == count
    later = timezone.now() + webhook_services.STRANDED_AFTER
    assert webhook_services.deliveries_stranded_sweep(now=later) == count
    stack.wait_for(drained, timeout=120, what="the write-backs after the broker came back")
    deliveries = InboundDelivery.objects.filter(webhook_id__startswith="msg_broker_")
    stack.wait_for(
        lambda: set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED},
        timeout=120,
        what="the stranded webhook deliveries to be processed",
    )
    assert deliveries.count() == count
    applied_exactly_once(tollgate, requests, orders)


# --- (c) a worker killed mid-task --------------------------------------------------------------


@full_stack
def test_a_task_whose_pool_process_is_killed_is_redelivered_and_applied_once(running_stack):
    tollgate = running_stack(workers=1, concurrency=1, **SHORT_RETRIES)
    requests, orders = linked_requests(tollgate.sandbox, 1)
    tollgate.odoo.stats.reset()
    tollgate.odoo.faults.update(latency_ms=700)  # each Odoo call now takes 0.7 s
    (worker,) = tollgate.workers

    approve_fully(requests[0])
    stack.wait_for(
        lambda: tollgate.odoo.stats.count(PO, "read"), timeout=60, what="the task to start"
    )
    (child,) = stack.worker_children(worker)
    os.kill(child, signal.SIGKILL)  # the pool process running the task, mid-way through it
    stack.wait_for(
        lambda: stack.worker_children(worker) not in ([], [child]),
        timeout=30,
        what="the worker to fork a fresh pool process",
    )
    tollgate.odoo.faults.update(latency_ms=0)

    # No sweep runs: the worker hands the unacknowledged task back and runs it again.
    stack.wait_for(drained, timeout=90, what="the redelivered task to apply the write-back")
    assert worker.poll() is None
    applied_exactly_once(tollgate, requests, orders)
    assert tollgate.odoo.stats.count(PO, "read") >= 2  # the second run read Odoo first


# --- (d) database connections dropped ----------------------------------------------------------


def unlocked(item_id: int) -> bool:
    with transaction.atomic():
        return OutboxItem.objects.select_for_update(skip_locked=True).filter(pk=item_id).exists()


def terminate_other_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@full_stack
def test_dropped_database_connections_fail_nothing_half_way_and_the_next_operations_succeed(
    running_stack,
):
    tollgate = running_stack(web_workers=1, workers=1, concurrency=1, **SHORT_RETRIES)
    requests, orders = linked_requests(tollgate.sandbox, 3)
    tollgate.odoo.stats.reset()
    token = token_for("site.manager")
    listing = {"method": "GET", "path": "/api/v1/approvals/", "token": token}
    assert load.perform(tollgate.web.url, listing)["status"] == 200  # the web now holds one

    # The worker's connection is cut while it holds the request's lock and talks to Odoo.
    tollgate.odoo.faults.update(latency_ms=700)
    approve_fully(requests[0])
    stack.wait_for(
        lambda: tollgate.odoo.stats.count(PO, "read"), timeout=60, what="the write-back to start"
    )
    assert terminate_other_connections() >= 2  # the web's and the worker's
    tollgate.odoo.faults.update(latency_ms=0)
    (item,) = items_of(requests[:1])
    stack.wait_for(lambda: unlocked(item.pk), timeout=30, what="the cut transaction's locks")
    # Its transaction was rolled back whole: the row is as the decision left it.
    item.refresh_from_db()
    assert (item.state, item.attempts, item.applied_at) == (OutboxState.PENDING, 0, None)

    # The web server's next requests succeed on fresh connections.
    answers = [
        load.perform(
            tollgate.web.url,
            {
                "method": "POST",
                "path": f"/api/v1/approvals/{request.pk}/approve/",
                "token": token,
                "json": {"comment": "Within budget."},
            },
        )
        for request in requests[1:]
    ]
    assert [a["status"] for a in answers] == [200, 200], answers
    assert load.perform(tollgate.web.url, listing)["status"] == 200
    # Whatever the interrupted task left pending, beat's drain hands it to the worker again.
    odoo_tasks.drain_outbox()
    stack.wait_for(drained, timeout=90, what="every write-back after the drop")
    applied_exactly_once(tollgate, requests, orders)


# --- (e) RabbitMQ stopped and restarted mid-load -----------------------------------------------

NEEDS_RABBITMQ = pytest.mark.skipif(
    not stack.RabbitMQ.available(), reason="rabbitmq-server is not installed on this machine"
)
NEEDS_INITDB = pytest.mark.skipif(
    not stack.Postgres.available(), reason="PostgreSQL's initdb is not installed on this machine"
)


def approve_op(request, token: str) -> dict:
    return {
        "method": "POST",
        "path": f"/api/v1/approvals/{request.pk}/approve/",
        "token": token,
        "json": {"comment": "Within budget."},
        "tag": request.pk,
    }


class PacedLoad:
    """Operations sent one after another from a thread of their own, `pace` seconds apart, while
    the test injects its fault; `answers` fills as they come back."""

    def __init__(self, base_url: str, ops: list[dict], pace: float):
        self.base_url, self.ops, self.pace = base_url, ops, pace
        self.answers: list[dict] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for op in self.ops:
            self.answers.append(load.perform(self.base_url, op))
            time.sleep(self.pace)

    def __enter__(self) -> "PacedLoad":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(timeout=600)

    def answered(self, count: int) -> bool:
        return len(self.answers) >= count


def decision_footprint(request) -> tuple:
    """What one decision leaves: (decided, decisions, decision events, outbox items)."""
    request.refresh_from_db()
    events = AuditEvent.objects.filter(
        object_type="approvals.approvalrequest",
        object_id=str(request.pk),
        action__startswith="decision.",
    )
    return (
        request.state != RequestState.IN_REVIEW,
        request.decisions.count(),
        events.count(),
        items_of([request]).count(),
    )


def whole_or_nothing(requests) -> Counter:
    """Each decision is either all there or not there at all; the count of each."""
    seen = Counter(decision_footprint(request) for request in requests)
    assert set(seen) <= {(False, 0, 0, 0), (True, 1, 1, 1)}, seen
    return seen


def retry_until_decided(base_url: str, requests, token: str) -> None:
    """What a client does after an error: ask again. 200 if the first attempt was rolled back,
    409 if it had been applied after all; never a second decision."""
    for request in requests:
        answer = load.perform(base_url, approve_op(request, token))
        assert answer["status"] in (200, 409), answer


@full_stack
@NEEDS_RABBITMQ
def test_rabbitmq_stopped_and_restarted_mid_load_loses_nothing_and_applies_each_once(
    running_stack, soak
):
    count, down = (40, 60) if soak else (10, 4)
    tollgate = running_stack(broker="rabbitmq", **SHORT_RETRIES)
    requests, orders = linked_requests(tollgate.sandbox, count)
    tollgate.odoo.stats.reset()
    tollgate.odoo.faults.update(latency_ms=300)  # write-backs still queued when it stops
    token = token_for("site.manager")
    (worker,) = tollgate.workers

    ops = [approve_op(request, token) for request in requests]
    with PacedLoad(tollgate.web.url, ops, pace=(down + 8) / count) as paced:
        stack.wait_for(lambda: paced.answered(2), timeout=60, what="the first decisions")
        tollgate.broker.stop()  # a clean stop: what was queued is kept on its disk
        stack.wait_for(lambda: not tollgate.ready()["broker"], timeout=20, what="broker down")
        time.sleep(down)
        during = len(paced.answers)
        tollgate.broker.start()
    tollgate.odoo.faults.update(latency_ms=0)

    # Every decision was taken and answered, whether or not its write-back could be queued.
    assert [a["status"] for a in paced.answers] == [200] * count, paced.answers
    assert during < count, "the load ended before the broker came back"
    stack.wait_for(lambda: tollgate.ready()["broker"], timeout=30, what="the broker back")
    # Write-backs decided while it was down never reached it: beat's drain finds them.
    odoo_tasks.drain_outbox()
    stack.wait_for(drained, timeout=180, what="the write-backs after the broker came back")
    assert worker.poll() is None  # the worker reconnected by itself
    ledger.seal_all()
    applied_exactly_once(tollgate, requests, orders)


# --- (f) PostgreSQL restarted mid-load ---------------------------------------------------------


@full_stack
@NEEDS_INITDB
def test_a_postgresql_restart_mid_load_is_survived_by_web_and_workers_without_their_restart(
    running_stack, soak
):
    count, down = (40, 30) if soak else (8, 2)
    tollgate = running_stack(private_database=True, **SHORT_RETRIES)
    requests, orders = linked_requests(tollgate.sandbox, count)
    tollgate.odoo.stats.reset()
    token = token_for("site.manager")
    web_pid, (worker,) = tollgate.web.process.pid, tollgate.workers

    ops = [approve_op(request, token) for request in requests]
    with PacedLoad(tollgate.web.url, ops, pace=(down + 6) / count) as paced:
        stack.wait_for(lambda: paced.answered(2), timeout=60, what="the first decisions")
        tollgate.postgres.restart(down_seconds=down)  # fast shutdown: sessions cut mid-work
    assert len(paced.answers) == count
    connection.close()  # this test's own session was cut too

    statuses = Counter(a["status"] for a in paced.answers)
    assert set(statuses) <= {200, 500, 503, 0}, paced.answers
    # The same processes serve again, on fresh connections.
    stack.wait_for(lambda: tollgate.ready()["database"], timeout=30, what="the database probe")
    assert tollgate.web.process.pid == web_pid and tollgate.web.process.poll() is None
    assert worker.poll() is None

    # An error never left half a decision behind; asking again completes the rest, once.
    whole_or_nothing(requests)
    failed = [r for r, a in zip(requests, paced.answers, strict=True) if a["status"] != 200]
    retry_until_decided(tollgate.web.url, failed, token)
    assert whole_or_nothing(requests) == {(True, 1, 1, 1): count}
    odoo_tasks.drain_outbox()  # beat's drain: write-backs whose task failed with the database
    stack.wait_for(drained, timeout=180, what="every write-back after the restart")
    print(f"\nPostgreSQL down {down} s mid-load: answers {dict(statuses)}")
    ledger.seal_all()
    applied_exactly_once(tollgate, requests, orders)


# --- (g) gunicorn workers killed mid-request ---------------------------------------------------


def blocked_writers() -> list[tuple[int, str | None]]:
    """(pid, transaction id) of the sessions of this database waiting for a lock to append
    to the ledger. A sealer waiting to seal (an UPDATE, from any process that wrote the ledger
    a moment ago, this one included) is not a writer of a decision and is left out."""
    with connection.cursor() as cursor:
        # Inside a transaction the statistics views keep their first snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid, backend_xid::text FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query ILIKE 'insert%%audit_auditevent%%'"
        )
        return cursor.fetchall()


@full_stack
def test_web_workers_killed_mid_request_leave_each_decision_whole_or_absent(running_stack, soak):
    """The kill lands inside the decision's transaction: the ledger's table is locked by the
    test, so the request waits at its last step (appending the events) after it has written the
    request's new state and its decision; then every gunicorn worker is SIGKILLed."""
    cut, count = (10, 20) if soak else (2, 4)
    tollgate = running_stack(web_workers=2, web_threads=4, **SHORT_RETRIES)
    requests, orders = linked_requests(tollgate.sandbox, count)
    tollgate.odoo.stats.reset()
    token = token_for("site.manager")

    kills = 0
    for request in requests[:cut]:
        with ThreadPoolExecutor(max_workers=1) as pool, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE audit_auditevent IN EXCLUSIVE MODE")
            answer = pool.submit(load.perform, tollgate.web.url, approve_op(request, token))
            ((_, xid),) = stack.wait_for(
                blocked_writers, timeout=60, what="the decision to wait at the ledger"
            )
            assert xid is not None, "the decision had written nothing yet"
            for pid in stack.worker_children(tollgate.web.process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
            assert answer.result()["status"] == 0  # the connection dropped, no answer
        # Leaving the block released the lock: the orphaned session goes on, finds its client
        # gone before any COMMIT, and rolls back.
        stack.wait_for(lambda: not blocked_writers(), timeout=30, what="the cut session to end")
        assert decision_footprint(request) == (False, 0, 0, 0)

    # The master replaced the workers; the cut decisions are taken again, the others once.
    stack.wait_for(lambda: tollgate.web.get("/healthz")[0] == 200, timeout=60, what="web")
    answers = [load.perform(tollgate.web.url, approve_op(r, token)) for r in requests]
    assert [a["status"] for a in answers] == [200] * count, answers
    assert whole_or_nothing(requests) == {(True, 1, 1, 1): count}
    print(f"\n{cut} decisions cut mid-transaction by killing {kills} web workers")
    stack.wait_for(drained, timeout=180, what="every write-back")
    ledger.seal_all()
    applied_exactly_once(tollgate, requests, orders)
