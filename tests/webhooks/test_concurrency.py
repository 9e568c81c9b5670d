"""Many senders at once, with retries racing their originals: each event is stored once."""

import json
import random
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from exceptions.models import ExceptionCase
from portal.webhooks import demo, services
from portal.webhooks.models import DeliveryStatus, InboundDelivery, WebhookSource
from tests.webhooks.conftest import carrier_event, signed_headers

UNIQUE, DUPLICATES, THREADS = 700, 300, 20


def send(url: str, body: bytes, headers: dict) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers=headers | {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.django_db(transaction=True)
def test_concurrent_events_with_duplicates_are_stored_exactly_once(sources, live_server):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; the race is real on PostgreSQL only")
    secret = demo.demo_secret("n8n")
    events = []
    for number in range(UNIQUE):
        body = json.dumps({"type": "load.test", "number": number}).encode()
        events.append((body, signed_headers(body, secret=secret, webhook_id=f"msg_{number}")))
    rng = random.Random(7)  # noqa: S311 - a repeatable order, not a secret
    sends = events + [rng.choice(events) for _ in range(DUPLICATES)]
    rng.shuffle(sends)
    url = f"{live_server.url}/api/v1/webhooks/n8n/"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        statuses = list(pool.map(lambda event: send(url, *event), sends))

    assert sorted(set(statuses)) <= [200, 202]
    assert statuses.count(202) == UNIQUE
    assert InboundDelivery.objects.count() == UNIQUE
    assert set(InboundDelivery.objects.values_list("webhook_id", flat=True)) == {
        f"msg_{n}" for n in range(UNIQUE)
    }


@pytest.mark.django_db(transaction=True)
def test_copies_of_one_event_processed_at_once_open_one_case(sources, site_a1):
    """Reports of one delay under different webhook-ids, processed at once: one case."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; the race is real on PostgreSQL only")
    copies = 8
    source = WebhookSource.objects.get(name="carrier")
    body = carrier_event().decode()
    ids = [
        InboundDelivery.objects.create(
            source=source,
            webhook_id=f"msg_copy_{n}",
            body=body,
            event_type="shipment.delayed",
            status=DeliveryStatus.ACCEPTED,
            site=site_a1,
        ).pk
        for n in range(copies)
    ]
    barrier = threading.Barrier(copies)
    errors: list = []

    def process(delivery_id):
        try:
            barrier.wait(timeout=10)
            services.delivery_process(delivery_id=delivery_id)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=process, args=(pk,)) for pk in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    case = ExceptionCase.objects.get()
    assert case.occurrences == copies
    deliveries = InboundDelivery.objects.filter(pk__in=ids)
    assert set(deliveries.values_list("status", "case")) == {(DeliveryStatus.PROCESSED, case.pk)}
