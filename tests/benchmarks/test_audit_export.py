"""Exporting 100,000 audit events: streamed in constant memory, and how long export and check take.

Run with `make bench` (or `.venv/bin/pytest tests/benchmarks/test_audit_export.py -s`) against
PostgreSQL. `manage.py export_audit` runs as a separate process against the test database, as an
operator would run it, so that its own peak resident memory can be measured; the median of
three runs per format is printed, then the standalone verifier's time on the result.
"""

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from django.utils import timezone

from portal.audit import chain
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.factories import RegionFactory, SiteFactory, UserFactory, grant

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the export runs in a separate process, which cannot share SQLite's in-memory "
        "test database; the figures that matter are PostgreSQL's",
    ),
    # Committed for real, so that the export process sees the events.
    pytest.mark.django_db(transaction=True),
]

EVENTS = 100_000
BATCH = 5_000
RUNS = 3
PEAK_LIMIT_MB = 100
ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ("request.created", "request.submitted", "decision.approve", "request.approved")


def _ledger(sites, actors) -> int:
    """Append EVENTS events shaped like real ones, sealed into the chain; returns the head.

    audit_record appends one event per call (a lock, a head read and an INSERT each), which
    would make this set-up take many minutes. Rows are sealed here with the ledger's own
    chain.payload and chain.seal and inserted in batches instead; the ledger's triggers allow
    INSERT, and the chain they form is exactly what audit_record would have written.
    """
    with transaction.atomic():
        head = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
        sequence, prev_hash = head if head else (0, chain.GENESIS)
        start = timezone.now() - timedelta(days=365)
        batch = []
        for n in range(EVENTS):
            sequence += 1
            event = _event(sequence, n, start, sites, actors, prev_hash)
            event.hash = prev_hash = chain.seal(chain.payload(event))
            batch.append(event)
            if len(batch) == BATCH:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)
    return sequence


def _event(sequence, n, start, sites, actors, prev_hash) -> AuditEvent:
    site, actor = sites[n % len(sites)], actors[n % len(actors)]
    request_number = n // len(ACTIONS) + 1
    return AuditEvent(
        sequence=sequence,
        at=start + timedelta(seconds=n * 300),
        action=ACTIONS[n % len(ACTIONS)],
        actor=actor,
        actor_label=actor.username,
        object_type="approvals.approvalrequest",
        object_id=str(request_number),
        object_reference=f"AR-{request_number:06} Pallets of mineral water @ {site.code}",
        site=site,
        policy_version_label="Enterprise framework v3",
        before=chain.normalise({"state": "in_review"}),
        after=chain.normalise({"state": "approved", "round": 1, "amount": "1234.50"}),
        comment="Within budget; supplier confirmed the price in writing." if n % 3 else "",
        context=chain.normalise(
            {
                "ip": "10.20.30.40",
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
                "correlation_id": uuid.UUID(int=n).hex,
                "path": f"/approvals/{request_number}/approve/",
            }
        ),
        prev_hash=prev_hash,
    )


def _child_environment(settings) -> dict:
    database = settings.DATABASES["default"]
    credentials = quote(database["USER"] or "")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"])
    host = database.get("HOST") or "localhost"
    port = database.get("PORT") or 5432
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{host}:{port}/{database['NAME']}",
        "DATABASE_CONN_MAX_AGE": "0",
    }


# Linux starts a forked child's peak-memory count at its parent's size: a child of this test
# process (which holds the whole benchmark set-up) would report at least that. So a small
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


def _measured(command: list[str], environment: dict | None, log: Path) -> tuple[float, float]:
    """Run `command`; (seconds, peak resident MB) of that one process."""
    peak = log.with_suffix(".peak")
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(peak), *command]
    started = time.perf_counter()
    with log.open("wb") as output:
        finished = subprocess.run(
            launcher, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    seconds = time.perf_counter() - started
    assert finished.returncode == 0, log.read_text()
    return seconds, int(peak.read_text()) / 1024  # ru_maxrss is in kilobytes on Linux


def test_exporting_100k_events_streams_in_constant_memory(settings, tmp_path):
    region = RegionFactory(code="BX")
    sites = [SiteFactory(code=f"X{n}", region=region) for n in range(4)]
    actors = [UserFactory(username=f"bench.actor.{n}") for n in range(5)]
    auditor = UserFactory(username="bench.auditor")
    grant(auditor, Role.AUDITOR, region=region)
    head = _ledger(sites, actors)
    environment = _child_environment(settings)
    print(f"\nledger: {head} events ({EVENTS} inserted for the benchmark)")

    # The same command exporting nothing: what Python, Django and Tollgate take on their own.
    empty = tmp_path / "empty.csv"
    command = ["manage.py", "export_audit", "--as=bench.auditor", "--from=2999-01-01"]
    _, baseline = _measured(
        [sys.executable, *command, "--format=csv", f"--output={empty}"],
        environment,
        tmp_path / "empty.log",
    )
    print(f"baseline: an export of no rows peaks at {baseline:.1f} MB")

    for fmt in ("csv", "jsonl"):
        output = tmp_path / f"ledger.{fmt}"
        runs = []
        for _ in range(RUNS):
            command = [
                sys.executable,
                "manage.py",
                "export_audit",
                "--as=bench.auditor",
                f"--format={fmt}",
                f"--output={output}",
            ]
            runs.append(_measured(command, environment, tmp_path / "export.log"))
        manifest = output.with_name(output.name + ".manifest.json")
        seconds = statistics.median(run[0] for run in runs)
        peak = statistics.median(run[1] for run in runs)
        rows = json.loads(manifest.read_text())["row_count"]
        size = output.stat().st_size / 2**20
        print(
            f"export {fmt:5}: {rows} rows, {size:.0f} MB file, median {seconds:.1f} s "
            f"({rows / seconds:,.0f} rows/s), peak RSS median {peak:.1f} MB, "
            f"{peak - baseline:+.1f} MB over the baseline "
            f"(runs: {', '.join(f'{run[1]:.1f}' for run in runs)} MB)"
        )
        assert rows >= EVENTS
        assert max(run[1] for run in runs) < PEAK_LIMIT_MB

        verify = [
            sys.executable,
            "-I",
            "-S",
            str(ROOT / "portal/audit/verify_export.py"),
            str(output),
        ]
        verified_in, verifier_peak = _measured(
            [*verify, str(manifest)], None, tmp_path / "verify.log"
        )
        verdict = (tmp_path / "verify.log").read_text()
        print(
            f"verify {fmt:5}: {verified_in:.1f} s, peak RSS {verifier_peak:.1f} MB — "
            f"{verdict.strip()[:110]}"
        )
        assert verdict.startswith("VERIFIED") and "chain linked from its start" in verdict
