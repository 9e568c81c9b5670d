"""Every write to mail: storing messages once, reading them into events, and triage.

A message is stored verbatim before anything is read from it, in its own transaction; the
unique digest and Message-ID decide between two copies (two overlapping polls, a poll retried
after a crash), so the loser finds the stored one instead of storing twice. Reading it into an
event is a second step with its own transaction and retries: a failure leaves the message
stored, marked failed, and due again; after MAX_ATTEMPTS it waits in triage for a person.

An event Tollgate is sure enough of goes through the webhooks' own path to a case
(`portal.webhooks.services.event_case`); the rest waits in triage, where a person confirms it
(perhaps corrected) or dismisses it, and their reading is kept as a labelled example.
"""

import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django_fsm import can_proceed

from exceptions.models import CaseState, Source
from portal.audit.services import audit_record
from portal.core.errors import Conflict
from portal.core.formatting import count, percent
from portal.core.textlimits import COMMENT_MAX, refuse_overlong
from portal.integrations.mail import extractors, policies, reading, selectors
from portal.integrations.mail.errors import MailRefused
from portal.integrations.mail.extractors import FIELDS, EventKind
from portal.integrations.mail.models import (
    LabelledExample,
    Mailbox,
    MailMessage,
    MessageStatus,
    SenderTemplate,
    TriageItem,
    TriageState,
)
from portal.webhooks import schemas
from portal.webhooks import services as webhook_services

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A stored message not read this long after it arrived lost its task (broker down, worker
# killed): the sweep enqueues it again.
STRANDED_AFTER = timedelta(minutes=5)
SOURCE_OF_KIND = {
    EventKind.SHIPMENT_DELAYED: "carrier",
    EventKind.DELIVERY_FAILED: "carrier",
    EventKind.SHORT_SHIPMENT: "supplier",
    EventKind.INVOICE_QUERY: "ap",
}
REFERENCE_FIELDS = ("picking_ref", "order_ref", "invoice_ref")


@dataclass(frozen=True)
class Stored:
    message: MailMessage
    created: bool


# --- storing ----------------------------------------------------------------------------------


def message_receive(*, mailbox: Mailbox, raw: bytes, imap_uid: int | None = None) -> Stored:
    """Store a message verbatim once and enqueue its reading; a copy finds the stored one.

    MailRefused, with nothing stored, for a message above MAIL_MAX_BYTES or not a mail at all.
    """
    _refuse_oversize(raw)
    try:
        letter = reading.read(raw)
    except reading.Unreadable as error:
        raise MailRefused(str(error)) from None
    message = MailMessage(
        mailbox=mailbox,
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        message_id=letter.message_id,
        sender=letter.sender,
        subject=letter.subject,
        sent_at=letter.sent_at,
        imap_uid=imap_uid,
    )
    stored = _store_once(message, action="mail.received")
    if stored.created:
        transaction.on_commit(functools.partial(_enqueue, stored.message.pk))
    return stored


def message_refusal_record(
    *,
    mailbox: Mailbox,
    raw: bytes,
    reason: str,
    imap_uid: int | None = None,
    size: int | None = None,
) -> Stored:
    """Keep a refused message's trace with the reason, once: its bytes unless too big.

    A poll that learns a message is too big before reading it passes its headers as `raw` and
    the whole message's `size`.
    """
    keep = len(raw) <= settings.MAIL_MAX_BYTES
    message = MailMessage(
        mailbox=mailbox,
        raw=raw if keep else b"",
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw) if size is None else size,
        imap_uid=imap_uid,
        status=MessageStatus.REFUSED,
        error=reason,
        processed_at=timezone.now(),
    )
    return _store_once(message, action="mail.refused", comment=reason)


def _refuse_oversize(raw: bytes) -> None:
    if reason := oversize_refusal(len(raw)):
        raise MailRefused(reason)


def oversize_refusal(size: int) -> str:
    """Why a message of `size` bytes is refused; empty when it may be taken."""
    limit = settings.MAIL_MAX_BYTES
    if size <= limit:
        return ""
    return f"The message is {_size(size)}; mail above {_size(limit)} is not taken."


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(size // 1024, 1)} KB"


def _store_once(message: MailMessage, *, action: str, comment: str = "") -> Stored:
    with transaction.atomic():
        existing = _stored_copy(message)
        if existing is not None:
            return Stored(existing, False)
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:
            # A concurrent poll stored the same message a moment ago.
            return Stored(_stored_copy(message), False)
        audit_record(
            action=action,
            actor=None,
            obj=message,
            site=message.mailbox.site,
            reference=message.reference,
            after={"mailbox": message.mailbox.name, "size": message.size},
            comment=comment,
            context={"sender": message.sender, "subject": message.subject},
        )
    return Stored(message, True)


def _stored_copy(message: MailMessage) -> MailMessage | None:
    copies = MailMessage.objects.filter(sha256=message.sha256)
    if message.message_id:
        copies = copies | MailMessage.objects.filter(message_id=message.message_id)
    return copies.order_by("id").first()


def _enqueue(message_id: int) -> None:
    from portal.integrations.mail.tasks import process_message

    process_message.delay(message_id)


def messages_due_sweep(*, now: datetime | None = None) -> int:
    """Enqueue every message whose reading failed and is due again, or whose task was lost."""
    now = now or timezone.now()
    due = MailMessage.objects.filter(
        status=MessageStatus.FAILED, next_attempt_at__lte=now
    ) | MailMessage.objects.filter(
        status=MessageStatus.RECEIVED, received_at__lte=now - STRANDED_AFTER
    )
    ids = list(due.order_by("received_at").values_list("pk", flat=True)[:500])
    for message_id in ids:
        _enqueue(message_id)
    return len(ids)


# --- reading into events ----------------------------------------------------------------------


def message_process(*, message_id: int) -> MailMessage:
    """Read a stored message into an event, or into triage; locks the message. A failure keeps
    the message, marked failed and due again."""
    try:
        with transaction.atomic():
            message = _locked_message(message_id)
            if message.status not in (MessageStatus.RECEIVED, MessageStatus.FAILED):
                return message
            _read_into_event(message)
    except Exception as error:
        logger.exception("Reading mail %s failed", message_id)
        with transaction.atomic():
            message = _locked_message(message_id)
            _failed(message, f"{type(error).__name__}: {error}")
    return message


def _locked_message(message_id: int) -> MailMessage:
    return (
        MailMessage.objects.select_for_update(of=("self",))
        .select_related("mailbox__site")
        .get(pk=message_id)
    )


def _read_into_event(message: MailMessage) -> None:
    letter = reading.read(bytes(message.raw))
    mailbox = message.mailbox
    extraction = extractors.extract(
        letter, purpose=mailbox.purpose, templates=selectors.active_templates()
    )
    reference = next(
        (extraction.fields[n].value for n in REFERENCE_FIELDS if n in extraction.fields), ""
    )
    known_site = selectors.known_document_site(reference)
    site = mailbox.site or known_site or selectors.site_named_by(reference)
    extractors.adjust(
        extraction, known=known_site is not None, site_known=site is not None, reference=reference
    )
    message.extraction, message.site = extraction.as_json(), site
    sure = extraction.kind and extraction.confidence >= mailbox.confidence_threshold
    if sure and site is not None:
        values = {name: found.value for name, found in extraction.fields.items()}
        payload, errors = event_payload(extraction.kind, values, site=site, sent_at=letter.sent_at)
        if not errors:
            _raise_event(message, payload, actor=None)
            return
        extraction.reasons.extend(errors)
        message.extraction = extraction.as_json()
    if extraction.kind and not sure:
        extraction.reasons.insert(
            0,
            f"Read with {_percent(extraction.confidence)} confidence; the {mailbox.name} "
            f"mailbox takes {_percent(mailbox.confidence_threshold)} or more without a person.",
        )
        message.extraction = extraction.as_json()
    _to_triage(message, " ".join(extraction.reasons))


def _percent(value) -> str:
    return percent(Decimal(value) * 100, digits=0)


def _raise_event(message: MailMessage, payload: dict, *, actor) -> None:
    source = SOURCE_OF_KIND[payload["type"]]
    case = webhook_services.event_case(
        source=source,
        payload=payload,
        site=message.site,
        origin=_origin(message),
        earlier=functools.partial(_closed_events, source=source, site=message.site),
        via=Source.MAIL,
    )
    message.became_event(payload=payload, case=case)
    message.save()
    audit_record(
        action="mail.event_raised" if case else "mail.no_event",
        actor=actor,
        obj=message,
        site=message.site,
        reference=message.reference,
        after={"event": payload["type"], "case": case.reference if case else None},
    )


def _origin(message: MailMessage) -> dict:
    """What a case's evidence says of the mail it came from (shown on the case page)."""
    return {
        "mail_from": message.sender,
        "mail_subject": message.subject,
        "mailbox": message.mailbox.name,
    }


def _closed_events(dedupe_key: str, *, source: str, site):
    """(event, case) of earlier mails of the same kind of sender whose case is closed."""
    earlier = (
        MailMessage.objects.filter(
            case__site=site,
            case__dedupe_key=dedupe_key,
            case__state__in=[CaseState.RESOLVED, CaseState.DISMISSED],
        )
        .select_related("case")
        .order_by("-case_id")
    )
    for row in earlier:
        if SOURCE_OF_KIND.get(row.event.get("type")) == source:
            yield row.event, row.case


def _to_triage(message: MailMessage, reason: str) -> None:
    message.send_to_triage()
    message.save()
    item = TriageItem.objects.create(
        message=message, site=message.site, purpose=message.mailbox.purpose, reason=reason
    )
    audit_record(
        action="mail.sent_to_triage",
        actor=None,
        obj=item,
        site=item.site,
        reference=message.reference,
        after={
            "kind": message.extraction.get("kind", ""),
            "confidence": message.extraction.get("confidence"),
        },
        comment=reason,
    )


def _failed(message: MailMessage, error: str) -> None:
    message.attempts += 1
    message.error = error[:2000]
    if message.attempts >= MAX_ATTEMPTS:
        _to_triage(
            message,
            f"Tollgate could not read this mail in {count(message.attempts, 'attempt')}: {error}",
        )
        return
    message.reading_failed(retry_at=timezone.now() + timedelta(minutes=4 ** (message.attempts - 1)))
    message.save()
    audit_record(
        action="mail.reading_failed",
        actor=None,
        obj=message,
        site=message.site or message.mailbox.site,
        reference=message.reference,
        after={"attempts": message.attempts, "next_attempt_at": message.next_attempt_at},
        comment=message.error,
    )


# --- the event a mail announces, in the webhook's shape ---------------------------------------


def event_payload(kind: str, values: dict, *, site, sent_at=None) -> tuple[dict, list[str]]:
    """The event of `kind` with `values` at `site`, as the webhook would carry it, and every way
    it falls short (in words a person reads)."""
    labels = {spec.name: spec.label for spec in FIELDS.get(kind, [])}
    values = {name: str(values.get(name) or "").strip() for name in labels}
    errors = [
        f"{spec.label}: required."
        for spec in FIELDS.get(kind, [])
        if spec.required and not values[spec.name]
    ]
    if kind not in FIELDS:
        return {}, ["Choose what the mail announces."]
    if errors:
        return {}, errors
    payload = {"type": kind, "site": site.code}
    if kind in (EventKind.SHIPMENT_DELAYED, EventKind.DELIVERY_FAILED):
        payload |= {n: values[n] for n in ("tracking_number", "picking_ref", "status")}
        payload["event_time"] = (sent_at or timezone.now()).isoformat()
        if values.get("new_eta"):
            day = extractors.parse_day(values["new_eta"])
            if day is None:
                return {}, [f"{labels['new_eta']}: not a date, e.g. 2026-05-14."]
            payload["new_eta"] = extractors.day_as_time(day)
        return payload, _schema_errors("carrier", payload, labels)
    if kind == EventKind.SHORT_SHIPMENT:
        quantities = {}
        for name in ("quantity", "ordered_quantity"):
            number = _decimal(values[name])
            if number is None or number < 0:
                return {}, [f"{labels[name]}: a number of units, e.g. 40."]
            quantities[name] = int(number) if number == number.to_integral() else float(number)
        payload |= {
            "order_ref": values["order_ref"],
            "lines": [{"product": values["product"], **quantities}],
        }
        return payload, _schema_errors("supplier", payload, labels)
    amount = _decimal(values["amount"])
    if amount is None or amount <= 0:
        return {}, [f"{labels['amount']}: an amount, e.g. 1240.00."]
    currency = values["currency"].upper()
    if len(currency) != 3 or not currency.isalpha():
        return {}, [f"{labels['currency']}: a three-letter code, e.g. EUR."]
    payload |= {
        "invoice_ref": values["invoice_ref"][:100],
        "vendor": values["vendor"][:100],
        "amount": str(amount.quantize(Decimal("0.01"))),
        "currency": currency,
        "order_ref": values.get("order_ref", "")[:100],
    }
    return payload, []


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _schema_errors(source: str, payload: dict, labels: dict) -> list[str]:
    errors = []
    for error in schemas.validate(source, payload):
        name, _, rest = error.partition(": ")
        name = name.removeprefix("lines[1].")
        errors.append(f"{labels.get(name, name)}: {rest}" if rest else error)
    return errors


# --- triage -----------------------------------------------------------------------------------


def triage_confirm(*, actor, item_id: int, kind: str, values: dict) -> TriageItem:
    """Raise the event a person read in a mail, as they read it; locks the triage item.

    Their reading is kept as a labelled example: confirmed as extracted, or corrected.
    """
    with transaction.atomic():
        item = _workable(actor, item_id)
        message = item.message
        payload, errors = event_payload(kind, values, site=item.site, sent_at=message.sent_at)
        if errors:
            raise ValidationError(errors)
        extracted = message.extraction or {}
        before = {name: found.get("value") for name, found in extracted.get("fields", {}).items()}
        after = {spec.name: str(values.get(spec.name) or "").strip() for spec in FIELDS[kind]}
        unchanged = extracted.get("kind") == kind and all(
            str(before.get(name) or "") == value for name, value in after.items()
        )
        message.site = item.site
        _raise_event(message, payload, actor=actor)
        item.confirm(by=actor, at=timezone.now())
        item.save()
        _label(
            item,
            LabelledExample.Label.CONFIRMED if unchanged else LabelledExample.Label.CORRECTED,
            kind,
            after,
        )
        audit_record(
            action="triage.confirmed" if unchanged else "triage.corrected",
            actor=actor,
            obj=item,
            site=item.site,
            reference=message.reference,
            before={"kind": extracted.get("kind", ""), "fields": before},
            after={
                "kind": kind,
                "fields": after,
                "case": message.case.reference if message.case else None,
            },
        )
    return item


def triage_dismiss(*, actor, item_id: int, reason: str) -> TriageItem:
    """Close a triage item as announcing nothing to act on; a reason is required. Locks it."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the mail needs no event."})
    refuse_overlong(COMMENT_MAX, reason=reason)
    with transaction.atomic():
        item = _workable(actor, item_id)
        item.dismiss(by=actor, at=timezone.now(), reason=reason.strip())
        item.save()
        _label(item, LabelledExample.Label.DISMISSED, "", {})
        audit_record(
            action="triage.dismissed",
            actor=actor,
            obj=item,
            site=item.site,
            reference=item.message.reference,
            before={"state": TriageState.OPEN},
            after={"state": item.state},
            comment=item.dismiss_reason,
        )
    return item


def triage_place(*, actor, item_id: int, site) -> TriageItem:
    """Give a mail Tollgate could not place a site, so that the people there work it."""
    if not policies.may_place(actor):
        raise Http404("No such mail in triage.")
    with transaction.atomic():
        item = TriageItem.objects.select_for_update().select_related("message").get(pk=item_id)
        if item.site_id is not None or item.state != TriageState.OPEN:
            raise Conflict("Only a waiting mail without a site can be placed.")
        item.site = site
        item.save(update_fields=["site"])
        audit_record(
            action="triage.placed",
            actor=actor,
            obj=item,
            site=site,
            reference=item.message.reference,
            before={"site": None},
            after={"site": site.code},
        )
    return item


def _workable(actor, item_id: int) -> TriageItem:
    """The item, locked, if `actor` works it; 404 out of reach, 409 once decided."""
    try:
        item = (
            TriageItem.objects.select_for_update(of=("self",))
            .filter(policies.visible_items(actor))
            .select_related("message__mailbox", "site")
            .get(pk=item_id)
        )
    except TriageItem.DoesNotExist:
        raise Http404("No such mail in triage.") from None
    if not can_proceed(item.confirm):
        raise Conflict(f"{item.message.reference} is already {item.get_state_display().lower()}.")
    return item


def _label(item: TriageItem, label: str, kind: str, fields: dict) -> None:
    extracted = item.message.extraction or {}
    template = extracted.get("template") or ""
    LabelledExample.objects.create(
        message=item.message,
        template=selectors.template_named(template),
        label=label,
        extracted_kind=extracted.get("kind", ""),
        extracted={n: f.get("value") for n, f in extracted.get("fields", {}).items()},
        kind=kind,
        fields=fields,
        labelled_by=item.decided_by,
    )


# --- administration ---------------------------------------------------------------------------


def mailbox_save(*, actor, mailbox: Mailbox) -> Mailbox:
    """Register or change a mailbox (only the names of its credential variables are kept)."""
    with transaction.atomic():
        creating = mailbox.pk is None
        mailbox.full_clean()
        mailbox.save()
        audit_record(
            action="mailbox.created" if creating else "mailbox.changed",
            actor=actor,
            obj=mailbox,
            site=mailbox.site,
            after={
                "name": mailbox.name,
                "purpose": mailbox.purpose,
                "host": mailbox.host,
                "folder": mailbox.folder,
                "threshold": mailbox.confidence_threshold,
                "active": mailbox.active,
            },
        )
    return mailbox


def sender_template_save(*, actor, template: SenderTemplate) -> SenderTemplate:
    """Add or change a sender template; every pattern must be a valid regular expression."""
    with transaction.atomic():
        creating = template.pk is None
        template.full_clean()
        template.save()
        audit_record(
            action="sender_template.created" if creating else "sender_template.changed",
            actor=actor,
            obj=template,
            after={
                "name": template.name,
                "sender_pattern": template.sender_pattern,
                "subject_pattern": template.subject_pattern,
                "event_kind": template.event_kind,
                "field_patterns": template.field_patterns,
                "active": template.active,
            },
        )
    return template
