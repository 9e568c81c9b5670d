"""An accepted delivery and its audit event are stored by one statement where the ledger allows.

On PostgreSQL events arrive unsealed, so a delivery and its event need no transaction of their
own: one `INSERT … ON CONFLICT` feeds the event's `INSERT … SELECT`, and both are stored or
neither. These run with committed transactions, as production does.
"""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.audit import sequencer
from portal.audit.models import AuditEvent
from portal.audit.verify import verify_chain
from portal.webhooks import handoff, services
from portal.webhooks.models import InboundDelivery
from portal.webhooks.sources import sender as sender_named
from tests import ledger
from tests.webhooks.conftest import carrier_event, post, signed_headers

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite seals events inline, in a transaction"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def noted(monkeypatch) -> list:
    """The deliveries handed over for processing, which is not under test here."""
    handed = []
    monkeypatch.setattr(handoff, "note", handed.append)
    return handed


# What an event of a delivery holds, apart from the delivery's own id and webhook-id.
COMPARED = (
    "action",
    "actor_id",
    "actor_label",
    "object_type",
    "site_id",
    "policy_version_label",
    "before",
    "after",
    "comment",
)


def _event_of(delivery: InboundDelivery) -> AuditEvent:
    return AuditEvent.objects.get(object_type="webhooks.inbounddelivery", object_id=delivery.pk)


def test_an_accepted_delivery_costs_two_statements_and_no_transaction(
    sources, site_a1, client, noted
):
    sender_named("carrier", fresh=True)  # as kept by a process that has received before
    body = carrier_event()
    with CaptureQueriesContext(connection) as queries:
        response = post(client, "carrier", body, signed_headers(body))
    assert response.status_code == 202, response.content
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    # The lookup (seen? the sender's stamp, the site), then the delivery with its event.
    assert statements == ["SELECT", "WITH"], statements
    delivery = InboundDelivery.objects.get(pk=response.json()["id"])
    assert noted == [delivery.pk]  # handed over once stored
    event = _event_of(delivery)
    assert event.action == "webhook.accepted"
    assert event.site_id == site_a1.pk
    assert event.object_reference == f"carrier/{delivery.webhook_id} @ {site_a1.region.code}/A1"
    assert event.context["source"] == "carrier"
    assert event.context["webhook_id"] == delivery.webhook_id
    assert event.context["region"] == site_a1.region.code
    assert sequencer.settle()
    event.refresh_from_db()
    assert event.sequence is not None


@pytest.mark.parametrize("body", [carrier_event(), carrier_event(site="NOPE"), b"{not json"])
def test_the_event_is_the_one_a_transaction_would_have_stored(sources, site_a1, monkeypatch, body):
    sender = sender_named("carrier", fresh=True)
    one = services.webhook_receive(source=sender.source, webhook_id="msg_one", body=body)
    monkeypatch.setattr(services, "appends_in_one_statement", lambda: False)
    two = services.webhook_receive(source=sender.source, webhook_id="msg_two", body=body)
    assert one.status == two.status
    first = InboundDelivery.objects.get(webhook_id="msg_one")
    second = InboundDelivery.objects.get(webhook_id="msg_two")
    one_event, two_event = _event_of(first), _event_of(second)
    assert {name: getattr(one_event, name) for name in COMPARED} == {
        name: getattr(two_event, name) for name in COMPARED
    }
    assert one_event.object_reference.replace("msg_one", "msg_two") == two_event.object_reference
    assert one_event.context | {"webhook_id": "msg_two"} == two_event.context
    ledger.seal_all()
    verdict = verify_chain()
    assert verdict.intact, verdict.reason


def test_copies_racing_store_one_delivery_and_one_event(sources, site_a1):
    sender = sender_named("carrier", fresh=True)
    body = carrier_event()
    start = threading.Barrier(8)
    answers, failures = [], []

    def send() -> None:
        try:
            start.wait()
            answers.append(
                services.webhook_receive(source=sender.source, webhook_id="msg_race", body=body)
            )
        except BaseException as error:  # collected and asserted below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sorted(answer.status for answer in answers) == [200] * 7 + [202]
    delivery = InboundDelivery.objects.get(webhook_id="msg_race")
    assert AuditEvent.objects.filter(object_type="webhooks.inbounddelivery").count() == 1
    assert _event_of(delivery).action == "webhook.accepted"
    ledger.seal_all()
    assert verify_chain().intact
