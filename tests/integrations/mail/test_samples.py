"""Each sample mail ends as the event it announces, or in triage saying why."""

import pytest

from portal.integrations.mail.models import MessageStatus
from tests.integrations.mail.conftest import SAMPLES, sample

# file -> (mailbox, expected case kind or None, site code or None, words of the triage reason)
EXPECTED = {
    "01_carrier_delay_template.eml": ("carrier", "shipment_delay", "AMS", ""),
    "02_carrier_html_only.eml": ("carrier", "shipment_delay", "RTM", ""),
    "03_carrier_delivery_failed_template.eml": ("carrier", "delivery_failed", "AMS", ""),
    "04_forwarded_delay.eml": (
        "carrier",
        None,
        "ANR",
        "ANR/OUT/00311 is not a document Tollgate has seen from Odoo",
    ),
    "05_german_subject_delay.eml": ("carrier", "shipment_delay", "AMS", ""),
    "06_french_delivery_failed.eml": ("carrier", "delivery_failed", "AMS", ""),
    "07_reply_quoting_old_delay.eml": ("carrier", None, None, "Only the quoted earlier messages"),
    "08_supplier_short_shipment.eml": ("supplier", "asn_conflict", "AMS", ""),
    "09_supplier_notice_with_pdf.eml": ("supplier", None, None, "No site"),
    "10_ap_invoice_query_with_pdf.eml": ("ap", "invoice_mismatch", "AMS", ""),
    "11_newsletter.eml": ("carrier", None, None, "No delay, failed delivery"),
    "12_carrier_delay_missing_tracking.eml": (
        "carrier",
        None,
        "AMS",
        "template found no tracking number",
    ),
}


def test_every_sample_has_an_expectation():
    assert sorted(p.name for p in SAMPLES.glob("*.eml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_ends_as_its_event_or_in_triage(name, mailboxes, known_documents, receive):
    mailbox, kind, site, reason = EXPECTED[name]
    stored = receive(mailboxes[mailbox], sample(name))
    message = stored.message

    assert stored.created
    assert bytes(message.raw) == sample(name)
    if kind:
        assert message.status == MessageStatus.PROCESSED, message.extraction
        assert message.case.kind == kind
        assert message.case.site.code == site
        assert message.case.evidence["mail_subject"] == message.subject
        if message.case.occurrences == 1:  # opened by this mail, not joined
            assert message.case.source == "mail"
    else:
        assert message.status == MessageStatus.TRIAGE
        assert message.case is None
        assert reason in message.triage.reason
        assert (message.triage.site.code if message.triage.site else None) == site


def test_a_carrier_delay_joins_the_case_the_odoo_sync_opened(mailboxes, known_documents, receive):
    stored = receive(mailboxes["carrier"], sample("02_carrier_html_only.eml"))
    case = stored.message.case
    case.refresh_from_db()

    assert case.source == "odoo"
    assert case.occurrences == 2
    assert case.evidence["tracking_number"] == "SL4471882201NL"
    assert case.evidence["new_eta"] == "2026-12-09T12:00:00+00:00"


def test_an_invoice_query_keeps_its_amount_and_its_attachment(mailboxes, known_documents, receive):
    stored = receive(mailboxes["ap"], sample("10_ap_invoice_query_with_pdf.eml"))
    case = stored.message.case

    assert case.queue == "finance"
    assert str(case.amount_at_stake) == "4250.00"
    assert case.currency == "EUR"
    assert (case.evidence["bill"], case.evidence["billed"]) == ("INV-2026-0412", "4250.00")
    assert case.title == "Fjord Fisheries Accounts queries invoice INV-2026-0412 (€4,250.00)"
    assert b"INV-2026-0412.pdf" in bytes(stored.message.raw)


def test_an_html_only_mail_is_read_without_its_script(mailboxes, known_documents, receive):
    from portal.integrations.mail import reading

    letter = reading.read(sample("02_carrier_html_only.eml"))

    assert letter.html_only
    assert "running late because of congestion" in letter.text
    assert "alert" not in letter.text and "<" not in letter.text


def test_an_html_reply_quoting_a_delay_in_a_blockquote_is_not_a_new_delay():
    from portal.integrations.mail import extractors, reading

    letter = reading.read(
        b"From: Support <support@swiftlane.example>\r\nSubject: Re: your shipment\r\n"
        b"Message-ID: <r-1@swiftlane.example>\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Thanks, all sorted now.</p><blockquote><p>Shipment RTM/OUT/00107 is delayed."
        b"</p><p>Tracking number: SL4471882201NL</p></blockquote>"
    )
    extraction = extractors.extract(letter, purpose="carrier", templates=[])

    assert letter.new_text == "Thanks, all sorted now."
    assert letter.quoted_text == (
        "> Shipment RTM/OUT/00107 is delayed.\n> Tracking number: SL4471882201NL"
    )
    assert extraction.kind == ""
    assert extraction.reasons == [extractors.QUOTED_ONLY]
