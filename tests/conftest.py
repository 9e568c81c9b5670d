"""Personas of the demo company, built through the real services.

Region A holds sites A1 and A2; region B holds site B1. Each persona holds one role, like the
demo users; `outsider` is a site manager in region B and `stranger` holds no role at all.
"""

import pytest
from celery._state import _set_task_join_will_block
from django.conf import settings as django_settings
from django.core.management import call_command

from sites.roles import Role
from tests.factories import RegionFactory, SiteFactory, UserFactory, grant


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Runs before xdist reads the groups. Under `make test` the suite runs in several
    # processes (pytest-xdist, --dist loadgroup). Tests that start a real worker, web server or
    # broker client share the machine's broker with each other, so they all run in one
    # process, one after another.
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("real-processes"))


@pytest.fixture(scope="session", autouse=True)
def _collected_static(tmp_path_factory):
    # With DEBUG off, pages name hashed static files from the manifest, as in production, so
    # the suite collects them once, the way a deployment does.
    django_settings.STATIC_ROOT = tmp_path_factory.mktemp("static")
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _demo_copies_shared(tmp_path_factory, worker_id):
    # The seeded demo's copies (tests/seeded_demo.py), shared by the run's parallel processes:
    # under pytest-xdist each process's temporary directory sits in the run's own.
    from tests import seeded_demo

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if worker_id != "master" else base) / "seeded-demo"
    shared.mkdir(exist_ok=True)
    seeded_demo.shared_dir = shared


@pytest.fixture(scope="session", autouse=True)
def _sealer_released(django_db_setup, django_db_blocker):
    yield
    # The ledger's sealer thread holds a connection of its own for a while after its last seal;
    # it must let go before the test database is dropped.
    from portal.audit import sequencer

    sequencer.settle()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Hashing strength is not what these tests are about; PBKDF2 would dominate their run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate limits and run locks live in the cache; one test's must not leak into the next.
    from django.contrib.contenttypes.models import ContentType
    from django.core.cache import cache

    cache.clear()
    # A test that puts the seeded demo's copy back (tests/seeded_demo.py) brings its content
    # types' ids; the ids cached in the process are forgotten around every test.
    ContentType.objects.clear_cache()
    yield
    ContentType.objects.clear_cache()


@pytest.fixture(autouse=True)
def _tasks_run_in_process(request):
    # Tasks enqueued by services run in the test's own process; tests about the broker and a
    # real worker are marked slow and keep the real transport.
    from portal.celery import app

    if request.node.get_closest_marker("slow"):
        # A pool of broker connections an earlier test made holds the transport of its time
        # (in-memory, below): this test's tasks must go to the broker it names.
        _forget_broker_connections(app)
        yield
        return
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    # Whatever broker the shell names (and the tests of real processes use), these tests never
    # reach it: the readiness probe finds Celery's in-memory transport, always up.
    # (The raw setting: the attribute would answer the broker URL it falls back to, and
    # putting that back would pin every later test's writes to it.)
    saved_broker = app.conf["broker_write_url"]
    app.conf["broker_write_url"] = "memory://"
    yield
    app.conf["broker_write_url"] = saved_broker
    _forget_broker_connections(app)
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False
    # An eager task marks the process "inside a task" in a global and restores the old value
    # afterwards; eager tasks in several threads at once can restore it the wrong way round,
    # and a later test's result.get() would then refuse to wait.
    _set_task_join_will_block(False)


def _forget_broker_connections(app) -> None:
    """Drop the app's producer pool and kombu's process-wide pools, which remember the broker
    they were made for; the next send makes them again for the broker configured then."""
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture(autouse=True)
def _ledger_sealing(request, settings):
    """How events are sealed: as in production, unless the test never commits.

    The sequencer seals an event only after the transaction that wrote it has ended, and a test
    on the `db` fixture runs inside one transaction that is rolled back at its end: there it
    could seal nothing, so such tests seal inline (as SQLite always does). Tests that commit
    (`transaction=True`, `transactional_db`, `live_server`) run the sequencer as production
    does; the pinned value also keeps whatever AUDIT_SEAL_INLINE the shell has out of the run.
    """
    marker = request.node.get_closest_marker("django_db")
    commits = (marker is not None and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    settings.AUDIT_SEAL_INLINE = not commits


# Whether the last transactional test set the ledger's triggers aside for its flush.
_ledger_unlocked = False


@pytest.fixture(autouse=True)
def _ledger_survives_flush(request, django_db_blocker):
    """Let pytest-django empty the database after a transactional test.

    The ledger's triggers refuse the TRUNCATE (PostgreSQL) or DELETE (SQLite) with which Django
    empties the tables after such a test. A superuser session sets them aside for that flush
    only, the way an operator would have to, and the next test starts with them in force.
    """
    global _ledger_unlocked
    from django.db import connection

    from tests import ledger

    if _ledger_unlocked:
        with django_db_blocker.unblock():
            ledger.enforce(connection)
        _ledger_unlocked = False
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or (
        "transactional_db" in request.fixturenames
    )
    yield
    if transactional:
        with django_db_blocker.unblock():
            ledger.set_aside(connection)
        _ledger_unlocked = True


@pytest.fixture
def region_a(db):
    return RegionFactory(code="RA", name="Region A")


@pytest.fixture
def region_b(db):
    return RegionFactory(code="RB", name="Region B")


@pytest.fixture
def site_a1(region_a):
    return SiteFactory(code="A1", region=region_a)


@pytest.fixture
def site_a2(region_a):
    return SiteFactory(code="A2", region=region_a, time_zone="Europe/Brussels")


@pytest.fixture
def site_b1(region_b):
    return SiteFactory(code="B1", region=region_b, time_zone="Europe/London", currency="GBP")


def persona(username: str, role: Role, **scope):
    user = UserFactory(username=username)
    grant(user, role, **scope)
    return user


@pytest.fixture
def requester(site_a1):
    return persona("requester", Role.REQUESTER, site=site_a1)


@pytest.fixture
def site_manager(site_a1):
    return persona("site.manager", Role.SITE_MANAGER, site=site_a1)


# Region personas depend on the region's sites so that those exist in every test that uses them.
@pytest.fixture
def regional_manager(region_a, site_a1, site_a2):
    return persona("regional.manager", Role.REGIONAL_MANAGER, region=region_a)


@pytest.fixture
def finance(region_a, site_a1, site_a2):
    return persona("finance", Role.FINANCE, region=region_a)


@pytest.fixture
def auditor(region_a, site_a1, site_a2):
    return persona("auditor", Role.AUDITOR, region=region_a)


@pytest.fixture
def administrator(region_a, site_a1, site_a2):
    return persona("administrator", Role.ADMIN, region=region_a)


@pytest.fixture
def outsider(site_b1, site_a1, site_a2):
    return persona("outsider", Role.SITE_MANAGER, site=site_b1)


@pytest.fixture
def stranger(db):
    return UserFactory(username="stranger")
