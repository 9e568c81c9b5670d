"""Signed senders for the webhook tests: the demo sources and a way to sign like they do."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from portal.webhooks import demo

CARRIER_SECRET = demo.demo_secret("carrier")


@pytest.fixture
def sources(db, monkeypatch):
    for name in demo.SOURCES:
        monkeypatch.delenv(f"WEBHOOK_SECRET_{name.upper()}", raising=False)
    demo.seed()


def signed_headers(body: bytes, *, secret=CARRIER_SECRET, webhook_id=None, at=None) -> dict:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, at, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def post(client, source: str, body: bytes, headers: dict):
    return client.post(
        f"/api/v1/webhooks/{source}/", data=body, content_type="application/json", headers=headers
    )


def carrier_event(**changes) -> bytes:
    event = {
        "type": "shipment.delayed",
        "tracking_number": "1Z999AA10123456784",
        "picking_ref": "A1/OUT/00042",
        "site": "A1",
        "status": "held_at_depot",
        "event_time": "2026-05-04T09:30:00Z",
        "new_eta": (datetime(2026, 5, 4, tzinfo=UTC) + timedelta(days=3)).isoformat(),
    }
    return json.dumps(event | changes).encode()


def asn_event(lines) -> bytes:
    return json.dumps({"type": "asn", "order_ref": "P00017", "site": "A1", "lines": lines}).encode()
