"""The inbound endpoint: only signed, fresh, well-formed events are stored, each exactly once."""

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.test.client import ClientHandler, RequestFactory

from exceptions.models import ExceptionCase
from exceptions.services import case_resolve
from portal.audit.models import AuditEvent
from portal.webhooks import demo
from portal.webhooks.models import DeliveryStatus, InboundDelivery, WebhookSource
from portal.webhooks.services import webhook_secret_add, webhook_secret_retire
from tests.webhooks.conftest import CARRIER_SECRET, asn_event, carrier_event, post, signed_headers

pytestmark = pytest.mark.usefixtures("sources")


@pytest.fixture
def deliver(client, site_a1, django_capture_on_commit_callbacks):
    def send(source, body, headers=None):
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, source, body, headers or signed_headers(body))

    return send


def test_valid_carrier_delay_is_accepted_and_opens_a_case(deliver):
    response = deliver("carrier", carrier_event())

    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    delivery = InboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert delivery.body == carrier_event().decode()
    case = ExceptionCase.objects.get()
    assert (case.kind, case.source, case.site.code) == ("shipment_delay", "webhook", "A1")
    assert case.dedupe_key == "stock.picking:A1/OUT/00042:shipment_delay"
    assert delivery.case == case
    assert AuditEvent.objects.filter(action="webhook.accepted", site=case.site).exists()


def test_a_later_delay_report_for_the_same_picking_joins_its_case(deliver):
    deliver("carrier", carrier_event())
    deliver("carrier", carrier_event(status="missed_connection", event_time="2026-05-05T08:00Z"))

    case = ExceptionCase.objects.get()
    assert case.occurrences == 2
    assert InboundDelivery.objects.filter(status=DeliveryStatus.PROCESSED).count() == 2


def test_delivery_failed_opens_a_delivery_failed_case(deliver):
    response = deliver("carrier", carrier_event(type="delivery.failed", status="refused"))

    assert response.status_code == 202
    assert ExceptionCase.objects.get().kind == "delivery_failed"


def test_status_update_is_stored_without_a_case(deliver):
    response = deliver("carrier", carrier_event(type="shipment.status", status="in_transit"))

    assert response.status_code == 202
    assert InboundDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert not ExceptionCase.objects.exists()


def test_asn_differing_from_the_order_opens_an_asn_conflict_with_the_lines(deliver):
    body = asn_event(
        [
            {"product": "WIDGET-1", "quantity": 10, "ordered_quantity": 10},
            {"product": "WIDGET-2", "quantity": 7.5, "ordered_quantity": 12},
        ]
    )

    response = deliver("supplier", body, signed_headers(body, secret=demo.demo_secret("supplier")))

    assert response.status_code == 202
    case = ExceptionCase.objects.get()
    assert case.kind == "asn_conflict"
    assert case.evidence["lines"] == [
        {"product": "WIDGET-2", "quantity": "7.5", "ordered_quantity": "12"}
    ]


def test_asn_matching_the_order_opens_no_case(deliver):
    body = asn_event([{"product": "WIDGET-1", "quantity": 10, "ordered_quantity": 10}])

    deliver("supplier", body, signed_headers(body, secret=demo.demo_secret("supplier")))

    assert InboundDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert not ExceptionCase.objects.exists()


def test_n8n_generic_event_is_stored(deliver):
    body = b'{"type": "workflow.finished", "run": 7}'

    response = deliver("n8n", body, signed_headers(body, secret=demo.demo_secret("n8n")))

    assert response.status_code == 202
    assert InboundDelivery.objects.get().event_type == "workflow.finished"


def test_one_changed_byte_is_refused_and_nothing_is_stored(deliver):
    body = carrier_event()
    headers = signed_headers(body)

    response = deliver("carrier", body.replace(b"A1/OUT", b"A1/OUU"), headers)

    assert response.status_code == 401
    assert "signature does not match" in response.json()["error"]
    assert not InboundDelivery.objects.exists()
    assert not ExceptionCase.objects.exists()


# Header timestamps are whole seconds, rounded down: 301 s in the past stays past the
# tolerance, but "301 s ahead" can be sent as 300.x s ahead and age into the tolerance before it
# is checked, so the future case is 302 s ahead.
@pytest.mark.parametrize(
    ("offset", "words"), [(-301, "5 minutes old"), (302, "5 minutes in the future")]
)
def test_stale_or_future_timestamp_is_refused(deliver, offset, words):
    body = carrier_event()
    at = datetime.now(UTC) + timedelta(seconds=offset)

    response = deliver("carrier", body, signed_headers(body, at=at))

    assert response.status_code == 401
    assert words in response.json()["error"]
    assert not InboundDelivery.objects.exists()


def test_missing_headers_are_named(deliver):
    body = carrier_event()
    headers = signed_headers(body)
    del headers["webhook-signature"]

    response = deliver("carrier", body, headers)

    assert response.status_code == 401
    assert response.json()["error"] == "Missing headers: webhook-signature."
    assert not InboundDelivery.objects.exists()


def test_unreadable_signature_header_is_refused(deliver):
    body = carrier_event()
    headers = signed_headers(body) | {"webhook-signature": "v1-not-a-signature"}

    response = deliver("carrier", body, headers)

    assert response.status_code == 401
    assert not InboundDelivery.objects.exists()


def test_replay_answers_duplicate_and_stores_once(deliver):
    body = carrier_event()
    headers = signed_headers(body)

    first = deliver("carrier", body, headers)
    again = deliver("carrier", body, headers)

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"status": "duplicate"}
    assert InboundDelivery.objects.count() == 1
    assert ExceptionCase.objects.get().occurrences == 1


def test_both_secrets_are_accepted_during_rotation_and_a_retired_one_is_not(deliver):
    carrier = WebhookSource.objects.get(name="carrier")
    new_secret = "whsec_" + "bmV3LWNhcnJpZXItc2VjcmV0LWZvci1yb3RhdGlvbg=="
    added = webhook_secret_add(actor=None, source=carrier, secret=new_secret)
    old_body, new_body = carrier_event(status="a"), carrier_event(status="b")

    new_headers = signed_headers(new_body, secret=new_secret)

    assert deliver("carrier", old_body).status_code == 202
    assert deliver("carrier", new_body, new_headers).status_code == 202

    webhook_secret_retire(actor=None, secret_id=added.pk)
    late = carrier_event(status="c")
    assert deliver("carrier", late, signed_headers(late, secret=new_secret)).status_code == 401
    assert InboundDelivery.objects.count() == 2
    assert AuditEvent.objects.filter(action="webhook.secret_retired").count() == 1


def test_body_over_the_limit_is_refused_and_nothing_is_stored(deliver):
    body = carrier_event(padding="x" * 300_000)

    response = deliver("carrier", body)

    assert response.status_code == 413
    assert not InboundDelivery.objects.exists()


def test_limit_is_read_from_settings(deliver, settings):
    settings.WEBHOOK_MAX_BYTES = 100

    assert deliver("carrier", carrier_event()).status_code == 413


def test_malformed_json_is_rejected_and_kept_for_diagnosis(deliver):
    body = b'{"type": "shipment.delayed", '

    response = deliver("carrier", body)

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    delivery = InboundDelivery.objects.get()
    assert (delivery.status, delivery.body) == (DeliveryStatus.REJECTED, body.decode())
    assert not ExceptionCase.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.rejected").exists()


def test_payload_failing_its_schema_is_rejected_with_every_reason(deliver):
    body = carrier_event(tracking_number="", event_time="yesterday")

    response = deliver("carrier", body)

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e.startswith("tracking_number:") for e in errors)
    assert any(e.startswith("event_time:") for e in errors)
    assert InboundDelivery.objects.get().status == DeliveryStatus.REJECTED
    assert not ExceptionCase.objects.exists()


def test_unknown_site_is_rejected(deliver):
    response = deliver("carrier", carrier_event(site="ZZ9"))

    assert response.status_code == 422
    assert "not a Tollgate site" in response.json()["error"]


def test_replay_of_a_rejected_delivery_is_a_duplicate(deliver):
    body = b"not json"
    headers = signed_headers(body)

    assert deliver("carrier", body, headers).status_code == 400
    assert deliver("carrier", body, headers).status_code == 200
    assert InboundDelivery.objects.count() == 1


@pytest.mark.parametrize("name", ["fedex", "n8n-inactive"])
def test_unknown_or_inactive_source_is_404(deliver, name):
    WebhookSource.objects.create(name="n8n-inactive", active=False)
    body = carrier_event()

    response = deliver(name, body)

    assert response.status_code == 404
    assert "error" in response.json()


def test_get_is_not_allowed(client):
    assert client.get("/api/v1/webhooks/carrier/").status_code == 405


def test_the_secret_never_appears_in_responses_or_logs(deliver, caplog):
    caplog.set_level(logging.DEBUG)
    body = carrier_event()
    responses = [
        deliver("carrier", body),
        deliver("carrier", body.replace(b"A1", b"A2")),
        deliver("carrier", b"{", signed_headers(b"{")),
    ]
    bad = signed_headers(body, at=datetime.now(UTC) - timedelta(hours=1))
    responses.append(deliver("carrier", body, bad))

    raw = CARRIER_SECRET.removeprefix("whsec_")
    for response in responses:
        assert raw not in response.content.decode()
    assert raw not in caplog.text
    assert all(raw not in str(s) for s in WebhookSource.objects.get(name="carrier").secrets.all())


# --- chunked bodies, as gunicorn hands them over: no Content-Length, input that ends ----------


def post_chunked(body: bytes, headers: dict, *, terminated=True):
    """POST through the whole WSGI stack the way gunicorn passes a chunked request on."""
    stream = io.BytesIO(body)
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    environ = RequestFactory()._base_environ(
        PATH_INFO="/api/v1/webhooks/carrier/",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **meta,
        **{"wsgi.input": stream, "wsgi.input_terminated": terminated},
    )
    assert "CONTENT_LENGTH" not in environ
    return ClientHandler(enforce_csrf_checks=False)(environ), stream


def test_a_chunked_body_is_read_verified_and_accepted(site_a1, django_capture_on_commit_callbacks):
    body = carrier_event()

    with django_capture_on_commit_callbacks(execute=True):
        response, _ = post_chunked(body, signed_headers(body))

    assert response.status_code == 202
    assert InboundDelivery.objects.get().body == body.decode()
    assert ExceptionCase.objects.get().kind == "shipment_delay"


def test_a_chunked_body_over_the_limit_is_413_without_reading_it_all(site_a1, settings):
    settings.WEBHOOK_MAX_BYTES = 256 * 1024
    body = carrier_event(padding="x" * 2_000_000)

    response, stream = post_chunked(body, signed_headers(body))

    assert response.status_code == 413
    assert "larger than 262144 bytes" in json.loads(response.content)["error"]
    assert stream.tell() == 256 * 1024 + 1
    assert not InboundDelivery.objects.exists()


def test_a_chunked_body_the_server_does_not_end_is_refused_with_411(site_a1):
    body = carrier_event()

    response, stream = post_chunked(body, signed_headers(body), terminated=False)

    assert response.status_code == 411
    assert "Content-Length" in json.loads(response.content)["error"]
    assert stream.tell() == 0
    assert not InboundDelivery.objects.exists()


def test_a_broker_that_is_down_still_answers_202_and_keeps_the_delivery(
    client, site_a1, django_capture_on_commit_callbacks, monkeypatch
):
    from portal.webhooks import tasks

    def broker_down(*args, **kwargs):
        raise OSError("Connection refused")

    monkeypatch.setattr(tasks.process_deliveries, "delay", broker_down)
    body = carrier_event()

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "carrier", body, signed_headers(body))

    assert response.status_code == 202
    assert InboundDelivery.objects.get().status == DeliveryStatus.ACCEPTED


def test_the_same_carrier_event_sent_again_after_its_case_closed_opens_no_second_case(
    deliver, site_manager
):
    deliver("carrier", carrier_event())
    first = ExceptionCase.objects.get()
    case_resolve(actor=site_manager, case_id=first.pk, code="rescheduled", note="New date agreed")

    # The carrier's system emits the very same event again, under a new webhook-id.
    again = deliver("carrier", carrier_event(event_time="2026-05-04T09:30:00+00:00"))
    assert again.status_code == 202
    assert ExceptionCase.objects.get() == first
    assert InboundDelivery.objects.get(pk=again.json()["id"]).case == first

    # A new event for the picking (another status) is a new delay: a new case.
    deliver("carrier", carrier_event(status="missed_connection"))
    newer = ExceptionCase.objects.exclude(pk=first.pk).get()
    assert (newer.state, newer.dedupe_key) == ("new", first.dedupe_key)
