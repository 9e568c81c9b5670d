"""The demo's outbox: one file per e-mail, read by superusers only, as text."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from portal import mailbox
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings, tmp_path):
    settings.EMAIL_BACKEND = mailbox.BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def send(subject: str, body: str = "Hello", to: str = "ruth@example.com") -> None:
    mail.send_mail(subject, body, None, [to])


def test_every_message_is_its_own_file_even_on_one_connection(outbox):
    connection = mail.get_connection()
    messages = [
        mail.EmailMessage(f"Step {n} waits", f"Body {n}", None, [f"p{n}@example.com"])
        for n in range(3)
    ]

    assert connection.send_messages(messages) == 3

    files = sorted(outbox.iterdir())
    assert len(files) == 3
    assert all(mailbox.FILE_NAME.match(file.name) for file in files)
    subjects = sorted(re.search(r"^Subject: (.*)$", f.read_text(), re.M).group(1) for f in files)
    assert subjects == ["Step 0 waits", "Step 1 waits", "Step 2 waits"]


def test_superuser_reads_the_outbox_newest_first_and_one_message(client, outbox, superuser):
    send("First notification", to="first@example.com")
    send("Second notification", body="Line one\nhttp://127.0.0.1:8300/approvals/7/")
    client.force_login(superuser)

    home = client.get(reverse("inbox:home")).text
    page = client.get(reverse("mailbox:outbox")).text

    assert 'href="/outbox/"' in home  # the nav link
    assert "2 messages" in page
    assert page.index("Second notification") < page.index("First notification")
    assert "to first@example.com" in page
    newest = sorted(outbox.iterdir())[-1].name
    letter = client.get(reverse("mailbox:letter", args=[newest])).text
    assert "Second notification" in letter and "http://127.0.0.1:8300/approvals/7/" in letter


def test_the_outbox_shows_mail_as_text_never_as_markup(client, outbox, superuser):
    send("<script>alert(1)</script> waits", body='<img src=x onerror="alert(2)"> <b>bold</b>')
    client.force_login(superuser)

    page = client.get(reverse("mailbox:outbox")).text
    letter = client.get(reverse("mailbox:letter", args=[next(outbox.iterdir()).name])).text

    for shown in (page, letter):
        assert "<script>alert(1)" not in shown and "&lt;script&gt;alert(1)" in shown
    assert "<img src=x" not in letter and "&lt;img src=x" in letter
    assert "<b>bold</b>" not in letter


@pytest.mark.parametrize("who", ["site_manager", "staff", "anonymous"])
def test_only_superusers_find_the_outbox(client, outbox, site_manager, who):
    send("Step waits")
    name = next(outbox.iterdir()).name
    if who == "site_manager":
        client.force_login(site_manager)
    elif who == "staff":
        client.force_login(UserFactory(username="clerk", is_staff=True))

    for url in (reverse("mailbox:outbox"), reverse("mailbox:letter", args=[name])):
        response = client.get(url)
        expected = 302 if who == "anonymous" else 404  # to sign in; else it does not exist
        assert response.status_code == expected, url
    if who != "anonymous":
        assert 'href="/outbox/"' not in client.get(reverse("inbox:home")).text


def test_without_the_file_backend_there_is_no_outbox(client, settings, superuser):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    client.force_login(superuser)

    assert client.get(reverse("mailbox:outbox")).status_code == 404
    assert 'href="/outbox/"' not in client.get(reverse("inbox:home")).text


def test_nothing_outside_the_outbox_can_be_read(client, outbox, superuser, tmp_path):
    send("Step waits")
    (tmp_path / "secret.eml").write_text("Subject: not yours\n\nkey")
    client.force_login(superuser)

    for name in ("../secret.eml", "..%2Fsecret.eml", "secret.eml", "20260101T000000000000Z-1.eml"):
        assert client.get(f"/outbox/{name}").status_code == 404, name


def test_the_outbox_page_reads_files_not_the_database(client, outbox, superuser):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser)
    send("One")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("mailbox:outbox"))
    for n in range(5):
        send(f"More {n}")
    with CaptureQueriesContext(connection) as many:
        assert "6 messages" in client.get(reverse("mailbox:outbox")).text
    assert len(many.captured_queries) == len(few.captured_queries)
