"""For customer service: which customer orders a delayed shipment holds up, by how much.

Generated from what Tollgate holds, never typed: the delay case's own evidence (the picking's
origin, its partner, how many days late) and the requests raised from Odoo's sale orders
(price overrides, credit exceptions), which carry the customer, the amount and the lines. A late
delivery to a customer affects the order it was picked for; a late receipt from a supplier
affects the customer orders at the site that wait for any of its products (known from the
purchase order's own request). Only requests the reader may open are used.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.text import capfirst

from approvals import selectors as approval_selectors
from approvals.models import OPEN_STATES, ApprovalRequest, RequestState
from exceptions.models import CaseKind, ExceptionCase
from portal.core import formatting

# Sale orders asked about this recently are taken to be still open.
RECENT_DAYS = 60
_LIVE = (*OPEN_STATES, RequestState.APPROVED, RequestState.APPLIED)


@dataclass(frozen=True)
class AffectedOrder:
    reference: str
    customer: str
    value: Decimal | None
    currency: str


@dataclass(frozen=True)
class DelaySummary:
    picking: str
    days_late: Decimal | None
    orders: list[AffectedOrder]
    text: str


def _products(request: ApprovalRequest) -> set[str]:
    lines = (request.details or {}).get("line_items") or []
    return {str(line.get("product")) for line in lines if isinstance(line, dict)} - {"None"}


def _days(case: ExceptionCase) -> Decimal | None:
    try:
        return Decimal(str(case.evidence.get("days_late")))
    except ArithmeticError:
        return None


def _late(days: Decimal) -> str:
    """Whole days, as the case's title counts them; under a day in hours."""
    if days < 1:
        return formatting.count(max(int(days * 24), 1), "hour")
    return formatting.count(int(days), "day")


def affected_orders(case: ExceptionCase, viewer) -> list[AffectedOrder]:
    """The customer orders the delay holds up, as far as Tollgate knows them (two queries)."""
    evidence = case.evidence or {}
    origin = str(evidence.get("origin") or "")
    outgoing = (case.payload or {}).get("picking_type_code") == "outgoing"
    visible = approval_selectors.requests_visible_to(viewer).filter(site=case.site_id)
    sales = visible.filter(odoo_model="sale.order", state__in=_LIVE)
    if outgoing:
        if not origin:
            return []
        found = sales.filter(details__odoo_reference=origin).order_by("-pk").first()
        customer = str(evidence.get("partner") or (found.counterparty if found else ""))
        value = found.amount if found else None
        return [AffectedOrder(origin, customer, value, found.currency if found else "")]
    purchase = visible.filter(odoo_model="purchase.order", details__odoo_reference=origin).first()
    products = _products(purchase) if purchase and origin else set()
    if not products:
        return []
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    waiting = sales.filter(created_at__gte=since).order_by("details__odoo_reference", "pk")
    return [
        AffectedOrder(
            request.details.get("odoo_reference") or request.reference,
            request.counterparty,
            request.amount,
            request.currency,
        )
        for request in waiting
        if _products(request) & products
    ]


def delay_summary(case: ExceptionCase, viewer, *, locale: str | None = None) -> DelaySummary | None:
    """The short text customer service reads, or None for a case that is not a delay."""
    if case.kind != CaseKind.SHIPMENT_DELAY:
        return None
    orders = affected_orders(case, viewer)
    days = _days(case)
    payload = case.payload or {}
    picking = str(payload.get("name") or payload.get("picking_ref") or "this shipment")
    late = f", {_late(days)} late," if days is not None else ""
    if not orders:
        text = f"No customer order that Tollgate knows of waits on {picking}{late.rstrip(',')}."
        return DelaySummary(picking, days, [], text)
    customers = sorted({order.customer for order in orders if order.customer})
    parts = [
        f"{order.reference} for {order.customer or 'a customer'} ("
        + (
            formatting.money(order.value, order.currency, locale)
            if order.value is not None
            else "value not in Tollgate"
        )
        + ")"
        for order in orders
    ]
    orders_words = formatting.count(len(orders), "customer order")
    customers_words = formatting.count(len(customers), "customer")
    listed = "; ".join(parts)
    text = f"{capfirst(picking)}{late} holds up {orders_words} of {customers_words}: {listed}."
    return DelaySummary(picking, days, orders, text)
