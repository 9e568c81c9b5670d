"""The subscription lock taken while a delivery settles lets publishing go on (PostgreSQL).

Settling an attempt locks its subscription to count failures. Publishing inserts deliveries
that point at the subscription, which takes KEY SHARE on its row while the publishing service
already holds the ledger's lock. FOR NO KEY UPDATE leaves KEY SHARE free; a plain FOR UPDATE
would make publishers queue behind every POST in flight and, with the ledger, deadlock.
"""

import threading

import pytest
from django.db import connection, transaction

from portal.webhooks import outbound
from portal.webhooks.models import OutboundDelivery


@pytest.mark.django_db(transaction=True)
def test_publishing_is_not_blocked_by_a_settling_delivery(settings, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks; the lock modes exist on PostgreSQL only")
    # Only the insert is under test: nothing is sent.
    monkeypatch.setattr(outbound, "_enqueue", lambda ids: None)
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = True
    subscription, _ = outbound.subscription_create(
        actor=None, name="n8n", url="http://127.0.0.1:9/", event_types=["approval.decided"]
    )
    locked, release = threading.Event(), threading.Event()

    def settle():
        try:
            with transaction.atomic():
                outbound._locked_subscription(subscription.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=settle)
    holder.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Fail fast instead of waiting, should the insert queue behind the lock.
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            outbound.publish("approval.decided", data={"reference": "AR-000001"})
    finally:
        release.set()
        holder.join(10)

    assert OutboundDelivery.objects.filter(subscription=subscription).count() == 1
