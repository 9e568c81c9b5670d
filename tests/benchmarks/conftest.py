"""The benchmarks run on long-lived PostgreSQL databases, not on pytest-django's test database.

`make bench` points DATABASE_URL at `tollgate_bench` (override with BENCH_DATABASE_URL). That
database holds the one-million-request dataset; `tests.benchmarks.dataset.ensure` builds it, and
the smaller ones beside it, on first use and reuses them afterwards. Nothing here runs as part
of `make test` (pytest does not recurse into this folder unless asked to).

Targets are reported, not asserted: each target row says MET or MISSED, and the run ends with the
missed ones listed. With BENCH_STRICT=1 a missed target makes the run exit non-zero (after every
benchmark has run and the table has been written); without it only a failed correctness check
does.
"""

import os

import pytest
from django.core.management import call_command
from django.db import connection

from tests.benchmarks.harness import RESULTS, create_database_if_missing, machine


def pytest_collection_modifyitems(config, items):
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(
            reason="the benchmarks measure PostgreSQL: run them with `make bench`, which sets "
            "DATABASE_URL to a PostgreSQL database"
        )
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def bench_db(django_db_blocker):
    """The configured database, created and migrated if need be, open for the whole session."""
    if connection.vendor != "postgresql":
        yield None
        return
    with django_db_blocker.unblock():
        create_database_if_missing(connection.settings_dict["NAME"])
        call_command("migrate", interactive=False, verbosity=0)
        RESULTS.machine = machine()
        print(f"\nmachine: {RESULTS.describe_machine()}", flush=True)
        yield connection.settings_dict["NAME"]


@pytest.fixture(autouse=True)
def _ledger_sealing(settings):
    """The ledger as production runs it on PostgreSQL: events sealed by the sequencer after
    each commit (tests/conftest.py seals inline for tests that never commit; every benchmark
    commits, on databases of its own)."""
    settings.AUDIT_SEAL_INLINE = False


@pytest.fixture(scope="session")
def results():
    return RESULTS


@pytest.fixture(scope="session")
def collected_static() -> str:
    """Pages name their assets through the hashed manifest, as a deployment serves them; the
    folder the assets were collected into (the page benchmarks' server is pointed at it)."""
    from django.conf import settings

    call_command("collectstatic", interactive=False, verbosity=0)
    return str(settings.STATIC_ROOT)


STRICT_VALUES = ("", "0", "1")


def strict() -> bool:
    """Whether a missed target fails the run: BENCH_STRICT=1."""
    return os.environ.get("BENCH_STRICT", "") == "1"


def pytest_configure(config):
    if os.environ.get("BENCH_STRICT", "") not in STRICT_VALUES:
        # A misspelt value would quietly make the run lenient.
        raise pytest.UsageError("BENCH_STRICT is 1 (a missed target fails the run), 0 or unset")


def pytest_sessionfinish(session, exitstatus):
    if strict() and RESULTS.missed() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not RESULTS.rows:
        return
    RESULTS.write()
    write = terminalreporter.write_line
    terminalreporter.section("Tollgate benchmark results")
    write(RESULTS.describe_machine())
    write("")
    for line in RESULTS.table().splitlines():
        write(line)
    write("")
    write("written to var/bench/results.md and var/bench/results.json")
    targets, missed = RESULTS.targets(), RESULTS.missed()
    write("")
    write(f"targets: {len(targets) - len(missed)} MET, {len(missed)} MISSED")
    for row in missed:
        floor = f"; floor {row.floor:,.2f} {row.unit}" if row.floor is not None else ""
        write(
            f"  MISSED {row.section} · {row.metric}: {row.value:,.2f} {row.unit} "
            f"(target {row.target}{floor})",
            red=True,
        )
    if missed and strict():
        write(f"BENCH_STRICT=1: the run fails on {len(missed)} missed target(s).", red=True)
    elif missed:
        write("Missed targets do not fail the run; BENCH_STRICT=1 makes them fail it.")
