"""Auditor exports: the events in scope as CSV or JSON Lines, streamed, with a signed manifest.

Rows are read with a server-side cursor as plain values and written in blocks of a megabyte,
hashing the bytes as they are written, so an export of any size runs in constant memory. Each
row carries every field of the canonical form (`chain.FIELDS`) plus the event's `hash`, so any
subset stays verifiable row by row, and the names beside the ids (`NAME_COLUMNS`: the actor's
and on-behalf-of person's username and name, the site's code and name, as they are now — not
covered by the hash). `portal/audit/verify_export.py` checks files against their manifest
without Tollgate.

Data file encodings (UTF-8, no byte-order mark):

* JSON Lines: one JSON object per line ending in "\\n", keys sorted, separators `,` and `:`,
  non-ASCII characters kept — the canonical serialisation plus the keys `hash` and
  `NAME_COLUMNS`. Never escaped: the form to prefer for checking.
* CSV (RFC 4180, as Python's csv module writes it: "\\r\\n" line ends, fields quoted only when
  they hold a comma, quote or line break): a header row naming `CSV_COLUMNS` (the canonical
  fields, names beside their ids, then `hash`). `sequence` is a decimal integer; `actor_id`,
  `on_behalf_of_id` and `site_id` are decimal integers or empty for null; `before`, `after`
  and `context` are JSON text serialised like the canonical form (so `null` for null); every
  other column is the text itself. Text cells a spreadsheet would run as a formula (starting
  with = + - @ ' tab or carriage return) carry one extra leading `'` (`portal.core.spreadsheet`);
  the manifest names that rule, and the verifier removes exactly that `'` before hashing.

The manifest (JSON) names the filters (or the one request or case whose trail it is), each
data file with its format and SHA-256, the row count, the first and last sequence and hash
(the ledger range covered), the ledger's latest checkpoint (sequence, head hash, time), when
and by whom it was generated, and `full_range`: true when the rows are exactly events 1 to
`last_sequence`, none left out by filters or scope, so that the verifier can also check the
chain's links from its start. It is signed with the installation's Ed25519 key
(`portal.audit.signing`) over everything but the signature, in canonical form.

Only sealed events are exported (those with a sequence number): an event still waiting for its
seal is in no file and no manifest.

The files are written by `portal.audit.export_writers` (through the ORM, the reference) or,
on PostgreSQL, by `portal.audit.export_postgresql`, which matches it byte for byte.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.audit import chain, selectors, sequencer, signing
from portal.audit.export_postgresql import default_workers, write_postgresql
from portal.audit.export_writers import (
    COLUMNS,
    CSV_COLUMNS,
    FORMATS,
    NAME_COLUMNS,
    VALUES,
    WRITERS,
    Summary,
    write_csv,
    write_formats,
    write_jsonl,
)
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.selectors import ExportFilters
from portal.audit.services import audit_record
from portal.core import spreadsheet
from sites.models import Site
from sites.policies import Capability, sites_where

CHUNK = 5000

__all__ = [  # the writers' names, imported from here by the export's callers
    "COLUMNS",
    "CSV_COLUMNS",
    "FORMATS",
    "NAME_COLUMNS",
    "VALUES",
    "WRITERS",
    "Subject",
    "Summary",
    "audit_export",
    "audit_export_files",
    "default_workers",
    "latest_checkpoint",
    "write_csv",
    "write_formats",
    "write_jsonl",
]


@dataclass(frozen=True)
class Subject:
    """The one request or case whose trail is exported."""

    kind: str  # "request" or "case"
    object_id: str
    reference: str

    def as_dict(self) -> dict:
        return {"type": self.kind, "id": self.object_id, "reference": self.reference}


def audit_export(
    *,
    actor,
    filters: ExportFilters,
    fmt: str,
    out: BinaryIO,
    manifest_out: BinaryIO,
    data_name: str | None = None,
    workers: int = 1,
) -> dict:
    """Write the events `actor` may audit matching `filters` to `out`, and its manifest.

    `data_name` is the data file's name as the manifest gives it (default: `out`'s own name).
    Takes no lock: the events are read in one snapshot, so the file is one consistent view
    of the ledger. On PostgreSQL, `workers` > 1 formats a large export in that many forked
    processes: for a single-threaded caller such as a management command, not a web worker.
    Refusals and exports are recorded in transactions of their own, committed even when the
    caller's work is not; call it outside a transaction.
    """
    if fmt not in WRITERS:
        raise ValidationError({"format": f"Choose one of {', '.join(sorted(WRITERS))}."})
    _check_filters(actor, filters, fmt)
    if data_name is None:
        data_name = getattr(out, "name", "")
    name = Path(data_name).name if isinstance(data_name, str) else ""
    manifest = _export(
        actor,
        selectors.events_for_export(actor, filters),
        {fmt: (name, out)},
        filters=filters,
        workers=workers,
    )
    manifest_out.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n")
    return manifest


def audit_export_files(
    *,
    actor,
    outs: dict[str, tuple[str, BinaryIO]],
    filters: ExportFilters | None = None,
    subject: Subject | None = None,
    events: QuerySet[AuditEvent] | None = None,
) -> dict:
    """Write one consistent read of the ledger to a file per format; the signed manifest.

    Either `filters` (checked against the actor's scope, refusals recorded) or a `subject`
    with its `events` (a trail the caller has already found in the actor's scope). `outs` maps
    a format to (the file's name in the manifest, the file). Call it outside a transaction.
    """
    if subject is None:
        filters = filters or ExportFilters()
        _check_filters(actor, filters, "+".join(outs))
        events = selectors.events_for_export(actor, filters)
    elif actor is None or not actor.is_authenticated:
        raise PermissionDenied("An export needs an accountable person.")
    return _export(actor, events, outs, filters=filters or ExportFilters(), subject=subject)


def _check_filters(actor, filters: ExportFilters, fmt: str) -> None:
    if actor is None or not actor.is_authenticated:
        raise PermissionDenied("An export needs an accountable person.")
    refusal = _refusal(actor, filters)
    if refusal:
        _record(actor, "audit.export_refused", filters, fmt, comment=refusal)
        raise PermissionDenied(refusal)


def _export(
    actor, events, outs, *, filters: ExportFilters, subject: Subject | None = None, workers=1
):
    # Signing needs the key: a missing key is found before anything is read or recorded.
    signing.current_key()
    # Only sealed events: one still waiting for its sequence number and hash is in no file.
    events = events.filter(sequence__isnull=False)
    outputs = {fmt: out for fmt, (_, out) in outs.items()}
    if connections[events.db].vendor == "postgresql":
        summaries = write_postgresql(events, outputs, workers)
    else:
        values = events.values_list(*VALUES).iterator(chunk_size=CHUNK)
        summaries = write_formats(values, outputs)
    files = [
        _file_entry(fmt, name, summaries[fmt].digest.hexdigest()) for fmt, (name, _) in outs.items()
    ]
    summary = next(iter(summaries.values()))
    manifest = _manifest(actor, filters, summary, files=files, subject=subject)
    recorded = _record(
        actor,
        "audit.exported",
        filters,
        "+".join(outs),
        counts={
            "row_count": summary.row_count,
            "first_sequence": summary.first_sequence,
            "last_sequence": summary.last_sequence,
            "data_sha256": files[0]["sha256"],
            **({"subject": subject.as_dict()} if subject else {}),
        },
    )
    # The writer seals right after its commit, unless another sealer holds the chain: that one,
    # or the beat job, seals it moments later; None only past AUDIT_MAX_SEAL_SECONDS.
    manifest["recorded_as_sequence"] = sequencer.sequence_of(recorded)
    return signing.sign_manifest(manifest)


def _file_entry(fmt: str, name: str, sha256: str) -> dict:
    entry = {"name": name, "format": fmt, "sha256": sha256}
    if fmt == "csv":
        entry["csv_escaping"] = spreadsheet.RULE
    return entry


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


def latest_checkpoint() -> dict | None:
    """The ledger's latest checkpoint as a manifest gives it."""
    checkpoint = AuditCheckpoint.objects.order_by("-sequence", "-at").first()
    if checkpoint is None:
        return None
    return {
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "at": chain.timestamp(checkpoint.at),
    }


def _manifest(actor, filters, summary: Summary, *, files: list[dict], subject) -> dict:
    manifest = {
        "canonical_version": chain.CANONICAL_VERSION,
        "columns": list(COLUMNS),
        "name_columns": list(NAME_COLUMNS),
        "filters": filters.as_dict(),
        "row_count": summary.row_count,
        "first_sequence": summary.first_sequence,
        "first_hash": summary.first_hash,
        "last_sequence": summary.last_sequence,
        "last_hash": summary.last_hash,
        "full_range": summary.full_range,
        "files": files,
        "checkpoint": latest_checkpoint(),
        "generated_at": chain.timestamp(timezone.now()),
        "generated_by": actor.get_username(),
    }
    if subject is not None:
        manifest["subject"] = subject.as_dict()
    if len(files) == 1:
        # One data file: also named at the top level, as single-file manifests always were.
        (only,) = files
        manifest.update(format=only["format"], data_file=only["name"], data_sha256=only["sha256"])
    return manifest
