"""Tollgate as it runs in production, on one machine, for the hardening tests.

A Redis of its own (started here on a free port, so a test may restart it without touching any
other Redis), the web application under gunicorn, Celery workers, and the Odoo sandbox; all of
them share the test database. Each process runs in a session of its own, so that a test can
kill it and everything it forked with one signal.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from kombu import pools as kombu_pools

from portal.celery import app as celery_app

BASE_DIR = Path(__file__).resolve().parents[2]
# A labelled test-only token for /metrics on the web server started here.
METRICS_TOKEN = "tollgate-test-only-metrics-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, every=0.1):
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to the process (SIGKILL: to all it forked too), wait, and SIGKILL whatever of
    its session is left after 20 s."""
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


class Redis:
    """A throw-away redis-server: no persistence, so a restart loses every queued message."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=20, what="redis-server to accept connections")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop(self.process)
        self.process = None

    def restart(self, down_seconds: float = 0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


def environment(settings, *, broker_url: str, odoo_url: str, **extra) -> dict:
    """The environment of a Tollgate process that shares this test's database and broker."""
    database = settings.DATABASES["default"]
    credentials = quote(database["USER"] or "")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"])
    host = database.get("HOST") or "localhost"
    port = database.get("PORT") or 5432
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{host}:{port}/{database['NAME']}",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "ODOO_URL": odoo_url,
        "ODOO_DB": settings.ODOO_DB,
        "ODOO_LOGIN": settings.ODOO_LOGIN,
        "ODOO_API_KEY": settings.ODOO_API_KEY,
        "ODOO_VERSION": "17.0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "METRICS_TOKEN": METRICS_TOKEN,
        "API_RATE_LIMIT": "100000/minute",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        **{key: str(value) for key, value in extra.items()},
    }


class Web:
    """gunicorn serving Tollgate with several worker processes, each with several threads."""

    def __init__(self, env: dict, *, workers: int = 2, threads: int = 4):
        self.env, self.workers, self.threads = env, workers, threads
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Web":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=BASE_DIR,
            env=self.env,
            start_new_session=True,
        )
        wait_for(lambda: self.get("/healthz")[0] == 200, timeout=60, what="gunicorn to serve")
        return self

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def stop(self) -> None:
        stop(self.process)


def start_worker(env: dict, *, concurrency: int = 2, name: str = "hardening") -> subprocess.Popen:
    """A Celery worker (prefork) on the default queue of the stack's own broker."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--hostname",
            f"{name}-{time.monotonic_ns()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,
    )


def worker_children(worker: subprocess.Popen) -> list[int]:
    """The pids of the pool processes a prefork worker forked (they run the tasks)."""
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    try:
        return [int(pid) for pid in path.read_text().split()]
    except OSError:
        return []


def manage(env: dict, *args: str) -> subprocess.Popen:
    """A `manage.py` command in a process of its own, e.g. `sync_odoo`."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def celery_call(env: dict, task: str) -> None:
    """Send one task by name the way an operator (or beat) does, from a process of its own."""
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "portal", "call", task],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextlib.contextmanager
def publishing_to(broker_url: str):
    """Tasks enqueued by this process (on a commit here) go to `broker_url` while inside."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.result_backend, conf.broker_transport_options)
    saved_environment = os.environ.get("CELERY_BROKER_URL")

    def switch(broker, backend, options):
        conf.broker_url, conf.result_backend, conf.broker_transport_options = (
            broker,
            backend,
            options,
        )
        # Celery reads CELERY_BROKER_URL from the environment before its own configuration,
        # so where it is set (as CI sets it) the assignment above alone would change nothing.
        os.environ["CELERY_BROKER_URL"] = broker
        # The app's pool is kombu's process-wide pool for the old URL: closing it in place
        # would leave a closed pool registered for that URL, and every later task sent there
        # would fail. kombu's reset closes and forgets them all; new ones follow the new URL.
        kombu_pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    switch(broker_url, broker_url, {"visibility_timeout": 3600})
    try:
        yield
    finally:
        switch(*saved)
        if saved_environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
