"""The delay summary for customer service: generated from the case and the sale orders."""

import pytest

from approvals.models import ApprovalRequest
from exceptions import customer_impact, services
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

# The staffed company and its policy matrix, shared with the approvals tests.
_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed


def _sale_order(requester, site, reference, customer, amount, product):
    return raise_request(
        requester,
        site,
        kind="price_override",
        amount=amount,
        title=f"{customer}: 1 line under the price floor",
        counterparty=customer,
        odoo_model="sale.order",
        odoo_id=int(reference[1:]),
        details={
            "odoo_reference": reference,
            "product": product,
            "unit_price": "9.50",
            "floor_price": "10.00",
            "counterparty_since": "2019-01-01",
            "line_items": [{"product": product, "quantity": "10"}],
        },
    )


def _delay(site, *, direction, origin, name="WH/OUT/00871", days=3.5):
    case, _ = services.case_raise(
        kind="shipment_delay",
        site=site,
        severity="medium",
        title=f"{name} is {days} days late",
        source="odoo",
        dedupe_key=f"impact:{name}",
        payload={"name": name, "picking_type_code": direction},
        evidence={"days_late": days, "origin": origin, "partner": "Vondel Horeca"},
    )
    return case


@pytest.fixture
def orders(matrix, requester, site_a1):
    return [
        _sale_order(requester, site_a1, "S00412", "Vondel Horeca", "1240", "[TG-0009] Coffee"),
        _sale_order(requester, site_a1, "S00413", "Albert Markt", "310.5", "[TG-0009] Coffee"),
        _sale_order(requester, site_a1, "S00414", "Café Centraal", "95", "[TG-0001] Cola"),
    ]


def test_a_late_delivery_names_its_customer_order_and_its_value(orders, site_a1, site_manager):
    case = _delay(site_a1, direction="outgoing", origin="S00412")

    summary = customer_impact.delay_summary(case, site_manager, locale="en_GB")

    assert summary.text == (
        "WH/OUT/00871, 3 days late, holds up 1 customer order of 1 customer: "
        "S00412 for Vondel Horeca (€1,240.00)."
    )


def test_a_late_receipt_names_the_customer_orders_waiting_for_its_products(
    orders, requester, site_a1, site_manager
):
    raise_request(
        requester,
        site_a1,
        amount="1840",
        odoo_model="purchase.order",
        odoo_id=318,
        details={
            "odoo_reference": "P00318",
            "counterparty_since": "2019-01-01",
            "line_items": [{"product": "[TG-0009] Coffee", "quantity": "20"}],
        },
    )
    case = _delay(site_a1, direction="incoming", origin="P00318", name="WH/IN/00871", days=8.5)

    summary = customer_impact.delay_summary(case, site_manager, locale="en_GB")

    assert [order.reference for order in summary.orders] == ["S00412", "S00413"]
    assert summary.text.startswith("WH/IN/00871, 8 days late, holds up 2 customer orders of 2")
    assert "S00413 for Albert Markt (€310.50)" in summary.text
    assert "Café Centraal" not in summary.text


def test_values_come_only_from_requests_the_reader_may_open(orders, site_a1, outsider):
    case = _delay(site_a1, direction="outgoing", origin="S00412")

    summary = customer_impact.delay_summary(case, outsider, locale="en_GB")

    assert summary.orders[0].value is None
    assert "value not in Tollgate" in summary.text


def test_without_a_known_order_it_says_so(matrix, site_a1, site_manager):
    case = _delay(site_a1, direction="incoming", origin="P09999", name="WH/IN/00900", days=2)

    summary = customer_impact.delay_summary(case, site_manager, locale="en_GB")

    assert summary.text == (
        "No customer order that Tollgate knows of waits on WH/IN/00900, 2 days late."
    )
    assert not ApprovalRequest.objects.filter(odoo_model="sale.order").exists()
