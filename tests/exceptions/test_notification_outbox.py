"""Case reminders and escalations go through the notification outbox: a sweep that rolls back
writes none, and one made while the broker is unreachable is sent once by beat's drain."""

import pytest
from celery.app.task import Task
from django.db import transaction
from django.urls import reverse
from kombu.exceptions import OperationalError as KombuOperationalError

from exceptions import services
from exceptions.services import case_sla_sweep
from portal.notify import tasks
from portal.notify.models import MailState, OutboxMail, Topic
from tests.exceptions.test_sla import OVERDUE, REMINDER, mail_to, raised
from tests.factories import UserFactory


def test_a_sweep_that_rolls_back_writes_no_notification(
    site_a1, finance, mailoutbox, django_capture_on_commit_callbacks
):
    raised(site_a1)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        assert vars(case_sla_sweep(now=REMINDER))["reminded"] == 1
        assert OutboxMail.objects.filter(topic=Topic.CASE).exists()
        raise RuntimeError("the sweep's transaction fails")

    assert not OutboxMail.objects.exists()
    assert mailoutbox == []


def test_case_mail_made_while_the_broker_is_unreachable_is_sent_once_by_the_drain(
    site_a1, finance, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    case = raised(site_a1)
    services.case_assign(actor=finance, case_id=case.pk, owner=finance)

    def unreachable(*args, **kwargs):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Task, "apply_async", unreachable)
    for moment in (REMINDER, OVERDUE):
        with django_capture_on_commit_callbacks(execute=True):
            case_sla_sweep(now=moment)
    assert mailoutbox == []
    rows = OutboxMail.objects.filter(topic=Topic.CASE, object_id=case.pk).order_by("id")
    assert [(r.reason, r.state) for r in rows] == [
        ("reminder", MailState.PENDING),
        ("escalated", MailState.PENDING),
    ]

    monkeypatch.undo()
    assert tasks.drain_outbox() == 2
    assert tasks.drain_outbox() == 0
    assert mail_to(mailoutbox) == [
        ("[Tollgate] Case due soon", finance.email),
        ("[Tollgate] Case overdue", finance.email),
    ]
    assert {(r.state, r.attempts) for r in rows.all()} == {(MailState.SENT, 1)}


def test_the_outbox_admin_names_the_case_a_notification_is_about(
    site_a1, finance, client, django_capture_on_commit_callbacks
):
    case = raised(site_a1)
    with django_capture_on_commit_callbacks(execute=False):
        case_sla_sweep(now=REMINDER)

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    listed = client.get(reverse("admin:notify_outboxmail_changelist")).content.decode()
    assert case.reference in listed
    assert "Case due soon" in listed
