"""What every benchmark shares: timing statistics, the results table, switching datasets, a server.

A benchmark measures its subject and a floor in the same run, on the same data, and records
both with `Results.add`; the table printed at the end of `make bench` (and written to
`var/bench/results.json` and `var/bench/results.md`) is what docs/PERFORMANCE.md quotes.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "var" / "bench"


@dataclass(frozen=True)
class Stats:
    """Milliseconds over `n` timed runs (after the warm-up runs, which are not counted)."""

    n: int
    p50: float
    p95: float
    mean: float
    best: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Stats:
        ordered = sorted(samples_ms)
        return cls(
            n=len(ordered),
            p50=statistics.median(ordered),
            p95=percentile(ordered, 95),
            mean=statistics.fmean(ordered),
            best=ordered[0],
        )

    def __str__(self) -> str:
        return f"p50 {self.p50:.2f} ms, p95 {self.p95:.2f} ms (n={self.n})"


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def timed(fn: Callable[[], object], *, runs: int = 30, warmup: int = 3) -> Stats:
    """Call `fn` warmup + runs times; statistics of the timed runs in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return Stats.of(samples)


@dataclass
class Row:
    section: str
    metric: str
    value: float
    unit: str
    floor: float | None = None
    floor_label: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        """MET or MISSED for a target row; empty for a figure without a target."""
        return {True: "MET", False: "MISSED", None: ""}[self.ok]

    @property
    def ratio(self) -> float | None:
        if self.floor in (None, 0):
            return None
        return self.value / self.floor


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        section: str,
        metric: str,
        value: float,
        unit: str,
        *,
        floor: float | None = None,
        floor_label: str = "",
        target: str = "",
        ok: bool | None = None,
        note: str = "",
    ) -> Row:
        """Record one figure; a target row names its `target` and says in `ok` if it was met.

        A missed target is reported, not raised: the benchmark goes on to its other figures,
        and `make bench` fails on a miss only when asked to (BENCH_STRICT=1, see conftest.py).
        """
        if (ok is None) != (not target):
            raise ValueError(f"{section} · {metric}: a target row needs both `target` and `ok`")
        row = Row(section, metric, value, unit, floor, floor_label, target, ok, note)
        self.rows.append(row)
        ratio = f"  ×{row.ratio:.2f} of floor" if row.ratio is not None else ""
        verdict = f"  {row.verdict} ({target})" if row.verdict else ""
        print(f"  {section} · {metric}: {value:,.2f} {unit}{ratio}{verdict}", flush=True)
        return row

    def targets(self) -> list[Row]:
        return [row for row in self.rows if row.ok is not None]

    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.ok is False]

    def table(self) -> str:
        lines = [
            "| section | metric | value | floor | ratio | target | met |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            floor = (
                f"{row.floor:,.2f} {row.unit} ({row.floor_label})" if row.floor is not None else ""
            )
            ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
            met = f"**{row.verdict}**" if row.ok is False else row.verdict
            lines.append(
                f"| {row.section} | {row.metric} | {row.value:,.2f} {row.unit} | {floor} "
                f"| {ratio} | {row.target} | {met} |"
            )
        return "\n".join(lines)

    def write(self) -> None:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        document = {"machine": self.machine, "rows": [asdict(row) for row in self.rows]}
        (OUT_DIR / "results.json").write_text(json.dumps(document, indent=2, default=str))
        (OUT_DIR / "results.md").write_text(self.describe_machine() + "\n\n" + self.table() + "\n")

    def describe_machine(self) -> str:
        return "; ".join(f"{key}: {value}" for key, value in self.machine.items())


def machine() -> dict[str, str]:
    """The machine and versions the figures were taken on."""
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    try:
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{memory_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    return {
        "cpu": f"{os.cpu_count()} × {model}",
        "memory": memory,
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": pg_version,
        "os": platform.platform(),
    }


@contextmanager
def use_database(name: str) -> Iterator[None]:
    """Point Django's default connection at database `name` for the block (read-only use).

    The dataset of each scale lives in its own database; a benchmark that compares scales
    switches between them with this. Connections are closed on both sides of the switch.
    """
    from django.db import connection

    previous = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = previous


def database_url(name: str) -> str:
    """A DATABASE_URL for database `name` on the server Django is connected to."""
    from django.db import connection

    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    password = settings.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgresql://{auth}{host}:{port}/{name}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(
    database: str,
    *,
    workers: int = 2,
    threads: int = 1,
    app: str = "portal.wsgi:application",
    env: dict[str, str] | None = None,
    ready_path: str = "/healthz",
) -> Iterator[str]:
    """Run gunicorn over `database` on a free loopback port; yields its base URL.

    Production settings (DEBUG off) over plain HTTP on loopback: SSL redirects are switched
    off, as a TLS-terminating proxy in front would make them unnecessary.
    """
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(database),
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        **(env or {}),
    }
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        "--timeout",
        "120",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {process.returncode}")
            try:
                with urlopen(base + ready_path, timeout=2):
                    break
            except (URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer within 60 s") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def create_database_if_missing(name: str) -> bool:
    """Create PostgreSQL database `name` on Django's server unless it exists; True if created."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    with psycopg.connect(
        dbname="postgres",
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or "127.0.0.1",
        port=settings.get("PORT") or 5432,
        autocommit=True,
    ) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        admin.execute(f'CREATE DATABASE "{name}"')
        return True


BENCH_BROKER_URL = os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")


@contextmanager
def celery_broker(url: str = BENCH_BROKER_URL) -> Iterator[str]:
    """Send this process's Celery tasks to the broker at `url` for the block; no worker reads it.

    Services enqueue their side effects on commit, as in production, so a benchmark of them
    pays for a real enqueue; the tasks are purged afterwards instead of run. Without this the
    default filesystem broker of `make run` would collect them for a later worker.
    """
    from portal.celery import app

    previous = app.conf.broker_url, app.conf.task_always_eager
    previous_environment = os.environ.get("CELERY_BROKER_URL")
    reset_celery_producers(app)
    # The suite's root conftest runs tasks in process; here they must go to the broker.
    app.conf.broker_url, app.conf.task_always_eager = url, False
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    os.environ["CELERY_BROKER_URL"] = url
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            yield url
            app.control.purge(connection=connection)
    finally:
        reset_celery_producers(app)
        app.conf.broker_url, app.conf.task_always_eager = previous
        if previous_environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous_environment


def reset_celery_producers(app) -> None:
    # The connection and producer pools remember the broker they were made for. They are
    # kombu's process-wide pools: reset forgets them (closing one in place would leave it
    # registered, closed, for its URL).
    from kombu import pools

    pools.reset()
    app._after_fork()


RESULTS = Results()
