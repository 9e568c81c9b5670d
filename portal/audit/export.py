"""Auditor exports: the events in scope as CSV or JSON Lines, streamed, with a manifest.

Rows are read with a server-side cursor as plain values and written in blocks of a megabyte,
hashing the bytes as they are written, so an export of any size runs in constant memory. Each
row carries every field of the canonical form (`chain.FIELDS`) plus the event's `hash`, so any
subset stays verifiable row by row; `portal/audit/verify_export.py` checks a file against its
manifest without Tollgate.

Data file encodings (UTF-8, no byte-order mark):

* JSON Lines: one JSON object per line ending in "\\n", keys sorted, separators `,` and `:`,
  non-ASCII characters kept — the canonical serialisation, plus the key `hash`.
* CSV (RFC 4180, as Python's csv module writes it: "\\r\\n" line ends, fields quoted only when
  they hold a comma, quote or line break): a header row naming the columns `chain.FIELDS` then
  `hash`, in that order. `sequence` is a decimal integer; `actor_id`, `on_behalf_of_id` and
  `site_id` are decimal integers or empty for null; `before`, `after` and `context` are JSON
  text serialised like the canonical form (so `null` for null); every other column is the text
  itself. Cells are verbatim — nothing is escaped for spreadsheets, since that would change
  the bytes that are hashed — so open the file in a spreadsheet as text, not with formulas.

The manifest (JSON) names the filters, the format, the row count, the first and last sequence
and hash, the SHA-256 of the data file, when and by whom it was generated, and `full_range`:
true when the rows are exactly events 1 to `last_sequence`, none left out by filters or scope,
so that the verifier can also check the chain's links from its start.
"""

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal.audit import chain, selectors
from portal.audit.selectors import ExportFilters
from portal.audit.services import audit_record
from sites.models import Site
from sites.policies import Capability, sites_where

COLUMNS = (*chain.FIELDS, "hash")
OPTIONAL_INTEGERS = frozenset({"actor_id", "on_behalf_of_id", "site_id"})
JSON_VALUED = frozenset({"before", "after", "context"})
CHUNK = 5000


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


class _HashingSink:
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


# What the writers read: an event's canonical fields (chain.COLUMNS) then its stored hash.
VALUES = (*chain.COLUMNS, "hash")
_HASH_AT = len(chain.COLUMNS)
_CSV_ROWS_PER_DRAIN = 500


def rows(values: Iterable[tuple]) -> Iterable[dict]:
    """Each event's canonical fields plus its stored hash."""
    for row in values:
        yield {**chain.payload_of_values(row), "hash": row[_HASH_AT]}


def write_jsonl(values: Iterable[tuple], out: BinaryIO) -> Summary:
    """Stream events (rows of VALUES) to `out` as JSON Lines."""
    summary = Summary()
    sink = _HashingSink(out, summary)
    for row in rows(values):
        sink.add(chain.canonical(row) + b"\n")
        summary.add(row["sequence"], row["hash"])
    sink.flush()
    return summary


def write_csv(values: Iterable[tuple], out: BinaryIO) -> Summary:
    """Stream events (rows of VALUES) to `out` as CSV."""
    summary = Summary()
    sink = _HashingSink(out, summary)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for count, row in enumerate(values, start=1):
        writer.writerow(_csv_cells(row))
        summary.add(row[0], row[_HASH_AT])
        if count % _CSV_ROWS_PER_DRAIN == 0:
            sink.add(_drain(text))
    sink.add(_drain(text))
    sink.flush()
    return summary


def _drain(text: io.StringIO) -> bytes:
    data = text.getvalue().encode()
    text.seek(0)
    text.truncate()
    return data


_AT = VALUES.index("at")
_JSON_AT = tuple(VALUES.index(name) for name in sorted(JSON_VALUED))
_OPTIONAL_AT = tuple(VALUES.index(name) for name in sorted(OPTIONAL_INTEGERS))


def _csv_cells(row: tuple) -> list:
    """The CSV cells of a row of VALUES (the columns COLUMNS name, in the same order)."""
    cells = list(row)
    cells[_AT] = chain.timestamp(cells[_AT])
    for index in _JSON_AT:
        cells[index] = chain.canonical_text(cells[index])
    for index in _OPTIONAL_AT:
        if cells[index] is None:
            cells[index] = ""
    return cells


WRITERS: dict[str, Callable[[Iterable[tuple], BinaryIO], Summary]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
}


def audit_export(
    *,
    actor,
    filters: ExportFilters,
    fmt: str,
    out: BinaryIO,
    manifest_out: BinaryIO,
    data_name: str | None = None,
) -> dict:
    """Write the events `actor` may audit matching `filters` to `out`, and its manifest.

    `data_name` is the data file's name as the manifest gives it (default: `out`'s own name).
    Takes no lock: the events are read by one statement, so the file is one consistent view
    of the ledger. Refusals and exports are recorded in transactions of their own, committed
    even when the caller's work is not; call it outside a transaction.
    """
    if fmt not in WRITERS:
        raise ValidationError({"format": f"Choose one of {', '.join(sorted(WRITERS))}."})
    if actor is None or not actor.is_authenticated:
        raise PermissionDenied("An export needs an accountable person.")
    refusal = _refusal(actor, filters)
    if refusal:
        _record(actor, "audit.export_refused", filters, fmt, comment=refusal)
        raise PermissionDenied(refusal)
    events = (
        selectors.events_for_export(actor, filters).values_list(*VALUES).iterator(chunk_size=CHUNK)
    )
    summary = WRITERS[fmt](events, out)
    if data_name is None:
        data_name = getattr(out, "name", "")
    manifest = _manifest(actor, filters, fmt, summary, data_file=data_name)
    recorded = _record(
        actor,
        "audit.exported",
        filters,
        fmt,
        counts={
            key: manifest[key]
            for key in ("row_count", "first_sequence", "last_sequence", "data_sha256")
        },
    )
    manifest["recorded_as_sequence"] = recorded.sequence
    manifest_out.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n")
    return manifest


def _refusal(actor, filters: ExportFilters) -> str:
    """Why `actor` may not export with `filters`; '' when they may."""
    audited = set(sites_where(actor, Capability.AUDIT).values_list("code", flat=True))
    if not audited:
        return "You may not audit any site."
    # Unknown codes are refused like codes out of scope, so a refusal never says which exist.
    outside = sorted(set(filters.sites) - audited)
    if outside:
        return f"You may not audit site {', '.join(outside)}."
    if filters.region:
        in_region = set(
            Site.objects.filter(region__code=filters.region).values_list("code", flat=True)
        )
        if not in_region or not in_region <= audited:
            return f"You may not audit every site of region {filters.region}."
    return ""


def _record(actor, action: str, filters: ExportFilters, fmt: str, *, counts=None, comment=""):
    # Durable: the record must be committed whatever becomes of the caller's own work.
    with transaction.atomic(durable=True):
        return audit_record(
            action=action,
            actor=actor,
            obj=actor,
            after={"filters": filters.as_dict(), "format": fmt, **(counts or {})},
            comment=comment,
            reference=f"audit export by {actor.get_username()}",
        )


def _manifest(actor, filters: ExportFilters, fmt: str, summary: Summary, *, data_file) -> dict:
    return {
        "canonical_version": chain.CANONICAL_VERSION,
        "format": fmt,
        "columns": list(COLUMNS),
        "filters": filters.as_dict(),
        "row_count": summary.row_count,
        "first_sequence": summary.first_sequence,
        "first_hash": summary.first_hash,
        "last_sequence": summary.last_sequence,
        "last_hash": summary.last_hash,
        "full_range": summary.full_range,
        "data_file": Path(data_file).name if isinstance(data_file, str) else "",
        "data_sha256": summary.digest.hexdigest(),
        "generated_at": chain.timestamp(timezone.now()),
        "generated_by": actor.get_username(),
    }
