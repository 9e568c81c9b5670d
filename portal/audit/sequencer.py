"""The sequencer: seals events that arrived unsealed into the hash chain, in order.

A change writes its events in its own transaction with no sequence number and no hash, and
takes no lock (portal.audit.services). Sealing is separate, as in a transparency log: one short
transaction under the chain lock reads the head, numbers and hashes the backlog in order, and
writes the four seal columns of each event (the only UPDATE the database allows, once).

Which events, in which order. Ids are handed out at insert, not at commit: a change that
inserted id 10 may commit after one that inserted id 11, so "every event up to the highest id"
could seal past an event that is still on its way. Each event therefore carries the id of the
transaction that inserted it (`txid`, PostgreSQL's 64-bit transaction id, taken when that
transaction first writes). The sequencer seals only events whose transaction id is below the
lowest id of any transaction that is still writing to the ledger (one holding the lock an
INSERT into the event table takes, seen in `pg_locks`), or, when none is, below the next id to
be handed out. Every transaction with a lower id that wrote events has ended by then, so all of
its committed events are visible, and events of a rolled-back one never become visible at all.
Transactions that do not write the ledger (a long report, an index build, another database on
the same server) never hold the seal back. It seals them ordered by (transaction id, event id):

* every event is sealed exactly once, and the numbers run 1..N without a gap;
* if one change began after another committed, every event of the earlier change comes first
  (the later one's transaction id is higher), so the chain never contradicts what a reader
  could have observed; events of one change keep the order they were recorded in;
* two changes that overlapped in time may be sealed either way round, which is as good as any
  order for changes neither of which saw the other. (A change that took its transaction id
  early but records its events late can be sealed after changes with higher ids: they
  committed while it was still running, so neither saw the other.)

Prepared (two-phase) transactions hold their locks without a session and are not seen; Tollgate
does not use them.

A transaction that stays open after recording an event holds back the seal of events recorded
by transactions with higher ids (not their commit, nor the change): the delay is bounded by the
longest transaction that writes the ledger, which `AUDIT_MAX_SEAL_SECONDS` watches (`/readyz`,
`/metrics`, `verify_audit`). Services that run many statements record at their end
(`appended_at_end`), which keeps that window short.

Who seals: right after a writer's transaction commits, it wakes its process's sealer thread
(`seal_after_commit`) and goes on: the request never runs the seal nor waits for it. The thread
tries the chain lock without waiting and seals the backlog if it got it; commits that arrive
while it seals wake it again, so under load one seal covers many writers' events. If another
process holds the lock (it may have read its backlog before this process's commit), the thread
tries again shortly, until one of its seals has run after the last commit that woke it. The
beat job `audit.seal` seals whatever is left every few seconds (a process that died with its
thread's work undone, a database that was unreachable). Nobody on a request path ever waits for
the chain lock. On SQLite (one writer at a time) and with `AUDIT_SEAL_INLINE` events are sealed
inside the writer's own transaction instead (`seal_inline`).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from portal.audit import chain
from portal.audit.models import AuditEvent

logger = logging.getLogger(__name__)

# The chain's advisory lock key: "TGAUDIT" as a number, so nothing else picks it. Inline sealing
# and the sequencer both take it for the transaction that seals; they exclude each other.
CHAIN_LOCK = 0x5447415544495400
# Events sealed per transaction: short enough to keep the lock hold short, long enough that a
# backlog drains in few transactions.
BATCH = 2000
# Every transaction with a lower id than this that writes the ledger has ended: the lowest id of
# the transactions holding an INSERT's lock on the event table (their own transaction-id lock
# gives the id; pg_locks shows every role's sessions), else the next id to be handed out. Part of
# the statement that reads the backlog.
_ENDED_BELOW = """
    SELECT coalesce(
        (SELECT min(running) FROM pg_snapshot_xip(now.snapshot) AS running
         WHERE running::xid IN (
             SELECT own.transactionid FROM pg_locks AS writer
             JOIN pg_locks AS own ON own.pid = writer.pid AND own.locktype = 'transactionid'
             WHERE writer.locktype = 'relation'
               AND writer.relation = 'audit_auditevent'::regclass
               AND writer.database = (SELECT oid FROM pg_database
                                      WHERE datname = current_database())
               AND writer.mode = 'RowExclusiveLock'
               AND writer.pid <> pg_backend_pid())),
        pg_snapshot_xmax(now.snapshot))::text::bigint
    FROM (SELECT pg_current_snapshot() AS snapshot) AS now
"""
# The backlog that can be sealed now, in sealing order, each event as the values of
# chain.FIELDS (less `sequence` and `prev_hash`, which sealing gives it) with `at` already in its
# canonical text and the three JSON columns as one array, read as verify_audit reads them; and
# beside each, the sealed chain's head. One statement, in the seal's transaction.
_HEAD = "FROM audit_auditevent WHERE sequence IS NOT NULL ORDER BY sequence DESC LIMIT 1"
_BACKLOG = f"""
    SELECT event.id, {chain.TIMESTAMP_SQL.format("event.at")}, event.action, event.actor_id,
           event.actor_label, event.on_behalf_of_id, event.object_type, event.object_id,
           event.object_reference, event.site_id, event.policy_version_label,
           jsonb_build_array(event.before, event.after, event.context)::text, event.comment,
           (SELECT sequence {_HEAD}), (SELECT hash {_HEAD})
    FROM audit_auditevent AS event
    WHERE event.sequence IS NULL AND event.txid < ({_ENDED_BELOW})
    ORDER BY event.txid, event.id
    LIMIT %s
"""  # noqa: S608 - constant text, no input in it
# The seal's first statement: the chain lock for this transaction, if nobody holds it. And the
# backlog read through its index in order rather than a bitmap of it: an index scan marks the
# entries of events sealed since the last vacuum as dead, so that the next read skips them,
# where a bitmap scan visits every one of them again (on a large ledger, vacuumed rarely, that
# grew every seal by a few microseconds per event sealed since).
_LOCK = "SELECT pg_try_advisory_xact_lock(%s), set_config('enable_bitmapscan', 'off', true)"


def inline() -> bool:
    """Whether events are sealed inside the writer's transaction rather than after it."""
    return connection.vendor != "postgresql" or settings.AUDIT_SEAL_INLINE


def seal_inline(events: list[AuditEvent]) -> None:
    """Number, hash and insert `events` at the head of the chain, inside the caller's
    transaction; on PostgreSQL under the chain lock, held until that transaction ends."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
    sequence, previous = head()
    now = timezone.now()
    for event in events:
        sequence += 1
        event.sequence, event.prev_hash, event.sealed_at = sequence, previous, now
        event.hash = previous = chain.seal(chain.payload(event))
    _insert(events)


def arrive(events: list[AuditEvent]) -> None:
    """Insert `events` unsealed, with no lock, and seal them after the transaction commits."""
    _insert(events)
    arrived()


def arrived() -> None:
    """Events were inserted unsealed: seal them once their transaction has committed (at once
    outside a transaction)."""
    if not any(callback is seal_after_commit for _, callback, _ in connection.run_on_commit):
        transaction.on_commit(seal_after_commit, robust=True)


def arrival_select(event: AuditEvent, *, object_id: str) -> tuple[str, list]:
    """`INSERT INTO audit_auditevent (…) SELECT …` of `event`, unsealed, with its object id the
    SQL expression `object_id` over a FROM clause the caller appends: one event per row of it.
    For a statement that inserts a change and its event together; call `arrived()` after it."""
    if inline():
        raise RuntimeError("events sealed inline are inserted by seal_inline")
    values, selected = [], []
    for field in _ARRIVING:
        if field.name == "object_id":
            selected.append(object_id)
        else:
            selected.append("%s")
            values.append(field.get_db_prep_save(field.pre_save(event, True), connection))
    columns = ", ".join(field.column for field in _ARRIVING)
    return f"INSERT INTO audit_auditevent ({columns}) SELECT {', '.join(selected)}", values


def _insert(events: list[AuditEvent]) -> None:
    if len(events) > 1:
        AuditEvent.objects.bulk_create(events)
    elif events[0].sequence is not None:  # sealed inline
        events[0].save(force_insert=True)
    else:
        _insert_unsealed(events[0])


def _insert_unsealed(event: AuditEvent) -> None:
    """`event.save(force_insert=True)` for an event that arrives unsealed, the most frequent
    insert of all (every accepted webhook), as one prepared text: the model's own conversion
    of each value, without building the INSERT anew every time."""
    values = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in _ARRIVING]
    with connection.cursor() as cursor:
        cursor.execute(_arrival_sql(), values)
        event.pk = cursor.fetchone()[0]
    event._state.adding, event._state.db = False, connection.alias


# Everything an event holds when it arrives: not its id, nor the seal, nor its transaction id
# (the database's own default).
_ARRIVING = tuple(
    field
    for field in AuditEvent._meta.concrete_fields
    if not field.primary_key
    and field.name not in ("sequence", "prev_hash", "hash", "sealed_at", "txid")
)


@functools.cache
def _arrival_sql() -> str:
    columns = ", ".join(field.column for field in _ARRIVING)
    placeholders = ", ".join(["%s"] * len(_ARRIVING))
    return f"INSERT INTO audit_auditevent ({columns}) VALUES ({placeholders}) RETURNING id"  # noqa: S608 - constant SQL


def seal_after_commit() -> None:
    """After a writer commits: have the backlog sealed by this process's sealer thread.

    Returns at once; the writer never runs the seal, nor waits for it or for the chain lock.
    """
    _sealer.wake()


# One sealer per process at a time: a seal asked for while the sealer thread seals (the beat
# job's, a test's) waits for it, briefly, then seals what is left.
_sealing_here = threading.Lock()


def seal(*, limit: int | None = None) -> int:
    """Seal every committed event that can be sealed now, in order; return how many.

    Each batch of up to BATCH events is sealed in one transaction that takes the chain lock
    without waiting (`pg_try_advisory_xact_lock`): when another sealer holds it, that one seals
    the backlog and this returns 0 at once. The lock goes with the transaction, at its commit,
    or its rollback if the process dies. Must not run inside a transaction (its own events could
    not be sealed).
    """
    return _seal(limit) or 0


def _seal(limit: int | None = None) -> int | None:
    """`seal`, but None when another process's sealer holds the chain lock."""
    if inline():
        return 0  # events were sealed as they were written
    if connection.in_atomic_block:
        raise RuntimeError("seal() runs in a transaction of its own, after the writers commit")
    with _sealing_here:
        return _seal_batches(limit)


# Seconds the sealer thread keeps its database connection after its last seal: commits arriving
# closer together than this reuse it; an idle process holds no connection.
IDLE_SECONDS = 0.5
# Seconds between attempts while another sealer holds the chain lock.
RETRY_SECONDS = 0.05
# Seconds the thread lets pass between a commit waking it and its seal: under load one seal then
# covers the commits of that moment instead of one or two, at a delay nobody notices.
GATHER_SECONDS = 0.02


class _Sealer:
    """The process's sealer thread, woken after each commit that recorded events.

    `wanted` says a commit happened since the thread last began a seal: it is cleared as a seal
    begins, so a commit during a seal makes another follow. Only the thread uses its database
    connection, and it closes it once nothing has woken it for IDLE_SECONDS.
    """

    def __init__(self) -> None:
        self._state = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wanted = False  # a commit since the last seal began
        self._busy = False  # sealing, about to retry, or still holding its connection
        self._release = False  # asked to close the connection as soon as nothing is wanted

    def wake(self) -> None:
        with self._state:
            self._wanted = True
            if self._thread is None:
                self._busy = True
                self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
                self._thread.start()
            self._state.notify_all()

    def settle(self, timeout: float) -> bool:
        with self._state:
            if self._thread is None:
                return True
            self._release = True
            self._state.notify_all()
            return self._state.wait_for(lambda: not (self._wanted or self._busy), timeout)

    def _run(self) -> None:
        retry = False
        while True:
            with self._state:
                if retry:  # another process's sealer held the lock: try again shortly
                    self._state.wait_for(lambda: self._wanted, RETRY_SECONDS)
                else:
                    self._state.wait_for(lambda: self._wanted or self._release, IDLE_SECONDS)
                seal_now = self._wanted or retry
            if seal_now:
                if not retry:
                    time.sleep(GATHER_SECONDS)  # let the commits of the next moment join in
                with self._state:
                    self._wanted = False
                retry = self._seal_once()
                continue
            connection.close()  # nothing to seal for a while: hold no connection
            with self._state:
                self._release = self._busy = False
                self._state.notify_all()
                self._state.wait_for(lambda: self._wanted)
                self._busy = True

    @staticmethod
    def _seal_once() -> bool:
        """One seal; True if it must be tried again (another sealer held the lock)."""
        try:
            return _seal() is None
        except Exception:
            # The beat job seals what this leaves; the next commit brings a fresh connection.
            logger.exception("The ledger's sealer thread could not seal; the beat job will")
            connection.close()
            return False

    def forget(self) -> None:
        """In a forked child: the parent's thread is not there (and its locks may be held)."""
        self.__init__()


_sealer = _Sealer()


def settle(timeout: float = 10.0) -> bool:
    """Wait until this process's sealer thread has sealed after every commit that woke it and
    released its connection; False if it did not within `timeout` seconds. For the end of a
    process, and for tests that read the chain right after committing."""
    return _sealer.settle(timeout)


def _forget_in_child() -> None:
    global _sealing_here
    _sealing_here = threading.Lock()
    _sealer.forget()


atexit.register(settle, 5.0)
os.register_at_fork(after_in_child=_forget_in_child)


def _seal_batches(limit: int | None) -> int | None:
    sealed = 0
    while limit is None or sealed < limit:
        batch = BATCH if limit is None else min(BATCH, limit - sealed)
        done = _seal_batch(batch)
        if done is None:
            # Taken by another sealer since: it reads the backlog after this one's seal.
            return sealed or None
        sealed += done
        if done < batch:
            break
    return sealed


def _seal_batch(batch: int) -> int | None:
    """Seal up to `batch` events in one transaction under the chain lock; None if another
    sealer holds the lock. An empty backlog (the common case) costs two statements."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK, [CHAIN_LOCK])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(_BACKLOG, [batch])
        backlog = cursor.fetchall()
        if not backlog:
            return 0
        sequence, previous = backlog[0][-2] or 0, backlog[0][-1] or chain.GENESIS
        loads, canonical_row = json.loads, chain.canonical_row
        ids, sequences, previous_hashes, hashes = [], [], [], []
        for row in backlog:
            sequence += 1
            before, after, context = loads(row[11])
            fields = (sequence, *row[1:11], before, after, row[12], context, previous)
            ids.append(row[0])
            sequences.append(sequence)
            previous_hashes.append(previous)
            previous = hashlib.sha256(canonical_row(fields)).hexdigest()
            hashes.append(previous)
        cursor.execute(
            "UPDATE audit_auditevent AS event SET sequence = seal.sequence, "
            "prev_hash = seal.prev_hash, hash = seal.hash, sealed_at = clock_timestamp() "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) "
            "AS seal(id, sequence, prev_hash, hash) WHERE event.id = seal.id",
            [ids, sequences, previous_hashes, hashes],
        )
        _before_seal_commit()
    return len(backlog)


def sequence_of(event: AuditEvent) -> int | None:
    """The number `event` was sealed with, sealing the backlog if needed: for the rare caller
    that must name its own event by number (an export's manifest). Call it after the event's
    transaction committed; waits at most AUDIT_MAX_SEAL_SECONDS, then answers None."""
    if event.sequence is not None:
        return event.sequence
    deadline = time.monotonic() + settings.AUDIT_MAX_SEAL_SECONDS
    while True:
        number = AuditEvent.objects.filter(pk=event.pk).values_list("sequence", flat=True).first()
        if number is not None or time.monotonic() >= deadline:
            return number
        seal()
        time.sleep(0.02)


def _before_seal_commit() -> None:
    """Nothing; the fault tests replace it to stop a sealer between its UPDATE and COMMIT."""


def head() -> tuple[int, str]:
    """The sealed chain's last number and hash (0 and the genesis hash when empty)."""
    head = (
        AuditEvent.objects.filter(sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    return head or (0, chain.GENESIS)


@dataclass(frozen=True)
class Backlog:
    """The events that have arrived and are not sealed yet."""

    count: int
    oldest_at: datetime | None
    max_seconds: int

    @property
    def oldest_seconds(self) -> float:
        if self.oldest_at is None:
            return 0.0
        return max(0.0, (timezone.now() - self.oldest_at).total_seconds())

    @property
    def overdue(self) -> bool:
        return self.oldest_seconds > self.max_seconds

    def describe(self) -> str:
        if not self.count:
            return "every event is sealed"
        waiting = "1 event waits" if self.count == 1 else f"{self.count} events wait"
        return (
            f"{waiting} to be sealed, the oldest for {self.oldest_seconds:.0f} s "
            f"(allowed: {self.max_seconds} s)"
        )


def backlog() -> Backlog:
    """How many events wait for their seal and since when (one indexed query)."""
    found = AuditEvent.objects.filter(sequence__isnull=True).aggregate(
        count=Count("id"), oldest=Min("at")
    )
    return Backlog(found["count"], found["oldest"], settings.AUDIT_MAX_SEAL_SECONDS)


def overdue(limit: int = 10) -> list[AuditEvent]:
    """Events unsealed for longer than AUDIT_MAX_SEAL_SECONDS, oldest first."""
    since = timezone.now() - timedelta(seconds=settings.AUDIT_MAX_SEAL_SECONDS)
    return list(
        AuditEvent.objects.filter(sequence__isnull=True, at__lt=since).order_by("at", "id")[:limit]
    )
