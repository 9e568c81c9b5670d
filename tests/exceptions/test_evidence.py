"""A case's evidence reads as the document it stands for, whatever shape it was stored in.

The evidence below has the shapes the producers store: the Odoo sync's three-way match and
receipt comparison (Decimals, stored as strings), the carrier's and the supplier's webhook
events, and the shapes of older releases.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from exceptions import evidence, titles
from exceptions.models import CaseKind, ExceptionCase
from exceptions.services import case_raise
from tests.factories import SiteFactory

D = Decimal

# What VendorBills/_three_way stores for a bill drafted from P00284 (sandbox product names).
THREE_WAY = {
    "order": "P00284",
    "order_id": 284,
    "bill": "BILL/2026/00042",
    "lines": [
        {
            "product": "[TG-0011] Frozen Fries 4x2.5kg",
            "ordered": D("100.00"),
            "received": D("100.00"),
            "order_price": D("18.40"),
            "billed_quantity": D("100.00"),
            "billed_price": D("19.98"),
            "difference": D("158.00"),
        },
        {
            "product": "[TG-0003] Sparkling Water 24x0.5L",
            "ordered": D("60.00"),
            "received": D("60.00"),
            "order_price": D("7.10"),
            "billed_quantity": D("60.00"),
            "billed_price": D("7.10"),
            "difference": D("0.00"),
        },
    ],
    "expected": D("2266.00"),
    "billed": D("2424.00"),
    "difference": D("158.00"),
    "tolerance_pct": D("2"),
}

# What Pickings._receipt stores.
RECEIPT = {
    "lines": [
        {
            "product": "[TG-0020] Olive Oil 6x1L",
            "ordered": D("48.00"),
            "received": D("40.00"),
            "difference": D("-8.00"),
        }
    ],
    "tolerance_pct": D("2"),
    "origin": "P00031",
}

# What the supplier webhook stores for an ASN that differs.
ASN = {
    "order_ref": "P00031",
    "lines": [{"product": "TG-0020", "quantity": "36", "ordered_quantity": "48"}],
    "webhook_source": "supplier",
    "webhook_id": "msg_2mK9",
}

# What Pickings._delay stores, then what the carrier adds on a later sighting.
LATE_PICKING = {
    "scheduled_date": "2026-08-29 09:00:00",
    "days_late": 99.2,
    "origin": "S00042",
    "partner": "Brasserie Lumière",
    "state": "assigned",
}
CARRIER_FIRST = {
    "tracking_number": "1Z999AA10123456784",
    "picking_ref": "AMS/OUT/00042",
    "status": "in_transit",
    "event_time": "2026-12-01T07:15:00Z",
    "webhook_source": "carrier",
    "webhook_id": "msg_1",
}
CARRIER_LATER = {
    **CARRIER_FIRST,
    "status": "held_at_depot",
    "event_time": "2026-12-03T16:40:00Z",
    "new_eta": "2026-12-09T10:00:00+00:00",
    "webhook_id": "msg_2",
}


def _raised(site, kind, found, *, key=None, **extra):
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity="medium",
        title=f"{kind} case",
        source="odoo",
        dedupe_key=f"evidence-test:{key or kind}",
        payload={"name": "as received", "lines": [{"id": 1}]},
        evidence=found,
        **extra,
    )
    # Read back: the page sees the evidence as JSON gave it back, Decimals as strings.
    return ExceptionCase.objects.select_related("site").get(pk=case.pk)


def test_invoice_mismatch_is_a_three_way_match_with_the_differing_line_marked(site_a1):
    case = _raised(
        site_a1,
        CaseKind.INVOICE_MISMATCH,
        THREE_WAY,
        odoo_model="account.move",
        odoo_id=42,
        amount_at_stake=D("158.00"),
        currency="EUR",
    )

    shown = evidence.present(case)
    match = shown.body

    assert shown.template == "exceptions/evidence/invoice_mismatch.html"
    fries, water = match.lines
    assert (fries.product, fries.ordered, fries.received, fries.billed_quantity) == (
        "[TG-0011] Frozen Fries 4x2.5kg",
        "100",
        "100",
        "100",
    )
    assert (fries.order_price, fries.billed_price, fries.difference) == (
        "€18.40",
        "€19.98",
        "+€158.00",
    )
    assert fries.outside and not water.outside
    assert (match.expected, match.billed, match.difference) == (
        "€2,266.00",
        "€2,424.00",
        "+€158.00",
    )
    assert match.tolerance == "2 % of the order value"
    assert [link.label for link in match.links] == ["Purchase order P00284", "Bill BILL/2026/00042"]
    # The form every Odoo version opens while the server's version is not yet known.
    assert match.links[0].url.endswith("/web#id=284&model=purchase.order&view_type=form")
    assert match.links[1].url.endswith("/web#id=42&model=account.move&view_type=form")


def test_receipt_discrepancy_compares_ordered_and_received(site_a1):
    case = _raised(
        site_a1, CaseKind.RECEIPT_DISCREPANCY, RECEIPT, odoo_model="stock.picking", odoo_id=7
    )

    shown = evidence.present(case).body

    assert shown.heading == "Ordered on P00031 against received"
    assert (shown.expected_label, shown.actual_label) == ("Ordered", "Received")
    [line] = shown.lines
    assert (line.product, line.expected, line.actual, line.difference, line.short) == (
        "[TG-0020] Olive Oil 6x1L",
        "48",
        "40",
        evidence.MINUS + "8",
        True,
    )
    assert shown.tolerance == "2 % of the ordered quantity"
    assert shown.links[0].url.endswith("/web#id=7&model=stock.picking&view_type=form")


def test_asn_conflict_compares_ordered_and_announced_and_hides_the_webhook_ids(site_a1):
    case = _raised(site_a1, CaseKind.ASN_CONFLICT, ASN)

    shown = evidence.present(case).body

    assert shown.actual_label == "Announced"
    [line] = shown.lines
    assert (line.expected, line.actual, line.difference) == ("48", "36", evidence.MINUS + "12")
    assert shown.facts == []  # the order is in the heading; delivery ids are no evidence
    assert shown.links == []  # not linked to an Odoo record yet


def test_shipment_delay_is_a_timeline_of_the_carriers_events(site_a1):
    case = _raised(
        site_a1,
        CaseKind.SHIPMENT_DELAY,
        {**LATE_PICKING, **CARRIER_LATER},
        odoo_model="stock.picking",
        odoo_id=42,
    )

    shown = evidence.present(case, history=[LATE_PICKING, CARRIER_FIRST]).body

    assert [(e.at, e.text) for e in shown.events] == [
        (datetime(2026, 8, 29, 9, 0, tzinfo=UTC), "Scheduled to ship"),
        (datetime(2026, 12, 1, 7, 15, tzinfo=UTC), "Carrier reports: in transit"),
        (datetime(2026, 12, 3, 16, 40, tzinfo=UTC), "Carrier reports: held at depot"),
        (None, "Not shipped 99 days after the scheduled date"),
    ]
    assert shown.events[-1].current
    assert shown.new_eta == datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
    assert (shown.holds_up_what, shown.holds_up) == ("customer order", "S00042")
    assert ("Customer", "Brasserie Lumière") in [(f.label, f.text) for f in shown.facts]
    assert shown.links[0].label == "Shipment AMS/OUT/00042"


def test_a_late_incoming_shipment_holds_up_a_purchase_order(site_a1):
    case, _ = case_raise(
        kind=CaseKind.SHIPMENT_DELAY,
        site=site_a1,
        severity="high",
        title="late receipt",
        source="odoo",
        dedupe_key="evidence-test:incoming",
        payload={"name": "A1/IN/00006", "picking_type_code": "incoming"},
        evidence={**LATE_PICKING, "origin": "P00079", "partner": "Thames Logistics Parts"},
    )

    shown = evidence.present(case).body

    assert (shown.holds_up_what, shown.holds_up) == ("purchase order", "P00079")
    assert ("Supplier", "Thames Logistics Parts") in [(f.label, f.text) for f in shown.facts]


def test_failed_delivery_from_the_carrier_alone(site_a1):
    failed = {**CARRIER_FIRST, "status": "recipient_absent"}
    case = _raised(site_a1, CaseKind.DELIVERY_FAILED, failed)

    shown = evidence.present(case).body

    assert [e.text for e in shown.events] == ["Carrier reports: recipient absent"]
    assert shown.holds_up == "" and shown.new_eta is None
    assert ("Tracking number", "1Z999AA10123456784") in [(f.label, f.text) for f in shown.facts]


@pytest.mark.parametrize(
    "stored",
    [
        {"bill_total": "1240.00", "order_total": "1200.00", "difference": "40.00"},
        {"lines": "not a list", "tolerance_pct": {"odd": 1}},
        {"lines": [["a", "list"], {"product": {"id": 3}}]},
        {},
    ],
)
def test_old_or_odd_invoice_evidence_never_prints_python_data(site_a1, stored):
    case = _raised(site_a1, CaseKind.INVOICE_MISMATCH, stored, currency="EUR")

    match = evidence.present(case).body
    words = [match.expected, match.billed, match.difference, match.tolerance]
    words += [str(value) for line in match.lines for value in vars(line).values()]
    words += [fact.text for fact in match.facts]

    assert not any(mark in text for text in words for mark in ("{'", "['", "{", "["))


def test_old_totals_still_read_as_owed_billed_and_difference(site_a1):
    old = {"bill_total": "1240.00", "order_total": "1200.00", "difference": "40.00"}
    case = _raised(site_a1, CaseKind.INVOICE_MISMATCH, old, currency="EUR")

    match = evidence.present(case).body

    assert (match.expected, match.billed, match.difference) == ("€1,200.00", "€1,240.00", "+€40.00")
    # The bill's number is in the payload as received ("as received" here), not the evidence.
    assert match.bill == "as received" and match.order == ""


def test_titles_are_sentences():
    assert (
        titles.invoice_mismatch(
            bill="BILL/2026/00042", order="P00284", difference=D("158.00"), currency="EUR"
        )
        == "Bill BILL/2026/00042 is €158.00 above order P00284"
    )
    assert (
        titles.receipt_discrepancy(receipt="AMS/IN/00012", order="P00031", lines=1)
        == "Receipt AMS/IN/00012 differs from order P00031 on 1 line"
    )
    assert titles.shipment_late(picking="AMS/OUT/00042", days=99.2) == (
        "Shipment AMS/OUT/00042 is 99 days late"
    )
    assert (
        titles.invoice_mismatch(
            bill="/", order="P00065", difference=D("-12.00"), currency="EUR", vendor="Vitens BV"
        )
        == "Draft bill from Vitens BV is €12.00 below order P00065"
    )
    assert titles.shipment_late(picking="RTM/IN/00006", days=99.2, incoming=True) == (
        "Incoming shipment RTM/IN/00006 is 99 days late"
    )
    assert titles.delivery_failed(picking="AMS/OUT/00042", status="recipient_absent") == (
        "Delivery of AMS/OUT/00042 failed: recipient absent"
    )
    assert titles.asn_conflict(order="P00031", lines=2) == (
        "Shipping notice for P00031 differs from the order on 2 lines"
    )


# Every kind of case, with the evidence its producer stores (or, for kinds no producer raises
# yet, nested data of the kind an integration might send).
EVERY_KIND = {
    CaseKind.INVOICE_MISMATCH: THREE_WAY,
    CaseKind.RECEIPT_DISCREPANCY: RECEIPT,
    CaseKind.ASN_CONFLICT: ASN,
    CaseKind.SHIPMENT_DELAY: {**LATE_PICKING, **CARRIER_LATER},
    CaseKind.DELIVERY_FAILED: {**CARRIER_FIRST, "status": "recipient_absent"},
    CaseKind.RESERVATION_FAILURE: {"lines": [{"product": "TG-0001", "quantity": "4"}]},
    CaseKind.PRICE_VARIANCE: {"prices": {"list": "12.00", "paid": "13.10"}, "codes": ["a"]},
    CaseKind.RETURN_DAMAGE: {"photos": [], "carrier": {"name": "DHL", "claims": [1, 2]}},
}


def test_no_case_page_prints_a_dict_or_a_list(client, region_a, site_a1, finance):
    SiteFactory(code="A9", region=region_a)
    client.force_login(finance)
    for kind, found in EVERY_KIND.items():
        case = _raised(site_a1, kind, found, odoo_model="stock.picking", odoo_id=9)

        page = client.get(reverse("exceptions:detail", args=[case.pk])).content.decode()

        assert page.count('id="evidence"') == 1, kind
        for mark in ("{'", "['", "{&#x27;", "[&#x27;", "Decimal("):
            assert mark not in page, (kind, mark)
