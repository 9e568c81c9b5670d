"""The price floor rule, on facts as the Odoo integration gives them."""

from decimal import Decimal

import pytest

from approvals.detection import price_below_floor


@pytest.fixture(autouse=True)
def _floor(settings):
    settings.ODOO_PRICE_FLOOR_MARGIN_PCT = 10
    settings.ODOO_DISCOUNT_CAP_PCT = 15


def test_a_price_under_cost_plus_margin_needs_an_override():
    check = price_below_floor(
        unit_price=Decimal("105"), discount_pct=Decimal(0), cost=Decimal("100"), quantity=Decimal(4)
    )

    assert check is not None
    assert (check.unit_price, check.floor_price) == (Decimal("105.00"), Decimal("110.00"))
    assert check.concession == Decimal("20.00")


def test_a_discount_over_the_cap_needs_an_override_even_above_the_floor():
    check = price_below_floor(
        unit_price=Decimal("200"), discount_pct=Decimal(20), cost=Decimal("10"), quantity=Decimal(1)
    )

    assert check is not None
    assert check.unit_price == Decimal("160.00")
    assert check.concession == 0


def test_a_price_at_the_floor_with_a_discount_at_the_cap_passes():
    assert (
        price_below_floor(
            unit_price=Decimal("200"),
            discount_pct=Decimal(15),
            cost=Decimal("100"),
            quantity=Decimal(1),
        )
        is None
    )
