"""Administrators register mailboxes and sender templates; every save is a service call."""

from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.integrations.mail.models import Mailbox, SenderTemplate


def test_every_mail_admin_page_opens_for_a_superuser(admin_client, mailboxes, receive):
    from tests.integrations.mail.conftest import sample

    receive(mailboxes["carrier"], sample("11_newsletter.eml"))
    for model in ("mailbox", "sendertemplate", "mailmessage", "triageitem", "labelledexample"):
        assert admin_client.get(reverse(f"admin:mail_{model}_changelist")).status_code == 200
    mailbox = mailboxes["carrier"]
    page = admin_client.get(reverse("admin:mail_mailbox_change", args=[mailbox.pk]))
    assert "The NAME of the environment variable holding the password" in page.content.decode()


def test_a_mailbox_saved_in_the_admin_is_audited_without_any_secret(admin_client, benelux):
    form = {
        "name": "logistics-ams",
        "purpose": "carrier",
        "site": benelux["AMS"].pk,
        "confidence_threshold": "0.85",
        "active": "on",
        "host": "imap.example.com",
        "port": "993",
        "security": "tls",
        "folder": "INBOX",
        "processed_folder": "",
        "username_variable": "MAIL_AMS_USER",
        "password_variable": "MAIL_AMS_PASSWORD",
    }

    response = admin_client.post(reverse("admin:mail_mailbox_add"), form)

    assert response.status_code == 302
    mailbox = Mailbox.objects.get(name="logistics-ams")
    assert mailbox.password_variable == "MAIL_AMS_PASSWORD"
    assert AuditEvent.objects.filter(action="mailbox.created", object_id=str(mailbox.pk)).exists()


def test_a_template_with_a_broken_pattern_is_refused(admin_client, db):
    form = {
        "name": "Broken",
        "purpose": "carrier",
        "sender_pattern": "([unclosed",
        "subject_pattern": "",
        "event_kind": "shipment.delayed",
        "field_patterns": '{"tracking_number": "(\\\\d+"}',
        "confidence": "0.95",
        "active": "on",
    }

    response = admin_client.post(reverse("admin:mail_sendertemplate_add"), form)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Not a valid regular expression" in page
    assert "tracking_number: Not a valid regular expression" in page
    assert not SenderTemplate.objects.exists()


def test_staff_who_are_not_superusers_see_no_mailboxes(client, mailboxes, ams_manager):
    ams_manager.is_staff = True
    ams_manager.save()
    client.force_login(ams_manager)

    response = client.get(reverse("admin:mail_mailbox_changelist"))

    assert response.status_code in (302, 403)


def test_a_superuser_places_an_unplaced_mail_at_a_site(admin_client, mailboxes, receive, benelux):
    from portal.integrations.mail.models import TriageItem
    from tests.integrations.mail.conftest import sample

    item = receive(mailboxes["carrier"], sample("11_newsletter.eml")).message.triage
    url = reverse("admin:mail_triageitem_change", args=[item.pk])

    response = admin_client.post(url, {"site": benelux["RTM"].pk})

    assert response.status_code == 302
    assert TriageItem.objects.get(pk=item.pk).site == benelux["RTM"]
    assert AuditEvent.objects.filter(action="triage.placed", object_id=str(item.pk)).exists()
    page = admin_client.get(url).content.decode()
    assert 'name="site"' not in page  # placed once; no longer editable
