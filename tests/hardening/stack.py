"""Tollgate as it runs in production, on one machine, for the hardening tests.

A Redis of its own (started here on a free port, so a test may restart it without touching any
other Redis), the web application under gunicorn, Celery workers, and the Odoo sandbox; all of
them share the test database. Each process runs in a session of its own, so that a test can
kill it and everything it forked with one signal.

For the faults that need the server itself stopped, a test starts throw-away servers of its
own instead of the machine's shared ones: a RabbitMQ node (`RabbitMQ`) and a PostgreSQL cluster
(`Postgres`), each on free ports with its data in the test's temporary folder.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


class RabbitMQ:
    """A throw-away RabbitMQ node: its own node name, ports and data folder.

    Messages Celery publishes are persistent on durable queues, so a clean stop and start keeps
    what was queued, as a production broker does; `stop(signal.SIGKILL)` is a crash.
    """

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    def __init__(self, workdir: Path):
        self.workdir = workdir / "rabbitmq"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.process: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> bool:
        return Path(cls.SERVER).exists()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> "RabbitMQ":
        (self.workdir / "enabled_plugins").write_text("[].\n")
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users.guest = true\n"
        )
        env = {
            **os.environ,
            "HOME": str(self.workdir),  # the node's own Erlang cookie
            "RABBITMQ_NODENAME": f"tollgate-test-{self.port}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_PID_FILE": str(self.workdir / "pid"),
        }
        with (self.workdir / "server.out").open("a") as out:
            self.process = subprocess.Popen(
                [self.SERVER],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._answers, timeout=90, what="the RabbitMQ node to accept AMQP connections")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                "the RabbitMQ node exited: " + (self.workdir / "server.out").read_text()[-2000:]
            )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"AMQP\x00\x00\x09\x01")
                return conn.recv(8).startswith(b"\x01")  # connection.start
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: the node shuts down cleanly. Its whole session is gone afterwards."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        stop(self.process, sig)
        self.process = None


class Postgres:
    """A throw-away PostgreSQL cluster (initdb in a temporary folder, a free port).

    initdb refuses to run as root; then the cluster belongs to the `postgres` OS user.
    """

    def __init__(self):
        self.workdir: Path | None = None
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.bindir = self.find_bindir()

    @staticmethod
    def find_bindir() -> Path | None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if found:
            return found[-1].parent
        initdb = shutil.which("initdb")
        return Path(initdb).parent if initdb else None

    @classmethod
    def available(cls) -> bool:
        return cls.find_bindir() is not None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def _as_owner(self, *command) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *map(str, command)]
        return list(map(str, command))

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> "Postgres":
        # Directly under the system's temporary folder, which the cluster's owner can reach.
        self.workdir = Path(tempfile.mkdtemp(prefix="tollgate-test-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            self._as_owner(
                self.bindir / "initdb",
                "-D",
                self.data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ),
            check=True,
            capture_output=True,
        )
        return self

    def remove(self) -> None:
        self.stop(signal.SIGKILL)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self) -> "Postgres":
        with (self.workdir / "server.log").open("a") as log:
            self.process = subprocess.Popen(
                self._as_owner(
                    self.bindir / "postgres",
                    "-D",
                    self.data,
                    "-p",
                    self.port,
                    "-k",
                    self.workdir,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=100",
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, timeout=60, what="the private PostgreSQL to accept connections")
        return self

    def _ready(self) -> bool:
        done = subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
        )
        return done.returncode == 0

    def stop(self, sig: int = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's fast shutdown: sessions are ended, open transactions rolled
        back, and the server stops cleanly (as `pg_ctlcluster ... restart` does)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=60)
        stop(self.process, signal.SIGKILL)
        self.process = None

    def restart(self, down_seconds: float = 0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def copy_from(self, source_url: str, name: str) -> str:
        """A new database `name` here holding what the database at `source_url` holds."""
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )
        dump = subprocess.Popen(
            ["pg_dump", "--format=custom", "--dbname", source_url], stdout=subprocess.PIPE
        )
        restored = subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", self.url(name)],
            stdin=dump.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        dump.stdout.close()
        assert dump.wait() == 0 and restored.returncode == 0, restored.stderr
        return self.url(name)


def database_url(settings_dict: dict) -> str:
    """The URL of a Django database's settings, as DATABASE_URL gives it."""
    credentials = quote(settings_dict["USER"] or "")
    if settings_dict.get("PASSWORD"):
        credentials += ":" + quote(settings_dict["PASSWORD"])
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"


def environment(settings, *, broker_url: str, odoo_url: str, **extra) -> dict:
    """The environment of a Tollgate process that shares this test's database and broker."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": broker_url,
        # Celery has no result backend on AMQP itself; RPC replies travel over the broker.
        "CELERY_RESULT_BACKEND": "rpc://" if broker_url.startswith("amqp") else broker_url,
        "ODOO_URL": odoo_url,
        "ODOO_DB": settings.ODOO_DB,
        "ODOO_LOGIN": settings.ODOO_LOGIN,
        "ODOO_API_KEY": settings.ODOO_API_KEY,
        "ODOO_VERSION": "17.0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "METRICS_TOKEN": METRICS_TOKEN,
        "API_RATE_LIMIT": "100000/minute",
        # The tests watch readiness change within a second of a fault. With each gunicorn worker
        # reusing its answer for 5 s, a worker that checked just before Odoo went down would
        # still say "ready" seconds into the outage, depending on which worker took the probe.
        "READYZ_CACHE_SECONDS": "0",
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


def age_seconds(pid: int) -> float:
    """How long the process `pid` has been running (0 when it is gone)."""
    try:
        started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime - started / os.sysconf("SC_CLK_TCK")


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
        # The result backend is built again from the new setting on its next use.
        celery_app._backend_cache = None
        celery_app._local.__dict__.pop("backend", None)

    backend = "rpc://" if broker_url.startswith("amqp") else broker_url
    switch(broker_url, backend, {"visibility_timeout": 3600})
    try:
        yield
    finally:
        switch(*saved)
        if saved_environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
