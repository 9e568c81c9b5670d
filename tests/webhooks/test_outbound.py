"""Outbound webhooks against a real receiver on 127.0.0.1 that verifies every signature.

The receiver checks each request with the standardwebhooks library, as a subscriber would, and
answers with the statuses a test scripts. Time moves with time-machine, so retries fall due.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from portal.audit.models import AuditEvent
from portal.webhooks import outbound
from portal.webhooks.models import (
    DeliveryAttempt,
    OutboundDelivery,
    OutboundEvent,
    OutboundState,
    WebhookSubscription,
)

# --- the receiver -----------------------------------------------------------------------------


@dataclass
class Received:
    webhook_id: str
    verified: bool
    payload: dict | None


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses`; the last one repeats."""

    secret: str = ""
    statuses: list[int] = field(default_factory=lambda: [204])
    received: list[Received] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0

    def answer(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def ids(self) -> list[str]:
        return [item.webhook_id for item in self.received]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                payload, verified = Webhook(receiver.secret).verify(body, headers), True
            except WebhookVerificationError:
                payload, verified = None, False
            receiver.received.append(Received(headers.get("webhook-id", ""), verified, payload))
            time.sleep(receiver.delay)
            self.send_response(receiver.answer())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return

    return Handler


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = True
    settings.WEBHOOK_OUTBOUND_TIMEOUT_SECONDS = 5
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/tollgate"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def subscription(db, receiver):
    row, secret = outbound.subscription_create(
        actor=None,
        name="n8n",
        url=receiver.url,
        event_types=["approval.decided", "exception.opened"],
    )
    receiver.secret = secret
    return row


def publish(django_capture_on_commit_callbacks, event_type="approval.decided", **data):
    """Publish as a service does and let it commit; returns the event, None if nobody wanted it."""
    known = set(OutboundEvent.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbound.publish(event_type, data={"reference": "AR-000001", **data})
    return OutboundEvent.objects.exclude(pk__in=known).first()


def sweep_later(by: timedelta, times: int = 1) -> None:
    with time_machine.travel(timezone.now() + by, tick=False):
        for _ in range(times):
            outbound.deliveries_due_sweep()


def delivery_of(event) -> OutboundDelivery:
    return OutboundDelivery.objects.get(event=event)


# --- signing and delivering -------------------------------------------------------------------


def test_delivery_is_signed_per_standard_webhooks(
    subscription, receiver, django_capture_on_commit_callbacks
):
    event = publish(django_capture_on_commit_callbacks, outcome="approved", amount="12.50")

    assert [(item.webhook_id, item.verified) for item in receiver.received] == [
        (event.event_id, True)
    ]
    payload = receiver.received[0].payload
    assert payload["type"] == "approval.decided"
    assert payload["data"] == {"reference": "AR-000001", "outcome": "approved", "amount": "12.50"}
    assert payload["timestamp"] == event.created_at.isoformat()
    delivery = delivery_of(event)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 204 and attempt.error == ""


def test_a_wrong_secret_would_not_verify(
    subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.secret = outbound.new_secret()

    publish(django_capture_on_commit_callbacks)

    assert [item.verified for item in receiver.received] == [False]


def test_newest_secret_signs_after_rotation(
    subscription, receiver, django_capture_on_commit_callbacks
):
    old = receiver.secret
    receiver.secret = outbound.subscription_rotate_secret(
        actor=None, subscription_id=subscription.pk
    )

    publish(django_capture_on_commit_callbacks)

    assert receiver.secret != old
    assert [item.verified for item in receiver.received] == [True]


def test_only_wanted_event_types_are_owed(subscription, django_capture_on_commit_callbacks):
    wanted = publish(django_capture_on_commit_callbacks, "exception.opened")
    unwanted = publish(django_capture_on_commit_callbacks, "sla.breached")

    assert wanted.deliveries.count() == 1
    assert unwanted is None
    assert OutboundEvent.objects.count() == 1


def test_region_subscription_gets_only_its_sites_events(db, receiver, site_a1, site_b1):
    region_a = site_a1.region
    subscription, _ = outbound.subscription_create(
        actor=None, name="region A", url=receiver.url, event_types=["sla.breached"], region=region_a
    )
    with transaction.atomic():
        outbound.publish("sla.breached", data={"site": "A1"}, site=site_a1)
        outbound.publish("sla.breached", data={"site": "B1"}, site=site_b1)

    owed = OutboundDelivery.objects.filter(subscription=subscription)
    assert [row.event.data["site"] for row in owed] == ["A1"]


# --- retries, exactly once, disabling ---------------------------------------------------------


def test_500_is_retried_and_each_event_delivered_once_after_recovery(
    subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 500, 204]
    first = publish(django_capture_on_commit_callbacks)
    second = publish(django_capture_on_commit_callbacks)

    assert [delivery_of(e).state for e in (first, second)] == ["failed", "failed"]
    assert delivery_of(first).last_status_code == 500
    assert delivery_of(first).next_attempt_at > timezone.now()
    outbound.deliveries_due_sweep()  # not due yet: nothing is sent
    assert len(receiver.received) == 2

    sweep_later(timedelta(minutes=2), times=2)
    sweep_later(timedelta(minutes=3))

    delivered = [item.webhook_id for item in receiver.received[2:]]
    assert sorted(delivered) == sorted([first.event_id, second.event_id])
    assert all(item.verified for item in receiver.received)
    assert [delivery_of(e).state for e in (first, second)] == ["delivered", "delivered"]
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0


def test_an_attempt_run_twice_delivers_once(
    subscription, receiver, django_capture_on_commit_callbacks
):
    event = publish(django_capture_on_commit_callbacks)

    outbound.delivery_attempt(delivery_id=delivery_of(event).pk)
    outbound.delivery_attempt(delivery_id=delivery_of(event).pk)

    assert receiver.ids() == [event.event_id]
    assert delivery_of(event).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_attempts_of_one_delivery_send_it_once(receiver):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; the race is real on PostgreSQL only")
    _, receiver.secret = outbound.subscription_create(
        actor=None, name="n8n", url=receiver.url, event_types=["approval.decided"]
    )
    with transaction.atomic():
        outbound.publish("approval.decided", data={"reference": "AR-000001"})
    delivery = OutboundDelivery.objects.get()
    receiver.delay = 0.3

    def attempt(_):
        try:
            outbound.delivery_attempt(delivery_id=delivery.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(attempt, range(6)))

    assert receiver.ids() == [delivery.event.event_id]
    delivery = OutboundDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.log.count()) == ("delivered", 1, 1)


def test_backoff_grows_with_jitter_and_spreads_over_about_a_day(settings):
    waits = [outbound.backoff(n) for n in range(1, settings.WEBHOOK_OUTBOUND_MAX_ATTEMPTS)]

    assert timedelta(seconds=45) <= waits[0] <= timedelta(seconds=75)
    assert all(w <= timedelta(hours=7, minutes=30) for w in waits)
    assert timedelta(hours=14) < sum(waits, timedelta()) < timedelta(hours=30)
    assert len({outbound.backoff(5) for _ in range(5)}) > 1


def test_delivery_abandons_after_its_last_attempt(
    settings, subscription, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OUTBOUND_MAX_ATTEMPTS = 2
    receiver.statuses = [503]
    event = publish(django_capture_on_commit_callbacks)

    sweep_later(timedelta(minutes=2))

    delivery = delivery_of(event)
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("abandoned", 2, None)
    assert delivery.last_error == "HTTP 503 Service Unavailable"
    sweep_later(timedelta(days=2))
    assert len(receiver.received) == 2


def test_consecutive_failures_disable_the_subscription(
    settings, subscription, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OUTBOUND_DISABLE_AFTER = 3
    receiver.statuses = [500]
    events = [publish(django_capture_on_commit_callbacks) for _ in range(3)]

    subscription.refresh_from_db()
    assert subscription.active is False
    assert subscription.disabled_reason == "3 consecutive failed deliveries."
    assert [delivery_of(e).state for e in events] == ["failed", "failed", "abandoned"]
    audit = AuditEvent.objects.get(action="webhook.subscription_disabled")
    assert audit.object_id == str(subscription.pk) and audit.actor is None
    # What was still owed is abandoned, visibly, when it falls due; nothing new is owed.
    sweep_later(timedelta(hours=1))
    assert [delivery_of(e).state for e in events] == ["abandoned"] * 3
    assert "disabled" in delivery_of(events[0]).last_error
    assert publish(django_capture_on_commit_callbacks) is None
    assert OutboundDelivery.objects.count() == 3
    assert len(receiver.received) == 3


def test_410_disables_the_subscription_at_once(
    subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [410]

    event = publish(django_capture_on_commit_callbacks)

    subscription.refresh_from_db()
    assert (subscription.active, subscription.disabled_reason) == (
        False,
        "The receiver answered 410 Gone.",
    )
    assert delivery_of(event).state == "abandoned"
    assert AuditEvent.objects.filter(action="webhook.subscription_disabled").count() == 1


def test_success_resets_the_failure_count(
    subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 200]
    publish(django_capture_on_commit_callbacks)
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 1

    publish(django_capture_on_commit_callbacks)

    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0


def test_enabling_again_delivers_new_events(
    subscription, receiver, django_capture_on_commit_callbacks
):
    outbound.subscription_disable(actor=None, subscription_id=subscription.pk, reason="Upgrade")
    publish(django_capture_on_commit_callbacks)
    outbound.subscription_enable(actor=None, subscription_id=subscription.pk)

    event = publish(django_capture_on_commit_callbacks)

    assert receiver.ids() == [event.event_id]
    assert AuditEvent.objects.filter(action="webhook.subscription_enabled").exists()


# --- redelivery -------------------------------------------------------------------------------


def test_redelivery_starts_a_fresh_cycle(
    subscription, receiver, django_capture_on_commit_callbacks
):
    event = publish(django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        outbound.delivery_redeliver(actor=None, delivery_id=delivery_of(event).pk)

    assert receiver.ids() == [event.event_id, event.event_id]
    assert all(item.verified for item in receiver.received)
    delivery = delivery_of(event)
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert delivery.log.count() == 2
    assert AuditEvent.objects.filter(action="webhook.outbound_redelivered").count() == 1


def test_redelivery_revives_an_abandoned_delivery(
    settings, subscription, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OUTBOUND_MAX_ATTEMPTS = 1
    receiver.statuses = [500, 200]
    event = publish(django_capture_on_commit_callbacks)
    assert delivery_of(event).state == OutboundState.ABANDONED

    with django_capture_on_commit_callbacks(execute=True):
        outbound.delivery_redeliver(actor=None, delivery_id=delivery_of(event).pk)

    assert delivery_of(event).state == OutboundState.DELIVERED


# --- transactions and bad input ---------------------------------------------------------------


def test_publish_in_a_rolled_back_transaction_delivers_nothing(
    subscription, receiver, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbound.publish("approval.decided", data={"reference": "AR-000002"})
        raise RuntimeError("the decision failed")

    assert callbacks == []
    assert not OutboundEvent.objects.exists()
    assert not OutboundDelivery.objects.exists()
    assert receiver.received == []


def test_unknown_event_type_is_refused(subscription):
    with pytest.raises(outbound.UnknownEventType, match=r"'approval\.deleted'.*approval\.decided"):
        outbound.publish("approval.deleted", data={})

    assert not OutboundEvent.objects.exists()


def test_data_is_stored_json_safe(subscription):
    from decimal import Decimal

    with transaction.atomic():
        outbound.publish("approval.decided", data={"amount": Decimal("10.10")})

    assert OutboundEvent.objects.get().data == {"amount": "10.10"}


# --- the allow-list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://[::1]/hook", "loopback"),
        ("https://224.0.0.1/hook", "multicast"),
        ("http://93.184.215.14/hook", "https://"),
        ("ftp://93.184.215.14/hook", "https://"),
        ("https://user:pw@93.184.215.14/hook", "password"),
    ],
)
def test_targets_outside_the_allow_list_are_refused(db, settings, url, reason):
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = []
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = False

    with pytest.raises(ValidationError) as refused:
        outbound.subscription_create(
            actor=None, name="x", url=url, event_types=["approval.decided"]
        )

    assert reason in str(refused.value.message_dict["url"])
    assert not WebhookSubscription.objects.exists()


def test_a_public_https_target_is_accepted(db, settings):
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = []

    subscription, secret = outbound.subscription_create(
        actor=None, name="x", url="https://93.184.215.14/hook", event_types=["sla.breached"]
    )

    assert subscription.secrets.get().secret == secret
    assert secret.startswith("whsec_")


def test_unknown_event_types_are_refused_on_subscribe(db, receiver):
    with pytest.raises(ValidationError, match=r"approval\.deleted"):
        outbound.subscription_create(
            actor=None, name="x", url=receiver.url, event_types=["approval.deleted"]
        )


def test_target_is_checked_again_at_delivery_time(
    settings, subscription, receiver, django_capture_on_commit_callbacks
):
    # The host was allowed when the subscription was saved; by the time of delivery it is not
    # (as when a name starts resolving to a private address): nothing is sent.
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = []

    event = publish(django_capture_on_commit_callbacks)

    assert receiver.received == []
    delivery = delivery_of(event)
    assert delivery.state == "failed" and delivery.last_status_code is None
    assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in delivery.last_error
    assert delivery.log.get().error == delivery.last_error


def test_an_unreachable_receiver_is_a_recorded_failure(
    subscription, receiver, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.filter(pk=subscription.pk).update(url="http://127.0.0.1:9/")

    event = publish(django_capture_on_commit_callbacks)

    delivery = delivery_of(event)
    assert delivery.state == "failed"
    assert delivery.last_error == "Connection refused."


def test_a_slow_receiver_times_out_and_is_retried(
    settings, subscription, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OUTBOUND_TIMEOUT_SECONDS = 1
    receiver.delay = 1.5

    event = publish(django_capture_on_commit_callbacks)

    delivery = delivery_of(event)
    assert (delivery.state, delivery.last_error) == ("failed", "No answer within 1 seconds.")
    assert delivery.log.get().duration_ms >= 1000


# --- who may manage subscriptions -------------------------------------------------------------


def test_region_administrator_manages_only_their_regions_subscriptions(
    receiver, administrator, region_a, region_b
):
    mine, _ = outbound.subscription_create(
        actor=administrator,
        name="A",
        url=receiver.url,
        event_types=["sla.breached"],
        region=region_a,
    )
    theirs, _ = outbound.subscription_create(
        actor=None, name="B", url=receiver.url, event_types=["sla.breached"], region=region_b
    )

    outbound.subscription_disable(actor=administrator, subscription_id=mine.pk, reason="Upgrade")
    with pytest.raises(Http404):
        outbound.subscription_disable(actor=administrator, subscription_id=theirs.pk, reason="x")
    with pytest.raises(PermissionDenied):
        outbound.subscription_create(
            actor=administrator, name="all", url=receiver.url, event_types=["sla.breached"]
        )

    theirs.refresh_from_db()
    assert theirs.active is True
    assert not WebhookSubscription.objects.filter(name="all").exists()


def test_outsider_cannot_redeliver_another_regions_delivery(receiver, outsider, region_a):
    subscription, _ = outbound.subscription_create(
        actor=None, name="A", url=receiver.url, event_types=["sla.breached"], region=region_a
    )
    site = region_a.sites.first()
    with transaction.atomic():
        outbound.publish("sla.breached", data={"site": site.code}, site=site)
    delivery = OutboundDelivery.objects.get(subscription=subscription)

    with pytest.raises(Http404):
        outbound.delivery_redeliver(actor=outsider, delivery_id=delivery.pk)

    assert not AuditEvent.objects.filter(action="webhook.outbound_redelivered").exists()
