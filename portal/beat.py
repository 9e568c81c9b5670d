"""One Celery beat at a time: a second beat, started by mistake or by a failover, waits.

Beat sends every periodic task; two of them would send each one twice. The sweeps are written
so that an overlapping run is harmless, but a doubled daily digest or checkpoint is noise, and a
second beat on the same machine would also open the same schedule file. So beat runs only while
it holds the beat lock:

- on PostgreSQL, a session-level advisory lock on a connection of its own, which the server
  releases the moment that session ends (the beat process dies, or its connection is cut);
  this works across machines;
- on SQLite (the demo's embedded database, one machine), an exclusive lock on a file next to
  the schedule, released by the kernel when the process exits.

A beat that does not hold the lock sends nothing, opens no schedule file and asks again every
BEAT_LOCK_RETRY_SECONDS. The holder checks before every tick that its lock is still held (a
PostgreSQL restart ends the session and with it the lock); if it is not, it tries to take it
again and, when another beat has it, stops sending and waits like any other.
"""

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from celery.beat import PersistentScheduler

logger = logging.getLogger("portal.beat")

# "TGBEAT" as a number, so that no other advisory lock picks it.
LOCK_KEY = int.from_bytes(b"TGBEAT", "big")
BEAT_LOCK_RETRY_SECONDS = 5.0


class PostgresBeatLock:
    """A session-level advisory lock on a connection that is used for nothing else."""

    def __init__(self):
        self._connection = None

    def _connect(self):
        from django.db import connections

        wrapper = connections.create_connection("default")
        wrapper.ensure_connection()
        connection = wrapper.connection
        connection.autocommit = True
        return connection

    def acquire(self) -> bool:
        """Take the lock without waiting; True when this process holds it."""
        try:
            if self._connection is None:
                self._connection = self._connect()
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                return bool(cursor.fetchone()[0])
        except Exception as error:  # the database is down or restarting: not held
            logger.warning("beat lock: database unreachable (%s)", error)
            self.release()
            return False

    def held(self) -> bool:
        """Whether the session holding the lock is still alive (and so still holds it)."""
        if self._connection is None:
            return False
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND classid = %s AND objid = %s",
                    [LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF],
                )
                return cursor.fetchone()[0] > 0
        except Exception as error:
            logger.warning("beat lock: lost with its database session (%s)", error)
            self.release()
            return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        self._connection = None


class FileBeatLock:
    """An exclusive flock on a file: one beat per machine, for the embedded database."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None


def beat_lock(schedule_filename: str):
    """The lock that fits the configured database."""
    from django.db import connections

    if connections["default"].vendor == "postgresql":
        return PostgresBeatLock()
    return FileBeatLock(Path(f"{schedule_filename}.lock"))


class SingleBeatScheduler(PersistentScheduler):
    """Celery's persistent scheduler, run only by the beat that holds the beat lock."""

    def __init__(self, *args, **kwargs):
        self._lock = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        # Before the schedule file is opened: a waiting beat must not touch it.
        self._lock = beat_lock(self.schedule_filename)
        announced = False
        while not self._lock.acquire():
            if not announced:
                logger.warning(
                    "beat: another beat holds the beat lock; this one waits and sends nothing"
                )
                announced = True
            time.sleep(BEAT_LOCK_RETRY_SECONDS)
        logger.info("beat: holds the beat lock; sending the periodic tasks")
        super().setup_schedule()

    def tick(self, *args, **kwargs):
        if not self._lock.held() and not self._lock.acquire():
            logger.warning("beat: the beat lock is lost or held elsewhere; sending nothing")
            return BEAT_LOCK_RETRY_SECONDS
        return super().tick(*args, **kwargs)

    def close(self):
        try:
            super().close()
        finally:
            if self._lock is not None:
                self._lock.release()
