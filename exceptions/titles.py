"""Case titles as sentences, one function per kind, used by every producer that raises a case.

A title is read in a list among a hundred others: it names the document, says what is wrong
and by how much, and nothing else. Money goes through the shared formatter, counts through
`count` ("1 line", "3 lines"), carrier status codes through `status_words`.
"""

from decimal import Decimal

from portal.core.formatting import count, money

MAX_LENGTH = 200


def _fit(text: str) -> str:
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"


def status_words(status: str) -> str:
    """A carrier's status code as words: 'held_at_depot' -> 'held at depot'."""
    return " ".join(str(status or "").replace("_", " ").replace(".", " ").split()) or "no status"


def invoice_mismatch(
    *, bill: str, order: str, difference: Decimal, currency: str, vendor: str = ""
) -> str:
    """'Bill BILL/2026/00042 is 158.00 EUR above order P00284'.

    A draft bill has no number yet (Odoo shows "/"): it is named by its vendor instead.
    """
    side = "above" if difference > 0 else "below"
    named = (
        f"Bill {bill}" if bill.strip(" /") else "Draft bill" + (f" from {vendor}" if vendor else "")
    )
    return _fit(f"{named} is {money(abs(difference), currency)} {side} order {order}")


def receipt_discrepancy(*, receipt: str, order: str, lines: int) -> str:
    """'Receipt AMS/IN/00012 differs from order P00031 on 2 lines'."""
    against = f"order {order}" if order else "the order"
    return _fit(f"Receipt {receipt} differs from {against} on {count(lines, 'line')}")


def asn_conflict(*, order: str, lines: int) -> str:
    """'Shipping notice for P00031 differs from the order on 1 line'."""
    return _fit(f"Shipping notice for {order} differs from the order on {count(lines, 'line')}")


def shipment_late(*, picking: str, days: float, incoming: bool = False) -> str:
    """'Shipment AMS/OUT/00042 is 12 days late' (whole days; under one day in hours); an
    expected delivery from a supplier is an 'Incoming shipment'."""
    what = "Incoming shipment" if incoming else "Shipment"
    if days < 1:
        hours = max(int(days * 24), 1)
        return _fit(f"{what} {picking} is {count(hours, 'hour')} late")
    return _fit(f"{what} {picking} is {count(int(days), 'day')} late")


def shipment_delayed(*, picking: str, status: str) -> str:
    """'Shipment AMS/OUT/00042 delayed by the carrier: held at depot'."""
    return _fit(f"Shipment {picking} delayed by the carrier: {status_words(status)}")


def delivery_failed(*, picking: str, status: str) -> str:
    """'Delivery of AMS/OUT/00042 failed: recipient absent'."""
    return _fit(f"Delivery of {picking} failed: {status_words(status)}")
