"""A case's evidence as the documents it stands for: one renderer per kind of case.

Producers store evidence as JSON (exceptions.services.case_raise): the Odoo sync's three-way
match and receipt comparison (portal/integrations/odoo/mapping/), the carrier's and the
supplier's events (portal/webhooks/services.py). Each renderer turns that JSON into a typed
presentation object for its template (`templates/exceptions/evidence/<kind>.html`). Evidence
is read as it was stored, whatever its age: a missing key shows as "not reported", a value of
an unexpected shape falls back to words, never to a printed dict or list.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings

from exceptions.models import CaseKind, ExceptionCase
from exceptions.titles import status_words
from portal.core import erp
from portal.core.formatting import count, money, percent, quantity

NOT_REPORTED = "not reported"


def odoo_url(model: str, odoo_id) -> str:
    """The record in Odoo's web client, through the one link builder (portal.core.erp)."""
    if not model or not odoo_id:
        return ""
    return erp.record_url(model, odoo_id)


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Fact:
    label: str
    text: str


@dataclass(frozen=True)
class MatchLine:
    product: str
    ordered: str
    received: str
    billed_quantity: str
    order_price: str
    billed_price: str
    difference: str
    outside: bool


@dataclass(frozen=True)
class Evidence:
    """What the case page shows: the kind's template and its presentation object."""

    template: str
    body: object


@dataclass(frozen=True)
class ThreeWayMatch:
    bill: str
    order: str
    lines: list[MatchLine]
    expected: str
    billed: str
    difference: str
    above: bool
    tolerance: str
    links: list[Link]
    facts: list[Fact] = field(default_factory=list)


@dataclass(frozen=True)
class QuantityLine:
    product: str
    expected: str
    actual: str
    difference: str
    short: bool


@dataclass(frozen=True)
class QuantityComparison:
    heading: str
    expected_label: str
    actual_label: str
    lines: list[QuantityLine]
    tolerance: str
    links: list[Link]
    facts: list[Fact] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime | None
    text: str
    current: bool = False


@dataclass(frozen=True)
class CarrierTimeline:
    events: list[TimelineEvent]
    holds_up: str
    holds_up_what: str
    new_eta: datetime | None
    links: list[Link]
    facts: list[Fact] = field(default_factory=list)


@dataclass(frozen=True)
class Facts:
    facts: list[Fact]


def present(case: ExceptionCase, *, history: Iterable[dict] = ()) -> Evidence:
    """The presentation of `case.evidence` for its kind; `history` holds earlier evidence."""
    evidence = case.evidence if isinstance(case.evidence, dict) else {}
    earlier = [h for h in history if isinstance(h, dict)]
    if case.kind in RENDERERS:
        body = RENDERERS[case.kind](case, evidence, earlier)
        return Evidence(f"exceptions/evidence/{case.kind}.html", body)
    return Evidence("exceptions/evidence/facts.html", facts(case, evidence, earlier))


# Values -----------------------------------------------------------------------------------


def _decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _qty(value) -> str:
    number = _decimal(value)
    return NOT_REPORTED if number is None else quantity(number)


def _money(value, currency: str) -> str:
    number = _decimal(value)
    return NOT_REPORTED if number is None else money(number, currency)


MINUS = "\N{MINUS SIGN}"


def _signed_money(value, currency: str) -> str:
    number = _decimal(value)
    if number is None:
        return NOT_REPORTED
    sign = "+" if number > 0 else MINUS if number < 0 else ""
    return f"{sign}{money(abs(number), currency)}"


def _signed_qty(value) -> str:
    number = _decimal(value)
    if number is None:
        return NOT_REPORTED
    sign = "+" if number > 0 else MINUS if number < 0 else ""
    return f"{sign}{quantity(abs(number))}"


def _text(value) -> str:
    """Any stored value as words: nested data is summarised, never printed."""
    if value is None or value == "":
        return NOT_REPORTED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        parts = [f"{_label(k)} {_text(v)}" for k, v in value.items() if not _is_nested(v)]
        return "; ".join(parts) or count(len(value), "detail")
    if isinstance(value, list):
        if all(not _is_nested(v) for v in value):
            return ", ".join(_text(v) for v in value) or "none"
        return count(len(value), "entry", "entries")
    return str(value)


def _is_nested(value) -> bool:
    return isinstance(value, dict | list)


def _label(key: str) -> str:
    return str(key).replace("_", " ").strip().capitalize()


def _when(value) -> datetime | None:
    """An ISO time, or Odoo's 'YYYY-MM-DD HH:MM:SS' (UTC without saying so)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lines(evidence: dict) -> list[dict]:
    lines = evidence.get("lines")
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []


def _tolerance(evidence: dict, of: str) -> str:
    pct = _decimal(evidence.get("tolerance_pct"))
    if pct is None:
        pct = _decimal(getattr(settings, "ODOO_MATCH_TOLERANCE_PCT", None))
    return f"{percent(pct, digits=2)} of {of}" if pct is not None else ""


def _outside(difference: Decimal | None, base: Decimal | None, pct: Decimal | None) -> bool:
    if not difference:
        return False
    if not base or pct is None:
        return True
    return abs(difference) * 100 / abs(base) > pct


def _rest(evidence: dict, shown: set[str]) -> list[Fact]:
    """The evidence keys a renderer does not lay out itself, as plain facts."""
    hidden = shown | {"webhook_id", "webhook_source"}
    return [
        Fact(_label(key), _text(value))
        for key, value in evidence.items()
        if key not in hidden and not _is_nested(value)
    ]


# Renderers ----------------------------------------------------------------------------------


def invoice_mismatch(case: ExceptionCase, evidence: dict, history: list[dict]) -> ThreeWayMatch:
    """The three-way match: what was ordered, received and billed, line by line."""
    currency = case.currency or case.site.currency
    pct = _decimal(evidence.get("tolerance_pct"))
    if pct is None:
        pct = _decimal(getattr(settings, "ODOO_MATCH_TOLERANCE_PCT", None))
    lines = []
    for line in _lines(evidence):
        received, order_price = _decimal(line.get("received")), _decimal(line.get("order_price"))
        owed = received * order_price if received is not None and order_price is not None else None
        difference = _decimal(line.get("difference"))
        lines.append(
            MatchLine(
                product=_text(line.get("product")),
                ordered=_qty(line.get("ordered")),
                received=_qty(line.get("received")),
                billed_quantity=_qty(line.get("billed_quantity", line.get("quantity"))),
                order_price=_money(line.get("order_price"), currency),
                billed_price=_money(line.get("billed_price", line.get("unit_price")), currency),
                difference=_signed_money(difference, currency),
                outside=_outside(difference, owed, pct),
            )
        )
    expected = _decimal(evidence.get("expected", evidence.get("order_total")))
    billed = _decimal(evidence.get("billed", evidence.get("bill_total")))
    difference = _decimal(evidence.get("difference"))
    if difference is None and expected is not None and billed is not None:
        difference = billed - expected
    payload = case.payload if isinstance(case.payload, dict) else {}
    bill = str(evidence.get("bill") or payload.get("bill") or payload.get("name") or "")
    bill = "" if not bill.strip(" /") else bill
    order = str(evidence.get("order") or payload.get("order") or "")
    links = [
        Link(
            f"Purchase order {order}".strip(), odoo_url("purchase.order", evidence.get("order_id"))
        ),
        Link(
            f"Receipt {evidence.get('receipt') or ''}".strip(),
            odoo_url("stock.picking", evidence.get("receipt_id")),
        ),
        Link(f"Bill {bill}".strip(), odoo_url(case.odoo_model, case.odoo_id)),
    ]
    shown = {
        "order",
        "order_id",
        "bill",
        "lines",
        "expected",
        "billed",
        "difference",
        "tolerance_pct",
        "receipt",
        "receipt_id",
        "order_total",
        "bill_total",
    }
    return ThreeWayMatch(
        bill=bill,
        order=order,
        lines=lines,
        expected=_money(expected, currency),
        billed=_money(billed, currency),
        difference=_signed_money(difference, currency),
        above=bool(difference and difference > 0),
        tolerance=_tolerance(evidence, "the order value"),
        links=[link for link in links if link.url],
        facts=_rest(evidence, shown),
    )


def _quantities(
    case: ExceptionCase,
    evidence: dict,
    *,
    heading: str,
    actual_label: str,
    actual_keys: tuple[str, ...],
    expected_keys: tuple[str, ...],
    links: list[Link],
    shown: set[str],
) -> QuantityComparison:
    pct = _decimal(evidence.get("tolerance_pct"))
    rows = []
    for line in _lines(evidence):
        expected = next((_decimal(line[k]) for k in expected_keys if k in line), None)
        actual = next((_decimal(line[k]) for k in actual_keys if k in line), None)
        difference = _decimal(line.get("difference"))
        if difference is None and expected is not None and actual is not None:
            difference = actual - expected
        rows.append(
            QuantityLine(
                product=_text(line.get("product")),
                expected=_qty(expected),
                actual=_qty(actual),
                difference=_signed_qty(difference),
                short=bool(difference and difference < 0),
            )
        )
    return QuantityComparison(
        heading=heading,
        expected_label="Ordered",
        actual_label=actual_label,
        lines=rows,
        tolerance=_tolerance(evidence, "the ordered quantity") if pct is not None else "",
        links=[link for link in links if link.url],
        facts=_rest(evidence, shown | {"lines", "tolerance_pct"}),
    )


def receipt_discrepancy(case: ExceptionCase, evidence: dict, history: list[dict]):
    """Ordered against received, per line of the receipt."""
    origin = str(evidence.get("origin") or "")
    return _quantities(
        case,
        evidence,
        heading=f"Ordered on {origin} against received" if origin else "Ordered against received",
        actual_label="Received",
        actual_keys=("received", "quantity"),
        expected_keys=("ordered", "ordered_quantity"),
        links=[Link("Receipt in Odoo", odoo_url(case.odoo_model, case.odoo_id))],
        shown={"origin"},
    )


def asn_conflict(case: ExceptionCase, evidence: dict, history: list[dict]):
    """Ordered against what the supplier's shipping notice announces, per line."""
    order = str(evidence.get("order_ref") or "")
    return _quantities(
        case,
        evidence,
        heading=f"Ordered on {order} against announced" if order else "Ordered against announced",
        actual_label="Announced",
        actual_keys=("quantity", "announced"),
        expected_keys=("ordered_quantity", "ordered"),
        links=[Link("Record in Odoo", odoo_url(case.odoo_model, case.odoo_id))],
        shown={"order_ref"},
    )


def carrier(case: ExceptionCase, evidence: dict, history: list[dict]) -> CarrierTimeline:
    """The shipment's story: scheduled, each carrier status with its time, the new ETA."""
    events: dict[tuple, TimelineEvent] = {}
    scheduled = _when(evidence.get("scheduled_date"))
    if scheduled:
        events[("scheduled",)] = TimelineEvent(scheduled, "Scheduled to ship")
    for sighting in [*history, evidence]:
        status = sighting.get("status")
        at = _when(sighting.get("event_time"))
        if status or at:
            text = f"Carrier reports: {status_words(status)}"
            events[("status", status, at)] = TimelineEvent(at, text)
    days_late = _decimal(evidence.get("days_late"))
    if days_late is not None and scheduled:
        events[("late",)] = TimelineEvent(
            None, f"Not shipped {count(int(days_late), 'day')} after the scheduled date"
        )
    new_eta = _when(evidence.get("new_eta"))
    ordered = sorted(events.values(), key=lambda e: (e.at is None, e.at or datetime.max))
    if ordered:
        ordered[-1] = TimelineEvent(ordered[-1].at, ordered[-1].text, current=True)
    payload = case.payload if isinstance(case.payload, dict) else {}
    picking = str(evidence.get("picking_ref") or payload.get("name") or "")
    holds_up = str(evidence.get("origin") or "")
    incoming = payload.get("picking_type_code") == "incoming"
    facts = []
    if evidence.get("tracking_number"):
        facts.append(Fact("Tracking number", _text(evidence["tracking_number"])))
    if evidence.get("partner"):
        facts.append(Fact("Supplier" if incoming else "Customer", _text(evidence["partner"])))
    for key in ("mail_from", "mail_subject", "mailbox"):  # a case raised from a shared mailbox
        if evidence.get(key):
            facts.append(Fact(_label(key), _text(evidence[key])))
    return CarrierTimeline(
        events=ordered,
        holds_up=holds_up,
        holds_up_what="purchase order" if incoming else "customer order",
        new_eta=new_eta,
        links=[
            link
            for link in [
                Link(f"Shipment {picking}".strip(), odoo_url(case.odoo_model, case.odoo_id))
            ]
            if link.url
        ],
        facts=facts,
    )


def facts(case: ExceptionCase, evidence: dict, history: list[dict]) -> Facts:
    """Any other kind: each fact in words; line lists summarised, never printed."""
    return Facts([Fact(_label(key), _text(value)) for key, value in evidence.items()])


RENDERERS: dict[str, Callable] = {
    CaseKind.INVOICE_MISMATCH: invoice_mismatch,
    CaseKind.RECEIPT_DISCREPANCY: receipt_discrepancy,
    CaseKind.ASN_CONFLICT: asn_conflict,
    CaseKind.SHIPMENT_DELAY: carrier,
    CaseKind.DELIVERY_FAILED: carrier,
}
