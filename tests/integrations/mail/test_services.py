"""Storing mail once, refusing what cannot be taken, retrying what failed, and triage."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.core.errors import Conflict
from portal.integrations.mail import extractors, services
from portal.integrations.mail.errors import MailRefused
from portal.integrations.mail.models import (
    LabelledExample,
    MailMessage,
    MessageStatus,
    TriageItem,
    TriageState,
)
from tests.integrations.mail.conftest import sample

DELAY = "01_carrier_delay_template.eml"
MISSING_TRACKING = "12_carrier_delay_missing_tracking.eml"


def test_the_same_mail_twice_is_stored_once(mailboxes, receive):
    first = receive(mailboxes["carrier"], sample(DELAY))
    again = receive(mailboxes["carrier"], sample(DELAY))

    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert MailMessage.objects.count() == 1
    assert first.message.sha256 == hashlib.sha256(sample(DELAY)).hexdigest()


def test_a_copy_with_other_headers_is_known_by_its_message_id(mailboxes, receive):
    receive(mailboxes["carrier"], sample(DELAY))
    relayed = b"Received: from relay.example by mx.example; Mon, 7 Dec 2026\r\n" + sample(DELAY)

    again = receive(mailboxes["carrier"], relayed)

    assert not again.created
    assert MailMessage.objects.count() == 1


def test_a_mail_above_the_size_limit_is_refused_and_nothing_stored(mailboxes, settings):
    settings.MAIL_MAX_BYTES = 2048
    with pytest.raises(MailRefused, match="mail above 2 KB is not taken"):
        services.message_receive(mailbox=mailboxes["carrier"], raw=sample(DELAY) + b"x" * 4096)
    assert not MailMessage.objects.exists()


def test_a_refusal_from_a_poll_is_recorded_once_without_the_oversized_bytes(mailboxes, settings):
    settings.MAIL_MAX_BYTES = 2048
    raw = sample(DELAY) + b"x" * 4096

    first = services.message_refusal_record(
        mailbox=mailboxes["carrier"], raw=raw, reason="Too big.", imap_uid=7
    )
    again = services.message_refusal_record(
        mailbox=mailboxes["carrier"], raw=raw, reason="Too big.", imap_uid=7
    )

    assert first.created and not again.created
    assert first.message.status == MessageStatus.REFUSED
    assert first.message.size == len(raw)
    assert bytes(first.message.raw) == b""
    assert AuditEvent.objects.filter(action="mail.refused", comment="Too big.").count() == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "The file is empty."),
        (b"just a line of text\nand another\n", "neither a From nor a Message-ID"),
        (b"%PDF-1.4\x00\x01\x02binary", "binary"),
    ],
)
def test_what_is_not_a_mail_is_refused(mailboxes, raw, reason):
    with pytest.raises(MailRefused, match=reason):
        services.message_receive(mailbox=mailboxes["carrier"], raw=raw)
    assert not MailMessage.objects.exists()


def test_a_mail_whose_reading_fails_is_kept_and_read_again_later(
    mailboxes, receive, monkeypatch, django_capture_on_commit_callbacks
):
    real = extractors.extract
    monkeypatch.setattr(extractors, "extract", _broken)
    stored = receive(mailboxes["carrier"], sample(DELAY))
    message = MailMessage.objects.get(pk=stored.message.pk)
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 1
    assert "template store unreachable" in message.error

    monkeypatch.setattr(extractors, "extract", real)
    assert services.messages_due_sweep() == 0  # not due yet
    with django_capture_on_commit_callbacks(execute=True):
        due = services.messages_due_sweep(now=timezone.now() + timedelta(minutes=2))

    message.refresh_from_db()
    assert due == 1
    assert message.status == MessageStatus.PROCESSED
    assert message.case.kind == "shipment_delay"


def test_a_mail_that_keeps_failing_waits_for_a_person(mailboxes, receive, monkeypatch):
    monkeypatch.setattr(extractors, "extract", _broken)
    message = receive(mailboxes["carrier"], sample(DELAY)).message
    for _ in range(services.MAX_ATTEMPTS - 1):
        services.message_process(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.TRIAGE
    assert "could not read this mail in 5 attempts" in message.triage.reason


def test_a_mail_whose_task_was_lost_is_enqueued_again(
    mailboxes, django_capture_on_commit_callbacks
):
    stored = services.message_receive(mailbox=mailboxes["carrier"], raw=sample(DELAY))
    assert stored.message.status == MessageStatus.RECEIVED

    with django_capture_on_commit_callbacks(execute=True):
        due = services.messages_due_sweep(now=timezone.now() + services.STRANDED_AFTER)

    assert due == 1
    assert MailMessage.objects.get().status == MessageStatus.PROCESSED


def _broken(*args, **kwargs):
    raise RuntimeError("template store unreachable")


# --- triage -----------------------------------------------------------------------------------


@pytest.fixture
def waiting(mailboxes, receive) -> TriageItem:
    return receive(mailboxes["carrier"], sample(MISSING_TRACKING)).message.triage


def _values(item, **changes):
    fields = item.message.extraction["fields"]
    return {name: found["value"] for name, found in fields.items()} | changes


def test_site_manager_confirms_a_corrected_mail_into_a_warehouse_case(waiting, ams_manager):
    item = services.triage_confirm(
        actor=ams_manager,
        item_id=waiting.pk,
        kind="shipment.delayed",
        values=_values(waiting, tracking_number="1Z999AA10198765432"),
    )

    case = item.message.case
    assert item.state == TriageState.CONFIRMED
    assert item.decided_by == ams_manager
    assert (case.kind, case.queue, case.site.code) == ("shipment_delay", "warehouse", "AMS")
    assert case.evidence["tracking_number"] == "1Z999AA10198765432"
    example = LabelledExample.objects.get(message=item.message)
    assert example.label == LabelledExample.Label.CORRECTED
    assert example.extracted.get("tracking_number") is None
    assert example.fields["tracking_number"] == "1Z999AA10198765432"
    assert example.template.name == "Rapid Freight delay notice"
    event = AuditEvent.objects.get(action="triage.corrected")
    assert event.actor == ams_manager
    assert event.after["case"] == case.reference


def test_a_mail_confirmed_as_read_is_labelled_confirmed(mailboxes, receive, ams_manager):
    forwarded = receive(mailboxes["carrier"], sample("06_french_delivery_failed.eml"))
    assert forwarded.message.status == MessageStatus.TRIAGE  # AMS/OUT/00077 not known here
    item = forwarded.message.triage

    services.triage_confirm(
        actor=ams_manager, item_id=item.pk, kind="delivery.failed", values=_values(item)
    )

    assert LabelledExample.objects.get().label == LabelledExample.Label.CONFIRMED
    assert AuditEvent.objects.filter(action="triage.confirmed", actor=ams_manager).exists()


def test_confirming_without_a_required_value_changes_nothing(waiting, ams_manager):
    with pytest.raises(ValidationError, match="Tracking number: required"):
        services.triage_confirm(
            actor=ams_manager, item_id=waiting.pk, kind="shipment.delayed", values=_values(waiting)
        )
    assert TriageItem.objects.get(pk=waiting.pk).state == TriageState.OPEN
    assert not LabelledExample.objects.exists()


def test_dismissing_needs_a_reason_and_is_kept_as_an_example(waiting, ams_manager):
    with pytest.raises(ValidationError):
        services.triage_dismiss(actor=ams_manager, item_id=waiting.pk, reason="  ")

    item = services.triage_dismiss(
        actor=ams_manager, item_id=waiting.pk, reason="Duplicate of the morning's notice"
    )

    assert item.state == TriageState.DISMISSED
    assert LabelledExample.objects.get().label == LabelledExample.Label.DISMISSED
    event = AuditEvent.objects.get(action="triage.dismissed")
    assert (event.actor, event.comment) == (ams_manager, "Duplicate of the morning's notice")


def test_a_decided_mail_cannot_be_decided_again(waiting, ams_manager):
    services.triage_dismiss(actor=ams_manager, item_id=waiting.pk, reason="Not ours")
    with pytest.raises(Conflict, match="already dismissed"):
        services.triage_confirm(
            actor=ams_manager,
            item_id=waiting.pk,
            kind="shipment.delayed",
            values=_values(waiting, tracking_number="1Z1"),
        )


def test_a_manager_of_another_site_gets_404(waiting, rtm_manager):
    with pytest.raises(Http404):
        services.triage_dismiss(actor=rtm_manager, item_id=waiting.pk, reason="Not mine")


def test_finance_does_not_work_carrier_mail(waiting, benelux_finance):
    with pytest.raises(Http404):
        services.triage_dismiss(actor=benelux_finance, item_id=waiting.pk, reason="Not mine")


def test_a_mail_without_a_site_is_placed_by_an_administrator(
    mailboxes, receive, benelux, ams_manager, admin_user
):
    from portal.integrations.mail import selectors

    item = receive(mailboxes["carrier"], sample("11_newsletter.eml")).message.triage
    assert item.site is None
    assert not selectors.triage_items_for(ams_manager).exists()
    with pytest.raises(Http404):
        services.triage_place(actor=ams_manager, item_id=item.pk, site=benelux["AMS"])

    services.triage_place(actor=admin_user, item_id=item.pk, site=benelux["AMS"])

    assert list(selectors.triage_items_for(ams_manager)) == [item]
    assert AuditEvent.objects.filter(action="triage.placed", actor=admin_user).exists()
