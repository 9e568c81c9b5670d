"""Notifications go through the outbox: written with the change, sent once, never lost.

The broker being unreachable, the mail server failing, a task delivered twice, bulk work and
the retention of sent rows; the running processes and a real broker restarted are in
tests/hardening/test_notification_outbox_faults.py.
"""

import smtplib
import threading
from datetime import timedelta

import pytest
from celery.app.task import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from approvals import notifications, services
from approvals.models import ApprovalRequest, ApprovalStep
from portal.notify import services as outbox
from portal.notify import tasks
from portal.notify.models import MailState, OutboxMail, Topic
from tests.approvals.conftest import raise_request
from tests.factories import UserFactory


@pytest.fixture
def broker_down(monkeypatch):
    """Every enqueue fails as it does when Redis refuses connections; `.up()` ends it."""

    def unreachable(*args, **kwargs):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Task, "apply_async", unreachable)

    class Broker:
        @staticmethod
        def up():
            monkeypatch.undo()

    return Broker()


@pytest.fixture
def mail_server_down(monkeypatch):
    """The mail server drops every connection; `.up()` brings it back."""

    def refuse(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(LocmemBackend, "send_messages", refuse)

    class Server:
        @staticmethod
        def up():
            monkeypatch.undo()

    return Server()


def subjects(mailoutbox) -> list[tuple[str, str]]:
    return sorted((m.subject.split(":")[0], m.to[0]) for m in mailoutbox)


def test_a_rolled_back_change_writes_no_notification_and_sends_no_mail(
    matrix, requester, site_a1, mailoutbox, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        raise_request(requester, site_a1, amount="1000")
        assert OutboxMail.objects.filter(topic=Topic.STEP).count() == 1
        raise RuntimeError("the change fails after its tier opened")

    assert not ApprovalRequest.objects.exists()
    assert not OutboxMail.objects.exists()
    assert mailoutbox == []


def test_a_notification_made_while_the_broker_is_unreachable_is_sent_once_by_the_drain(
    matrix,
    requester,
    site_a1,
    site_manager,
    mailoutbox,
    broker_down,
    django_capture_on_commit_callbacks,
    caplog,
):
    with django_capture_on_commit_callbacks(execute=True):
        target = raise_request(requester, site_a1, amount="1000")
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(actor=site_manager, request_id=target.pk)

    # The decision stands; its notifications wait in the outbox, and the log says so.
    assert mailoutbox == []
    rows = OutboxMail.objects.order_by("id")
    assert [(r.topic, r.state, r.attempts) for r in rows] == [
        (Topic.STEP, MailState.PENDING, 0),
        (Topic.REQUEST, MailState.PENDING, 0),
    ]
    assert "left for the outbox drain" in caplog.text

    broker_down.up()
    assert tasks.drain_outbox() == 2
    # Rendered when sent: the tier was decided meanwhile, so nobody is asked to decide it.
    assert subjects(mailoutbox) == [(f"[Tollgate] {target.reference} approved", requester.email)]
    # Beat runs the drain again, and a late copy of a task arrives: nothing is sent twice.
    assert tasks.drain_outbox() == 0
    assert tasks.send_outbox([row.pk for row in rows]) == {"skipped": 2}
    assert len(mailoutbox) == 1
    assert [(r.state, r.attempts, r.mails_sent) for r in rows.all()] == [
        (MailState.SENT, 1, 0),
        (MailState.SENT, 1, 1),
    ]


def test_a_failing_mail_server_is_retried_with_backoff_then_failed_visibly_and_sent_again(
    matrix,
    requester,
    site_a1,
    site_manager,
    mailoutbox,
    mail_server_down,
    settings,
    client,
    django_capture_on_commit_callbacks,
):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_BACKOFF_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=True):
        raise_request(requester, site_a1, amount="1000")
    (row,) = OutboxMail.objects.all()
    row.refresh_from_db()
    assert (row.state, row.attempts) == (MailState.PENDING, 1)
    assert "SMTPServerDisconnected" in row.last_error
    assert row.next_attempt_at >= timezone.now() + timedelta(seconds=29)  # backed off
    assert tasks.drain_outbox() == 0  # not due yet

    for attempt in (2, 3):
        OutboxMail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        assert tasks.drain_outbox() == 1
        row.refresh_from_db()
        assert row.attempts == attempt
    assert row.state == MailState.FAILED
    OutboxMail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert tasks.drain_outbox() == 0  # a failed row waits for a person
    assert mailoutbox == []

    # Superusers see it in the admin; staff who are not superusers do not.
    changelist = reverse("admin:notify_outboxmail_changelist")
    staff = UserFactory(username="staff.only", is_staff=True)
    client.force_login(staff)
    assert client.get(changelist + "?state=failed").status_code == 403
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(changelist + "?state=failed")
    assert page.status_code == 200
    listed = page.content.decode()
    assert "Failed; needs an administrator" in listed
    # Said in words: which tier of which request, and what the mail told its reader.
    step = ApprovalStep.objects.get(pk=row.object_id)
    assert f"Tier {step.position} of {step.request.reference}" in listed
    assert "Decision needed" in listed
    assert ">activated<" not in listed

    mail_server_down.up()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            changelist, {"action": "send_again", "_selected_action": [row.pk]}, follow=True
        )
    assert "1 notification will be sent again." in answer.content.decode()
    row.refresh_from_db()
    assert (row.state, row.attempts, row.mails_sent) == (MailState.SENT, 1, 1)
    assert subjects(mailoutbox) == [("[Tollgate] Decision needed", site_manager.email)]


def test_a_mail_server_that_refuses_connections_backs_off_the_whole_batch(
    matrix, requester, site_a1, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    broker = []
    monkeypatch.setattr(tasks.send_outbox, "delay", broker.append)
    with django_capture_on_commit_callbacks(execute=True), notifications.batched():
        for n in range(3):
            raise_request(requester, site_a1, amount="1000", title=f"Order {n}")
    (ids,) = broker

    def refused(self):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(LocmemBackend, "open", refused, raising=False)
    assert outbox.send_many(ids) == {"retry": 3}
    assert set(OutboxMail.objects.values_list("attempts", "state")) == {(1, MailState.PENDING)}
    assert mailoutbox == []


def test_bulk_work_hands_its_notifications_over_in_few_tasks(
    matrix, requester, site_a1, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(outbox, "CHUNK", 2)
    broker = []
    monkeypatch.setattr(tasks.send_outbox, "delay", broker.append)
    with django_capture_on_commit_callbacks(execute=True), notifications.batched():
        for n in range(5):
            raise_request(requester, site_a1, amount="1000", title=f"Order {n}")

    assert OutboxMail.objects.count() == 5  # one row per notification
    assert [len(chunk) for chunk in broker] == [2, 2, 1]  # few tasks
    for chunk in broker:
        tasks.send_outbox(chunk)
    assert len(mailoutbox) == 5


def test_silenced_history_writes_no_notification(
    matrix, requester, site_a1, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), notifications.silenced():
        raise_request(requester, site_a1, amount="1000")
    assert not OutboxMail.objects.exists()
    assert mailoutbox == []


def test_sent_notifications_are_purged_after_the_retention_period(db, settings):
    settings.NOTIFY_RETENTION_DAYS = 30
    now = timezone.now()
    old, recent, pending, failed = (
        OutboxMail.objects.create(topic=Topic.REQUEST, object_id=n, state=state, sent_at=sent)
        for n, state, sent in (
            (1, MailState.SENT, now - timedelta(days=31)),
            (2, MailState.SENT, now - timedelta(days=29)),
            (3, MailState.PENDING, None),
            (4, MailState.FAILED, None),
        )
    )
    OutboxMail.objects.filter(pk__in=[pending.pk, failed.pk]).update(
        created_at=now - timedelta(days=90)
    )

    assert tasks.purge_sent() == 1
    assert set(OutboxMail.objects.values_list("pk", flat=True)) == {
        recent.pk,
        pending.pk,
        failed.pk,
    }
    assert not OutboxMail.objects.filter(pk=old.pk).exists()


def test_an_unknown_topic_is_refused_and_nothing_is_written(db):
    with pytest.raises(ValueError, match="Unknown notification topic"):
        outbox.outbox_add("approvals.nothing", [1])
    assert not OutboxMail.objects.exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has no row locks: a second writer waits for the whole database instead",
)
@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_is_sending_is_skipped_not_sent_twice():
    (item_id,) = outbox.outbox_add(Topic.REQUEST, [10**9])  # no such request: nobody to mail
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        from django.db import connection

        try:
            with transaction.atomic():
                OutboxMail.objects.select_for_update().get(pk=item_id)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        assert outbox.outbox_send(item_id=item_id) == ("skipped", None)
    finally:
        release.set()
        thread.join(timeout=30)
    assert outbox.outbox_send(item_id=item_id) == ("sent", None)
    assert outbox.outbox_send(item_id=item_id) == ("skipped", None)
    assert OutboxMail.objects.get(pk=item_id).attempts == 1


def test_beat_drains_the_outbox_and_purges_sent_notifications(settings):
    entries = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["notify.drain_outbox"]["schedule"] == 30
    # An overlapping drain is harmless (rows are leased and locked), a stale one pointless.
    assert entries["notify.drain_outbox"]["options"] == {"expires": 30}
    assert "notify.purge_sent" in entries


def test_a_worker_stopped_between_the_mail_server_and_the_commit_sends_again(
    matrix,
    requester,
    site_a1,
    site_manager,
    mailoutbox,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """The documented gap: at least once across that one crash, never zero times."""
    with django_capture_on_commit_callbacks(execute=True):
        target = raise_request(requester, site_a1, amount="1000")
    mailoutbox.clear()
    sender = notifications.send_requester_notification

    def stopped_after_sending(*args, **kwargs):
        sender(*args, **kwargs)
        raise SoftTimeLimitExceeded()  # the worker is stopped before the row is marked

    monkeypatch.setattr(notifications, "send_requester_notification", stopped_after_sending)
    with pytest.raises(SoftTimeLimitExceeded), django_capture_on_commit_callbacks(execute=True):
        services.request_approve(actor=site_manager, request_id=target.pk)
    (row,) = OutboxMail.objects.filter(topic=Topic.REQUEST)
    assert (row.state, row.attempts) == (MailState.PENDING, 0)  # rolled back with the task

    monkeypatch.setattr(notifications, "send_requester_notification", sender)
    assert tasks.drain_outbox() == 1
    assert [m.to for m in mailoutbox] == [[requester.email], [requester.email]]
    row.refresh_from_db()
    assert (row.state, row.attempts) == (MailState.SENT, 1)


def test_the_outbox_admin_reads_a_pages_tiers_in_one_query(matrix, requester, site_a1, client):
    from django.test.utils import CaptureQueriesContext

    changelist = reverse("admin:notify_outboxmail_changelist")
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    def queries_and_page():
        with CaptureQueriesContext(connection) as queries:
            page = client.get(changelist)
        assert page.status_code == 200
        return len(queries), page.content.decode()

    raise_request(requester, site_a1, amount="1000", title="First")
    one, _ = queries_and_page()
    for n in range(4):
        raise_request(requester, site_a1, amount="1000", title=f"Order {n}")
    five, listed = queries_and_page()

    mailed = OutboxMail.objects.filter(topic=Topic.STEP).values_list("object_id", flat=True)
    assert len(mailed) == 5
    for step in ApprovalStep.objects.filter(pk__in=mailed).select_related("request"):
        assert f"Tier {step.position} of {step.request.reference}" in listed
    assert five == one
