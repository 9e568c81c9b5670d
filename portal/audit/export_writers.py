"""The export's writers: events, as rows of `VALUES` read through the ORM, streamed to JSON Lines
and CSV files, counted and hashed as they are written.

This is the reference encoding (described in portal/audit/export.py); the PostgreSQL path
(`portal.audit.export_postgresql`) writes the same bytes faster.
"""

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from portal.audit import chain
from portal.core import spreadsheet

COLUMNS = (*chain.FIELDS, "hash")
NAME_COLUMNS = (
    "actor_username",
    "actor_name",
    "on_behalf_of_username",
    "on_behalf_of_name",
    "site_code",
    "site_name",
)
# The CSV header: the canonical fields with each id's names beside it, then the hash.
CSV_COLUMNS = tuple(
    column
    for name in COLUMNS
    for column in (
        (name, *(n for n in NAME_COLUMNS if n.startswith(name.removesuffix("_id") + "_")))
        if name.endswith("_id")
        else (name,)
    )
)
OPTIONAL_INTEGERS = frozenset({"actor_id", "on_behalf_of_id", "site_id"})
JSON_VALUED = frozenset({"before", "after", "context"})
FORMATS = ("jsonl", "csv")  # JSON Lines first: it is never escaped


@dataclass
class Summary:
    """What was written: counted and hashed as it went."""

    row_count: int = 0
    first_sequence: int | None = None
    first_hash: str | None = None
    last_sequence: int | None = None
    last_hash: str | None = None
    digest: Any = field(default_factory=hashlib.sha256)

    def add(self, sequence: int, hash_: str) -> None:
        if self.row_count == 0:
            self.first_sequence, self.first_hash = sequence, hash_
        self.last_sequence, self.last_hash = sequence, hash_
        self.row_count += 1

    @property
    def full_range(self) -> bool:
        return self.first_sequence == 1 and self.row_count == self.last_sequence


class HashingSink:
    """Writes bytes to a binary file and hashes exactly what it wrote, a block at a time."""

    BLOCK_BYTES = 1 << 20  # one hash update and one write per MiB, not per row

    def __init__(self, out: BinaryIO, summary: Summary):
        self.out, self.summary = out, summary
        self.pending: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        self.pending.append(data)
        self.size += len(data)
        if self.size >= self.BLOCK_BYTES:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.pending)
        self.pending.clear()
        self.size = 0
        self.summary.digest.update(data)
        self.out.write(data)


# What the writers read: an event's canonical fields (chain.COLUMNS), its stored hash, then
# the people's and site's names as they are now (joined in the same statement).
VALUES = (
    *chain.COLUMNS,
    "hash",
    "actor__username",
    "actor__first_name",
    "actor__last_name",
    "on_behalf_of__username",
    "on_behalf_of__first_name",
    "on_behalf_of__last_name",
    "site__code",
    "site__name",
)
_HASH_AT = len(chain.COLUMNS)
_CSV_ROWS_PER_DRAIN = 500


def full_name(first: str | None, last: str | None) -> str | None:
    return f"{first or ''} {last or ''}".strip() or None


def names(row: tuple) -> dict:
    """The names beside an event's ids (None where there is no person or site)."""
    actor, actor_first, actor_last, behalf, behalf_first, behalf_last, code, name = row[
        _HASH_AT + 1 :
    ]
    return {
        "actor_username": actor,
        "actor_name": full_name(actor_first, actor_last) if actor else None,
        "on_behalf_of_username": behalf,
        "on_behalf_of_name": full_name(behalf_first, behalf_last) if behalf else None,
        "site_code": code,
        "site_name": name,
    }


class _JsonLines:
    def __init__(self, out: BinaryIO):
        self.summary = Summary()
        self.sink = HashingSink(out, self.summary)

    def add(self, row: tuple) -> None:
        fields = {**chain.payload_of_values(row), "hash": row[_HASH_AT], **names(row)}
        self.sink.add(chain.canonical(fields) + b"\n")
        self.summary.add(row[0], row[_HASH_AT])

    def close(self) -> Summary:
        self.sink.flush()
        return self.summary


class _Csv:
    def __init__(self, out: BinaryIO):
        self.summary = Summary()
        self.sink = HashingSink(out, self.summary)
        self.text = io.StringIO()
        self.writer = spreadsheet.writer(self.text)
        self.writer.writerow(CSV_COLUMNS)

    def add(self, row: tuple) -> None:
        self.writer.writerow(_csv_cells(row))
        self.summary.add(row[0], row[_HASH_AT])
        if self.summary.row_count % _CSV_ROWS_PER_DRAIN == 0:
            self.sink.add(_drain(self.text))

    def close(self) -> Summary:
        self.sink.add(_drain(self.text))
        self.sink.flush()
        return self.summary


def _drain(text: io.StringIO) -> bytes:
    data = text.getvalue().encode()
    text.seek(0)
    text.truncate()
    return data


_AT = VALUES.index("at")
_JSON_AT = tuple(VALUES.index(name) for name in sorted(JSON_VALUED))
_OPTIONAL_AT = tuple(VALUES.index(name) for name in sorted(OPTIONAL_INTEGERS))


def _csv_cells(row: tuple) -> list:
    """The CSV cells of a row of VALUES, in CSV_COLUMNS order, before spreadsheet escaping."""
    cells = list(row[: _HASH_AT + 1])
    cells[_AT] = chain.timestamp(cells[_AT])
    for index in _JSON_AT:
        cells[index] = chain.canonical_text(cells[index])
    for index in _OPTIONAL_AT:
        if cells[index] is None:
            cells[index] = ""
    by_name = {**dict(zip(COLUMNS, cells, strict=True)), **names(row)}
    return ["" if by_name[name] is None else by_name[name] for name in CSV_COLUMNS]


_WRITER_CLASSES = {"csv": _Csv, "jsonl": _JsonLines}


def write_formats(values: Iterable[tuple], outs: dict[str, BinaryIO]) -> dict[str, Summary]:
    """Stream events (rows of VALUES) once, to one file per format in `outs`."""
    writers = {fmt: _WRITER_CLASSES[fmt](out) for fmt, out in outs.items()}
    for row in values:
        for writer in writers.values():
            writer.add(row)
    return {fmt: writer.close() for fmt, writer in writers.items()}


def write_jsonl(values: Iterable[tuple], out: BinaryIO) -> Summary:
    """Stream events (rows of VALUES) to `out` as JSON Lines."""
    return write_formats(values, {"jsonl": out})["jsonl"]


def write_csv(values: Iterable[tuple], out: BinaryIO) -> Summary:
    """Stream events (rows of VALUES) to `out` as CSV, safe to open in a spreadsheet."""
    return write_formats(values, {"csv": out})["csv"]


WRITERS: dict[str, Callable[[Iterable[tuple], BinaryIO], Summary]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
}
