"""Many senders at once, with retries racing their originals: each event is stored once."""

import json
import random
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from portal.webhooks import demo
from portal.webhooks.models import InboundDelivery
from tests.webhooks.conftest import signed_headers

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
