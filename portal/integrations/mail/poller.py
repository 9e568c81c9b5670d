"""Reading a mailbox over IMAP: new messages by UID, each stored once, then marked in the mailbox.

A poll asks the server for the UIDs above the last one it stored (and starts again from the
first when the folder's UIDVALIDITY changed). Each message is stored in its own transaction;
only after that commits is it flagged (or moved) in the mailbox and the mailbox's last UID
advanced. A poll that dies between the two reads the message again next time, and storing it
finds the stored copy: the digest and Message-ID constraints make it exactly once, also for two
polls that overlap.

Credentials are read from the environment variables the mailbox names, at the moment of the
poll; they are never stored, logged or put in an error message.
"""

import logging
import os
import re
from dataclasses import dataclass

from django.utils import timezone
from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.query import AND, U

from portal.integrations.mail import services
from portal.integrations.mail.errors import MailRefused
from portal.integrations.mail.models import Mailbox, Security

logger = logging.getLogger(__name__)

# The IMAP keyword that marks a message Tollgate has stored.
STORED_FLAG = "$TollgateStored"
BATCH = 200
TIMEOUT_SECONDS = 30


class PollError(Exception):
    """The mailbox could not be read; the message never contains a credential."""


@dataclass(frozen=True)
class PollResult:
    read: int
    stored: int
    refused: int


def mailbox_poll(*, mailbox_id: int) -> PollResult:
    """Read the new messages of one mailbox into Tollgate; PollError when the server fails."""
    mailbox = Mailbox.objects.select_related("site").get(pk=mailbox_id)
    if not mailbox.polled or not mailbox.active:
        return PollResult(0, 0, 0)
    user, password = _credentials(mailbox)
    try:
        with _client(mailbox).login(user, password, initial_folder=mailbox.folder) as imap:
            result = _read_new(mailbox, imap)
    except PollError as error:
        _note(mailbox, str(error))
        raise
    except Exception as error:  # imaplib and sockets raise many types; none carries a secret
        message = f"Reading {mailbox.name} failed: {type(error).__name__}: {error}"
        _note(mailbox, message)
        raise PollError(message) from None
    _note(mailbox, "")
    return result


def _credentials(mailbox: Mailbox) -> tuple[str, str]:
    missing = [
        name
        for name in (mailbox.username_variable, mailbox.password_variable)
        if not name or not os.environ.get(name)
    ]
    if missing:
        error = (
            f"The {mailbox.name} mailbox needs its login and password in environment variables; "
            f"not set: {', '.join(n or '(no name given)' for n in missing)}."
        )
        _note(mailbox, error)
        raise PollError(error)
    return os.environ[mailbox.username_variable], os.environ[mailbox.password_variable]


def _client(mailbox: Mailbox):
    if mailbox.security == Security.NONE:
        return MailBoxUnencrypted(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
    if mailbox.security == Security.STARTTLS:
        return MailBoxStartTls(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
    return MailBox(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)


def _read_new(mailbox: Mailbox, imap) -> PollResult:
    validity = int(imap.folder.status(mailbox.folder, ["UIDVALIDITY"])["UIDVALIDITY"])
    if mailbox.uid_validity != validity:
        # The server renumbered the folder: every UID is new; storing finds what is stored.
        Mailbox.objects.filter(pk=mailbox.pk).update(uid_validity=validity, last_uid=0)
        mailbox.uid_validity, mailbox.last_uid = validity, 0
    # "n:*" always answers the highest UID, even below n: keep only the new ones.
    uids = [int(uid) for uid in imap.uids(AND(uid=U(mailbox.last_uid + 1, "*")))]
    uids = sorted(uid for uid in uids if uid > mailbox.last_uid)[:BATCH]
    stored = refused = 0
    for uid in uids:
        outcome = _take(mailbox, imap, uid)
        if outcome is None:
            continue
        stored += outcome == "stored"
        refused += outcome == "refused"
        _mark(mailbox, imap, uid)
        Mailbox.objects.filter(pk=mailbox.pk, last_uid__lt=uid).update(last_uid=uid)
    return PollResult(len(uids), stored, refused)


def _take(mailbox: Mailbox, imap, uid: int) -> str | None:
    """Store message `uid`, or its refusal; a message too big is never downloaded, only its
    headers. None when it was expunged since the search."""
    size = _size_of(imap, uid)
    if size is None:
        return None
    if reason := services.oversize_refusal(size):
        headers = _fetch(imap, uid, part="HEADER") or b""
        recorded = services.message_refusal_record(
            mailbox=mailbox, raw=headers, reason=reason, imap_uid=uid, size=size
        )
        return "refused" if recorded.created else "seen"
    raw = _fetch(imap, uid)
    return None if raw is None else _store(mailbox, raw, uid)


def _size_of(imap, uid: int) -> int | None:
    status, data = imap.client.uid("FETCH", str(uid), "(RFC822.SIZE)")
    if status != "OK":
        raise PollError(f"The server did not give the size of message {uid}.")
    for item in data:
        found = re.search(rb"RFC822\.SIZE (\d+)", item if isinstance(item, bytes) else b"")
        if found:
            return int(found.group(1))
    return None


def _fetch(imap, uid: int, *, part: str = "") -> bytes | None:
    """The message's bytes (or one part) exactly as the server holds them, not marking it seen."""
    status, data = imap.client.uid("FETCH", str(uid), f"(BODY.PEEK[{part}])")
    if status != "OK":
        raise PollError(f"The server did not return message {uid}.")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    return None  # expunged since the search


def _store(mailbox: Mailbox, raw: bytes, uid: int) -> str:
    try:
        stored = services.message_receive(mailbox=mailbox, raw=raw, imap_uid=uid)
    except MailRefused as refusal:
        stored = services.message_refusal_record(
            mailbox=mailbox, raw=raw, reason=str(refusal), imap_uid=uid
        )
        return "refused" if stored.created else "seen"
    return "stored" if stored.created else "seen"


def _mark(mailbox: Mailbox, imap, uid: int) -> None:
    if mailbox.processed_folder:
        imap.move(str(uid), mailbox.processed_folder)
    else:
        imap.flag(str(uid), STORED_FLAG, True)


def _note(mailbox: Mailbox, error: str) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(
        last_polled_at=timezone.now(), last_error=error[:2000]
    )


def mailboxes_poll() -> dict[str, str]:
    """Poll every active mailbox with a server; one failing does not stop the others."""
    outcomes = {}
    for mailbox_id, name in (
        Mailbox.objects.filter(active=True).exclude(host="").values_list("pk", "name")
    ):
        try:
            result = mailbox_poll(mailbox_id=mailbox_id)
            outcomes[name] = f"{result.stored} stored, {result.refused} refused"
        except PollError as error:
            logger.warning("%s", error)
            outcomes[name] = str(error)
    return outcomes
