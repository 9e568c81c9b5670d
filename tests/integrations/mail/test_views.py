"""The triage queue and item page as the people who work them, and as everyone else."""

import pytest
from django.urls import reverse

from portal.integrations.mail.models import MailMessage, TriageItem, TriageState
from tests.integrations.mail.conftest import sample

MISSING_TRACKING = "12_carrier_delay_missing_tracking.eml"


@pytest.fixture
def waiting(mailboxes, receive):
    return receive(mailboxes["carrier"], sample(MISSING_TRACKING)).message.triage


@pytest.fixture
def hostile(mailboxes, receive, benelux):
    """A carrier mail in HTML that tries to run a script, placed at Amsterdam by its picking."""
    raw = (
        b"From: Mallory <ops@evil.example>\r\nSubject: Shipment AMS/OUT/00666 delayed"
        b"\r\nMessage-ID: <x-1@evil.example>\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Delayed <b>AMS/OUT/00666</b></p><script>document.title='owned'</script>"
        b"<img src=x onerror=alert(1)>&lt;script&gt;alert(2)&lt;/script&gt;"
    )
    return receive(mailboxes["carrier"], raw).message.triage


def test_site_manager_sees_the_mail_waiting_at_their_site(client, waiting, ams_manager):
    client.force_login(ams_manager)
    page = client.get(reverse("mail:triage")).content.decode()

    assert "Delay notice: your consignment to Amsterdam" in page
    assert "template found no tracking number" in page
    assert "71 % sure" in page
    assert 'href="/mail/triage/"' in page  # in the navigation


def test_a_manager_elsewhere_sees_nothing_and_gets_404(client, waiting, rtm_manager):
    client.force_login(rtm_manager)

    assert "No mail waiting at your sites" in client.get(reverse("mail:triage")).content.decode()
    assert client.get(reverse("mail:item", args=[waiting.pk])).status_code == 404
    response = client.post(reverse("mail:dismiss", args=[waiting.pk]), {"reason": "x"})
    assert response.status_code == 404


def test_the_item_page_shows_the_mail_beside_the_prefilled_form(client, waiting, ams_manager):
    client.force_login(ams_manager)
    page = client.get(reverse("mail:item", args=[waiting.pk])).content.decode()

    assert "missed connection at hub" in page
    assert 'value="AMS/OUT/00057"' in page
    assert 'value="2026-12-09"' in page
    assert "Read from: “Your reference: AMS/OUT/00057”" in page
    assert "Not found in the mail." in page


def test_the_mail_is_shown_as_text_never_as_markup(client, hostile, ams_manager):
    client.force_login(ams_manager)
    page = client.get(reverse("mail:item", args=[hostile.pk])).content.decode()

    assert "Sent as HTML only" in page
    assert "<script>document" not in page and "onerror" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_confirming_opens_the_case_and_shows_it(client, waiting, ams_manager):
    client.force_login(ams_manager)
    form = {
        "kind": "shipment.delayed",
        "picking_ref": "AMS/OUT/00057",
        "tracking_number": "1Z999AA10198765432",
        "status": "missed connection at hub",
        "new_eta": "2026-12-09",
    }
    response = client.post(reverse("mail:confirm", args=[waiting.pk]), form, follow=True)

    case = MailMessage.objects.get(pk=waiting.message.pk).case
    assert response.redirect_chain[-1][0] == reverse("exceptions:detail", args=[case.pk])
    assert f"MAIL-{waiting.message.pk:06d} is confirmed as {case.reference}" in (
        response.content.decode()
    )
    assert case.queue == "warehouse"
    # The case says where it came from: a shared mailbox, and which mail.
    assert case.source == "mail"
    page = response.content.decode()
    assert "Shared mailbox" in page
    assert "Mail subject" in page and waiting.message.subject in page


def test_a_bad_correction_shows_the_form_again_and_changes_nothing(client, waiting, ams_manager):
    client.force_login(ams_manager)
    form = {"kind": "shipment.delayed", "picking_ref": "AMS/OUT/00057", "new_eta": "soon"}

    response = client.post(reverse("mail:confirm", args=[waiting.pk]), form)

    assert response.status_code == 400
    assert "Tracking number: required." in response.content.decode()
    assert TriageItem.objects.get(pk=waiting.pk).state == TriageState.OPEN


def test_dismissing_twice_answers_409(client, waiting, ams_manager):
    client.force_login(ams_manager)
    url = reverse("mail:dismiss", args=[waiting.pk])
    assert client.post(url, {"reason": "Newsletter"}).status_code == 302

    again = client.post(url, {"reason": "Again"})

    assert again.status_code == 409
    page = again.content.decode()
    assert "already dismissed" in page
    assert 'id="current-state">Dismissed<' in page
    assert reverse("mail:triage") in page


def test_the_attachments_are_listed(client, mailboxes, receive, benelux, ams_manager, admin_user):
    from portal.integrations.mail import services

    item = receive(mailboxes["supplier"], sample("09_supplier_notice_with_pdf.eml")).message.triage
    services.triage_place(actor=admin_user, item_id=item.pk, site=benelux["AMS"])
    client.force_login(ams_manager)

    page = client.get(reverse("mail:item", args=[item.pk])).content.decode()

    assert "packing-list-P00045.pdf" in page
    assert 'value="90"' in page and 'value="100"' in page


def test_decided_mails_are_listed_with_who_decided(client, waiting, ams_manager, rtm_manager):
    from portal.integrations.mail import services

    services.triage_dismiss(actor=ams_manager, item_id=waiting.pk, reason="Sent twice")
    client.force_login(ams_manager)

    waiting_page = client.get(reverse("mail:triage")).content.decode()
    decided = client.get(reverse("mail:triage") + "?show=decided").content.decode()

    assert "No mail waiting at your sites" in waiting_page
    assert "Dismissed by" in decided and "Sent twice" in decided
    client.force_login(rtm_manager)
    assert "Sent twice" not in client.get(reverse("mail:triage") + "?show=decided").content.decode()


def test_a_confirmed_mail_names_its_case_among_the_decided(client, waiting, ams_manager):
    from portal.integrations.mail import services

    item = services.triage_confirm(
        actor=ams_manager,
        item_id=waiting.pk,
        kind="shipment.delayed",
        values={"picking_ref": "AMS/OUT/00057", "tracking_number": "1Z9", "status": "late"},
    )
    client.force_login(ams_manager)

    decided = client.get(reverse("mail:triage") + "?show=decided").content.decode()

    assert "Confirmed by" in decided
    assert f"as {item.message.case.reference} Shipment AMS/OUT/00057 delayed" in decided
