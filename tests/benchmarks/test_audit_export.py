"""Audit ledger: exporting 1M events as CSV and JSON Lines, and verifying the 2M-event chain.

Measures `manage.py export_audit` run as an operator runs it — its own process, against the
"1m" dataset's ledger of 2,000,000 sealed events — exporting the first ~1,000,000 of them (whole
UTC days, as the command filters) for an auditor of every site: wall time, rows per second and
the process's peak resident memory. Then `manage.py verify_audit` over the whole ledger.

Floor: PostgreSQL's own `COPY (the export's SELECT, same columns and rows) TO STDOUT` in CSV,
streamed through psycopg into a file — what reading and serialising the rows costs at best.

Targets: each export ≤ 3× the COPY time with peak RSS ≤ 150 MB; verify 2M events in ≤ 30 s
on 2 cores.
Every export also appends its own `audit.exported` event to the ledger, as in production; the
chain stays valid (verify_audit checks it afterwards).
"""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from portal.audit import chain, selectors, sequencer
from portal.audit.export import COLUMNS
from portal.audit.models import AuditEvent
from sites.models import Site
from sites.policies import Capability, in_scope
from sites.roles import Role
from tests.benchmarks import dataset
from tests.benchmarks.harness import ROOT, create_database_if_missing, database_url, use_database
from tests.factories import RegionFactory, SiteFactory, UserFactory, grant

SECTION = "audit"
# Where the ledger comes from: the "1m" benchmark dataset (2,000,000 events), or with
# BENCH_LEDGER=own a ledger of OWN_EVENTS sealed events built here, in a database of its own.
LEDGER_SOURCE = os.environ.get("BENCH_LEDGER", "dataset")
SCALE = "1m"
OWN_EVENTS = 2_000_000
OWN_AUDITOR = "bench.auditor"
COPY_LIMIT = 3.0
OTHER_BENCHMARKS_REGION = "ZBENCH"
RSS_LIMIT_MB = 150
VERIFY_LIMIT_S = 30
# The model fields behind the export's columns, in the export's order.
FIELD_OF = {"actor": "actor_label", "policy_version": "policy_version_label"}


@dataclass(frozen=True)
class Ledger:
    database: str
    audit_events: int
    auditor: str


@pytest.fixture(scope="module")
def ledger():
    """The ledger measured, its database in use for the module."""
    if LEDGER_SOURCE == "dataset":
        data = dataset.ensure(SCALE)
        measured = Ledger(data.database, data.audit_events, data.users_by_reach["auditor"])
    else:
        measured = _own_ledger(f"{connection.settings_dict['NAME']}_ledger", OWN_EVENTS)
    with use_database(measured.database):
        yield measured


def _own_ledger(name: str, events: int) -> Ledger:
    """A database holding a ledger of `events` sealed events, built on first use."""
    create_database_if_missing(name)
    with use_database(name):
        call_command("migrate", interactive=False, verbosity=0)
        built = get_user_model().objects.filter(username=OWN_AUDITOR).exists()
        present = AuditEvent.objects.count()
    if built and present >= events:
        return Ledger(name, present, OWN_AUDITOR)
    started = time.perf_counter()
    _recreate(name)
    with use_database(name):
        call_command("migrate", interactive=False, verbosity=0)
        _seal_events(events)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
        present = AuditEvent.objects.count()
    print(f"\n  ledger {name}: {present:,} events built in {time.perf_counter() - started:.0f} s")
    return Ledger(name, present, OWN_AUDITOR)


def _recreate(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


def _seal_events(count: int) -> None:
    """Fill the ledger up to `count` events shaped like real ones, sealed into the chain.

    audit_record appends one event per call and the sequencer seals them in batches, which
    would take far too long here. Rows are sealed with the ledger's own chain.seal instead and
    copied in; the ledger's triggers allow INSERT, and the chain is what the sequencer writes.
    """
    region = RegionFactory(code="BX")
    sites = [SiteFactory(code=f"BX{n}", region=region) for n in range(4)]
    actors = [UserFactory(username=f"bench.actor.{n}") for n in range(5)]
    grant(UserFactory(username=OWN_AUDITOR), Role.AUDITOR, region=region)
    while sequencer.seal():  # the people and sites above recorded events of their own
        pass
    sequence, prev_hash = (
        AuditEvent.objects.filter(sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    count -= sequence
    start = timezone.now() - timedelta(days=365)
    step = timedelta(days=360) / count
    statement = f"COPY audit_auditevent ({', '.join(_COPIED)}) FROM STDIN"
    with (
        psycopg.connect(database_url(connection.settings_dict["NAME"])) as raw,
        raw.cursor().copy(statement) as copy,
    ):
        for n in range(count):
            sequence += 1
            fields = _event_fields(n, sequence, start + step * n, sites, actors, prev_hash)
            prev_hash = chain.seal(fields)
            copy.write_row(_copy_row(fields, prev_hash))


_COPIED = (*chain.COLUMNS, "hash")
_ACTIONS = ("request.created", "request.submitted", "decision.approve", "request.approved")


def _event_fields(n, sequence, at, sites, actors, prev_hash) -> dict:
    site, actor = sites[n % len(sites)], actors[n % len(actors)]
    number = n // len(_ACTIONS) + 1
    return {
        "sequence": sequence,
        "at": chain.timestamp(at),
        "action": _ACTIONS[n % len(_ACTIONS)],
        "actor_id": actor.pk,
        "actor": actor.username,
        "on_behalf_of_id": None,
        "object_type": "approvals.approvalrequest",
        "object_id": str(number),
        "object_reference": f"AR-{number:07} Pallets of mineral water @ BX/{site.code}",
        "site_id": site.pk,
        "policy_version": "Enterprise framework v3",
        "before": {"state": "in_review"},
        "after": {"state": "approved", "round": 1, "amount": "1234.50"},
        "comment": "Within budget; supplier confirmed the price in writing." if n % 3 else "",
        "context": {
            "region": "BX",
            "ip": "10.20.30.40",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
            "correlation_id": f"{n:032x}",
            "path": f"/approvals/{number}/approve/",
        },
        "prev_hash": prev_hash,
    }


def _copy_row(fields: dict, sealed: str) -> list:
    row = [fields[name] for name in chain.FIELDS]
    for index in (11, 12, 14):  # before, after, context: jsonb, given as JSON text
        row[index] = json.dumps(row[index])
    return [*row, sealed]


def _days_for(events: int) -> tuple[date, date]:
    """The whole UTC days from the ledger's first through the one holding its `events`-th
    event in time order (export filters are whole days; sequence and time order can differ)."""
    by_time = AuditEvent.objects.order_by("at").values_list("at", flat=True)
    return by_time[0].date(), by_time[events - 1].date()


def _copy_floor(auditor, date_from: date, date_to: date, out: Path) -> tuple[float, int]:
    """(seconds, rows) of COPYing the export's own SELECT to `out` as CSV."""
    filters = selectors.ExportFilters(date_from=date_from, date_to=date_to)
    query = selectors.events_for_export(auditor, filters).values_list(
        *(FIELD_OF.get(name, name) for name in COLUMNS)
    )
    sql, params = query.query.get_compiler(using="default").as_sql()
    with psycopg.connect(database_url(connection.settings_dict["NAME"])) as raw:
        statement = psycopg.ClientCursor(raw).mogrify(sql, params)
        rows = 0
        started = time.perf_counter()
        with raw.cursor() as cursor, out.open("wb") as file:
            copy_sql = f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER)"
            with cursor.copy(copy_sql) as copy:
                for block in copy:
                    file.write(block)
            rows = cursor.rowcount
        seconds = time.perf_counter() - started
    return seconds, rows


# Linux starts a forked child's peak-memory count at its parent's size: a child of this test
# process (which holds Django and the benchmark set-up) would report at least that. So a small
# launcher with nothing loaded starts the command and reports that one child's own peak.
_LAUNCHER = """
import os, sys
result, command = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execv(command[0], command)
_, status, usage = os.wait4(pid, 0)
with open(result, "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _measured(command: list[str], log: Path) -> tuple[float, float]:
    """Run `manage.py <command>` on the ledger; (seconds, peak resident MB) of that process."""
    peak = log.with_suffix(".peak")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
        "DATABASE_CONN_MAX_AGE": "0",
    }
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(peak)]
    started = time.perf_counter()
    with log.open("wb") as output:
        finished = subprocess.run(
            [*launcher, sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    seconds = time.perf_counter() - started
    assert finished.returncode == 0, log.read_text()[-2000:]
    return seconds, int(peak.read_text()) / 1024  # ru_maxrss is in kilobytes on Linux


def test_export_1m_events_against_copy_and_verify_2m(ledger, results, tmp_path):
    username = ledger.auditor
    auditor = get_user_model().objects.get(username=username)
    unaudited = Site.objects.exclude(in_scope(auditor, Capability.AUDIT))
    # The decision and webhook benchmarks add a region and site of their own to the same
    # database, after the dataset's ledger; every site the dataset built is audited.
    assert not unaudited.exclude(region__code=OTHER_BENCHMARKS_REGION).exists(), (
        f"{username} must audit every site of the dataset"
    )
    assert AuditEvent.objects.count() >= ledger.audit_events
    export_events = ledger.audit_events // 2
    date_from, date_to = _days_for(export_events)

    copy_seconds, copy_rows = _copy_floor(auditor, date_from, date_to, tmp_path / "copy.csv")
    print(f"\n  COPY: {copy_rows:,} rows in {copy_seconds:.1f} s")
    _, baseline = _measured(
        [
            "export_audit",
            f"--as={username}",
            "--from=2999-01-01",
            "--format=csv",
            f"--output={tmp_path / 'empty.csv'}",
        ],
        tmp_path / "empty.log",
    )
    for fmt in ("csv", "jsonl"):
        output = tmp_path / f"ledger.{fmt}"
        seconds, peak = _measured(
            [
                "export_audit",
                f"--as={username}",
                f"--from={date_from}",
                f"--to={date_to}",
                f"--format={fmt}",
                f"--output={output}",
            ],
            tmp_path / f"export-{fmt}.log",
        )
        manifest = json.loads(output.with_name(output.name + ".manifest.json").read_text())
        assert manifest["row_count"] == copy_rows >= export_events * 0.9
        ratio = seconds / copy_seconds
        results.add(
            SECTION,
            f"export_audit {fmt}, {copy_rows:,} events",
            seconds,
            "s",
            floor=copy_seconds,
            floor_label="COPY … TO STDOUT (csv)",
            target=f"≤ {COPY_LIMIT:g}× COPY",
            ok=ratio <= COPY_LIMIT,
        )
        results.add(
            SECTION,
            f"export_audit {fmt} rows/s",
            copy_rows / seconds,
            "rows/s",
            floor=copy_rows / copy_seconds,
            floor_label="COPY",
        )
        results.add(
            SECTION,
            f"export_audit {fmt} peak RSS",
            peak,
            "MB",
            target=f"≤ {RSS_LIMIT_MB} MB",
            ok=peak <= RSS_LIMIT_MB,
            note=f"an export of no rows peaks at {baseline:.0f} MB",
        )
        output.unlink()

    # The sealed chain is what verify_audit checks; seal what is pending first, as the beat does.
    if not sequencer.inline():
        while sequencer.seal():
            pass
    events = AuditEvent.objects.filter(sequence__isnull=False).count()
    seconds, peak = _measured(["verify_audit"], tmp_path / "verify.log")
    verdict = (tmp_path / "verify.log").read_text()
    assert f"Audit ledger intact: {events} events" in verdict, verdict
    results.add(
        SECTION,
        f"verify_audit, {events:,} events",
        seconds,
        "s",
        target=f"≤ {VERIFY_LIMIT_S} s",
        ok=seconds <= VERIFY_LIMIT_S,
        note=f"{events / seconds:,.0f} events/s, peak RSS {peak:.0f} MB",
    )
