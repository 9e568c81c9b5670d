"""Outbound webhooks: publishing events, managing subscriptions, and delivering with retries.

`publish` runs inside the transaction of the change it tells about: the event and one delivery
row per interested subscription are written with the change or not at all (an outbox), and the
first attempt is enqueued on commit. An event nobody subscribes to is not stored; the audit
ledger is the record of what happened, this is only what is owed to receivers. A beat sweep
picks up every delivery that is due, so a lost task or a crashed worker only delays a delivery.

Each attempt locks its delivery row for the whole POST: two runs of the same task queue up on
the lock, and the second finds the delivery delivered or not yet due and does nothing, so a
subscriber receives an event exactly once (until an administrator redelivers it).

Requests are signed per Standard Webhooks with the subscription's newest active secret. A 2xx
answer delivers; a 410 disables the subscription at once; anything else retries with exponential
backoff and jitter over about a day, then abandons the delivery where administrators see it.
`WEBHOOK_OUTBOUND_DISABLE_AFTER` consecutive failures disable the subscription. Deliveries
of a disabled subscription are abandoned when they next fall due.
"""

import base64
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from standardwebhooks import Webhook

from portal.audit.services import audit_record
from portal.webhooks import delivery as transport
from portal.webhooks import policies
from portal.webhooks.models import (
    DeliveryAttempt,
    EventType,
    OutboundDelivery,
    OutboundEvent,
    OutboundState,
    SubscriptionSecret,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

EVENT_TYPES = tuple(EventType.values)
# The first retry waits about this long; each further one twice as long, up to the cap.
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)


class UnknownEventType(ValueError):
    """`publish` was given a type that no subscriber can ask for."""


# --- publishing -------------------------------------------------------------------------------


def publish(event_type: str, *, data: dict | Callable[[], dict], site=None) -> None:
    """Record an event and owe it to every interested subscription, in the caller's transaction.

    `data` may be a function that builds the event's data: it is called only when someone
    subscribes, so an event nobody wants costs no queries to describe.
    """
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(
            f"Unknown webhook event type {event_type!r}; expected one of {', '.join(EVENT_TYPES)}."
        )
    receivers = [
        subscription
        for subscription in WebhookSubscription.objects.filter(active=True)
        if subscription.wants(event_type, site)
    ]
    if not receivers:
        # Nobody to tell: the audit ledger already records what happened.
        return
    payload = _json_safe(data() if callable(data) else data)
    now = timezone.now()
    with transaction.atomic():
        event = OutboundEvent.objects.create(
            event_id=new_event_id(), type=event_type, data=payload, site=site
        )
        rows = OutboundDelivery.objects.bulk_create(
            OutboundDelivery(subscription=subscription, event=event, next_attempt_at=now)
            for subscription in receivers
        )
        ids = [row.pk for row in rows] if all(row.pk for row in rows) else _ids_of(event)
        # robust: a broker that is down must not fail the caller's committed change; the
        # due-delivery sweep sends these rows anyway.
        transaction.on_commit(lambda: _enqueue(ids), robust=True)


def new_event_id() -> str:
    """A `msg_` id, unique across processes and stable for every attempt of the event."""
    return f"msg_{uuid.uuid4().hex}"


def _json_safe(data: dict) -> dict:
    # Decimals, dates and UUIDs become strings now, so the stored event is what gets sent.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _ids_of(event: OutboundEvent) -> list[int]:
    # Backends that do not return ids from a bulk insert (MySQL) read them back.
    return list(event.deliveries.values_list("pk", flat=True))


def _enqueue(delivery_ids: list[int]) -> None:
    from portal.webhooks.tasks import deliver_outbound

    for delivery_id in delivery_ids:
        deliver_outbound.delay(delivery_id)


# --- subscriptions ----------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def subscription_create(
    *, actor, name: str, url: str, event_types: list[str], region=None
) -> tuple[WebhookSubscription, str]:
    """Register a receiver with a fresh secret; returns the secret, which is never shown again."""
    _check_manages(actor, region)
    with transaction.atomic():
        subscription = WebhookSubscription(
            name=name, url=url, event_types=list(event_types), region=region
        )
        subscription.full_clean()
        subscription.save()
        secret = new_secret()
        SubscriptionSecret.objects.create(subscription=subscription, secret=secret)
        audit_record(
            action="webhook.subscription_created",
            actor=actor,
            obj=subscription,
            region=region,
            after=_summary(subscription),
        )
    return subscription, secret


def subscription_update(
    *, actor, subscription_id: int, url: str, event_types: list[str], region=None
) -> WebhookSubscription:
    """Change where a receiver is and what it wants; locks the subscription."""
    _check_manages(actor, region)
    with transaction.atomic():
        subscription = _locked_subscription(subscription_id, actor=actor)
        before = _summary(subscription)
        subscription.url, subscription.event_types = url, list(event_types)
        subscription.region = region
        subscription.full_clean()
        subscription.save(update_fields=["url", "event_types", "region"])
        audit_record(
            action="webhook.subscription_changed",
            actor=actor,
            obj=subscription,
            region=region,
            before=before,
            after=_summary(subscription),
        )
    return subscription


def subscription_rotate_secret(*, actor, subscription_id: int) -> str:
    """Add a newer secret, which signs from now on; older ones stay listed until retired."""
    with transaction.atomic():
        subscription = _locked_subscription(subscription_id, actor=actor)
        secret = new_secret()
        row = SubscriptionSecret.objects.create(subscription=subscription, secret=secret)
        audit_record(
            action="webhook.subscription_secret_rotated",
            actor=actor,
            obj=subscription,
            region=subscription.region,
            after={"secret_id": row.pk},
        )
    return secret


def subscription_retire_old_secrets(*, actor, subscription_id: int) -> int:
    """Retire every active secret but the newest, once the receiver has switched over."""
    with transaction.atomic():
        subscription = _locked_subscription(subscription_id, actor=actor)
        active = subscription.secrets.filter(retired_at=None).order_by("-created_at", "-id")
        old = [row.pk for row in active[1:]]
        SubscriptionSecret.objects.filter(pk__in=old).update(retired_at=timezone.now())
        if old:
            audit_record(
                action="webhook.subscription_secrets_retired",
                actor=actor,
                obj=subscription,
                region=subscription.region,
                after={"secret_ids": old},
            )
    return len(old)


def subscription_disable(*, actor, subscription_id: int, reason: str) -> WebhookSubscription:
    """Stop delivering to a receiver; locks the subscription. Its pending deliveries abandon."""
    with transaction.atomic():
        subscription = _locked_subscription(subscription_id, actor=actor)
        if subscription.active:
            _disable(subscription, actor=actor, reason=reason, at=timezone.now())
    return subscription


def subscription_enable(*, actor, subscription_id: int) -> WebhookSubscription:
    """Deliver to a receiver again, starting with a clean failure count; locks it."""
    with transaction.atomic():
        subscription = _locked_subscription(subscription_id, actor=actor)
        if not subscription.active:
            before = {"active": False, "disabled_reason": subscription.disabled_reason}
            subscription.active, subscription.consecutive_failures = True, 0
            subscription.disabled_at, subscription.disabled_reason = None, ""
            subscription.save(
                update_fields=["active", "consecutive_failures", "disabled_at", "disabled_reason"]
            )
            audit_record(
                action="webhook.subscription_enabled",
                actor=actor,
                obj=subscription,
                region=subscription.region,
                before=before,
                after={"active": True},
            )
    return subscription


def _disable(subscription: WebhookSubscription, *, actor, reason: str, at: datetime) -> None:
    subscription.active, subscription.disabled_at = False, at
    subscription.disabled_reason = reason[:300]
    subscription.save(update_fields=["active", "disabled_at", "disabled_reason"])
    audit_record(
        action="webhook.subscription_disabled",
        actor=actor,
        obj=subscription,
        region=subscription.region,
        before={"active": True},
        after={"active": False, "consecutive_failures": subscription.consecutive_failures},
        comment=reason,
    )


def _locked_subscription(subscription_id: int, *, actor=None) -> WebhookSubscription:
    # NO KEY UPDATE: a publish elsewhere inserts deliveries pointing at this row (taking KEY
    # SHARE on it) while holding the ledger's lock; a full UPDATE lock here would deadlock it.
    subscription = (
        WebhookSubscription.objects.select_for_update(of=("self",), no_key=True)
        .select_related("region")
        .get(pk=subscription_id)
    )
    if not policies.may_manage_subscription(actor, region=subscription.region):
        raise Http404("No such subscription.")
    return subscription


def _check_manages(actor, region) -> None:
    if not policies.may_manage_subscription(actor, region=region):
        raise PermissionDenied(
            "Only a superuser manages subscriptions to every site; an administrator manages "
            "those limited to a region they administer."
        )


def _summary(subscription: WebhookSubscription) -> dict:
    return {
        "name": subscription.name,
        "url": subscription.url,
        "event_types": subscription.event_types,
        "region": subscription.region.code if subscription.region else None,
    }


# --- delivering -------------------------------------------------------------------------------


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> OutboundDelivery:
    """POST one due delivery and record what happened; locks the delivery for the whole POST."""
    with transaction.atomic():
        delivery = _locked_delivery(delivery_id)
        now = now or timezone.now()
        if delivery.state not in OutboundDelivery.RETRYING or _not_yet(delivery, now):
            return delivery
        subscription = delivery.subscription
        if not subscription.active:
            reason = f"The subscription is disabled: {subscription.disabled_reason}"
            delivery.abandon()
            delivery.last_error = reason
            delivery.save(update_fields=["state", "next_attempt_at", "last_error"])
            return delivery
        outcome = _send(delivery, now)
        DeliveryAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            status_code=outcome.status,
            duration_ms=outcome.duration_ms,
            error=outcome.error,
        )
        _settle(delivery, outcome, now)
    return delivery


def _not_yet(delivery: OutboundDelivery, now: datetime) -> bool:
    return delivery.next_attempt_at is not None and delivery.next_attempt_at > now


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    duration_ms: int = 0
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _send(delivery: OutboundDelivery, now: datetime) -> _Outcome:
    signer = delivery.subscription.secrets.filter(retired_at=None).order_by("-created_at", "-id")
    secret = signer.values_list("secret", flat=True).first()
    if secret is None:
        return _Outcome(None, error="The subscription has no active secret to sign with.")
    event = delivery.event
    body = json.dumps(event.body(), separators=(",", ":"))
    headers = {
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event.event_id, now, body),
    }
    started = time.monotonic()
    try:
        answer = transport.post(delivery.subscription.url, body=body.encode(), headers=headers)
    except (transport.TargetRefused, transport.TransportError) as error:
        return _Outcome(None, int((time.monotonic() - started) * 1000), str(error))
    error = "" if 200 <= answer.status < 300 else f"HTTP {answer.status} {answer.reason}".strip()
    return _Outcome(answer.status, answer.duration_ms, error)


def _settle(delivery: OutboundDelivery, outcome: _Outcome, now: datetime) -> None:
    subscription = _locked_subscription(delivery.subscription_id)
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = outcome.status, outcome.error
    if outcome.delivered:
        delivery.succeed(now)
        subscription.consecutive_failures = 0
        subscription.save(update_fields=["consecutive_failures"])
    else:
        subscription.consecutive_failures += 1
        subscription.save(update_fields=["consecutive_failures"])
        _after_failure(delivery, subscription, outcome, now)
    delivery.save()


def _after_failure(delivery, subscription, outcome: _Outcome, now: datetime) -> None:
    limit = settings.WEBHOOK_OUTBOUND_DISABLE_AFTER
    if outcome.status == 410:
        _disable(subscription, actor=None, reason="The receiver answered 410 Gone.", at=now)
    elif subscription.consecutive_failures >= limit:
        reason = f"{subscription.consecutive_failures} consecutive failed deliveries."
        _disable(subscription, actor=None, reason=reason, at=now)
    if not subscription.active or delivery.attempts >= settings.WEBHOOK_OUTBOUND_MAX_ATTEMPTS:
        delivery.abandon()
        logger.warning("Outbound webhook delivery %s abandoned: %s", delivery.pk, outcome.error)
    else:
        delivery.fail(now + backoff(delivery.attempts))


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling from a minute, capped at 6 h.

    With the default 12 attempts the retries spread over about 20 hours. The wait is jittered
    by ±25 %, so that deliveries that failed together (a receiver's outage) do not all come
    back at the same second.
    """
    wait = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_CAP)
    return wait * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security


def _locked_delivery(delivery_id: int) -> OutboundDelivery:
    return (
        OutboundDelivery.objects.select_for_update(of=("self",))
        .select_related("event", "subscription")
        .get(pk=delivery_id)
    )


@dataclass
class SweepResult:
    enqueued: list[int] = field(default_factory=list)


def deliveries_due_sweep(*, now: datetime | None = None, limit: int = 500) -> SweepResult:
    """Enqueue an attempt for every delivery whose time has come, oldest first."""
    now = now or timezone.now()
    due = OutboundDelivery.objects.filter(
        Q(state__in=OutboundDelivery.RETRYING) & Q(next_attempt_at__lte=now)
    ).order_by("next_attempt_at", "pk")
    result = SweepResult(enqueued=list(due.values_list("pk", flat=True)[:limit]))
    from portal.webhooks.tasks import deliver_outbound

    for delivery_id in result.enqueued:
        deliver_outbound.delay(delivery_id)
    return result


def delivery_redeliver(*, actor, delivery_id: int) -> OutboundDelivery:
    """Start a fresh attempt cycle for a delivery, whatever became of the last; locks it."""
    with transaction.atomic():
        delivery = _locked_delivery(delivery_id)
        if not policies.may_manage_subscription(actor, region=delivery.subscription.region):
            raise Http404("No such delivery.")
        before = {"state": delivery.state, "attempts": delivery.attempts}
        now = timezone.now()
        delivery.restart(now)
        delivery.save()
        audit_record(
            action="webhook.outbound_redelivered",
            actor=actor,
            obj=delivery,
            site=delivery.event.site,
            before=before,
            after={"state": OutboundState.PENDING, "event_id": delivery.event.event_id},
        )
        transaction.on_commit(lambda: _enqueue([delivery.pk]), robust=True)
    return delivery
