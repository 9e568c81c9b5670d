"""Decisions written back to Odoo: in the decision's transaction, once, through faults and kills.

Odoo is the sandbox throughout, looked at with the real OdooRPC client the way its users see
it: the order's state and the notes in its chatter.
"""

import heapq
import itertools
import os
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from approvals import demo, policies
from approvals import services as approvals
from approvals.models import ApprovalPolicy, ApprovalRequest, RequestState
from approvals.notifications import request_link
from approvals.specs import VersionSpec
from portal.audit.models import AuditEvent
from portal.celery import app as celery_app
from portal.integrations.odoo import services, sync, tasks
from portal.integrations.odoo.client import get_client
from portal.integrations.odoo.models import OutboxItem, OutboxState
from portal.integrations.odoo.sandbox import server as sandbox_server
from tests.integrations.odoo.push_support import (
    AMS_WAREHOUSE,
    WORKDAY,
    approve_fully,
    connect_tollgate,
    kill_worker,
    new_purchase_orders,
    notes_by_record,
    notes_on,
    odoo_admin,
    raise_linked,
    start_worker,
    state_in_odoo,
    user,
    wait_for,
)

ON_POSTGRES = connection.vendor == "postgresql"
PO = "purchase.order"


@pytest.fixture
def odoo(db, settings, odoo_sandbox):
    """Tollgate's demo company pointed at a fresh sandbox; the client shows Odoo's side."""
    connect_tollgate(settings, odoo_sandbox)
    return odoo_admin(odoo_sandbox)


def write_back(request) -> OutboxItem:
    (item,) = OutboxItem.objects.filter(request=request)
    return item


def reload(obj):
    obj.refresh_from_db()
    return obj


# --- the outbox row belongs to the decision ---------------------------------------------------


def test_the_final_approval_writes_its_outbox_row_in_the_same_transaction(odoo):
    (order,) = new_purchase_orders(odoo, 1)
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="2000.00")
    manager = user("site.manager")
    assert request.state == RequestState.IN_REVIEW

    with pytest.raises(RuntimeError), transaction.atomic():
        approvals.request_approve(actor=manager, request_id=request.pk)
        assert OutboxItem.objects.filter(request=request).count() == 1
        raise RuntimeError("the decision's transaction fails after the decision")

    assert not OutboxItem.objects.filter(request=request).exists()
    assert reload(request).state == RequestState.IN_REVIEW
    assert not request.decisions.exists()
    assert state_in_odoo(odoo, PO, order) == "to approve"  # no decision, nothing sent

    approvals.request_approve(actor=manager, request_id=request.pk)

    item = write_back(request)
    assert (item.action, item.state, item.odoo_model, item.odoo_id) == (
        "approve",
        OutboxState.PENDING,
        PO,
        order,
    )
    assert state_in_odoo(odoo, PO, order) == "to approve"  # sent only once it commits


def test_an_order_approved_in_tollgate_is_confirmed_in_odoo_with_one_note(
    odoo, odoo_sandbox, django_capture_on_commit_callbacks
):
    sync.sync_all(get_client(), models=[PO])
    request = _waiting_order_request_at_amsterdam(odoo)

    with django_capture_on_commit_callbacks(execute=True):
        approvers = approve_fully(request)

    item = write_back(request)
    assert item.state == OutboxState.APPLIED
    assert reload(request).state == RequestState.APPLIED
    assert state_in_odoo(odoo, PO, request.odoo_id) == "purchase"
    (note,) = notes_on(odoo, PO, request.odoo_id)
    assert request.reference in note and "approved" in note
    assert all(name in note for name in approvers), (approvers, note)
    assert str(request.policy_version) in note
    assert request_link(request) in note

    assert services.outbox_apply(item_id=item.pk).status == "skipped"
    assert tasks.drain_outbox() == 0
    assert len(notes_on(odoo, PO, request.odoo_id)) == 1
    assert odoo_sandbox.server.stats.count(PO, "button_approve") == 1


def _waiting_order_request_at_amsterdam(odoo) -> ApprovalRequest:
    refused = set(odoo.env[PO].search([["x_sandbox_refuse_approve", "=", True]]))
    candidates = ApprovalRequest.objects.filter(
        odoo_model=PO, site__code="AMS", state=RequestState.IN_REVIEW
    ).exclude(odoo_id__in=refused)
    return candidates.order_by("amount").first()


class WorkerDied(Exception):
    """The worker's process ends before its transaction commits."""


def test_a_worker_dying_after_odoo_acted_leaves_a_row_that_finishes_without_acting_twice(
    odoo, odoo_sandbox
):
    (order,) = new_purchase_orders(odoo, 1)
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
    item = write_back(request)

    with pytest.raises(WorkerDied), transaction.atomic():
        assert services.outbox_apply(item_id=item.pk).status == "applied"
        raise WorkerDied

    assert reload(item).state == OutboxState.PENDING and item.attempts == 0
    assert reload(request).state == RequestState.APPROVED
    assert state_in_odoo(odoo, PO, order) == "purchase"
    assert len(notes_on(odoo, PO, order)) == 1

    assert services.outbox_apply(item_id=item.pk).status == "applied"

    assert len(notes_on(odoo, PO, order)) == 1
    assert odoo_sandbox.server.stats.count(PO, "button_approve") == 1
    assert reload(request).state == RequestState.APPLIED
    assert reload(item).state == OutboxState.APPLIED and item.attempts == 1


def test_an_order_already_confirmed_in_odoo_only_gets_the_note(odoo, odoo_sandbox):
    (order,) = new_purchase_orders(odoo, 1)
    odoo.execute_kw(PO, "button_approve", [[order]])
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")

    assert services.outbox_apply(item_id=write_back(request).pk).status == "applied"

    assert odoo_sandbox.server.stats.count(PO, "button_approve") == 1  # the buyer's own
    assert state_in_odoo(odoo, PO, order) == "purchase"
    assert len(notes_on(odoo, PO, order)) == 1
    assert reload(request).state == RequestState.APPLIED
    applied = AuditEvent.objects.get(action="request.applied", object_id=str(request.pk))
    assert applied.comment == "Odoo already showed the decision"


# --- failures: visible, retried, retryable --------------------------------------------------


def test_an_order_odoo_refuses_to_approve_fails_visibly_and_an_admin_retries_it(odoo):
    (order,) = new_purchase_orders(odoo, 1)
    odoo.execute_kw(PO, "write", [[order], {"x_sandbox_refuse_approve": True}])
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
    item = write_back(request)

    assert services.outbox_apply(item_id=item.pk).status == "failed"

    assert reload(request).state == RequestState.APPLY_FAILED
    assert "'to approve'" in request.apply_error and "Odoo" in request.apply_error
    assert reload(item).state == OutboxState.FAILED and item.last_error == request.apply_error
    failed = AuditEvent.objects.get(action="request.apply_failed", object_id=str(request.pk))
    assert failed.comment == request.apply_error
    assert notes_on(odoo, PO, order) == []
    assert policies.may_retry_apply(user("admin"), request)
    with pytest.raises(PermissionDenied):
        approvals.request_retry_apply(actor=user("site.manager"), request_id=request.pk)

    approvals.request_retry_apply(actor=user("admin"), request_id=request.pk)

    assert reload(request).state == RequestState.APPROVED and request.apply_error == ""
    assert reload(item).state == OutboxState.PENDING and item.attempts == 0
    assert item.pk in services.outbox_due()

    odoo.execute_kw(PO, "write", [[order], {"x_sandbox_refuse_approve": False}])
    assert services.outbox_apply(item_id=item.pk).status == "applied"
    assert state_in_odoo(odoo, PO, order) == "purchase"
    assert len(notes_on(odoo, PO, order)) == 1
    assert reload(request).state == RequestState.APPLIED


def test_a_transient_error_keeps_the_row_pending_for_a_later_attempt(odoo, odoo_sandbox, settings):
    settings.ODOO_PUSH_BACKOFF_SECONDS = 10
    settings.ODOO_PUSH_BACKOFF_MAX_SECONDS = 600
    settings.ODOO_PUSH_SETTLE_SECONDS = 0  # the backoff alone, here
    (order,) = new_purchase_orders(odoo, 1)
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
    item = write_back(request)
    odoo_sandbox.server.faults.update(error_rate=1.0)

    before = timezone.now()
    first = services.outbox_apply(item_id=item.pk)
    second_try_at = reload(item).next_attempt_at

    assert first.status == "retry" and 5 <= first.retry_in <= 10
    assert item.state == OutboxState.PENDING and item.attempts == 1
    assert before + timedelta(seconds=5) <= second_try_at <= timezone.now() + timedelta(seconds=10)
    assert "HTTP 50" in item.last_error
    assert item.pk not in services.outbox_due()
    assert item.pk in services.outbox_due(now=second_try_at)
    assert reload(request).state == RequestState.APPROVED

    second = services.outbox_apply(item_id=item.pk)

    assert second.status == "retry" and 5 <= second.retry_in <= 20
    assert reload(item).attempts == 2
    odoo_sandbox.server.faults.reset()
    assert state_in_odoo(odoo, PO, order) == "to approve"
    assert notes_on(odoo, PO, order) == []


def _odoo_slow_on_the_first_note(monkeypatch, seconds: float) -> threading.Event:
    """Make Odoo take `seconds` over the first message_post and run it all the same.

    Odoo goes on with a call whose client stopped waiting (a lock wait, a busy worker): the
    note lands after Tollgate saw a timeout. The returned event is set once it has landed.
    """
    serve = sandbox_server.RPC_ROUTES["/jsonrpc"]
    landed = threading.Event()
    held = itertools.count()

    def slow_first_note(app, payload):
        args = (payload.get("params") or {}).get("args") or []
        if len(args) > 4 and args[4] == "message_post" and next(held) == 0:
            time.sleep(seconds)
            try:
                return serve(app, payload)
            finally:
                landed.set()
        return serve(app, payload)

    monkeypatch.setitem(sandbox_server.RPC_ROUTES, "/jsonrpc", slow_first_note)
    return landed


def test_a_note_odoo_posts_after_tollgate_stopped_waiting_is_not_posted_again(
    odoo, settings, monkeypatch
):
    # Production's proportions shrunk: a timeout, a first retry a fraction of it later, and an
    # Odoo call that outlives both (Odoo lets a request run for minutes before killing it).
    settings.ODOO_TIMEOUT = 0.25
    settings.ODOO_PUSH_BACKOFF_SECONDS = 0.05
    settings.ODOO_PUSH_SETTLE_SECONDS = 1.0  # longer than any call Odoo still runs (0.6 s)
    (order,) = new_purchase_orders(odoo, 1)
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
    item = write_back(request)
    landed = _odoo_slow_on_the_first_note(monkeypatch, seconds=0.6)

    assert services.outbox_apply(item_id=item.pk).status == "retry"
    assert "did not answer in time" in reload(item).last_error
    # The retry runs when it is due, as the task's countdown or the beat would run it.
    time.sleep(max((item.next_attempt_at - timezone.now()).total_seconds(), 0))
    assert services.outbox_apply(item_id=item.pk).status == "applied"
    assert landed.wait(timeout=5)

    assert len(notes_on(odoo, PO, order)) == 1
    assert reload(request).state == RequestState.APPLIED


def test_backoff_doubles_its_ceiling_per_attempt_with_jitter_up_to_a_cap(settings):
    settings.ODOO_PUSH_BACKOFF_SECONDS = 10
    settings.ODOO_PUSH_BACKOFF_MAX_SECONDS = 600
    samples = {
        attempt: [services.backoff_seconds(attempt) for _ in range(400)]
        for attempt in (1, 3, 6, 12)
    }

    for attempt, ceiling in ((1, 10), (3, 40), (6, 320), (12, 600)):
        delays = samples[attempt]
        assert all(5 <= delay <= ceiling for delay in delays), attempt
        assert len(set(delays)) > 300  # jittered: workers that failed together spread out
        assert max(delays) > 0.9 * ceiling  # and the ceiling is really reached
    assert max(samples[1]) < min(max(samples[3]), max(samples[6]))


def test_exhausted_retries_mark_the_request_apply_failed_with_odoos_answer(
    odoo, odoo_sandbox, settings
):
    settings.ODOO_PUSH_MAX_ATTEMPTS = 2
    (order,) = new_purchase_orders(odoo, 1)
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
    item = write_back(request)
    odoo_sandbox.server.faults.update(error_rate=1.0)

    statuses = [services.outbox_apply(item_id=item.pk).status for _ in range(2)]

    assert statuses == ["retry", "failed"]
    assert reload(item).state == OutboxState.FAILED and item.attempts == 2
    assert reload(request).state == RequestState.APPLY_FAILED
    assert "Odoo answered HTTP 50" in request.apply_error
    assert policies.may_retry_apply(user("admin"), request)


def test_a_permanent_error_fails_at_the_first_attempt(odoo, odoo_sandbox):
    (order,) = new_purchase_orders(odoo, 1)
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
    item = write_back(request)
    odoo_sandbox.server.faults.update(access_error_models=[PO])

    assert services.outbox_apply(item_id=item.pk).status == "failed"

    assert reload(item).attempts == 1 and item.state == OutboxState.FAILED
    assert reload(request).state == RequestState.APPLY_FAILED
    assert "You are not allowed to access 'Purchase Order'" in request.apply_error


# --- every kind of record -------------------------------------------------------------------


def test_an_approved_transfer_is_validated_without_a_backorder(odoo):
    picking = _marked_transfer_at_amsterdam(odoo)
    moves = odoo.execute_kw("stock.move", "search", [[["picking_id", "=", picking]]])
    odoo.execute_kw("stock.move", "write", [moves[:1], {"quantity": 1.0}])  # one line short
    asked = odoo.execute_kw("stock.picking", "button_validate", [[picking]])
    assert asked["res_model"] == "stock.backorder.confirmation"  # what a plain click gets
    request = raise_linked(
        kind="transfer",
        odoo_model="stock.picking",
        odoo_id=picking,
        amount="500.00",
        category="Spare parts",
        details={"destination_site": "RTM"},
    )
    assert request.state == RequestState.APPROVED

    assert services.outbox_apply(item_id=write_back(request).pk).status == "applied"

    assert state_in_odoo(odoo, "stock.picking", picking) == "done"
    assert odoo.execute_kw("stock.picking", "search", [[["backorder_id", "=", picking]]]) == []
    assert len(notes_on(odoo, "stock.picking", picking)) == 1
    assert reload(request).state == RequestState.APPLIED


def _marked_transfer_at_amsterdam(odoo) -> int:
    return odoo.execute_kw(
        "stock.picking",
        "search",
        [
            [
                ["picking_type_id.warehouse_id", "=", AMS_WAREHOUSE],
                ["picking_type_code", "=", "internal"],
                ["x_tollgate_approval", "=", True],
                ["state", "=", "assigned"],
            ]
        ],
        {"limit": 1},
    )[0]


def test_an_approved_write_off_validates_the_scrap_and_takes_the_stock(odoo):
    product, location, on_hand = _stock_at_amsterdam(odoo)
    scrap = _new_scrap(odoo, product, location, quantity=2.0)
    request = raise_linked(
        kind="write_off", odoo_model="stock.scrap", odoo_id=scrap, amount="80.00", category="Tools"
    )
    assert request.state == RequestState.APPROVED

    assert services.outbox_apply(item_id=write_back(request).pk).status == "applied"

    assert state_in_odoo(odoo, "stock.scrap", scrap) == "done"
    assert _on_hand(odoo, product, location) == pytest.approx(on_hand - 2.0)
    assert len(notes_on(odoo, "stock.scrap", scrap)) == 1
    assert reload(request).state == RequestState.APPLIED


def test_a_write_off_beyond_the_stock_fails_naming_what_odoo_asked(odoo):
    product, location, on_hand = _stock_at_amsterdam(odoo)
    scrap = _new_scrap(odoo, product, location, quantity=on_hand + 5)
    request = raise_linked(
        kind="write_off", odoo_model="stock.scrap", odoo_id=scrap, amount="80.00", category="Tools"
    )

    assert services.outbox_apply(item_id=write_back(request).pk).status == "failed"

    assert reload(request).state == RequestState.APPLY_FAILED
    assert "stock.warn.insufficient.qty.scrap" in request.apply_error
    assert state_in_odoo(odoo, "stock.scrap", scrap) == "draft"
    assert _on_hand(odoo, product, location) == pytest.approx(on_hand)


def _stock_at_amsterdam(odoo) -> tuple[int, int, float]:
    stock = odoo.execute_kw("stock.warehouse", "read", [[AMS_WAREHOUSE], ["lot_stock_id"]])[0]
    location = stock["lot_stock_id"][0]
    quant = odoo.execute_kw(
        "stock.quant",
        "search_read",
        [[["location_id", "=", location], ["quantity", ">", 5]], ["product_id"]],
        {"limit": 1},
    )[0]
    product = quant["product_id"][0]
    return product, location, _on_hand(odoo, product, location)


def _on_hand(odoo, product: int, location: int) -> float:
    rows = odoo.execute_kw(
        "stock.quant",
        "search_read",
        [[["product_id", "=", product], ["location_id", "=", location]], ["quantity"]],
    )
    return sum(row["quantity"] for row in rows)


def _new_scrap(odoo, product: int, location: int, *, quantity: float) -> int:
    scrap_location = odoo.execute_kw(
        "stock.location", "search", [[["scrap_location", "=", True]]], {"limit": 1}
    )
    return odoo.execute_kw(
        "stock.scrap",
        "create",
        [
            {
                "product_id": product,
                "scrap_qty": quantity,
                "location_id": location,
                "scrap_location_id": scrap_location[0] if scrap_location else False,
            }
        ],
    )


def _quotation_at_amsterdam(odoo) -> int:
    (order,) = odoo.execute_kw(
        "sale.order",
        "search",
        [[["state", "=", "draft"], ["warehouse_id", "=", AMS_WAREHOUSE]]],
        {"limit": 1},
    )
    return order


CUSTOMER = {"counterparty": "Demo customer", "customer_class": "standard"}


def _price_override(order: int) -> ApprovalRequest:
    return raise_linked(
        kind="price_override",
        odoo_model="sale.order",
        odoo_id=order,
        amount="150.00",
        category="Tools",
        details={"product": "Pallet jack", "unit_price": "90.00", "floor_price": "100.00"},
        **CUSTOMER,
    )


def test_an_approved_price_override_confirms_the_sale_order(odoo):
    order = _quotation_at_amsterdam(odoo)
    request = _price_override(order)
    assert approve_fully(request) == ["site.manager"]

    assert services.outbox_apply(item_id=write_back(request).pk).status == "applied"

    assert state_in_odoo(odoo, "sale.order", order) == "sale"
    assert len(notes_on(odoo, "sale.order", order)) == 1
    assert reload(request).state == RequestState.APPLIED


def test_a_quotation_needing_two_approvals_is_confirmed_only_when_both_are_given(odoo):
    order = _quotation_at_amsterdam(odoo)
    price = _price_override(order)
    credit = raise_linked(
        kind="credit_exception",
        odoo_model="sale.order",
        odoo_id=order,
        amount="900.00",
        details={"credit_limit": "1000", "exposure": "1900"},
        **CUSTOMER,
    )
    approve_fully(price)

    waiting = services.outbox_apply(item_id=write_back(price).pk)

    assert waiting.status == "waiting"
    assert state_in_odoo(odoo, "sale.order", order) == "draft"
    approvals.request_reject(actor=user("finance"), request_id=credit.pk, reason="Over limit")
    assert services.outbox_apply(item_id=write_back(price).pk).status == "failed"
    assert state_in_odoo(odoo, "sale.order", order) == "draft"
    assert "which is rejected; Odoo was not changed" in reload(price).apply_error


# --- rejections -----------------------------------------------------------------------------


def _cancel_on_reject_policy() -> None:
    """Publish the framework again, now cancelling rejected records in Odoo."""
    framework = ApprovalPolicy.objects.get(name="Enterprise framework")
    approvals.policy_publish(
        actor=user("admin"),
        policy=framework,
        spec=VersionSpec(
            rules=demo.framework(fast=1000, material=5000, major=50000),
            cancel_in_odoo_on_reject=True,
            note="Rejected orders are cancelled in Odoo",
        ),
        effective_from=WORKDAY - timedelta(days=1),
    )


def _rejected(order: int) -> ApprovalRequest:
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="2000.00")
    approvals.request_reject(
        actor=user("site.manager"), request_id=request.pk, reason="Budget is frozen"
    )
    return reload(request)


def test_a_rejection_cancels_the_order_when_the_policy_says_so(odoo):
    _cancel_on_reject_policy()
    (order,) = new_purchase_orders(odoo, 1)
    request = _rejected(order)
    item = write_back(request)
    assert (item.action, item.cancel_in_odoo) == ("reject", True)

    assert services.outbox_apply(item_id=item.pk).status == "applied"

    assert state_in_odoo(odoo, PO, order) == "cancel"
    (note,) = notes_on(odoo, PO, order)
    assert request.reference in note and "rejected" in note and "site.manager" in note
    assert "Enterprise framework v2" in note
    assert reload(request).state == RequestState.REJECTED


def test_a_rejection_only_leaves_a_note_when_the_policy_keeps_odoo_as_it_is(odoo):
    (order,) = new_purchase_orders(odoo, 1)
    request = _rejected(order)
    item = write_back(request)
    assert (item.action, item.cancel_in_odoo) == ("reject", False)

    assert services.outbox_apply(item_id=item.pk).status == "applied"

    assert state_in_odoo(odoo, PO, order) == "to approve"
    (note,) = notes_on(odoo, PO, order)
    assert "rejected" in note and "Enterprise framework v1" in note
    assert reload(request).state == RequestState.REJECTED


def test_a_rejection_odoo_refuses_is_visible_and_an_admin_can_retry_it(odoo, odoo_sandbox):
    _cancel_on_reject_policy()
    (order,) = new_purchase_orders(odoo, 1)
    request = _rejected(order)
    item = write_back(request)
    odoo_sandbox.server.faults.update(access_error_models=[PO])

    assert services.outbox_apply(item_id=item.pk).status == "failed"

    assert reload(item).state == OutboxState.FAILED
    # The rejection stands, and the failed update says why, where people look.
    assert reload(request).state == RequestState.REJECTED
    assert "You are not allowed to access" in request.apply_error
    assert policies.may_retry_apply(user("admin"), request)
    odoo_sandbox.server.faults.reset()
    approvals.request_retry_apply(actor=user("admin"), request_id=request.pk)
    assert services.outbox_apply(item_id=item.pk).status == "applied"
    assert state_in_odoo(odoo, PO, order) == "cancel"
    assert reload(request).state == RequestState.REJECTED


# --- the note as Odoo shows it ----------------------------------------------------------------


def test_the_note_reads_in_odoo_exactly_as_tollgate_wrote_it(odoo):
    (order,) = new_purchase_orders(odoo, 1)
    # Dublin is governed by "UK & Ireland thresholds": an ampersand in the policy's name.
    request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00", site="DUB")
    assert str(request.policy_version) == "UK & Ireland thresholds v1"

    assert services.outbox_apply(item_id=write_back(request).pk).status == "applied"

    (note,) = notes_on(odoo, PO, order)
    assert "Policy: UK & Ireland thresholds v1." in note, note


# --- 500 decisions under faults ---------------------------------------------------------------


class Deliveries:
    """Stands in for the broker: hands out each scheduled write-back once its countdown ends."""

    def __init__(self):
        self._due: list[tuple[float, int, int]] = []
        self._order = itertools.count()
        self._busy = 0
        self._ready = threading.Condition()
        self.scheduled = 0

    def schedule(self, item_id: int, *, countdown: float) -> None:
        with self._ready:
            heapq.heappush(self._due, (time.monotonic() + countdown, next(self._order), item_id))
            self.scheduled += 1
            self._ready.notify_all()

    def take(self) -> int | None:
        """The next due item, waiting for one; None once nothing is queued or running."""
        with self._ready:
            while True:
                if not self._due and not self._busy:
                    return None
                if self._due and self._due[0][0] <= time.monotonic():
                    self._busy += 1
                    return heapq.heappop(self._due)[2]
                wait = self._due[0][0] - time.monotonic() if self._due else 0.5
                self._ready.wait(timeout=max(wait, 0.001))

    def finished(self) -> None:
        with self._ready:
            self._busy -= 1
            self._ready.notify_all()


def _drain(deliveries: Deliveries, outcomes: Counter, errors: list, lock: threading.Lock):
    try:
        while (item_id := deliveries.take()) is not None:
            try:
                status = tasks.apply_outbox_item(item_id)
            except Exception as error:  # a crash here is a finding, not a retry
                errors.append(error)
            else:
                with lock:
                    outcomes[status] += 1
            finally:
                deliveries.finished()
    finally:
        connection.close()


def _in_threads(count: int, work, items: list) -> list:
    """Run `work` on each of `items` with `count` threads, each on its own connection."""
    results: dict[int, object] = {}

    def run(share: range) -> None:
        try:
            for index in share:
                results[index] = work(items[index])
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(range(n, len(items), count),)) for n in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(items)
    return [results[index] for index in range(len(items))]


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="drains with worker threads on connections of their own: SQLite's shared in-memory "
    "test database fails concurrent writers at once ('database table is locked'), and one "
    "thread alone would sit out the injected timeouts for well over a minute",
)
@pytest.mark.django_db(transaction=True)
def test_five_hundred_decisions_under_faults_are_each_applied_exactly_once(
    settings, odoo_sandbox, monkeypatch
):
    connect_tollgate(settings, odoo_sandbox)
    odoo = odoo_admin(odoo_sandbox)
    server = odoo_sandbox.server
    deliveries = Deliveries()
    monkeypatch.setattr(services, "_schedule", deliveries.schedule)
    started = time.monotonic()
    orders = new_purchase_orders(odoo, 500)
    requests = _in_threads(
        4, lambda order: raise_linked(odoo_model=PO, odoo_id=order, amount="40.00"), orders
    )
    prepared = time.monotonic() - started
    assert {r.state for r in requests} == {RequestState.APPROVED}
    assert deliveries.scheduled == 500  # each decision's commit enqueued its write-back

    settings.ODOO_TIMEOUT = 0.2
    settings.ODOO_PUSH_BACKOFF_SECONDS = 0.05
    settings.ODOO_PUSH_BACKOFF_MAX_SECONDS = 0.5
    settings.ODOO_PUSH_SETTLE_SECONDS = 0.4  # longer than any call Odoo still runs (hang 0.3)
    settings.ODOO_PUSH_MAX_ATTEMPTS = 50
    server.stats.reset()
    server.faults.update(error_rate=0.10, timeout_rate=0.05, hang_seconds=0.3, seed=500)
    outcomes: Counter = Counter()
    errors: list = []
    lock = threading.Lock()
    started = time.monotonic()
    workers = [
        threading.Thread(target=_drain, args=(deliveries, outcomes, errors, lock)) for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    wait_for(
        lambda: outcomes["applied"] >= 200 or not any(w.is_alive() for w in workers),
        timeout=60,
        what="200 write-backs",
    )
    server.restart(seconds=1.0)
    for worker in workers:
        worker.join(timeout=120)
    drained = time.monotonic() - started
    server.faults.reset()

    items = OutboxItem.objects.filter(request__in=requests)
    attempts = Counter(items.values_list("attempts", flat=True))
    print(
        f"\n500 write-backs under faults: prepared in {prepared:.1f} s, drained in "
        f"{drained:.1f} s by {len(workers)} threads; task outcomes {dict(outcomes)}; "
        f"items by attempts {dict(sorted(attempts.items()))}; "
        f"calls reaching the sandbox {server.stats.count()}"
    )
    assert errors == []
    assert Counter(items.values_list("state", flat=True)) == {OutboxState.APPLIED: 500}
    assert services.outbox_due() == []
    states = Counter(
        ApprovalRequest.objects.filter(pk__in=[r.pk for r in requests]).values_list(
            "state", flat=True
        )
    )
    assert states == {RequestState.APPLIED: 500}
    in_odoo = odoo.execute_kw(PO, "read", [orders, ["state"]])
    assert Counter(row["state"] for row in in_odoo) == {"purchase": 500}
    notes = notes_by_record(odoo, PO, orders)
    doubled = {order: n for order, n in notes.items() if n != 1}
    assert doubled == {}, f"{len(doubled)} orders do not carry exactly one note"
    assert outcomes["retry"] > 0  # the faults were really met


# --- a real worker killed mid-task ------------------------------------------------------------


def _worker_environment(settings, sandbox) -> dict:
    database = settings.DATABASES["default"]
    credentials = quote(database["USER"] or "")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"])
    host = database.get("HOST") or "localhost"
    port = database.get("PORT") or 5432
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{host}:{port}/{database['NAME']}",
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "ODOO_URL": sandbox.url,
        "ODOO_DB": sandbox.db,
        "ODOO_LOGIN": sandbox.login,
        "ODOO_API_KEY": sandbox.api_key,
        "ODOO_VERSION": "17.0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }


@pytest.fixture
def worker_queue():
    """Tasks sent from this test go to a queue of their own, which only its workers consume."""
    queue = f"push-{uuid.uuid4().hex[:12]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous


def _unlocked(item_id: int) -> bool:
    with transaction.atomic():
        return OutboxItem.objects.select_for_update(skip_locked=True).filter(pk=item_id).exists()


@pytest.mark.slow
@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="a worker process cannot share the in-memory SQLite test database",
)
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_write_back_leaves_nothing_half_done_or_done_twice(
    settings, odoo_sandbox, worker_queue
):
    connect_tollgate(settings, odoo_sandbox)
    odoo = odoo_admin(odoo_sandbox)
    server = odoo_sandbox.server
    (order,) = new_purchase_orders(odoo, 1)
    environment = _worker_environment(settings, odoo_sandbox)
    workers = []
    try:
        # Every call now takes half a second, so the worker can be caught between two of them.
        server.faults.update(latency_ms=500)
        server.stats.reset()
        workers.append(start_worker(worker_queue, environment))
        request = raise_linked(odoo_model=PO, odoo_id=order, amount="40.00")
        item = write_back(request)
        # The worker has confirmed the order and is looking for its note; next it posts one.
        wait_for(
            lambda: server.stats.count("mail.message", "search"),
            timeout=60,
            what="the worker to reach the note",
        )
        time.sleep(0.2)  # its message_post is on the wire, held by the latency
        kill_worker(workers[0])
        wait_for(lambda: notes_on(odoo, PO, order), timeout=10, what="the in-flight note")
        wait_for(lambda: _unlocked(item.pk), timeout=10, what="the killed worker's lock")

        assert state_in_odoo(odoo, PO, order) == "purchase"
        assert len(notes_on(odoo, PO, order)) == 1
        assert reload(item).state == OutboxState.PENDING and item.attempts == 0
        assert reload(request).state == RequestState.APPROVED and request.applied_at is None

        server.faults.update(latency_ms=0)
        workers.append(start_worker(worker_queue, environment))
        assert tasks.drain_outbox() == 1  # the beat's job, run here: it enqueues what is due
        wait_for(
            lambda: reload(item).state == OutboxState.APPLIED,
            timeout=60,
            what="the fresh worker to apply the write-back",
        )
    finally:
        for worker in workers:
            kill_worker(worker)

    assert item.attempts == 1
    assert reload(request).state == RequestState.APPLIED
    (note,) = notes_on(odoo, PO, order)
    assert item.marker in note and item.odoo_message_id is not None
    assert server.stats.count(PO, "button_approve") == 1
    assert server.stats.count(PO, "message_post") == 1
