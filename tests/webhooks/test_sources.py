"""Each process keeps the senders it read, yet answers as if it read them for every delivery."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.audit.models import AuditEvent
from portal.webhooks import demo, sources
from portal.webhooks.models import InboundDelivery, WebhookSecret, WebhookSource
from portal.webhooks.services import webhook_secret_add
from tests.webhooks.conftest import carrier_event, post, signed_headers

pytestmark = pytest.mark.usefixtures("sources", "site_a1")

NEW_SECRET = "whsec_" + "YW5vdGhlci1wcm9jZXNzLWFkZGVkLXRoaXMtc2VjcmV0"


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    def send(body, headers=None):
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, "carrier", body, headers or signed_headers(body))

    return send


def test_a_secret_retired_elsewhere_is_refused_at_once(deliver):
    assert deliver(carrier_event(status="a")).status_code == 202
    # As another process would: the rows change, nothing here is told.
    WebhookSecret.objects.filter(source__name="carrier").update(retired_at="2026-01-01T00:00Z")

    response = deliver(carrier_event(status="b"))

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 1


def test_a_source_deactivated_elsewhere_is_404_at_once(deliver):
    assert deliver(carrier_event(status="a")).status_code == 202
    WebhookSource.objects.filter(name="carrier").update(active=False)

    response = deliver(carrier_event(status="b"))

    assert response.status_code == 404
    assert InboundDelivery.objects.count() == 1


def test_a_secret_whose_text_changed_elsewhere_no_longer_verifies(deliver):
    assert deliver(carrier_event(status="a")).status_code == 202
    WebhookSecret.objects.filter(source__name="carrier").update(secret=NEW_SECRET)

    old = carrier_event(status="b")
    new = carrier_event(status="c")

    assert deliver(old).status_code == 401
    assert deliver(new, signed_headers(new, secret=NEW_SECRET)).status_code == 202


def test_a_secret_added_after_the_sender_was_read_is_accepted(deliver):
    assert deliver(carrier_event(status="a")).status_code == 202
    carrier = WebhookSource.objects.get(name="carrier")
    webhook_secret_add(actor=None, source=carrier, secret=NEW_SECRET)
    body = carrier_event(status="b")

    response = deliver(body, signed_headers(body, secret=NEW_SECRET))

    assert response.status_code == 202
    assert InboundDelivery.objects.count() == 2


def test_a_source_made_again_under_its_name_is_the_one_stored_against(deliver):
    assert deliver(carrier_event(status="a")).status_code == 202
    old = WebhookSource.objects.get(name="carrier")
    old.name = "carrier-old"
    old.save()
    WebhookSource.objects.filter(pk=old.pk).update(active=False)
    demo.seed()

    assert deliver(carrier_event(status="b")).status_code == 202
    assert InboundDelivery.objects.filter(source__name="carrier").count() == 1


def test_a_kept_sender_never_shows_its_secrets():
    sender = sources.sender("carrier")

    assert demo.demo_secret("carrier").removeprefix("whsec_") not in repr(sender)
    assert sender.stamp and sender.signers


def test_a_delivery_reads_the_database_once_and_writes_once_beside_the_ledger(client):
    # Without running the processing the delivery enqueues (that is the worker's).
    warm_up = carrier_event(status="warm-up")
    post(client, "carrier", warm_up, signed_headers(warm_up))  # the sender is read once
    body = carrier_event(status="a")
    headers = signed_headers(body)

    with CaptureQueriesContext(connection) as accepted:
        assert post(client, "carrier", body, headers).status_code == 202
    with CaptureQueriesContext(connection) as repeated:
        assert post(client, "carrier", body, headers).status_code == 200

    # The ledger's own statements are its business; the delivery's are one lookup, one insert.
    webhook_side = [
        query["sql"].split()[0]
        for query in accepted.captured_queries
        if "webhooks_" in query["sql"] or "sites_" in query["sql"]
    ]
    assert webhook_side == ["SELECT", "INSERT"]
    assert [query["sql"].split()[0] for query in repeated.captured_queries] == ["SELECT"]
    assert AuditEvent.objects.filter(action="webhook.accepted").count() == 2
