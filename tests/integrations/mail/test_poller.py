"""Polling a real IMAP server (Dovecot, started for the session): each message stored exactly
once across overlapping polls and a worker killed mid-poll, marked in the mailbox only after it
is stored, and a message whose reading fails kept and read again."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from imap_tools import MailBoxUnencrypted

from portal.integrations.mail import extractors, poller, services
from portal.integrations.mail.models import Mailbox, MailMessage, MessageStatus, Security
from tests.integrations.mail import imap_server

pytestmark = [
    pytest.mark.skipif(
        not imap_server.DOVECOT.exists(),
        reason=f"needs Debian's dovecot-imapd at {imap_server.DOVECOT}, which is not installed",
    ),
    # Polls commit, and a second process reads what they stored.
    pytest.mark.django_db(transaction=True),
]
ROOT = Path(__file__).resolve().parents[3]
_accounts = iter(range(1, 10_000))


@pytest.fixture(scope="session")
def imap():
    server = imap_server.start(_free_port())
    yield server
    server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def account(imap, monkeypatch):
    """A fresh IMAP account, its credentials in the environment as production has them."""
    user, password = f"carrier{next(_accounts)}", "s3cret-imap-password"
    imap.add_user(user, password)
    monkeypatch.setenv("MAIL_TEST_USER", user)
    monkeypatch.setenv("MAIL_TEST_PASSWORD", password)
    return user, password


@pytest.fixture
def polled_mailbox(account, imap) -> Mailbox:
    mailbox = Mailbox(
        name="carrier",
        purpose="carrier",
        host=imap.host,
        port=imap.port,
        security=Security.NONE,
        username_variable="MAIL_TEST_USER",
        password_variable="MAIL_TEST_PASSWORD",
    )
    return services.mailbox_save(actor=None, mailbox=mailbox)


def _client(imap, account):
    return MailBoxUnencrypted(imap.host, imap.port).login(*account)


def _append(imap, account, count: int) -> list[bytes]:
    """Deliver `count` distinct carrier mails to the account's INBOX (IMAP APPEND)."""
    sent = []
    with _client(imap, account) as box:
        for n in range(1, count + 1):
            message = EmailMessage()
            message["From"] = "Rapid Freight <notifications@rapidfreight.example>"
            message["To"] = "logistics@distributor.example"
            message["Subject"] = f"Delay notice {n}"
            message["Message-ID"] = f"<poll-{n}-{time.time_ns()}@rapidfreight.example>"
            message.set_content(
                f"Shipment XX/OUT/{n:05d} is delayed.\nTracking number: TR{n:010d}\n"
            )
            raw = message.as_bytes()
            box.append(raw, "INBOX")
            sent.append(raw)
    return sent


def _flagged(imap, account) -> set[int]:
    with _client(imap, account) as box:
        return {int(uid) for uid in box.uids(f"KEYWORD {poller.STORED_FLAG}")}


def test_a_poll_stores_each_message_and_marks_it_after(polled_mailbox, imap, account):
    _append(imap, account, 3)

    result = poller.mailbox_poll(mailbox_id=polled_mailbox.pk)
    again = poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    assert (result.read, result.stored) == (3, 3)
    assert (again.read, again.stored) == (0, 0)
    assert MailMessage.objects.count() == 3
    assert _flagged(imap, account) == {1, 2, 3}
    polled_mailbox.refresh_from_db()
    assert polled_mailbox.last_uid == 3 and polled_mailbox.uid_validity
    assert polled_mailbox.last_error == ""


def test_the_stored_bytes_are_the_servers(polled_mailbox, imap, account):
    sent = _append(imap, account, 1)

    poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    stored = bytes(MailMessage.objects.get().raw)
    # The server keeps the message with CRLF line ends, as IMAP carries it.
    assert stored.replace(b"\r\n", b"\n") == sent[0].replace(b"\r\n", b"\n")


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two writers at once need PostgreSQL: SQLite's test database is in memory, one writer",
)
def test_two_overlapping_polls_store_each_message_once(polled_mailbox, imap, account):
    _append(imap, account, 4)
    both_listed = threading.Barrier(2, timeout=20)
    real_size_of = poller._size_of

    def read_after_both_listed(client, uid):
        if uid == 1:
            both_listed.wait()
        return real_size_of(client, uid)

    poller._size_of = read_after_both_listed
    errors = []

    def poll():
        try:
            poller.mailbox_poll(mailbox_id=polled_mailbox.pk)
        except Exception as error:  # reported below, with the thread's own error
            errors.append(error)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=poll) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        poller._size_of = real_size_of

    assert errors == []
    assert MailMessage.objects.count() == 4
    assert sorted(MailMessage.objects.values_list("imap_uid", flat=True)) == [1, 2, 3, 4]
    assert _flagged(imap, account) == {1, 2, 3, 4}


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a second process needs a database it can reach"
)
def test_a_worker_killed_mid_poll_loses_and_doubles_nothing(
    polled_mailbox, imap, account, tmp_path
):
    _append(imap, account, 3)
    stored_one = tmp_path / "stored-one"
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, str(polled_mailbox.pk), str(stored_one)],
        cwd=ROOT,
        env=_worker_env(),
    )
    try:
        _wait_for(stored_one, worker)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert MailMessage.objects.count() == 1  # stored, then killed before it was marked
    assert _flagged(imap, account) == set()

    poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    assert MailMessage.objects.count() == 3
    assert MailMessage.objects.filter(imap_uid=1).count() == 1
    assert _flagged(imap, account) == {1, 2, 3}


# The worker polls as the beat task would, but hangs right after the first message is stored
# (before it is marked in the mailbox), so the test can kill it exactly there.
KILLED_WORKER = """
import sys, time, django
django.setup()
from portal.celery import app
app.conf.task_always_eager = True
from portal.integrations.mail import poller
def hang(mailbox, imap, uid):
    open(sys.argv[2], "w").write(str(uid))
    time.sleep(120)
poller._mark = hang
poller.mailbox_poll(mailbox_id=int(sys.argv[1]))
"""


def _worker_env() -> dict:
    settings = connection.settings_dict
    url = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": url,
        "AUDIT_SEAL_INLINE": "1",
        "SECRET_KEY": "tollgate-test-only-key-never-used-in-production-0123456789",
    }


def _wait_for(path: Path, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert worker.poll() is None, "the worker exited before storing a message"
        assert time.monotonic() < deadline, "the worker stored nothing within a minute"
        time.sleep(0.05)


def test_a_message_whose_reading_fails_is_retried_and_never_lost(
    polled_mailbox, imap, account, monkeypatch
):
    _append(imap, account, 1)
    monkeypatch.setattr(extractors, "extract", _broken)

    poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    message = MailMessage.objects.get()
    assert message.status == MessageStatus.FAILED
    assert _flagged(imap, account) == {1}  # stored, so marked: the retry is Tollgate's

    monkeypatch.undo()
    services.messages_due_sweep(now=timezone.now() + timedelta(minutes=2))

    message.refresh_from_db()
    assert message.status == MessageStatus.TRIAGE  # read now; XX/OUT is nobody's site
    assert message.attempts == 1


def _broken(*args, **kwargs):
    raise RuntimeError("extractor crashed")


def test_missing_credentials_are_reported_by_variable_name(polled_mailbox, monkeypatch):
    monkeypatch.delenv("MAIL_TEST_PASSWORD")

    with pytest.raises(poller.PollError, match="not set: MAIL_TEST_PASSWORD"):
        poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    polled_mailbox.refresh_from_db()
    assert "MAIL_TEST_PASSWORD" in polled_mailbox.last_error


def test_a_wrong_password_never_appears_in_the_error(polled_mailbox, monkeypatch):
    monkeypatch.setenv("MAIL_TEST_PASSWORD", "wrong-password-123")

    with pytest.raises(poller.PollError) as failure:
        poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    assert "wrong-password-123" not in str(failure.value)
    polled_mailbox.refresh_from_db()
    assert "wrong-password-123" not in polled_mailbox.last_error
    assert polled_mailbox.last_error.startswith("Reading carrier failed")


def test_one_unreachable_mailbox_does_not_stop_the_others(polled_mailbox, imap, account):
    _append(imap, account, 1)
    services.mailbox_save(
        actor=None,
        mailbox=Mailbox(
            name="ap",
            purpose="ap",
            host="127.0.0.1",
            port=_free_port(),
            security=Security.NONE,
            username_variable="MAIL_TEST_USER",
            password_variable="MAIL_TEST_PASSWORD",
        ),
    )

    outcomes = poller.mailboxes_poll()

    assert outcomes["carrier"] == "1 stored, 0 refused"
    assert outcomes["ap"].startswith("Reading ap failed: ConnectionRefusedError")
    assert Mailbox.objects.get(name="ap").last_error == outcomes["ap"]


def test_a_mailbox_with_a_processed_folder_moves_what_it_stored(polled_mailbox, imap, account):
    _append(imap, account, 2)
    with _client(imap, account) as box:
        box.folder.create("Stored by Tollgate")
    polled_mailbox.processed_folder = "Stored by Tollgate"
    services.mailbox_save(actor=None, mailbox=polled_mailbox)

    poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    with _client(imap, account) as box:
        assert box.folder.status("INBOX")["MESSAGES"] == 0
        assert box.folder.status("Stored by Tollgate")["MESSAGES"] == 2
    assert MailMessage.objects.count() == 2


def test_a_message_too_big_is_refused_without_being_downloaded(
    polled_mailbox, imap, account, settings, monkeypatch
):
    settings.MAIL_MAX_BYTES = 2048
    with _client(imap, account) as box:
        big = _append(imap, account, 1)[0] + b"x" * 8192
        box.append(big, "INBOX")
    parts = []
    real_fetch = poller._fetch
    monkeypatch.setattr(
        poller, "_fetch", lambda c, u, part="": parts.append(part) or real_fetch(c, u, part=part)
    )

    poller.mailbox_poll(mailbox_id=polled_mailbox.pk)

    refused = MailMessage.objects.get(status=MessageStatus.REFUSED)
    assert refused.imap_uid == 2
    assert refused.size > 8192
    assert "mail above 2 KB is not taken" in refused.error
    assert bytes(refused.raw).startswith(b"From: Rapid Freight")
    assert b"xxxx" not in bytes(refused.raw)
    assert parts == ["", "HEADER"]  # the small one whole, the big one's headers only
    assert _flagged(imap, account) == {1, 2}
