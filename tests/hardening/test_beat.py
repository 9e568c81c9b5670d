"""One beat at a time: a second Celery beat started by mistake sends nothing until the first dies.

The real `celery beat` processes run here on a Redis of the test's own, against the test
database, each with its log in a file: the log says which beat sends what.
"""

import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from portal import beat
from tests.hardening import stack
from tests.hardening.fullstack import NEEDS_POSTGRES

SENDING = "Sending due task audit-seal"
WAITING = "another beat holds the beat lock"
HOLDING = "holds the beat lock"


def start_beat(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO"],
        cwd=stack.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def sends(path) -> int:
    return path.read_text().count(SENDING)


@NEEDS_POSTGRES
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_second_beat_waits_sending_nothing_until_the_first_dies_then_takes_over(
    settings, tmp_path
):
    redis = stack.Redis(tmp_path).start()
    settings.ODOO_DB, settings.ODOO_LOGIN, settings.ODOO_API_KEY = "odoo", "admin", "unused"
    # Both on the same machine and the same schedule file, as a beat started twice would be.
    env = stack.environment(
        settings,
        broker_url=redis.url,
        odoo_url="http://127.0.0.1:9",
        TOLLGATE_VAR_DIR=tmp_path,
        AUDIT_SEAL_SECONDS=1,
    )
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = second = None
    try:
        with first_log.open("w") as log:
            first = start_beat(env, log)
        stack.wait_for(lambda: sends(first_log) >= 2, timeout=60, what="the first beat to send")
        with second_log.open("w") as log:
            second = start_beat(env, log)
        stack.wait_for(
            lambda: WAITING in second_log.read_text(), timeout=60, what="the second beat to wait"
        )
        before = sends(first_log)
        time.sleep(4)  # four audit-seal periods
        assert sends(second_log) == 0, second_log.read_text()
        assert sends(first_log) >= before + 2  # the first one kept going
        assert second.poll() is None  # waiting, not crashed

        stack.stop(first, signal.SIGKILL)  # no shutdown: its database session simply ends
        stack.wait_for(
            lambda: sends(second_log) >= 2,
            timeout=30,
            what="the second beat to take over after the first died",
        )
        assert HOLDING in second_log.read_text()
    finally:
        stack.stop(first, signal.SIGKILL)
        stack.stop(second, signal.SIGKILL)
        redis.stop()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@NEEDS_POSTGRES
@pytest.mark.django_db(transaction=True)
def test_the_beat_lock_is_one_sessions_and_is_lost_with_it_then_taken_by_the_next():
    holder, other = beat.PostgresBeatLock(), beat.PostgresBeatLock()
    try:
        assert holder.acquire() and holder.held()
        assert not other.acquire() and not other.held()
        # The holder's session ends, as in a database restart or a cut connection.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                [beat.LOCK_KEY >> 32, beat.LOCK_KEY & 0xFFFFFFFF],
            )
        assert not holder.held()
        assert other.acquire() and other.held()
        assert not holder.acquire()
    finally:
        holder.release()
        other.release()


def test_on_the_embedded_database_the_beat_lock_is_a_file_lock_one_process_holds(tmp_path):
    path = tmp_path / "celerybeat-schedule.lock"
    holder, other = beat.FileBeatLock(path), beat.FileBeatLock(path)
    try:
        assert holder.acquire() and holder.held()
        assert not other.acquire() and not other.held()
        holder.release()
        assert other.acquire()
    finally:
        holder.release()
        other.release()


def test_beat_runs_the_single_beat_scheduler():
    from portal.celery import app

    assert app.conf.beat_scheduler == "portal.beat:SingleBeatScheduler"
