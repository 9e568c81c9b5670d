"""The lateness and three-way match rules, on facts as the Odoo integration gives them."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from exceptions.detection import BilledLine, lateness, three_way_match

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.ODOO_LATE_GRACE_HOURS = 4
    settings.ODOO_MATCH_TOLERANCE_PCT = 2


def test_an_open_delivery_past_its_grace_is_late_by_the_whole_delay():
    due = NOW - timedelta(hours=5)
    assert lateness(scheduled=due, crosses_the_gate=True, open_=True, now=NOW) == timedelta(hours=5)


@pytest.mark.parametrize(
    ("hours", "crosses", "open_"), [(3, True, True), (9, False, True), (9, True, False)]
)
def test_within_grace_inside_the_warehouse_or_closed_is_not_late(hours, crosses, open_):
    due = NOW - timedelta(hours=hours)
    assert lateness(scheduled=due, crosses_the_gate=crosses, open_=open_, now=NOW) is None


def _line(received, billed_quantity, billed_price="10"):
    return BilledLine(
        product="Pallet",
        ordered=Decimal(10),
        received=Decimal(received),
        order_price=Decimal("10"),
        billed_quantity=Decimal(billed_quantity),
        billed_price=Decimal(billed_price),
    )


def test_a_bill_for_more_than_arrived_does_not_match():
    match = three_way_match([_line(8, 10)])

    assert (match.expected, match.billed, match.matches) == (
        Decimal("80.00"),
        Decimal("100.00"),
        False,
    )
    assert match.lines[0]["difference"] == Decimal("20.00")


def test_a_bill_within_tolerance_or_of_nothing_for_nothing_matches():
    assert three_way_match([_line(100, 100, "10.15")]).matches  # 1.5 % over
    assert three_way_match([_line(0, 0)]).matches
    assert not three_way_match([_line(0, 1)]).matches
