"""The demo company for tests that start from it: seeded once per test process, then copied.

`seed_demo` with its ninety days of history costs 30 to 60 s of CPU, and a dozen tests start
from the demo rather than test the command. On PostgreSQL the first of them in a process runs
the command and keeps every table's rows (binary COPY) and every sequence's position; the next
ones put those rows back in their own transaction in about a second: the same rows, the same
ids, the same sealed ledger. The processes of one parallel run share their copies through
files. The tests of the command itself (`tests/sites/test_seed_demo.py`, the fresh-demo checks
in `tests/sites/test_demo_company.py`) still run it.

A copy is reused only where it would be what the command would build:
- the database holds what it held when the copy was made (every table's rows; for content
  types and permissions, which are renumbered when a committing test empties the database, how
  many), which in a fresh test is what the migrations left; else the command runs;
- the settings the test overrides are the same (the tests override a few per test);
- the clock reads no more than a quarter of an hour from when the copy was made (the history
  is dated back from "now"; the approval and browser tests run on fixed working mornings, so a
  few copies are kept, one per clock). Where every test's clock starts from the same morning,
  a copy's newest rows are dated up to one seeding (about a minute) after the restoring test
  starts, where the command would have dated them just before it.
On SQLite the command always runs.
"""

import fcntl
import hashlib
import io
import os
import pickle
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

# How far the clock may have moved since a copy was made for it to be reused.
CLOCK_DRIFT = timedelta(minutes=15)
# A copy with history holds about 1.2 MB.
KEPT_PER_KIND = 3


@dataclass(frozen=True)
class _Copy:
    at: datetime  # when the command ran (the browser tests' clock stands on a working morning)
    before: tuple[str, ...]  # each table's rows before the seed (`_contents`)
    tables: tuple[str, ...]
    rows: dict[str, bytes]  # binary COPY of the tables that hold rows after the seed
    sequences: dict[str, int]  # each sequence's last value after the seed


# The newest copies of each kind (history or not, settings, what the database held before),
# for tests on different clocks.
_copies: dict[str, list[_Copy]] = {}


# Where the processes of one run (pytest-xdist's workers) leave their copies for each other;
# set by tests/conftest.py to a folder of the run's own temporary directory.
shared_dir: Path | None = None


def seed_demo(*, history: bool = True, fresh: bool = False) -> None:
    """What `manage.py seed_demo --force [--without-history]` leaves, in the test's database.

    `fresh` runs the command whatever copies there are (and keeps a copy for later tests).
    """
    if connection.vendor != "postgresql":
        _run(history)
        return
    now = timezone.now()
    tables = tuple(sorted(t for t in connection.introspection.table_names() if _copied(t)))
    before = _contents(tables)
    key = hashlib.sha256(repr((history, _overridden_settings(), tables, before)).encode())
    key = key.hexdigest()[:24]
    if fresh:
        _run(history)
        _keep(key, _take(tables, before, now))
        return
    with _one_seeding(key):
        made = _find(key, now)
        if made is not None:
            _restore(made)
            return
        _run(history)
        _keep(key, _take(tables, before, now))


@contextmanager
def _one_seeding(key: str):
    """While one process seeds a kind of demo, another that wants the same waits for its copy
    rather than seed it too, on the same two cores."""
    if shared_dir is None:
        yield
        return
    with open(shared_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _find(key: str, now: datetime) -> "_Copy | None":
    for made in _copies.get(key, []):
        if abs(now - made.at) <= CLOCK_DRIFT:
            return made
    if shared_dir is None:
        return None
    for path in sorted(shared_dir.glob(f"{key}-*.copy")):
        at = datetime.fromtimestamp(int(path.stem.split("-")[1]), tz=UTC)
        if abs(now - at) <= CLOCK_DRIFT:
            made = pickle.loads(path.read_bytes())  # noqa: S301 - written by this run's tests
            _copies.setdefault(key, []).insert(0, made)
            return made
    return None


def _keep(key: str, made: "_Copy") -> None:
    kept = _copies.setdefault(key, [])
    kept.insert(0, made)
    del kept[KEPT_PER_KIND:]
    if shared_dir is not None:
        path = shared_dir / f"{key}-{int(made.at.timestamp())}.copy"
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_bytes(pickle.dumps(made))
        partial.replace(path)  # whole or absent for another process reading it


def _run(history: bool) -> None:
    call_command("seed_demo", force=True, history=history, stdout=io.StringIO())


def _copied(table: str) -> bool:
    return table != "django_migrations"


def _overridden_settings() -> str:
    """The settings this test changed (pytest-django and override_settings stack holders)."""
    holder, layers = settings._wrapped, []
    while hasattr(holder, "default_settings"):
        layers.append(
            sorted(
                (name, repr(value))
                for name, value in vars(holder).items()
                if name not in ("default_settings", "SETTINGS_MODULE")
            )
        )
        holder = holder.default_settings
    return repr(layers)


def _quoted(table: str) -> str:
    return connection.ops.quote_name(table)


# Filled by migrations, and again with new ids after a committing test empties the database;
# only their row count is compared, and the copy brings its own (with the rows naming them).
_RENUMBERED = ("django_content_type", "auth_permission")


def _contents(tables: tuple[str, ...]) -> tuple[str, ...]:
    """Each table's row count and a digest of its rows (only the count where renumbered)."""
    parts = []
    for table in tables:
        digest = "''" if table in _RENUMBERED else "md5(string_agg(t::text, '|' ORDER BY t::text))"
        parts.append(f"(SELECT count(*) || ':' || coalesce({digest}, '') FROM {_quoted(table)} t)")  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}")
        return tuple(cursor.fetchone())


def _row_counts(tables: tuple[str, ...]) -> tuple[int, ...]:
    counts = ", ".join(f"(SELECT count(*) FROM {_quoted(t)})" for t in tables)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return tuple(cursor.fetchone())


def _take(tables: tuple[str, ...], before: tuple[str, ...], at: datetime) -> _Copy:
    # Events a committing test wrote are sealed by a thread after the commit; the copy holds
    # the chain as the command leaves it once that thread is done.
    from tests.ledger import seal_all

    if not settings.AUDIT_SEAL_INLINE:
        seal_all()
    after = _row_counts(tables)
    rows = {}
    with connection.cursor() as cursor:
        for table, count in zip(tables, after, strict=True):
            if count:
                with cursor.cursor.copy(f"COPY {_quoted(table)} TO STDOUT (FORMAT BINARY)") as copy:
                    rows[table] = b"".join(bytes(block) for block in copy)
        cursor.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()"
        )
        sequences = {name: value for name, value in cursor.fetchall() if value is not None}
    return _Copy(at, before, tables, rows, sequences)


def _restore(made: _Copy) -> None:
    from tests import ledger

    with transaction.atomic():
        # The ledger's triggers refuse TRUNCATE, and the foreign keys need not be checked on
        # rows that were consistent when copied: a superuser sets both aside for the copy.
        ledger.set_aside(connection)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(_quoted(t) for t in made.tables)}")
                for table, data in made.rows.items():
                    with cursor.cursor.copy(
                        f"COPY {_quoted(table)} FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        copy.write(data)
                for name, value in made.sequences.items():
                    # Never backwards: rows a rolled-back test made may still hold higher ids
                    # once this transaction is gone.
                    cursor.execute(
                        "SELECT setval(%s, greatest(%s, (SELECT coalesce(last_value, 1) "
                        "FROM pg_sequences WHERE schemaname = current_schema() "
                        "AND sequencename = %s)))",
                        [_quoted(name), value, name],
                    )
        finally:
            ledger.enforce(connection)
    # Content types came back with the copy's ids.
    ContentType.objects.clear_cache()
