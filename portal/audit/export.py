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

How the rows are read. On PostgreSQL a raw server-side cursor reads each event's columns as
plain values, `at` already written by `to_char` and the JSON values as jsonb's text, and the
lines are written from them with prepared templates: text through json's own string encoder or
the CSV cell rule, the JSON values parsed and put in canonical form (jsonb's text orders keys
its own way) and reused when they repeat, names read once per person and site. A large export
is cut into ranges of sequence numbers, formatted by forked worker processes that all read one
exported snapshot (`pg_export_snapshot()`), and their files are appended in order, so the file
is still one consistent read of the ledger. Elsewhere (SQLite) rows are read through the ORM
and written by the csv module, in one process: the reference that the faster path matches byte
for byte (`tests/audit/test_export_bytes.py` compares them on awkward values).
"""

import gc
import hashlib
import io
import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.db.models import F, Func, Max, Min, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from portal.audit import chain, selectors, sequencer, signing
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.selectors import ExportFilters
from portal.audit.services import audit_record
from portal.core import spreadsheet
from sites.models import Site
from sites.policies import Capability, sites_where

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
CHUNK = 5000
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


def _full_name(first: str | None, last: str | None) -> str | None:
    return f"{first or ''} {last or ''}".strip() or None


def names(row: tuple) -> dict:
    """The names beside an event's ids (None where there is no person or site)."""
    actor, actor_first, actor_last, behalf, behalf_first, behalf_last, code, name = row[
        _HASH_AT + 1 :
    ]
    return {
        "actor_username": actor,
        "actor_name": _full_name(actor_first, actor_last) if actor else None,
        "on_behalf_of_username": behalf,
        "on_behalf_of_name": _full_name(behalf_first, behalf_last) if behalf else None,
        "site_code": code,
        "site_name": name,
    }


class _JsonLines:
    def __init__(self, out: BinaryIO):
        self.summary = Summary()
        self.sink = _HashingSink(out, self.summary)

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
        self.sink = _HashingSink(out, self.summary)
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


# --- PostgreSQL: plain columns from a raw cursor, lines written here -------------------------

# What the statement reads per event: chain.COLUMNS and the hash, with `at` already written as
# chain.timestamp writes it and the JSON values as jsonb's text (put in canonical form here).
_AT_TEXT = Func(
    F("at"),
    template=chain.TIMESTAMP_SQL.format("%(expressions)s"),
    output_field=TextField(),
)
_READ = {
    **{column: column for column in chain.COLUMNS},
    "at": "at_text",
    **{column: f"{column}_text" for column in JSON_VALUED},
}
_READ_VALUES = (*(_READ[column] for column in chain.COLUMNS), "hash")
(
    _SEQUENCE, _AT_, _ACTION, _ACTOR_ID, _ACTOR, _BEHALF_ID, _OBJECT_TYPE, _OBJECT_ID,
    _REFERENCE, _SITE_ID, _POLICY, _BEFORE, _AFTER, _COMMENT, _CONTEXT, _PREV_HASH, _HASH,
) = range(len(_READ_VALUES))  # fmt: skip
_ROWS_PER_FETCH = 2000
_CANONICAL_CACHE = 20_000  # texts per JSON column: states and rounds repeat, contexts seldom

# A JSON Lines row, keys in sorted order: each person's and the site's three keys are adjacent.
_JSONL_LINE = (
    '{"action":%s,"actor":%s,%s,"after":%s,"at":"%s","before":%s,"comment":%s,"context":%s,'
    '"hash":%s,"object_id":%s,"object_reference":%s,"object_type":%s,%s,"policy_version":%s,'
    '"prev_hash":%s,"sequence":%s,%s}\n'
)


def _statement(events: QuerySet) -> str:
    """The SELECT of _READ_VALUES for `events`, in ledger order, as literal SQL."""
    import psycopg  # only the PostgreSQL path needs it

    values = events.annotate(
        at_text=_AT_TEXT,
        **{f"{column}_text": Cast(column, TextField()) for column in JSON_VALUED},
    ).values_list(*_READ_VALUES)
    sql, params = values.query.sql_with_params()
    return psycopg.ClientCursor(_raw(events.db)).mogrify(sql, params)


def _canonicaliser(fmt: str) -> Callable[[str | None], str]:
    """jsonb text to the JSON value's cell in `fmt`: parsed and serialised exactly as a value
    read through the ORM is (json.loads, then chain.canonical_text), neutralised for CSV."""
    cache: dict[str, str] = {}
    loads, canonical_text = json.loads, chain.canonical_text
    safe = _csv_cell if fmt == "csv" else str
    null = safe(canonical_text(None))

    def convert(text: str | None) -> str:
        if text is None:
            return null
        found = cache.get(text)
        if found is None:
            found = safe(canonical_text(loads(text)))
            if len(cache) < _CANONICAL_CACHE:
                cache[text] = found
        return found

    return convert


class _Names:
    """The names beside an event's ids, as each format writes them, read in the statement's
    transaction (so as they were when its snapshot was taken) a batch of unknown ids at a time.
    """

    def __init__(self, raw):
        from psycopg import sql

        self.raw = raw
        user, site = get_user_model()._meta, Site._meta
        self.people_sql = sql.SQL("SELECT {}, {}, {}, {} FROM {} WHERE {} = ANY(%s)").format(
            *(sql.Identifier(user.get_field(name).column) for name in _PERSON_FIELDS),
            sql.Identifier(user.db_table),
            sql.Identifier(user.pk.column),
        )
        self.sites_sql = sql.SQL("SELECT {}, {}, {} FROM {} WHERE {} = ANY(%s)").format(
            *(sql.Identifier(site.get_field(name).column) for name in ("id", "code", "name")),
            sql.Identifier(site.db_table),
            sql.Identifier(site.pk.column),
        )
        # For each format and id, what the line holds for the actor, on-behalf-of and site.
        self.jsonl = {role: {None: _jsonl_names(role, None, None)} for role in _ROLES}
        self.csv = {role: {None: ",,"} for role in _ROLES}

    def learn(self, rows: list[tuple]) -> None:
        people = {row[_ACTOR_ID] for row in rows} | {row[_BEHALF_ID] for row in rows}
        people -= self.jsonl["actor"].keys()
        people.discard(None)
        sites = {row[_SITE_ID] for row in rows} - self.jsonl["site"].keys()
        sites.discard(None)
        if people:
            for pk, username, first, last in self.raw.execute(self.people_sql, [list(people)]):
                name = _full_name(first, last) if username else None
                for role in ("actor", "on_behalf_of"):
                    self._know(role, pk, username, name)
                people.discard(pk)
        if sites:
            for pk, code, name in self.raw.execute(self.sites_sql, [list(sites)]):
                self._know("site", pk, code, name)
                sites.discard(pk)
        # Ids without a row (which the foreign keys prevent) have no names, as in a LEFT JOIN.
        for pk in people:
            for role in ("actor", "on_behalf_of"):
                self._know(role, pk, None, None)
        for pk in sites:
            self._know("site", pk, None, None)

    def _know(self, role: str, pk: int, first, second) -> None:
        self.jsonl[role][pk] = _jsonl_names(role, pk, (first, second))
        self.csv[role][pk] = f"{pk},{_csv_cell(first or '')},{_csv_cell(second or '')}"


_PERSON_FIELDS = ("id", "username", "first_name", "last_name")
_ROLES = ("actor", "on_behalf_of", "site")


def _jsonl_names(role: str, pk: int | None, names_: tuple | None) -> str:
    """The three adjacent JSON Lines members of a person (id, name, username) or of the site
    (code, id, name), in sorted key order, as chain.canonical writes them."""
    first, second = names_ or (None, None)
    if role == "site":
        members = {"site_code": first, "site_id": pk, "site_name": second}
    else:
        members = {f"{role}_id": pk, f"{role}_name": second, f"{role}_username": first}
    return chain.canonical_text(members)[1:-1]


def _format(raw, statement: str, formats: list[str], writes: list[Callable[[bytes], Any]]):
    """Run `statement` on the psycopg connection `raw` (server-side cursor), writing each
    format's lines through its `writes` a fetch (a block of rows) at a time; a _Part."""
    part = _Part()
    names = _Names(raw)
    writers = [_LINE_WRITERS[fmt](names) for fmt in formats]
    with raw.cursor(name="audit_export") as cursor:
        cursor.execute(statement)
        while rows := cursor.fetchmany(_ROWS_PER_FETCH):
            if not part.row_count:
                part.first = (rows[0][_SEQUENCE], rows[0][_HASH])
            part.last = (rows[-1][_SEQUENCE], rows[-1][_HASH])
            part.row_count += len(rows)
            names.learn(rows)
            for lines, write in zip(writers, writes, strict=True):
                write(lines(rows))
    return part


def _jsonl_lines(names: _Names) -> Callable[[list[tuple]], bytes]:
    before, after, context = (_canonicaliser("jsonl") for _ in JSON_VALUED)
    actor, behalf, site = (names.jsonl[role] for role in _ROLES)
    text, line = json.encoder.encode_basestring, _JSONL_LINE

    def lines(rows: list[tuple]) -> bytes:
        return "".join([
            line % (
                text(r[_ACTION]), text(r[_ACTOR]), actor[r[_ACTOR_ID]], after(r[_AFTER]),
                r[_AT_], before(r[_BEFORE]), text(r[_COMMENT]), context(r[_CONTEXT]),
                text(r[_HASH]), text(r[_OBJECT_ID]), text(r[_REFERENCE]),
                text(r[_OBJECT_TYPE]), behalf[r[_BEHALF_ID]], text(r[_POLICY]),
                text(r[_PREV_HASH]), r[_SEQUENCE], site[r[_SITE_ID]],
            )
            for r in rows
        ]).encode()  # fmt: skip

    return lines


def _csv_lines(names: _Names) -> Callable[[list[tuple]], bytes]:
    before, after, context = (_canonicaliser("csv") for _ in JSON_VALUED)
    actor, behalf, site = (names.csv[role] for role in _ROLES)
    cell = _csv_cell

    def lines(rows: list[tuple]) -> bytes:
        return "".join([
            f"{r[_SEQUENCE]},{r[_AT_]},{cell(r[_ACTION])},{actor[r[_ACTOR_ID]]},"
            f"{cell(r[_ACTOR])},{behalf[r[_BEHALF_ID]]},{cell(r[_OBJECT_TYPE])},"
            f"{cell(r[_OBJECT_ID])},{cell(r[_REFERENCE])},{site[r[_SITE_ID]]},"
            f"{cell(r[_POLICY])},{before(r[_BEFORE])},{after(r[_AFTER])},{cell(r[_COMMENT])},"
            f"{context(r[_CONTEXT])},{cell(r[_PREV_HASH])},{cell(r[_HASH])}\r\n"
            for r in rows
        ]).encode()  # fmt: skip

    return lines


def _csv_cell(text: str) -> str:
    """A text cell as spreadsheet.SafeWriter writes it through the csv module's default
    dialect: neutralised, then quoted (quotes doubled) only when it holds a quote, a comma or a
    line break. Letters and digits alone need neither."""
    if text.isalnum():
        return text
    if text.startswith(spreadsheet.TRIGGERS):
        text = spreadsheet.ESCAPE + text
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


_LINE_WRITERS = {"jsonl": _jsonl_lines, "csv": _csv_lines}


@dataclass
class _Part:
    """What one read wrote: its rows counted, its first and last (sequence, hash)."""

    row_count: int = 0
    first: tuple | None = None
    last: tuple | None = None

    def extend(self, other: "_Part") -> None:
        """Count `other`, read after this one, in."""
        if other.row_count:
            self.first = self.first or other.first
            self.last = other.last
            self.row_count += other.row_count

    def into(self, summary: Summary) -> None:
        summary.row_count = self.row_count
        if self.row_count:
            summary.first_sequence, summary.first_hash = self.first
            summary.last_sequence, summary.last_hash = self.last


# Parallel reads: workers forked from this process, each with its own connection, all in the
# parent's exported snapshot. Module state, as a forked worker sees it.
_worker: dict[str, Any] = {}
_MIN_RANGE = 20_000  # sequence numbers per range at least: fewer rows are read in-process
_RANGES_PER_WORKER = 8


def default_workers() -> int:
    """Processes for a large export: one per CPU, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def _start_worker(params: dict, role: str | None, snapshot: str) -> None:
    """A worker's connection, in the parent's snapshot. A failure is kept and raised by the
    worker's first task (a Pool would start a worker whose initializer fails again forever)."""
    import psycopg
    from psycopg import sql

    gc.freeze()  # what was inherited stays shared with the parent, not copied on write
    try:
        raw = psycopg.connect(**params, autocommit=True)
        multiprocessing.util.Finalize(None, raw.close, exitpriority=10)
        if role:  # as Django's OPTIONS["assume_role"] has it
            raw.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        raw.autocommit = False
        raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        raw.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
    except Exception as error:  # handed to the parent with the first task
        _worker["error"] = error
    else:
        _worker["raw"] = raw


def _read_range(task: tuple[str, list[str], list[str]]) -> _Part:
    if "error" in _worker:
        raise _worker["error"]
    statement, formats, paths = task
    files = [open(path, "wb") for path in paths]  # noqa: SIM115 - closed below
    try:
        return _format(_worker["raw"], statement, formats, [file.write for file in files])
    finally:
        for file in files:
            file.close()


def _worker_params(alias: str) -> tuple[dict, str | None]:
    """How a worker connects like Django's connection `alias`, and the role it assumes."""
    database = connections[alias]
    params = database.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["application_name"] = "tollgate audit export"  # for pg_stat_activity
    return params, database.settings_dict["OPTIONS"].get("assume_role")


def _read_postgresql(events: QuerySet, sinks: dict[str, "_HashingSink"], workers: int):
    """Write `events` to each format's sink; a _Part. With `workers` > 1 and outside any
    transaction, ranges of sequence numbers are formatted in parallel on one snapshot."""
    formats = list(sinks)
    for fmt, sink in sinks.items():
        if fmt == "csv":
            header = io.StringIO()
            spreadsheet.writer(header).writerow(CSV_COLUMNS)
            sink.add(header.getvalue().encode())
    alias = events.db
    # Inside the caller's transaction only this connection sees what it has written: read here.
    own = not connections[alias].in_atomic_block
    with transaction.atomic(using=alias):  # a server-side cursor lives in a transaction
        if own:  # one snapshot for the rows and the names read beside them
            with connections[alias].cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if own and workers > 1:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                (snapshot,) = cursor.fetchone()
            bounds = events.aggregate(low=Min("sequence"), high=Max("sequence"))
            low, high = bounds["low"], bounds["high"]
            if low is not None and high - low >= 2 * _MIN_RANGE:
                return _read_in_parallel(events, formats, sinks, workers, snapshot, low, high)
        return _format(_raw(alias), _statement(events), formats, _adds(sinks))


def _raw(alias: str):
    """The psycopg connection under Django's connection `alias`."""
    database = connections[alias]
    database.ensure_connection()
    return database.connection


def _adds(sinks: dict[str, "_HashingSink"]) -> list[Callable[[bytes], None]]:
    return [sink.add for sink in sinks.values()]


def _read_in_parallel(events, formats, sinks, workers, snapshot, low, high) -> _Part:
    count = min(workers * _RANGES_PER_WORKER, (high - low + 1) // _MIN_RANGE)
    step = -(-(high - low + 1) // count)
    ranges = [(start, min(start + step - 1, high)) for start in range(low, high + 1, step)]
    part = _Part()
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="audit-export-") as folder:
        tasks = [
            (
                _statement(events.filter(sequence__range=bounds)),
                formats,
                [os.path.join(folder, f"{index}.{fmt}") for fmt in formats],
            )
            for index, bounds in enumerate(ranges)
        ]
        params, role = _worker_params(events.db)
        with context.Pool(workers, _start_worker, (params, role, snapshot)) as pool:
            # In order: each range's files are appended (and hashed) once it and all before
            # it are done, while the workers go on with the next ranges.
            for (_, _, paths), done in zip(tasks, pool.imap(_read_range, tasks), strict=True):
                part.extend(done)
                for path, sink in zip(paths, sinks.values(), strict=True):
                    with open(path, "rb") as data:
                        while block := data.read(_HashingSink.BLOCK_BYTES):
                            sink.add(block)
                    os.unlink(path)
    return part


def _write_postgresql(events: QuerySet, outs: dict[str, BinaryIO], workers: int):
    summaries = {fmt: Summary() for fmt in outs}
    sinks = {fmt: _HashingSink(out, summaries[fmt]) for fmt, out in outs.items()}
    part = _read_postgresql(events, sinks, workers)
    for fmt, sink in sinks.items():
        sink.flush()
        part.into(summaries[fmt])
    return summaries


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
        summaries = _write_postgresql(events, outputs, workers)
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
