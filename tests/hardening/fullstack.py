"""The whole of Tollgate running at once, as fixtures for the concurrency and fault tests.

A test module imports from here the fixtures it uses: `_working_morning`, `soak`,
`running_stack` and the sandbox fixtures `running_stack` needs.
`TOLLGATE_SOAK=1`, which `make soak` sets, selects the long form of these tests: more
operations, more processes, and an Odoo outage of minutes rather than seconds.
"""

import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection

from portal.api import services as api_services
from portal.integrations.odoo.sandbox.server import SandboxServer
from tests.hardening import stack
from tests.integrations.odoo.conftest import (
    OdooSandbox,
    odoo_sandbox_factory,
    odoo_sandbox_template,
)
from tests.integrations.odoo.push_support import connect_tollgate, user

NEEDS_POSTGRES = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several processes share the test database, which the in-memory SQLite one cannot",
)


def soak_selected() -> bool:
    """Whether the long form was asked for (`make soak` sets TOLLGATE_SOAK=1)."""
    return os.environ.get("TOLLGATE_SOAK") == "1"


# A test of the running stack: PostgreSQL only, real processes, transactions really committed,
# and a long form under `make soak`.
FULL_STACK = (
    NEEDS_POSTGRES,
    pytest.mark.slow,
    pytest.mark.soak,
    pytest.mark.django_db(transaction=True),
)


def full_stack(test):
    """Marks a test that runs the processes of `running_stack`."""
    for mark in FULL_STACK:
        test = mark(test)
    return test


@dataclass
class Stack:
    sandbox: OdooSandbox
    broker: "stack.Redis | stack.RabbitMQ"
    env: dict
    web: stack.Web
    workers: list = field(default_factory=list)
    # The test's own PostgreSQL cluster, when the stack (and this test) runs on one.
    postgres: stack.Postgres | None = None

    @property
    def redis(self) -> stack.Redis:
        assert isinstance(self.broker, stack.Redis)
        return self.broker

    @property
    def odoo(self) -> SandboxServer:
        return self.sandbox.server

    def add_worker(self, concurrency: int = 2):
        worker = stack.start_worker(self.env, concurrency=concurrency)
        self.workers.append(worker)
        return worker

    def metrics(self) -> str:
        status, body = self.web.get("/metrics", {"Authorization": f"Bearer {stack.METRICS_TOKEN}"})
        assert status == 200, status
        return body.decode()

    def ready(self) -> dict:
        """The readiness probe as the load balancer reads it: each check's verdict."""
        status, body = self.web.get("/readyz")
        checks = json.loads(body)["checks"]
        return {name: check["ok"] for name, check in checks.items()} | {"status": status}


def token_for(username: str) -> str:
    """A new API token of the demo user `username`, for calls to the running web server."""
    _, secret = api_services.token_create(actor=None, user=user(username), name="Load test")
    return secret


@pytest.fixture
def soak() -> bool:
    return soak_selected()


@pytest.fixture
def _working_morning():
    """Real time throughout: the processes started here cannot travel in time with the test,
    and they check tokens' expiry and webhook timestamps against their own clock."""
    return None


def on_private_database(postgres: stack.Postgres) -> Callable[[], None]:
    """Copy the test database into `postgres` and point this process's connections at the copy;
    returns what points them back."""
    database = connection.settings_dict
    saved = {key: database.get(key) for key in ("HOST", "PORT", "NAME", "USER", "PASSWORD")}
    connection.close()
    postgres.copy_from(stack.database_url(database), "tollgate")
    # The settings dict is shared by every thread's connection to this alias.
    database.update(HOST="127.0.0.1", PORT=postgres.port, NAME="tollgate", USER="postgres")
    database["PASSWORD"] = ""

    def back() -> None:
        connection.close()
        database.update(saved)

    return back


@pytest.fixture
def running_stack(settings, odoo_sandbox_factory, tmp_path):
    """`running_stack(web_workers=2, workers=1, concurrency=2, **env)` starts Tollgate.

    `broker="rabbitmq"` runs it on a RabbitMQ node of its own instead of Redis;
    `private_database=True` on a PostgreSQL cluster of its own, holding a copy of the test
    database, to which this test's own queries then go too (so that a test may restart it).
    """
    started: list[Stack] = []
    cleanups = []

    def build(
        *,
        web_workers=2,
        web_threads=4,
        workers=1,
        concurrency=2,
        broker="redis",
        private_database=False,
        **env,
    ) -> Stack:
        sandbox = odoo_sandbox_factory()
        connect_tollgate(settings, sandbox)
        postgres = None
        if private_database:
            postgres = stack.Postgres().init().start()
            cleanups.append(postgres.remove)
            cleanups.append(on_private_database(postgres))
        server = (stack.RabbitMQ if broker == "rabbitmq" else stack.Redis)(tmp_path).start()
        cleanups.append(server.stop)
        publishing = stack.publishing_to(server.url)
        publishing.__enter__()
        cleanups.append(lambda: publishing.__exit__(None, None, None))
        environment = stack.environment(
            settings, broker_url=server.url, odoo_url=sandbox.url, **env
        )
        web = stack.Web(environment, workers=web_workers, threads=web_threads)
        built = Stack(sandbox=sandbox, broker=server, env=environment, web=web, postgres=postgres)
        started.append(built)
        web.start()
        for _ in range(workers):
            built.add_worker(concurrency)
        return built

    yield build
    # Killed rather than shut down: the test is over and its broker and database are discarded.
    for built in started:
        for worker in built.workers:
            stack.stop(worker, signal.SIGKILL)
        stack.stop(built.web.process, signal.SIGKILL)
    for cleanup in reversed(cleanups):
        cleanup()
    # Whatever those processes left connected must be gone before the database is emptied.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


__all__ = [
    "FULL_STACK",
    "NEEDS_POSTGRES",
    "Stack",
    "_working_morning",
    "odoo_sandbox_factory",
    "odoo_sandbox_template",
    "running_stack",
    "soak",
    "soak_selected",
    "token_for",
]
