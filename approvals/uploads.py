"""What an uploaded attachment really is, judged by its bytes, never by its name or the browser.

A request may carry PDFs and photos (PNG, JPEG, WebP) and nothing else: no HTML or SVG that a
browser would run, no archive, no office file with macros. The type is read from the file's
first bytes (its magic number); a file whose name says otherwise keeps its name's stem and gets
the extension of what it is, so a PNG called "quote.pdf" is kept and served as "quote.png".
"""

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from django.conf import settings
from django.core.exceptions import ValidationError

from portal.core.formatting import count

# (content type, extension, test on the first bytes)
KNOWN_TYPES = (
    ("application/pdf", ".pdf", lambda head: head.startswith(b"%PDF-")),
    ("image/png", ".png", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    ("image/jpeg", ".jpg", lambda head: head.startswith(b"\xff\xd8\xff")),
    ("image/webp", ".webp", lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP"),
)
EXTENSIONS = {".pdf", ".png", ".jpg", ".jpeg", ".webp"}
ACCEPT = "application/pdf,image/png,image/jpeg,image/webp,.pdf,.png,.jpg,.jpeg,.webp"
NAME_MAX = 200


@dataclass(frozen=True)
class CheckedUpload:
    """An accepted file: its bytes, what they are, and their SHA-256."""

    name: str
    content_type: str
    size: int
    sha256: str
    content: bytes


def max_bytes() -> int:
    return settings.ATTACHMENT_MAX_BYTES


def describe_limit() -> str:
    """The size limit in words, e.g. "10 MB"."""
    limit = max_bytes()
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{limit // 1024} KB"


def check(upload) -> CheckedUpload:
    """Read `upload` (a Django UploadedFile or any file with a name) and accept or refuse it."""
    name = _clean_name(getattr(upload, "name", "") or "attachment")
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes():
        raise ValidationError(f"{name} is larger than {describe_limit()}; attach a smaller file.")
    content = _read(upload)
    if content is None or len(content) > max_bytes():
        raise ValidationError(f"{name} is larger than {describe_limit()}; attach a smaller file.")
    if not content:
        raise ValidationError(f"{name} is empty.")
    content_type, extension = sniff(content[:16])
    if content_type is None:
        raise ValidationError(
            f"{name} is not a PDF, PNG, JPEG or WebP file (judged by its content); "
            "attach the document as a PDF or a photo."
        )
    return CheckedUpload(
        name=_with_extension(name, extension),
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


def sniff(head: bytes) -> tuple[str | None, str | None]:
    """The content type and extension that the first bytes of a file show, or (None, None)."""
    for content_type, extension, matches in KNOWN_TYPES:
        if matches(head):
            return content_type, extension
    return None, None


def too_many(number: int, limit: int) -> str:
    return f"Attach at most {count(limit, 'file')} to one request; you chose {number}."


def _read(upload) -> bytes | None:
    """The whole file, or None as soon as it proves larger than the limit."""
    if hasattr(upload, "seek"):
        upload.seek(0)
    chunks, total = [], 0
    for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
        total += len(chunk)
        if total > max_bytes():
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _clean_name(name: str) -> str:
    # Only the last part of whatever path a browser sent, without control characters.
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:NAME_MAX] or "attachment"


def _with_extension(name: str, extension: str) -> str:
    path = PurePosixPath(name)
    suffix = path.suffix.lower()
    if suffix == extension or (extension == ".jpg" and suffix == ".jpeg"):
        return name
    stem = path.stem if suffix in EXTENSIONS else name
    return f"{stem[: NAME_MAX - len(extension)]}{extension}"
