"""The pull against the sandbox: requests and cases from Odoo, batched, never lost or doubled."""

import math
from datetime import UTC, datetime, timedelta

import odoorpc
import pytest
from django.core.management import call_command

from approvals.models import ApprovalRequest, RequestKind, RequestState
from exceptions.models import ExceptionCase
from portal.integrations.odoo import mapping, sync
from portal.integrations.odoo.client import get_client
from portal.integrations.odoo.models import SyncCursor
from tests.seeded_demo import seed_demo

PURCHASES = mapping.PurchaseOrders()


@pytest.fixture
def connected(db, settings, odoo_sandbox):
    """Tollgate's demo company, pointed at a freshly seeded sandbox."""
    seed_demo(history=False)
    settings.ODOO_URL = odoo_sandbox.url
    settings.ODOO_DB = odoo_sandbox.db
    settings.ODOO_LOGIN = odoo_sandbox.login
    settings.ODOO_API_KEY = odoo_sandbox.api_key
    settings.ODOO_VERSION = "17.0"
    return odoo_sandbox


@pytest.fixture
def odoo(connected):
    """The real OdooRPC client, to change records the way people do in Odoo."""
    client = odoorpc.ODOO(connected.host, port=connected.port, version="17.0")
    client.login(connected.db, connected.login, connected.api_key)
    return client


def _waiting_orders(odoo) -> list[int]:
    return odoo.env["purchase.order"].search([["state", "=", "to approve"]])


def test_first_sync_raises_requests_and_cases_and_a_second_run_changes_nothing(connected):
    client = get_client()
    results = sync.sync_all(client)

    waiting = set(_waiting_orders_raw(connected))
    raised = set(
        ApprovalRequest.objects.filter(kind=RequestKind.PURCHASE).values_list("odoo_id", flat=True)
    )
    assert raised == waiting
    kinds = set(ApprovalRequest.objects.values_list("kind", flat=True))
    assert kinds >= {"purchase", "transfer", "write_off", "price_override", "credit_exception"}
    cases = set(ExceptionCase.objects.values_list("kind", flat=True))
    assert cases >= {"shipment_delay", "receipt_discrepancy", "invoice_mismatch"}
    assert all(not result.problems for result in results.values())

    before = (ApprovalRequest.objects.count(), ExceptionCase.objects.count())
    again = sync.sync_all(client)

    assert all(result.handled == 0 for result in again.values())
    assert (ApprovalRequest.objects.count(), ExceptionCase.objects.count()) == before


def _waiting_orders_raw(sandbox):
    return _waiting_orders(_raw_client(sandbox))


def test_purchase_request_carries_the_order_and_its_site(connected, odoo):
    sync.sync_all(get_client(), models=["purchase.order"])
    order_id = _waiting_orders(odoo)[0]
    order = odoo.execute_kw(
        "purchase.order", "read", [[order_id]], {"fields": ["name", "amount_total", "partner_id"]}
    )[0]

    request = ApprovalRequest.objects.get(odoo_model="purchase.order", odoo_id=order_id)

    assert request.title.startswith(order["name"])
    assert float(request.amount) == pytest.approx(order["amount_total"], abs=0.01)
    assert request.counterparty == order["partner_id"][1]
    assert request.site.odoo_warehouse_id is not None
    assert request.state in (RequestState.IN_REVIEW, RequestState.APPROVED)


def test_ten_thousand_changed_orders_cost_one_call_per_batch(connected, odoo, settings):
    settings.ODOO_SYNC_BATCH_SIZE = 500
    client = get_client()
    sync.sync_model(client, PURCHASES)
    _create_orders(odoo, 10_000)
    client.calls.clear()

    result = sync.sync_model(client, PURCHASES)

    calls = client.calls.total()
    assert result.fetched >= 10_000
    assert calls <= math.ceil(10_000 / 500) + 5, dict(client.calls)
    print(f"\n10,000 changed orders: {calls} RPC calls, {result.batches} batches")


def _create_orders(odoo, count: int, state: str = "draft") -> list[int]:
    template = odoo.execute_kw(
        "purchase.order",
        "search_read",
        [[["state", "=", "to approve"]], ["partner_id", "picking_type_id"]],
        {"limit": 1},
    )[0]
    ids = []
    for start in range(0, count, 2_000):
        vals = [
            {
                "partner_id": template["partner_id"][0],
                "picking_type_id": template["picking_type_id"][0],
                "state": state,
            }
            for _ in range(min(2_000, count - start))
        ]
        ids += odoo.execute_kw("purchase.order", "create", [vals])
    return ids


def test_a_record_changed_during_a_sync_is_picked_up_by_the_next(connected, odoo, settings):
    settings.ODOO_SYNC_BATCH_SIZE = 50
    client = get_client()
    sync.sync_model(client, PURCHASES)
    drafts = _create_orders(odoo, 120)
    late_change = drafts[0]
    original = client.search_read
    pages = []

    def search_read_then_someone_edits(*args, **kwargs):
        rows = original(*args, **kwargs)
        pages.append(len(rows))
        if len(pages) == 1:
            # Between two batches, a buyer sends an order already read for approval.
            odoo.execute_kw("purchase.order", "write", [[late_change], {"state": "to approve"}])
        return rows

    client.search_read = search_read_then_someone_edits
    sync.sync_model(client, PURCHASES)
    client.search_read = original
    sync.sync_model(client, PURCHASES)

    assert ApprovalRequest.objects.filter(odoo_model="purchase.order", odoo_id=late_change).exists()


def test_a_write_committed_late_inside_the_overlap_window_is_not_lost(connected, settings):
    client = get_client()
    sync.sync_model(client, PURCHASES)
    cursor = SyncCursor.objects.get(model="purchase.order")
    # A long Odoo transaction stamps write_date at its start and commits after the cursor
    # passed it: its order appears with a write_date a minute before the cursor.
    stamp = (cursor.write_date - timedelta(seconds=60)).astimezone(UTC)
    order_id = _commit_late(connected, stamp)

    sync.sync_model(client, PURCHASES)

    assert ApprovalRequest.objects.filter(odoo_model="purchase.order", odoo_id=order_id).exists()


def _commit_late(sandbox, stamp: datetime) -> int:
    app = sandbox.server.app
    with app.store.transaction() as tx:
        source = next(
            row for row in tx.table("purchase.order").values() if row["state"] == "to approve"
        )
        row = {k: v for k, v in source.items() if k != "id"}
        row.update(name="PO-LATE", write_date=stamp.strftime("%Y-%m-%d %H:%M:%S"), order_line=[])
        return tx.insert("purchase.order", row)


def test_an_order_changed_in_odoo_while_in_review_goes_back_to_review(connected, odoo):
    sync.sync_all(get_client(), models=["purchase.order"])
    request = ApprovalRequest.objects.filter(
        kind=RequestKind.PURCHASE, state=RequestState.IN_REVIEW
    ).first()
    line_ids = odoo.execute_kw("purchase.order", "read", [[request.odoo_id], ["order_line"]])[0][
        "order_line"
    ]
    odoo.execute_kw("purchase.order.line", "write", [line_ids[:1], {"product_qty": 500}])
    odoo.execute_kw("purchase.order", "write", [[request.odoo_id], {"notes": "qty raised"}])

    sync.sync_all(get_client(), models=["purchase.order"])

    request.refresh_from_db()
    assert request.state == RequestState.IN_REVIEW
    assert request.round == 2
    assert request.drift and request.drift[-1]["changes"][0]["field"] == "amount"
    assert ApprovalRequest.objects.filter(odoo_id=request.odoo_id, kind="purchase").count() == 1


def test_an_order_of_an_unknown_warehouse_is_reported_not_dropped_silently(connected, odoo):
    from sites.models import Site

    Site.objects.filter(odoo_warehouse_id=1).update(odoo_warehouse_id=None)

    result = sync.sync_model(get_client(), PURCHASES)

    assert any("warehouse 1" in problem for problem in result.problems)
    assert "warehouse 1" in SyncCursor.objects.get(model="purchase.order").last_error


def test_sync_odoo_command_reports_what_it_read(connected, capsys):
    call_command("sync_odoo", "--model", "stock.scrap")

    out = capsys.readouterr().out
    assert out.startswith("stock.scrap: read ")
    assert "created" in out


def test_a_row_the_mapping_chokes_on_is_reported_and_the_rest_still_arrive(
    connected, odoo, monkeypatch
):
    poisoned = _waiting_orders(odoo)[0]
    handle = mapping.PurchaseOrders.handle

    def choke_on_one(self, row, context):
        if row["id"] == poisoned:
            raise ArithmeticError("a total Tollgate cannot read")
        return handle(self, row, context)

    monkeypatch.setattr(mapping.PurchaseOrders, "handle", choke_on_one)

    result = sync.sync_model(get_client(), PURCHASES)

    assert result.outcomes["unmapped"] == 1
    assert any(f"purchase.order,{poisoned}: ArithmeticError" in p for p in result.problems)
    raised = set(ApprovalRequest.objects.values_list("odoo_id", flat=True))
    assert raised == set(_waiting_orders(odoo)) - {poisoned}
    assert SyncCursor.objects.get(model="purchase.order").write_date is not None


def test_a_model_odoo_refuses_does_not_stop_the_others(connected, odoo_sandbox):
    odoo_sandbox.server.faults.update(access_error_models=["stock.scrap"])

    results = sync.sync_all(get_client(), models=["stock.scrap", "purchase.order"])

    assert results["stock.scrap"].problems
    assert "the run stopped" in SyncCursor.objects.get(model="stock.scrap").last_error
    assert results["purchase.order"].outcomes["created"] > 0


def test_a_sync_remembers_the_servers_version_for_links_into_odoo(connected, settings):
    from django.core.cache import cache

    from portal.integrations.odoo import links

    settings.ODOO_VERSION = None
    cache.delete(links.VERSION_KEY)

    sync.sync_all(get_client(), models=["purchase.order"])

    assert links.server_version() == "17.0"
    request = ApprovalRequest.objects.filter(kind=RequestKind.PURCHASE).first()
    assert links.record_url(request.odoo_model, request.odoo_id).endswith(
        f"/web#id={request.odoo_id}&model=purchase.order&view_type=form"
    )


def test_an_invoice_mismatch_names_and_links_the_receipt_the_goods_came_on(connected):
    sync.sync_all(get_client())

    odoo = _raw_client(connected)
    mismatches = ExceptionCase.objects.filter(kind="invoice_mismatch")
    assert mismatches
    for case in mismatches:
        (order,) = odoo.execute_kw(
            "purchase.order", "read", [[case.evidence["order_id"]], ["picking_ids"]]
        )
        pickings = odoo.execute_kw(
            "stock.picking", "read", [order["picking_ids"], ["name", "state"]]
        )
        done = sorted((p for p in pickings if p["state"] == "done"), key=lambda p: -p["id"])
        if done:
            assert (case.evidence["receipt"], case.evidence["receipt_id"]) == (
                done[0]["name"],
                done[0]["id"],
            )
        else:
            assert "receipt" not in case.evidence
    assert any("receipt" in case.evidence for case in mismatches)


def _raw_client(sandbox):
    client = odoorpc.ODOO(sandbox.host, port=sandbox.port, version="17.0")
    client.login(sandbox.db, sandbox.login, sandbox.api_key)
    return client
