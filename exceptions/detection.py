"""The rules that decide whether something read from Odoo is an exception case.

The Odoo integration translates its records into plain facts (when a transfer was due and
whether it is still open, what was ordered, received and billed); these rules say what the
facts mean: a late transfer, a bill that does not match what arrived.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

CENT = Decimal("0.01")


def lateness(
    *, scheduled: datetime | None, crosses_the_gate: bool, open_: bool, now: datetime
) -> timedelta | None:
    """How late a transfer in or out of a warehouse is, once past ODOO_LATE_GRACE_HOURS;
    None when it is not late, not open, or moves stock only inside the warehouse."""
    if not crosses_the_gate or scheduled is None or not open_:
        return None
    late = now - scheduled
    return late if late > timedelta(hours=settings.ODOO_LATE_GRACE_HOURS) else None


@dataclass(frozen=True)
class BilledLine:
    """One bill line next to the order line it bills."""

    product: str
    ordered: Decimal
    received: Decimal
    order_price: Decimal
    billed_quantity: Decimal
    billed_price: Decimal


@dataclass(frozen=True)
class Match:
    expected: Decimal  # what was received, at the order's prices
    billed: Decimal
    lines: list[dict]

    @property
    def matches(self) -> bool:
        """Within ODOO_MATCH_TOLERANCE_PCT of what was received. Equal counts as matched even
        at zero: a bill drafted from an order before anything arrived bills nothing for
        nothing received, which is no difference at all."""
        if self.billed == self.expected:
            return True
        if not self.expected:
            return False
        tolerance = Decimal(settings.ODOO_MATCH_TOLERANCE_PCT)
        return abs(self.billed - self.expected) * 100 / self.expected <= tolerance


def three_way_match(lines: list[BilledLine]) -> Match:
    """Compare what was billed with what was received at the ordered price, line by line."""
    expected = billed = Decimal(0)
    compared = []
    for line in lines:
        owed = line.received * line.order_price
        asked = line.billed_quantity * line.billed_price
        expected, billed = expected + owed, billed + asked
        compared.append(
            {
                "product": line.product,
                "ordered": line.ordered,
                "received": line.received,
                "order_price": line.order_price,
                "billed_quantity": line.billed_quantity,
                "billed_price": line.billed_price,
                "difference": (asked - owed).quantize(CENT),
            }
        )
    return Match(expected.quantize(CENT), billed.quantize(CENT), compared)
