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

Who seals: a writer, right after its transaction commits, tries the lock without waiting and
seals the backlog if it got it (`seal_after_commit`); the beat job `audit.seal` does the same
every few seconds for whatever is left. Nobody on a request path ever waits for the chain lock.
On SQLite (one writer at a time) and with `AUDIT_SEAL_INLINE` events are sealed inside the
writer's own transaction instead (`seal_inline`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.db.models.expressions import RawSQL
from django.utils import timezone

from portal.audit import chain
from portal.audit.models import AuditEvent

logger = logging.getLogger(__name__)

# The chain's advisory lock key: "TGAUDIT" as a number, so nothing else picks it. Inline sealing
# takes it for its transaction, the sequencer for its session while it seals; they exclude
# each other.
CHAIN_LOCK = 0x5447415544495400
# Events sealed per transaction: short enough to keep the lock hold short, long enough that a
# backlog drains in few transactions.
BATCH = 2000
# Every transaction with a lower id than this that writes the ledger has ended: the lowest id of
# the transactions holding an INSERT's lock on the event table (their own transaction-id lock
# gives the id; pg_locks shows every role's sessions), else the next id to be handed out. Part of
# the statement that reads the backlog.
_ENDED_BELOW = RawSQL(
    """
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
    """,
    [],
)


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
    if not any(callback is seal_after_commit for _, callback, _ in connection.run_on_commit):
        transaction.on_commit(seal_after_commit, robust=True)


def _insert(events: list[AuditEvent]) -> None:
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        AuditEvent.objects.bulk_create(events)


def seal_after_commit() -> None:
    """After a writer commits: seal the backlog if nobody else is sealing, never wait."""
    seal()


# One sealer per process at a time: a thread that finds another of its process sealing leaves
# the backlog to it without asking the database.
_sealing_here = threading.Lock()


def seal(*, limit: int | None = None) -> int:
    """Seal every committed event that can be sealed now, in order; return how many.

    Takes the chain lock without waiting: when another sealer holds it, that one seals the
    backlog and this returns 0 at once (one statement). The lock is held by the session while
    the batches commit one by one, and released at the end, or by the session's end if the
    process dies. Must not run inside a transaction (its own events could not be sealed).
    """
    if inline():
        return 0  # events were sealed as they were written
    if connection.in_atomic_block:
        raise RuntimeError("seal() runs in a transaction of its own, after the writers commit")
    if not _sealing_here.acquire(blocking=False):
        return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [CHAIN_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        try:
            return _seal_batches(limit)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [CHAIN_LOCK])
    finally:
        _sealing_here.release()


def _seal_batches(limit: int | None) -> int:
    sealed = 0
    while limit is None or sealed < limit:
        batch = BATCH if limit is None else min(BATCH, limit - sealed)
        done = _seal_batch(batch)
        sealed += done
        if done < batch:
            break
    return sealed


def _seal_batch(batch: int) -> int:
    """Seal up to `batch` events; the caller holds the chain lock."""
    # Read outside a transaction: nobody else seals while the lock is held, and an empty
    # backlog (the common case right after a commit) then costs one statement.
    backlog = list(
        AuditEvent.objects.filter(sequence__isnull=True, txid__lt=_ENDED_BELOW)
        .order_by("txid", "id")
        .values_list("id", *chain.COLUMNS)[:batch]
    )
    if not backlog:
        return 0
    with transaction.atomic():
        sequence, previous = head()
        ids, sequences, previous_hashes, hashes = [], [], [], []
        for row in backlog:
            sequence += 1
            fields = chain.payload_of_values(row[1:])
            fields["sequence"], fields["prev_hash"] = sequence, previous
            ids.append(row[0])
            sequences.append(sequence)
            previous_hashes.append(previous)
            previous = chain.seal(fields)
            hashes.append(previous)
        with connection.cursor() as cursor:
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
