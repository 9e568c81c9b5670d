"""The demo's outbox: every e-mail Tollgate sends written to its own file, and a page to read them.

`make run` sends mail to `EMAIL_FILE_PATH` through `OneFilePerMessageBackend` instead of printing
hundreds of notifications over the demo logins. Django's own file backend appends every message
of a connection to one file; here each message is one `.eml` file, named by the moment it was
written, so that the folder reads as an outbox. Superusers read it at /outbox/ while the backend
is in use; to everyone else, and whenever real mail is sent, the page does not exist.
"""

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.mail.backends.base import BaseEmailBackend
from django.http import Http404
from django.shortcuts import render
from django.urls import path

from sites.policies import is_company_admin

BACKEND = "portal.mailbox.OneFilePerMessageBackend"
# <UTC timestamp with microseconds>-<n>.eml; n tells apart messages written in one microsecond.
FILE_NAME = re.compile(r"^(\d{8}T\d{12}Z)-(\d+)\.eml$")
SHOWN = 200


class OneFilePerMessageBackend(BaseEmailBackend):
    """Write each message to `<EMAIL_FILE_PATH>/<UTC timestamp>-<n>.eml`, never overwriting one."""

    def __init__(self, *args, file_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory = Path(file_path or settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages) -> int:
        if not email_messages:
            return 0
        self.directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            self._write(message.message().as_bytes(linesep="\n"))
            sent += 1
        return sent

    def _write(self, data: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        # The web server and the worker's processes write here at once: exclusive creation
        # makes a clash take the next number instead of overwriting.
        n = 1
        while True:
            target = self.directory / f"{stamp}-{n}.eml"
            try:
                with target.open("xb") as out:
                    out.write(data)
            except FileExistsError:
                n += 1
            else:
                return target


def outbox_in_use() -> bool:
    return settings.EMAIL_BACKEND == BACKEND


@dataclass(frozen=True)
class Letter:
    name: str
    subject: str
    to: str
    sent: datetime | None
    body: str = ""


def _sort_key(path: Path) -> tuple[str, int]:
    stamp, n = FILE_NAME.match(path.name).groups()
    return stamp, int(n)


def _files() -> list[Path]:
    """The outbox's messages, newest first."""
    folder = Path(settings.EMAIL_FILE_PATH)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if FILE_NAME.match(p.name) and p.is_file()]
    return sorted(found, key=_sort_key, reverse=True)


def _read(file: Path, *, with_body: bool) -> Letter:
    with file.open("rb") as source:
        message = email.message_from_binary_file(source, policy=email.policy.default)
    try:
        sent = parsedate_to_datetime(message["Date"]) if message["Date"] else None
    except (TypeError, ValueError):
        sent = None
    if sent is not None and sent.tzinfo is None:
        # Django writes "-0000" (UTC, no zone said), which parses as a naive time.
        sent = sent.replace(tzinfo=UTC)
    body = ""
    if with_body:
        part = message.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
    return Letter(
        name=file.name,
        subject=str(message["Subject"] or "(no subject)"),
        to=str(message["To"] or ""),
        sent=sent,
        body=body,
    )


def _superuser_with_outbox(request) -> None:
    if not (is_company_admin(request.user) and outbox_in_use()):
        raise Http404("No such page.")


@login_required
def outbox(request):
    """Every message Tollgate has written to the outbox, newest first."""
    _superuser_with_outbox(request)
    files = _files()
    letters = [_read(file, with_body=False) for file in files[:SHOWN]]
    return render(
        request,
        "mailbox/outbox.html",
        {"letters": letters, "total": len(files), "folder": settings.EMAIL_FILE_PATH},
    )


@login_required
def letter(request, name: str):
    """One message of the outbox, as text."""
    _superuser_with_outbox(request)
    file = Path(settings.EMAIL_FILE_PATH) / name
    # The name must be an outbox file name, so nothing outside the folder can be asked for.
    if not FILE_NAME.match(name) or not file.is_file():
        raise Http404("No such message.")
    return render(request, "mailbox/letter.html", {"letter": _read(file, with_body=True)})


def outbox_link(request) -> dict:
    """Template context: whether to offer the outbox in the navigation."""
    user = getattr(request, "user", None)
    shown = user is not None and is_company_admin(user)
    return {"mail_outbox": shown and outbox_in_use()}


app_name = "mailbox"
urlpatterns = [
    path("", outbox, name="outbox"),
    path("<str:name>", letter, name="letter"),
]
