"""Risk signals on requests pulled from Odoo judge Odoo's people and moments, not the sync's."""

from datetime import UTC, datetime, timedelta

import odoorpc
import pytest
import time_machine

from approvals.models import ApprovalRequest
from portal.integrations.odoo import sync
from portal.integrations.odoo.client import get_client
from tests.seeded_demo import seed_demo

AMSTERDAM_RECEIPTS = 1  # stock.picking.type of warehouse 1 (AMS), first of its three types


@pytest.fixture
def connected(db, settings, odoo_sandbox):
    seed_demo(history=False)
    settings.ODOO_URL = odoo_sandbox.url
    settings.ODOO_DB = odoo_sandbox.db
    settings.ODOO_LOGIN = odoo_sandbox.login
    settings.ODOO_API_KEY = odoo_sandbox.api_key
    settings.ODOO_VERSION = "17.0"
    return odoo_sandbox


def _as(sandbox, login: str) -> odoorpc.ODOO:
    client = odoorpc.ODOO(sandbox.host, port=sandbox.port, version="17.0")
    client.login(sandbox.db, login, login)
    return client


def _tuesday_morning() -> datetime:
    """09:30 UTC on a Tuesday thirty weeks back: a working morning at every demo site, older
    than the sandbox's own orders, so that only this test's orders meet in a window."""
    today = datetime.now(UTC).replace(hour=9, minute=30, second=0, microsecond=0)
    return today - timedelta(days=today.weekday() - 1 + 7 * 30)


def _order(odoo, *, vendor: int, amount_each: float, when: datetime, state="to approve") -> int:
    product = odoo.execute_kw("product.product", "search", [[["standard_price", "<", 20]]])[0]
    return odoo.execute_kw(
        "purchase.order",
        "create",
        [
            {
                "partner_id": vendor,
                "picking_type_id": AMSTERDAM_RECEIPTS,
                "date_order": when.strftime("%Y-%m-%d %H:%M:%S"),
                "state": state,
                "order_line": [
                    [0, 0, {"product_id": product, "product_qty": 1.0, "price_unit": amount_each}]
                ],
            }
        ],
    )


def _vendor(odoo, name: str) -> int:
    return odoo.execute_kw("res.partner", "search", [[["name", "=", name]]])[0]


def _request(odoo_id: int) -> ApprovalRequest:
    return ApprovalRequest.objects.get(odoo_model="purchase.order", odoo_id=odoo_id)


def _codes(request: ApprovalRequest) -> set[str]:
    return {flag["code"] for flag in request.risk_flags}


def test_a_sunday_night_sync_of_tuesday_morning_records_flags_none_after_hours(connected):
    tuesday = _tuesday_morning()
    buyer = _as(connected, "buyer")
    vendor = _vendor(buyer, "Brouwer Beverages")
    made = [_order(buyer, vendor=vendor, amount_each=7200 + n, when=tuesday) for n in range(3)]
    saturday_night = tuesday + timedelta(days=4, hours=10)  # Saturday 19:30 UTC
    late = _order(buyer, vendor=vendor, amount_each=7300, when=saturday_night)
    sunday_night = tuesday + timedelta(days=5, hours=13, minutes=15)  # Sunday 22:45 UTC

    with time_machine.travel(sunday_night, tick=True):
        sync.sync_all(get_client(), models=["purchase.order"])

    for odoo_id in made:
        request = _request(odoo_id)
        assert request.submitted_at.weekday() == 6  # synced on the Sunday night ...
        assert request.odoo_asked_at == tuesday  # ... asked for on the Tuesday morning
        assert "after_hours" not in _codes(request), request.risk_flags
        assert request.odoo_author == "Ruth Okafor"
        assert request.odoo_author_ref == "res.users,3"
    flagged = _request(late)
    after = next(f for f in flagged.risk_flags if f["code"] == "after_hours")
    assert after["explanation"].startswith("Asked for in Odoo on Sat")
    assert after["numbers"]["source"] == "odoo"


def test_threshold_splitting_groups_by_the_odoo_user_who_made_the_orders(connected):
    # Each order stays under the 50,000 EUR major-purchase threshold; two of them together
    # cross it. Pulled requests are all raised by the integration user; only the Odoo author
    # tells one buyer splitting an order from two buyers ordering the same week.
    tuesday = _tuesday_morning()
    buyer, manager = _as(connected, "buyer"), _as(connected, "admin")
    one = _order(buyer, vendor=_vendor(buyer, "Noord Foods"), amount_each=30000, when=tuesday)
    other = _order(
        manager, vendor=_vendor(manager, "Baltic Grain"), amount_each=30000, when=tuesday
    )
    sync.sync_all(get_client(), models=["purchase.order"])
    first, second = _request(one), _request(other)
    assert (first.odoo_author, second.odoo_author) == ("Ruth Okafor", "Alex Morgan")
    assert "threshold_split" not in _codes(first) | _codes(second)

    same = _order(
        buyer,
        vendor=_vendor(buyer, "Scheldt Packaging"),
        amount_each=25000,
        when=tuesday + timedelta(hours=2),
    )
    sync.sync_all(get_client(), models=["purchase.order"])

    split = next(f for f in _request(same).risk_flags if f["code"] == "threshold_split")
    assert split["numbers"]["grouped_by"] == "odoo_author"
    assert split["numbers"]["related"] == [first.reference]
    assert split["numbers"]["total"] == "55000.00"
    assert "the same Odoo user (Ruth Okafor)" in split["explanation"]


def test_a_counterpartys_age_comes_from_its_creation_in_odoo(connected):
    sync.sync_all(get_client(), models=["purchase.order"])
    pulled = ApprovalRequest.objects.filter(odoo_model="purchase.order")
    new = [r for r in pulled if "new_counterparty" in _codes(r)]
    # Only the two vendors taken on weeks ago are new; the rest have traded for years.
    assert {r.counterparty for r in new} == {"Kempen Koffiebranders", "Zaandam Verpakkingen"}
    for request in new:
        flag = next(f for f in request.risk_flags if f["code"] == "new_counterparty")
        since = datetime.fromisoformat(request.details["counterparty_since"]).replace(tzinfo=UTC)
        age = (request.odoo_asked_at - since).days
        assert flag["numbers"]["age_days"] == age
        assert 0 < age < 30
        assert f"was created in Odoo {age} days ago" in flag["explanation"]
    old = next(r for r in pulled if r.counterparty == "Brouwer Beverages")
    assert (
        old.odoo_asked_at
        - datetime.fromisoformat(old.details["counterparty_since"]).replace(tzinfo=UTC)
    ).days > 365


def test_pulled_requests_carry_readable_line_items(connected):
    sync.sync_all(get_client())
    odoo = _as(connected, "admin")

    order = ApprovalRequest.objects.filter(odoo_model="purchase.order").order_by("pk").first()
    items = order.odoo_snapshot["line_items"]
    lines = odoo.execute_kw(
        "purchase.order.line",
        "search_read",
        [[["order_id", "=", order.odoo_id]], ["product_id", "product_qty", "price_unit"]],
    )
    assert [i["product"] for i in items] == [line["product_id"][1] for line in lines]
    assert order.odoo_snapshot["lines"] == sorted(
        odoo.execute_kw("purchase.order", "read", [[order.odoo_id], ["order_line"]])[0][
            "order_line"
        ]
    )  # the drift key is as it was
    currency = odoo.execute_kw("purchase.order", "read", [[order.odoo_id], ["currency_id"]])[0][
        "currency_id"
    ][0]
    for item, line in zip(items, lines, strict=True):
        paid = odoo.execute_kw(
            "purchase.order.line",
            "search_read",
            [
                [
                    ["product_id", "=", line["product_id"][0]],
                    ["order_id.state", "in", ["purchase", "done"]],
                    ["order_id.currency_id", "=", currency],
                ],
                ["price_unit"],
            ],
            {"order": "id desc", "limit": 1},
        )
        assert item.get("last_price") == (f"{paid[0]['price_unit']:.2f}" if paid else None)

    transfer = ApprovalRequest.objects.filter(odoo_model="stock.picking").first()
    assert transfer.details["source_warehouse"] == transfer.site.name
    for item in transfer.odoo_snapshot["line_items"]:
        assert {"product", "quantity", "unit_price", "subtotal"} <= item.keys()

    override = ApprovalRequest.objects.filter(kind="price_override").first()
    assert "(s)" not in override.title
    assert override.title.endswith(("1 line under the price floor", "lines under the price floor"))
    for item in override.odoo_snapshot["line_items"]:
        assert {"list_price", "floor_price", "unit_price", "discount_pct"} <= item.keys()
