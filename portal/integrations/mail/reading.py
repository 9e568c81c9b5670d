"""A stored message read for people and extractors: headers, its text, what it quotes, its files.

Nothing here trusts the message. HTML is turned into plain text (tags dropped, scripts and
styles skipped), so a page shows the mail as text and never renders markup from it. The text
is split into what the sender wrote now and what they quoted from earlier mails: a reply that
quotes an old delay notice is not a new delay.
"""

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser


class Unreadable(ValueError):
    """The bytes are not an e-mail message; the message says why."""


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Letter:
    message_id: str
    sender: str
    sender_name: str
    to: str
    subject: str
    sent_at: datetime | None
    text: str
    new_text: str
    quoted_text: str
    html_only: bool
    attachments: list[Attachment] = field(default_factory=list)


# Where quoted history starts: a reply's attribution line or Outlook's original-message block.
_QUOTE_START = re.compile(
    r"^\s*(?:"
    r"On .{4,200} wrote:|Am .{4,200} schrieb .{1,200}:|Le .{4,200} a écrit\s?:|"
    r"Op .{4,200} schreef .{1,200}:|-{2,}\s*Original Message\s*-{2,}|"
    r"-{2,}\s*Ursprüngliche Nachricht\s*-{2,}|-{2,}\s*Message d'origine\s*-{2,}"
    r")\s*$",
    re.IGNORECASE,
)
_HEADERS = ("from", "subject", "message-id", "date", "to")


def read(raw: bytes) -> Letter:
    """The message in `raw`; Unreadable when it is not one."""
    if not raw or not raw.strip():
        raise Unreadable("The file is empty.")
    if b"\x00" in raw[:4096]:
        raise Unreadable("The file is binary, not an e-mail message.")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        present = [name for name in _HEADERS if message.get(name) is not None]
        if not present or not ({"from", "message-id"} & set(present)):
            raise Unreadable(
                "The file is not an e-mail message: it has neither a From nor a Message-ID header."
            )
        sender_name, sender = _address(message.get("from", ""))
        text, html_only = _body_text(message)
        new_text, quoted = split_quoted(text)
        return Letter(
            message_id=str(message.get("message-id", "")).strip()[:998],
            sender=sender,
            sender_name=sender_name,
            to=", ".join(a for _, a in getaddresses([str(message.get("to", ""))]) if a)[:300],
            subject=" ".join(str(message.get("subject", "")).split())[:300],
            sent_at=_date(message.get("date")),
            text=text,
            new_text=new_text,
            quoted_text=quoted,
            html_only=html_only,
            attachments=_attachments(message),
        )
    except Unreadable:
        raise
    except Exception as error:  # the parser raises many types for a broken header or part
        raise Unreadable(f"The message cannot be read: {error}.") from None


def _address(value) -> tuple[str, str]:
    pairs = getaddresses([str(value)])
    name, address = pairs[0] if pairs else ("", "")
    return name.strip()[:200], address.strip().lower()[:300]


def _date(value) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else None


def _body_text(message: EmailMessage) -> tuple[str, bool]:
    """The message's text, and whether it had only HTML; forwarded messages attached as
    message/rfc822 follow it, each with its own headers, as a mail client shows them."""
    body = message.get_body(preferencelist=("plain", "html"))
    text, html_only = "", False
    if body is not None:
        content = body.get_content()
        if body.get_content_subtype() == "html":
            text, html_only = html_to_text(content), True
        else:
            text = content
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            for inner in part.iter_parts():
                inner_text, _ = _body_text(inner)
                text += (
                    "\n\n---------- Forwarded message ----------\n"
                    f"From: {inner.get('from', '')}\nDate: {inner.get('date', '')}\n"
                    f"Subject: {inner.get('subject', '')}\n\n{inner_text}"
                )
    return _tidy(text), html_only


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _attachments(message: EmailMessage) -> list[Attachment]:
    found = []
    for part in message.iter_attachments():
        if part.get_content_type() == "message/rfc822":
            inner = next(iter(part.iter_parts()), None)
            subject = inner.get("subject", "") if inner is not None else ""
            found.append(Attachment(f"Forwarded: {subject}".strip(), "message/rfc822", 0))
            continue
        payload = part.get_payload(decode=True) or b""
        name = part.get_filename() or "unnamed attachment"
        found.append(Attachment(str(name)[:200], part.get_content_type(), len(payload)))
    return found


def split_quoted(text: str) -> tuple[str, str]:
    """(what the sender wrote now, what they quoted): quoted lines start with '>' or follow a
    reply's attribution line; a forwarded message is new text, not a quote."""
    new, quoted, in_quote = [], [], False
    for line in text.split("\n"):
        if not in_quote and _QUOTE_START.match(line):
            in_quote = True
        if in_quote or line.lstrip().startswith(">"):
            quoted.append(line)
        else:
            new.append(line)
    return _tidy("\n".join(new)), _tidy("\n".join(quoted))


class _TextOfHtml(HTMLParser):
    """Collects (text, inside a blockquote?) chunks; a line break is a chunk of its own."""

    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "blockquote"}
    SKIPPED = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, bool]] = []
        self.skipping = 0
        self.quoting = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append(("\n", False))
            self.quoting += tag == "blockquote"
        elif tag == "td":
            self.parts.append((" ", False))

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in self.BLOCKS:
            self.parts.append(("\n", False))
            self.quoting = max(self.quoting - (tag == "blockquote"), 0)

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append((re.sub(r"[ \t\r\n]+", " ", data), self.quoting > 0))


def html_to_text(html: str) -> str:
    """The words of an HTML mail, line by line; no markup survives. What a reply quotes in a
    blockquote is marked with '>' as a plain-text reply would."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines, words, quoted = [], [], False
    for text, inside in [*parser.parts, ("\n", False)]:
        if text == "\n":
            line = "".join(words).strip()
            lines.append(f"> {line}" if quoted and line else line)
            words, quoted = [], False
        else:
            words.append(text)
            quoted = quoted or inside
    return _tidy("\n".join(lines))
