"""The benchmarks run on long-lived PostgreSQL databases, not on pytest-django's test database.

`make bench` points DATABASE_URL at `tollgate_bench` (override with BENCH_DATABASE_URL). That
database holds the one-million-request dataset; `tests.benchmarks.dataset.ensure` builds it, and
the smaller ones beside it, on first use and reuses them afterwards. Nothing here runs as part
of `make test` (pytest does not recurse into this folder unless asked to).
"""

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


@pytest.fixture(scope="session")
def results():
    return RESULTS


def pytest_terminal_summary(terminalreporter):
    if not RESULTS.rows:
        return
    RESULTS.write()
    terminalreporter.section("Tollgate benchmark results")
    terminalreporter.write_line(RESULTS.describe_machine())
    terminalreporter.write_line("")
    for line in RESULTS.table().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line("")
    terminalreporter.write_line("written to var/bench/results.md and var/bench/results.json")
