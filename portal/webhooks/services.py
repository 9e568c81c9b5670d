"""Every write to webhook sources, secrets and deliveries, and the processing of a delivery.

Verification happens before anything is stored: an unsigned or stale request changes nothing.
A verified request is stored once per (source, webhook-id); the unique constraint decides the
race between two copies, so the loser answers "duplicate" instead of storing twice.
"""

import functools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from exceptions import titles
from exceptions.models import CaseKind, CaseState, ExceptionCase, Source
from exceptions.rules import picking_delay_key
from exceptions.services import case_raise
from portal.audit.services import (
    appends_in_one_statement,
    audit_event,
    audit_record,
    insert_with_event,
)
from portal.core.formatting import money
from portal.core.inserts import insert_once, insert_once_sql, insert_values, mark_stored
from portal.webhooks import handoff, policies, schemas, sources
from portal.webhooks.models import DeliveryStatus, InboundDelivery, WebhookSecret, WebhookSource
from sites.models import Region, Site

logger = logging.getLogger(__name__)

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# An accepted delivery still unprocessed this long after it arrived lost its task (broker down
# when it was enqueued, or a worker killed mid-task): the sweep enqueues it again.
STRANDED_AFTER = timedelta(minutes=5)
# A backlogged worker also leaves deliveries waiting; re-enqueueing a bounded batch per run keeps
# the sweep from flooding the broker with copies (a copy of a processed delivery does nothing).
STRANDED_BATCH = 500
# As long as InboundDelivery.webhook_id may be.
MAX_WEBHOOK_ID = 200


class SignatureError(Exception):
    """The request is not signed by the source; the message says why, never with a secret."""


@dataclass(frozen=True)
class Received:
    """What became of one request: the HTTP status to answer and a body to answer with."""

    status: int
    body: dict


# --- sources and secrets ----------------------------------------------------------------------


def webhook_source_create(*, actor, name: str) -> WebhookSource:
    """Register a sender; it can deliver once it has a secret."""
    _refuse_unless_manages_sources(actor)
    with transaction.atomic():
        source = WebhookSource(name=name)
        source.full_clean()
        source.save()
        audit_record(action="webhook.source_created", actor=actor, obj=source, after={"name": name})
    return source


def webhook_secret_add(*, actor, source: WebhookSource, secret: str) -> WebhookSecret:
    """Add an active signing secret to `source` (rotation: the old one stays until retired)."""
    _refuse_unless_manages_sources(actor)
    try:
        Webhook(secret)
    except Exception:  # the library raises several types for an unreadable secret
        raise ValueError(
            "A secret must be base64, optionally prefixed with whsec_, and not empty."
        ) from None
    with transaction.atomic():
        row = WebhookSecret.objects.create(source=source, secret=secret)
        audit_record(
            action="webhook.secret_added",
            actor=actor,
            obj=row,
            after={"source": source.name, "secret_id": row.pk},
        )
    return row


def webhook_secret_retire(*, actor, secret_id: int) -> WebhookSecret:
    """Stop accepting signatures made with a secret; locks the secret."""
    _refuse_unless_manages_sources(actor)
    with transaction.atomic():
        row = WebhookSecret.objects.select_for_update().select_related("source").get(pk=secret_id)
        if row.retired_at is None:
            row.retired_at = timezone.now()
            row.save(update_fields=["retired_at"])
            audit_record(
                action="webhook.secret_retired",
                actor=actor,
                obj=row,
                before={"retired_at": None},
                after={"source": row.source.name, "retired_at": row.retired_at},
            )
    return row


def _refuse_unless_manages_sources(actor) -> None:
    if not policies.may_manage_sources(actor):
        raise PermissionDenied("Only a superuser manages webhook sources and their secrets.")


# --- receiving --------------------------------------------------------------------------------


def webhook_verify(*, sender: sources.Sender, body: bytes, headers) -> str:
    """Check the Standard Webhooks signature against every active secret; returns the id."""
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise SignatureError(f"Missing headers: {', '.join(missing)}.")
    signed = {name: headers[name] for name in REQUIRED_HEADERS}
    for signer in sender.signers:
        try:
            signer.verify(body, signed, json_parse=False)
        except WebhookVerificationError as error:
            reason = str(error)
            if "too old" in reason or "too new" in reason or "Invalid Signature" in reason:
                raise SignatureError(_timestamp_message(reason)) from None
            continue
        except ValueError:
            raise SignatureError(
                "The webhook-signature header cannot be read; expected v1,<base64>."
            ) from None
        return signed["webhook-id"]
    raise SignatureError("The signature does not match any active secret of this source.")


def _timestamp_message(reason: str) -> str:
    if "too old" in reason:
        return "The webhook-timestamp is more than 5 minutes old."
    if "too new" in reason:
        return "The webhook-timestamp is more than 5 minutes in the future."
    return "The webhook-timestamp is not a Unix time in seconds."


def webhook_receive(
    *, source: WebhookSource, webhook_id: str, body: bytes, stamp: str | None = None
) -> Received:
    """Store a verified delivery once, and enqueue its processing; never stores twice.

    `stamp` is that of the sender `source` was verified as (see `sources`): if the source or
    its secrets changed since, `sources.Stale` is raised before anything is stored.
    """
    if len(webhook_id) > MAX_WEBHOOK_ID or not schemas.is_storable(webhook_id):
        return Received(
            400, {"error": f"The webhook-id must be 1 to {MAX_WEBHOOK_ID} printable characters."}
        )
    text = body.decode()
    try:
        payload, unreadable = parse(text), ""
    except ValueError as error:
        payload, unreadable = None, f"The body is not valid JSON: {error}."
    seen, current, site = _look_up(source, webhook_id, _site_code(payload))
    if stamp is not None and current != stamp:
        raise sources.Stale(source.name)
    if seen:
        return Received(200, {"status": "duplicate"})
    if unreadable:
        return _store(source, webhook_id, text, None, 400, [unreadable])
    errors = schemas.validate(source.name, payload)
    if not errors and isinstance(payload.get("site"), str) and site is None:
        errors = [f"site: {payload['site']!r} is not a Tollgate site code."]
    return _store(source, webhook_id, text, payload, 422 if errors else 202, errors, site)


def parse(text: str):
    """The JSON document in `text`; ValueError (with the reason) for anything that is not JSON.

    NaN and Infinity, which Python would accept, are not JSON; nesting deep enough to exhaust
    the parser is refused the same way instead of failing the request.
    """

    def not_json(constant: str):
        raise ValueError(f"{constant} is not a JSON value")

    try:
        return json.loads(text, parse_constant=not_json)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def _site_code(payload) -> str | None:
    code = payload.get("site") if isinstance(payload, dict) else None
    if not isinstance(code, str) or len(code) > 100 or not schemas.is_storable(code):
        return None
    return code


def _look_up(source: WebhookSource, webhook_id: str, site_code: str | None):
    """(stored already?, the source's current stamp, the site named with its region or None).

    One round trip for what a delivery needs to know before it is stored.
    """
    with connection.cursor() as cursor:
        cursor.execute(_look_up_sql(), [source.pk, webhook_id, source.name, site_code])
        seen, stamp, site_id, code, name, region_id, region_code, region_name = cursor.fetchone()
    if site_id is None:
        return bool(seen), stamp, None
    # Only what the audit event names; any other field is read if something asks for it.
    site = Site.from_db(
        connection.alias, ["id", "code", "name", "region_id"], [site_id, code, name, region_id]
    )
    site.region = Region.from_db(
        connection.alias, ["id", "code", "name"], [region_id, region_code, region_name]
    )
    return bool(seen), stamp, site


def _look_up_sql() -> str:
    return (
        "SELECT EXISTS (SELECT 1 FROM webhooks_inbounddelivery d "  # noqa: S608 - constant SQL
        "WHERE d.source_id = %s AND d.webhook_id = %s), "
        f"{sources.stamp_sql()}, t.id, t.code, t.name, t.region_id, r.code, r.name "
        "FROM (SELECT 1) AS one LEFT JOIN sites_site t ON t.code = %s "
        "LEFT JOIN sites_region r ON r.id = t.region_id"
    )


def _store(source, webhook_id, text, payload, status, errors, site=None) -> Received:
    event_type = payload.get("type") if isinstance(payload, dict) else None
    if not isinstance(event_type, str) or not schemas.is_storable(event_type):
        event_type = ""
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL, so a body carrying one is kept with it marked.
        text = text.replace("\x00", "\N{REPLACEMENT CHARACTER}")
        errors = [*errors, "NUL characters in the body are stored as U+FFFD."]
    delivery = InboundDelivery(
        source=source,
        webhook_id=webhook_id,
        body=text,
        event_type=event_type[:64],
        status=DeliveryStatus.REJECTED if errors else DeliveryStatus.ACCEPTED,
        error="\n".join(errors),
        site=site,
    )
    event = {
        "action": f"webhook.{delivery.status}",
        "actor": None,
        "site": site,
        "after": {"status": delivery.status, "event_type": delivery.event_type},
        "comment": delivery.error,
        "context": {"source": source.name, "webhook_id": webhook_id},
    }
    if not _insert_once(delivery, event):
        # The same webhook-id was stored by a concurrent request a moment ago.
        return Received(200, {"status": "duplicate"})
    if not errors:
        # Noted only, once stored: sent to the broker beside the requests (see handoff).
        transaction.on_commit(lambda: handoff.note(delivery.pk))
    if errors:
        return Received(status, {"error": errors[0], "errors": errors, "id": delivery.pk})
    return Received(202, {"status": "accepted", "id": delivery.pk})


# The unique constraint that stores a sender's delivery once, whatever it resends.
ONE_PER_WEBHOOK_ID = ("source_id", "webhook_id")


def _insert_once(delivery: InboundDelivery, event: dict) -> bool:
    """Insert `delivery` with its audit event (`audit_record`'s arguments but `obj`) unless its
    (source, webhook-id) is stored; False, with nothing stored, if it is.

    The unique constraint decides, in the insert itself: a copy racing this one waits for it
    and then inserts nothing, with no error to recover from. Where the ledger allows, the
    delivery and its event are one statement, outside any transaction; otherwise a transaction
    holds the two.
    """
    if not appends_in_one_statement():
        with transaction.atomic():
            if not insert_once(delivery, ONE_PER_WEBHOOK_ID):
                return False
            audit_record(obj=delivery, **event)
        return True
    sql, values = insert_once_sql(InboundDelivery, ONE_PER_WEBHOOK_ID), insert_values(delivery)
    pk = insert_with_event(sql, values, audit_event(obj=delivery, **event))
    if pk is None:
        return False
    mark_stored(delivery, pk)
    return True


def deliveries_stranded_sweep(*, now: datetime | None = None) -> int:
    """Enqueue again every accepted delivery whose processing never happened; returns how many.

    Processing locks the delivery and skips anything no longer accepted, so a delivery enqueued
    twice (its first task was only slow) is still processed once.
    """
    from portal.webhooks.tasks import process_deliveries

    cutoff = (now or timezone.now()) - STRANDED_AFTER
    stranded = InboundDelivery.objects.filter(
        status=DeliveryStatus.ACCEPTED, received_at__lte=cutoff
    ).order_by("received_at")
    ids = list(stranded.values_list("pk", flat=True)[:STRANDED_BATCH])
    for start in range(0, len(ids), handoff.MAX_BATCH):
        process_deliveries.delay(ids[start : start + handoff.MAX_BATCH])
    if ids:
        logger.warning("Re-enqueued %d stranded webhook deliveries", len(ids))
    return len(ids)


# --- processing -------------------------------------------------------------------------------


def delivery_process(*, delivery_id: int) -> InboundDelivery:
    """Turn an accepted delivery into cases; locks the delivery. Errors mark it failed."""
    try:
        with transaction.atomic():
            delivery = _locked(delivery_id)
            if delivery.status != DeliveryStatus.ACCEPTED:
                return delivery
            case = _handle(delivery, json.loads(delivery.body))
            delivery.mark_processed(case=case)
            _finish(delivery)
    except Exception as error:
        # Whatever went wrong is kept on the delivery, where an administrator sees it.
        logger.exception("Processing webhook delivery %s failed", delivery_id)
        with transaction.atomic():
            delivery = _locked(delivery_id)
            if delivery.status == DeliveryStatus.ACCEPTED:
                delivery.mark_failed(error=f"{type(error).__name__}: {error}")
                _finish(delivery)
    return delivery


def _locked(delivery_id: int) -> InboundDelivery:
    return (
        InboundDelivery.objects.select_for_update(of=("self",))
        .select_related("source", "site__region")
        .get(pk=delivery_id)
    )


def _finish(delivery: InboundDelivery) -> None:
    """Save and audit a delivery just processed or failed (it was accepted before)."""
    before = {"status": DeliveryStatus.ACCEPTED.value}
    status, case, error = delivery.status, delivery.case, delivery.error
    delivery.save(update_fields=["status", "case", "error", "processed_at"])
    audit_record(
        action=f"webhook.{status}",
        actor=None,
        obj=delivery,
        site=delivery.site,
        before=before,
        after={"status": status, "case": case.reference if case else None},
        comment=error,
    )


def _handle(delivery: InboundDelivery, payload: dict) -> ExceptionCase | None:
    return event_case(
        source=delivery.source.name,
        payload=payload,
        site=delivery.site,
        origin=_origin(delivery),
        earlier=functools.partial(deliveries_closed_with, delivery=delivery),
    )


Earlier = Callable[[str], Iterable[tuple[dict, ExceptionCase]]]


def event_case(
    *, source: str, payload: dict, site, origin: dict, earlier: Earlier, via: str = Source.WEBHOOK
) -> ExceptionCase | None:
    """The case one carrier or supplier event opens or joins, however it arrived: the one path
    from a signed webhook or a mail to a case (dedupe, closed cases, never writing to Odoo).

    `payload` is in the webhook's shape, already valid; `origin` is what the case's evidence
    says of where it came from; `earlier(dedupe_key)` yields (payload, case) for the sender's
    earlier events whose case is closed, so that an event sent again joins its closed case;
    `via` is how it arrived, as the case names its source. None when the event needs no case.
    """
    handler = _HANDLERS.get((source, payload.get("type")))
    return handler(payload, site, origin, earlier, via) if handler else None


def _shipment_delay(payload: dict, site, origin: dict, earlier: Earlier, via: str) -> ExceptionCase:
    # How late is unknown without the planned date, which only Odoo holds: the sync's own case
    # for the picking grades that.
    key = picking_delay_key(payload["picking_ref"])
    closed = _closed_case_of_same_event(payload, key, earlier)
    if closed is not None:
        return closed
    case, _ = case_raise(
        kind=CaseKind.SHIPMENT_DELAY,
        site=site,
        severity="medium",
        title=titles.shipment_delayed(picking=payload["picking_ref"], status=payload["status"]),
        source=via,
        # The picking's name, as the Odoo sync keys its late pickings: either joins the other.
        dedupe_key=key,
        payload=payload,
        evidence=_carrier_evidence(origin, payload) | {"new_eta": payload.get("new_eta")},
    )
    return case


def _delivery_failed(
    payload: dict, site, origin: dict, earlier: Earlier, via: str
) -> ExceptionCase:
    key = f"carrier:stock.picking:{payload['picking_ref']}:delivery_failed"
    closed = _closed_case_of_same_event(payload, key, earlier)
    if closed is not None:
        return closed
    case, _ = case_raise(
        kind=CaseKind.DELIVERY_FAILED,
        site=site,
        severity="high",
        title=titles.delivery_failed(picking=payload["picking_ref"], status=payload["status"]),
        source=via,
        dedupe_key=key,
        payload=payload,
        evidence=_carrier_evidence(origin, payload),
    )
    return case


def _asn_conflict(
    payload: dict, site, origin: dict, earlier: Earlier, via: str
) -> ExceptionCase | None:
    differing = [
        {
            "product": line["product"],
            "quantity": str(schemas.quantity(line["quantity"])),
            "ordered_quantity": str(schemas.quantity(line["ordered_quantity"])),
        }
        for line in payload["lines"]
        if schemas.quantity(line["quantity"]) != schemas.quantity(line["ordered_quantity"])
    ]
    if not differing:
        return None
    case, _ = case_raise(
        kind=CaseKind.ASN_CONFLICT,
        site=site,
        severity="medium",
        title=titles.asn_conflict(order=payload["order_ref"], lines=len(differing)),
        source=via,
        dedupe_key=f"supplier:{payload['order_ref']}:asn_conflict",
        payload=payload,
        evidence={"order_ref": payload["order_ref"], "lines": differing, **origin},
    )
    return case


def _invoice_query(payload: dict, site, origin: dict, earlier: Earlier, via: str) -> ExceptionCase:
    # Only mail to accounts payable says this so far; no webhook source sends it.
    amount = Decimal(payload["amount"])
    case, _ = case_raise(
        kind=CaseKind.INVOICE_MISMATCH,
        site=site,
        severity="medium",
        title=f"{payload['vendor']} queries invoice {payload['invoice_ref']} "
        f"({money(amount, payload['currency'])})"[:200],
        source=via,
        dedupe_key=f"ap:invoice:{payload['invoice_ref']}:invoice_query",
        payload=payload,
        evidence={
            "bill": payload["invoice_ref"],
            "order": payload.get("order_ref") or "",
            # The vendor's invoice total: what was ordered and received is Odoo's to tell.
            "billed": str(amount),
            **origin,
        },
        amount_at_stake=amount,
        currency=payload["currency"],
    )
    return case


_HANDLERS = {
    ("carrier", "shipment.delayed"): _shipment_delay,
    ("carrier", "delivery.failed"): _delivery_failed,
    ("supplier", "asn"): _asn_conflict,
    ("ap", "invoice.query"): _invoice_query,
}


def deliveries_closed_with(dedupe_key: str, *, delivery: InboundDelivery):
    """(payload, case) of the earlier deliveries of `delivery`'s source at its site whose case,
    keyed `dedupe_key`, is closed; newest case first."""
    earlier = (
        InboundDelivery.objects.filter(
            source=delivery.source,
            case__site=delivery.site,
            case__dedupe_key=dedupe_key,
            case__state__in=[CaseState.RESOLVED, CaseState.DISMISSED],
        )
        .exclude(pk=delivery.pk)
        .select_related("case")
        .order_by("-case_id")
    )
    for row in earlier:
        yield json.loads(row.body), row.case


def _closed_case_of_same_event(
    payload: dict, dedupe_key: str, earlier: Earlier
) -> ExceptionCase | None:
    """The closed case this very carrier event already reached, if any.

    A carrier event is one real-world event by its tracking number, status and event time. Sent
    again under a new webhook-id after its case was closed, it belongs to that case: opening a
    second case would make people work the same event twice.
    """
    event = _carrier_event_identity(payload)
    for body, case in earlier(dedupe_key):
        if _carrier_event_identity(body) == event:
            return case
    return None


def _carrier_event_identity(payload: dict) -> tuple:
    try:
        at = schemas.parse_time(payload["event_time"])
    except (KeyError, TypeError, ValueError, AttributeError):
        at = None
    return payload.get("tracking_number"), payload.get("status"), at


def _carrier_evidence(origin: dict, payload: dict) -> dict:
    return {
        "tracking_number": payload["tracking_number"],
        "picking_ref": payload["picking_ref"],
        "status": payload["status"],
        "event_time": payload["event_time"],
        **origin,
    }


def _origin(delivery: InboundDelivery) -> dict:
    return {"webhook_source": delivery.source.name, "webhook_id": delivery.webhook_id}
