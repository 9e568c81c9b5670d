"""The demo company in the sandbox matches Tollgate's demo sites and fills every queue."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from portal.integrations.odoo.sandbox.seed import seed_demo
from portal.integrations.odoo.sandbox.store import Store
from sites.demo import REGIONS, SITES

MANAGE = Path(__file__).resolve().parents[3] / "manage.py"


def test_warehouses_and_companies_match_the_demo_sites(odoorpc_client):
    env = odoorpc_client.env
    warehouses = env["stock.warehouse"].search_read([], ["code", "company_id"])
    assert {w["id"]: w["code"] for w in warehouses} == {s.odoo_warehouse_id: s.code for s in SITES}
    companies = {c for _, c in REGIONS.values()}
    for site in SITES:
        warehouse = next(w for w in warehouses if w["id"] == site.odoo_warehouse_id)
        assert warehouse["company_id"][0] == REGIONS[site.region][1]
    currencies = env["res.company"].search_read([("id", "in", list(companies))], ["currency_id"])
    assert sorted(c["currency_id"][1] for c in currencies) == ["EUR", "GBP", "SEK"]


def test_every_queue_has_work(odoorpc_client):
    env = odoorpc_client.env
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    counts = {
        "to approve": env["purchase.order"].search_count([("state", "=", "to approve")]),
        "approval marker": env["stock.picking"].search_count(
            [("x_tollgate_approval", "=", True), ("state", "not in", ["done", "cancel"])]
        ),
        "draft scraps": env["stock.scrap"].search_count([("state", "=", "draft")]),
        "costly scraps": env["stock.scrap"].search_count(
            [("state", "=", "draft"), ("x_scrap_value", ">", 500)]
        ),
        "late pickings": env["stock.picking"].search_count(
            [("scheduled_date", "<", now), ("state", "not in", ["done", "cancel"])]
        ),
        "over credit": len(
            [
                p
                for p in env["res.partner"].search_read(
                    [("customer_rank", ">", 0)], ["credit", "credit_limit"]
                )
                if p["credit"] > p["credit_limit"]
            ]
        ),
        "deep discounts": env["sale.order.line"].search_count([("discount", ">", 15)]),
        "vendor bills": env["account.move"].search_count([("move_type", "=", "in_invoice")]),
    }
    assert all(n >= 5 for n in counts.values()), counts
    assert counts["to approve"] >= 50


def test_lines_under_the_price_floor_exist(odoorpc_client):
    lines = odoorpc_client.env["sale.order.line"].search_read([], ["price_unit", "x_price_floor"])
    assert len([line for line in lines if line["price_unit"] < line["x_price_floor"]]) >= 10


def test_receipts_and_bills_differ_from_orders(odoorpc_client):
    env = odoorpc_client.env
    received = env["purchase.order.line"].search_read(
        [("qty_received", ">", 0)], ["product_qty", "qty_received"]
    )
    assert any(line["qty_received"] != line["product_qty"] for line in received)
    bill_lines = env["account.move.line"].search_read(
        [("purchase_line_id", "!=", False)], ["quantity", "price_unit", "purchase_line_id"]
    )
    order_lines = {
        line["id"]: line
        for line in env["purchase.order.line"].search_read(
            [("id", "in", [b["purchase_line_id"][0] for b in bill_lines])],
            ["qty_received", "price_unit"],
        )
    }
    differing = [
        b
        for b in bill_lines
        if b["quantity"] != order_lines[b["purchase_line_id"][0]]["qty_received"]
        or b["price_unit"] != order_lines[b["purchase_line_id"][0]]["price_unit"]
    ]
    assert differing


def test_seeding_is_fast_repeatable_and_keeps_existing_data(tmp_path):
    first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    started = time.monotonic()
    assert seed_demo(first) is True
    assert time.monotonic() - started < 5
    assert seed_demo(second) is True
    assert _documents(first) == _documents(second)
    store = Store(first)
    with store.transaction() as tx:
        tx.update("purchase.order", 1, {"origin": "kept"})
    store.close()
    assert seed_demo(first) is False
    store = Store(first)
    with store.transaction() as tx:
        assert tx.table("purchase.order")[1]["origin"] == "kept"
    store.close()


def _documents(path: Path) -> list:
    store = Store(path)
    try:
        with store.transaction() as tx:
            orders = tx.table("purchase.order").values()
            return sorted((o["name"], o["state"], o["partner_id"]) for o in orders)
    finally:
        store.close()


def test_management_command_serves_the_sandbox(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            str(MANAGE),
            "odoo_sandbox",
            "--port",
            "0",
            "--seed",
            "demo",
            "--data",
            str(tmp_path / "cmd.sqlite3"),
            "--version",
            "19.0",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = _listening_url(process)
        request = urllib.request.Request(
            url + "/web/webclient/version_info",
            data=b'{"jsonrpc":"2.0","params":{}}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["result"]["server_version"] == "19.0"
    finally:
        process.terminate()
        process.wait(10)


def _listening_url(process) -> str:
    for line in process.stdout:
        if "listening on " in line:
            return line.split("listening on ")[1].split()[0]
    raise AssertionError("the sandbox command did not start")


def test_the_stock_covers_every_open_scrap_and_marked_transfer_together(odoorpc_client):
    """Approved in any order, each can be validated: Odoo refuses a scrap beyond the stock and
    a transfer with nothing to reserve, and the demo's own data never meets those refusals."""
    env = odoorpc_client.env
    claims: dict[tuple[int, int], float] = {}
    for scrap in env["stock.scrap"].search_read(
        [("state", "=", "draft")], ["product_id", "location_id", "scrap_qty"]
    ):
        key = (scrap["product_id"][0], scrap["location_id"][0])
        claims[key] = claims.get(key, 0.0) + scrap["scrap_qty"]
    pickings = env["stock.picking"].search(
        [("x_tollgate_approval", "=", True), ("state", "not in", ["done", "cancel"])]
    )
    for move in env["stock.move"].search_read(
        [("picking_id", "in", pickings), ("state", "not in", ["done", "cancel"])],
        ["product_id", "location_id", "product_uom_qty"],
    ):
        key = (move["product_id"][0], move["location_id"][0])
        claims[key] = claims.get(key, 0.0) + move["product_uom_qty"]
    on_hand: dict[tuple[int, int], float] = {}
    for quant in env["stock.quant"].search_read([], ["product_id", "location_id", "quantity"]):
        key = (quant["product_id"][0], quant["location_id"][0])
        on_hand[key] = on_hand.get(key, 0.0) + quant["quantity"]

    assert len(claims) > 100
    assert {key: n for key, n in claims.items() if on_hand.get(key, 0.0) < n} == {}
