"""The export on PostgreSQL: the bytes `portal.audit.export_writers` writes, read and written
faster.

A raw server-side cursor reads each event's columns as plain values, `at` already written by
`to_char` and the JSON values as jsonb's text, and the lines are written from them with prepared
templates: text through json's own string encoder or the CSV cell rule, the JSON values parsed
and put in canonical form (jsonb's text orders keys its own way) and reused when they repeat,
names read once per person and site. A large export is cut into ranges of sequence numbers,
formatted by forked worker processes that all read one exported snapshot
(`pg_export_snapshot()`), and their files are appended in order, so the file is still one
consistent read of the ledger. Elsewhere (SQLite) rows are read through the ORM and written by
the csv module, in one process: the reference that this path matches byte for byte
(`tests/audit/test_export_bytes.py` compares them on awkward values).
"""

import gc
import io
import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.db.models import F, Func, Max, Min, QuerySet, TextField
from django.db.models.functions import Cast

from portal.audit import chain
from portal.audit.export_writers import CSV_COLUMNS, JSON_VALUED, HashingSink, Summary, full_name
from portal.core import spreadsheet
from sites.models import Site

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
                name = full_name(first, last) if username else None
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


def worker_params(alias: str) -> tuple[dict, str | None]:
    """How a worker connects like Django's connection `alias`, and the role it assumes."""
    database = connections[alias]
    params = database.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["application_name"] = "tollgate audit export"  # for pg_stat_activity
    return params, database.settings_dict["OPTIONS"].get("assume_role")


def _read_postgresql(events: QuerySet, sinks: dict[str, "HashingSink"], workers: int):
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


def _adds(sinks: dict[str, "HashingSink"]) -> list[Callable[[bytes], None]]:
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
        params, role = worker_params(events.db)
        with context.Pool(workers, _start_worker, (params, role, snapshot)) as pool:
            # In order: each range's files are appended (and hashed) once it and all before
            # it are done, while the workers go on with the next ranges.
            for (_, _, paths), done in zip(tasks, pool.imap(_read_range, tasks), strict=True):
                part.extend(done)
                for path, sink in zip(paths, sinks.values(), strict=True):
                    with open(path, "rb") as data:
                        while block := data.read(HashingSink.BLOCK_BYTES):
                            sink.add(block)
                    os.unlink(path)
    return part


def write_postgresql(events: QuerySet, outs: dict[str, BinaryIO], workers: int):
    """Write `events` to one file per format in `outs`; each format's Summary."""
    summaries = {fmt: Summary() for fmt in outs}
    sinks = {fmt: HashingSink(out, summaries[fmt]) for fmt, out in outs.items()}
    part = _read_postgresql(events, sinks, workers)
    for fmt, sink in sinks.items():
        sink.flush()
        part.into(summaries[fmt])
    return summaries
