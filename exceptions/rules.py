"""What each kind of case may be closed with, and who works each queue.

Resolution codes are per kind, so that a report can say how invoice mismatches end; a code a
kind does not list is refused. Administrators add and withdraw codes (ResolutionCode rows) on
top of the built-in lists below. Queues are worked by roles held at the case's site (or its
region): finance works the finance queue, site and regional managers the operational ones.
"""

from exceptions.models import CaseKind, Queue, ResolutionCode, Severity
from sites.roles import Role

K = CaseKind
RESOLUTION_CODES: dict[str, dict[str, str]] = {
    K.SHIPMENT_DELAY: {
        "rescheduled": "New date agreed with the carrier and the customer",
        "expedited": "Shipped by a faster service",
        "delivered_late": "Delivered; the delay is recorded",
    },
    K.DELIVERY_FAILED: {
        "redelivered": "Delivered on a second attempt",
        "returned_to_stock": "Goods back in stock; order reopened",
        "customer_cancelled": "Customer cancelled the order",
    },
    K.RECEIPT_DISCREPANCY: {
        "supplier_credit": "Supplier issues a credit note",
        "supplier_ships_balance": "Supplier ships the missing quantity",
        "stock_corrected": "Receipt corrected in Odoo after a recount",
    },
    K.ASN_CONFLICT: {
        "asn_corrected": "Supplier corrected the advance shipping notice",
        "order_amended": "Purchase order amended to match",
    },
    K.INVOICE_MISMATCH: {
        "credit_note_requested": "Credit note requested from the supplier",
        "bill_corrected": "Vendor bill corrected before payment",
        "difference_written_off": "Difference written off",
        "order_price_updated": "Order price was out of date; bill accepted",
    },
    K.RESERVATION_FAILURE: {
        "replenished": "Stock replenished and reserved",
        "substituted": "Substitute product agreed",
    },
    K.PRICE_VARIANCE: {
        "price_list_updated": "Price list updated",
        "variance_accepted": "Variance accepted",
    },
    K.RETURN_DAMAGE: {
        "carrier_claim": "Claim filed with the carrier",
        "customer_charged": "Customer charged for the damage",
        "written_off": "Damaged goods written off",
    },
}


def resolution_codes(kind: str) -> dict[str, str]:
    """The codes a case of `kind` may be closed with now: the built-in ones as administered."""
    codes = dict(RESOLUTION_CODES.get(kind, {}))
    for code, label, active in ResolutionCode.objects.filter(kind=kind).values_list(
        "code", "label", "active"
    ):
        if active:
            codes[code] = label
        else:
            codes.pop(code, None)
    return codes


QUEUE_ROLES: dict[str, frozenset[str]] = {
    Queue.FINANCE: frozenset({Role.FINANCE}),
    Queue.WAREHOUSE: frozenset({Role.SITE_MANAGER, Role.REGIONAL_MANAGER}),
    Queue.PROCUREMENT: frozenset({Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE}),
    Queue.CUSTOMER_SERVICE: frozenset({Role.SITE_MANAGER, Role.REGIONAL_MANAGER}),
}


# Resolutions that move money: above the threshold (base currency) they need an approval, and
# the case waits for its outcome. The request is raised as this kind with this category.
NEEDS_APPROVAL = {
    (K.INVOICE_MISMATCH, "difference_written_off"): ("write_off", "Invoice differences"),
    (K.RETURN_DAMAGE, "written_off"): ("write_off", "Damaged returns"),
}


# Where a case lands and how long it may stay open when no QueueRule or CaseDeadline row says
# otherwise (see exceptions/routing.py).
DEFAULT_QUEUE = {
    K.SHIPMENT_DELAY: Queue.WAREHOUSE,
    K.DELIVERY_FAILED: Queue.CUSTOMER_SERVICE,
    K.RECEIPT_DISCREPANCY: Queue.WAREHOUSE,
    K.ASN_CONFLICT: Queue.PROCUREMENT,
    K.INVOICE_MISMATCH: Queue.FINANCE,
    K.RESERVATION_FAILURE: Queue.WAREHOUSE,
    K.PRICE_VARIANCE: Queue.FINANCE,
    K.RETURN_DAMAGE: Queue.CUSTOMER_SERVICE,
}
HOURS_BY_SEVERITY = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 24,
    Severity.MEDIUM: 72,
    Severity.LOW: 168,
}


def picking_delay_key(picking_name: str) -> str:
    """The case key of a late shipment, whoever reports it.

    Odoo's picking name (e.g. AMS/OUT/00042) is what both the sync and the carrier know, so a
    carrier's delay report and the sync's late picking meet in one case in either order.
    """
    return f"stock.picking:{picking_name}:shipment_delay"
