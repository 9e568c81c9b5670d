"""One late shipment, two witnesses: the Odoo sync's late picking and a carrier's delay report
are one case, whichever arrives first; the other joins it as a second occurrence."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from exceptions.models import ExceptionCase
from portal.integrations.odoo.mapping import Context, Pickings
from portal.webhooks import demo, services
from portal.webhooks.models import DeliveryStatus, InboundDelivery, WebhookSource

SCHEDULED = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
WAREHOUSE, PICKING_TYPE = 7, 3


@pytest.fixture
def sync(site_a1):
    """One Odoo sync run that finds picking A1/OUT/00042 eight days late."""

    def run():
        ctx = Context(client=None)
        ctx.now = SCHEDULED + timedelta(days=8)
        ctx.sites = {WAREHOUSE: site_a1}
        ctx.picking_types = {PICKING_TYPE: {"warehouse_id": [WAREHOUSE, "A1"]}}
        row = {
            "id": 42,
            "name": "A1/OUT/00042",
            "picking_type_id": [PICKING_TYPE, "A1: Delivery Orders"],
            "picking_type_code": "outgoing",
            "state": "assigned",
            "scheduled_date": SCHEDULED.strftime("%Y-%m-%d %H:%M:%S"),
            "origin": "S00042",
            "partner_id": [9, "Bakker BV"],
        }
        return Pickings().handle(row, ctx)

    return run


@pytest.fixture
def carrier_report(site_a1, django_capture_on_commit_callbacks):
    """The carrier's signed report that the same picking is held at the depot, received and
    processed the way the endpoint does it."""
    demo.seed()
    body = {
        "type": "shipment.delayed",
        "tracking_number": "1Z999AA10123456784",
        "picking_ref": "A1/OUT/00042",
        "site": "A1",
        "status": "held_at_depot",
        "event_time": "2026-05-08T09:30:00Z",
    }

    def send() -> InboundDelivery:
        with django_capture_on_commit_callbacks(execute=True):
            received = services.webhook_receive(
                source=WebhookSource.objects.get(name="carrier"),
                webhook_id="msg_delay_42",
                body=json.dumps(body).encode(),
            )
        assert received.status == 202
        return InboundDelivery.objects.get(pk=received.body["id"])

    return send


def test_a_carrier_report_joins_the_case_the_sync_opened(sync, carrier_report):
    assert sync() == "case_opened"

    delivery = carrier_report()

    case = ExceptionCase.objects.get()
    assert (delivery.status, delivery.case) == (DeliveryStatus.PROCESSED, case)
    assert case.occurrences == 2
    assert case.severity == "high"  # the sync's grading; the carrier's "medium" never lowers it
    assert (case.odoo_model, case.odoo_id) == ("stock.picking", 42)
    # The Odoo record that opened the case stays its payload; the evidence holds both reports.
    assert (case.source, case.payload["name"]) == ("odoo", "A1/OUT/00042")
    assert case.evidence["days_late"] == 8.0
    assert case.evidence["tracking_number"] == "1Z999AA10123456784"


def test_the_sync_joins_the_case_a_carrier_report_opened(sync, carrier_report):
    delivery = carrier_report()
    assert ExceptionCase.objects.get().severity == "medium"

    assert sync() == "case_updated"

    case = ExceptionCase.objects.get()
    assert delivery.case == case
    assert case.occurrences == 2
    assert case.severity == "high"  # eight days late, as only Odoo can tell
    assert (case.odoo_model, case.odoo_id) == ("stock.picking", 42)
    assert case.source == "webhook"
