"""The rules that decide whether something read from Odoo needs an approval.

The Odoo integration translates its records into plain facts (a sale order line's price,
discount and the product's cost); these rules say what the facts mean.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

CENT = Decimal("0.01")


@dataclass(frozen=True)
class PriceCheck:
    """A line sold below its floor, or at a discount above the cap."""

    unit_price: Decimal  # after the discount
    floor_price: Decimal
    discount: Decimal
    concession: Decimal  # how much below the floor, over the whole quantity


def price_below_floor(
    *, unit_price: Decimal, discount_pct: Decimal, cost: Decimal, quantity: Decimal
) -> PriceCheck | None:
    """A price override is needed when the net price is under cost plus the floor margin
    (ODOO_PRICE_FLOOR_MARGIN_PCT) or the discount is over ODOO_DISCOUNT_CAP_PCT."""
    margin = Decimal(settings.ODOO_PRICE_FLOOR_MARGIN_PCT) / 100
    cap = Decimal(settings.ODOO_DISCOUNT_CAP_PCT)
    floor = (cost * (1 + margin)).quantize(CENT)
    price = (unit_price * (1 - discount_pct / 100)).quantize(CENT)
    if price >= floor and discount_pct <= cap:
        return None
    return PriceCheck(price, floor, discount_pct, max(floor - price, Decimal(0)) * quantity)
