"""Recomputing the chain: is every stored event still exactly what was sealed?

Walks the ledger in sequence order with a server-side cursor, holding one event at a time, so
a ledger of any length is checked in constant memory. The first problem found is reported by
sequence number: a gap in the numbering, a `prev_hash` that is not the previous event's hash,
or a hash that no longer matches the event's stored fields.

Hashing is the cost (a few million events take minutes on one core), so a long ledger may be
checked by several processes, each walking one range of sequence numbers; the ranges are then
joined in order, each one's first `prev_hash` against the hash the range before ended with, so
the verdict is exactly the one a single walk gives.
"""

import json
import multiprocessing
from dataclasses import dataclass
from hashlib import sha256

from django.db import connection
from django.db.models import Max

from portal.audit import chain
from portal.audit.models import AuditCheckpoint, AuditEvent

CHUNK = 5000
# Below this many events one process finishes before several would have started.
PARALLEL_FROM = 200_000


@dataclass(frozen=True)
class Verdict:
    intact: bool
    checked: int
    head_sequence: int | None = None
    head_hash: str = ""
    broken_at: int | None = None
    reason: str = ""


@dataclass
class _Range:
    """What one walk over a range of sequence numbers found."""

    checked: int = 0
    first_sequence: int | None = None
    first_prev_hash: str = ""
    last_sequence: int | None = None
    last_hash: str = ""
    broken_at: int | None = None
    reason: str = ""


def verify_chain(workers: int = 1) -> Verdict:
    """Check the whole ledger from its first event, in up to `workers` processes."""
    head = AuditEvent.objects.aggregate(head=Max("sequence"))["head"]
    if head is None:
        return Verdict(True, 0)
    if workers < 2 or head < PARALLEL_FROM or not _may_fork():
        return _joined([_walk(1, head)])
    step = -(-head // workers)
    bounds = [(low, min(low + step - 1, head)) for low in range(1, head + 1, step)]
    connection.close()  # each process opens its own connection
    with multiprocessing.get_context("fork").Pool(len(bounds)) as pool:
        return _joined(pool.starmap(_walk_apart, bounds))


def _may_fork() -> bool:
    # Other processes cannot see uncommitted rows, nor may a daemonic worker (Celery's) fork.
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and not multiprocessing.current_process().daemon
    )


def _walk(low: int, high: int) -> _Range:
    """Check events `low`..`high`; a range's first event is linked to the one before by _joined."""
    found = _Range()
    rows = _rows_postgresql(low, high) if connection.vendor == "postgresql" else _rows(low, high)
    for values, stored_hash in rows:
        sequence, prev_hash = values[0], values[-1]
        if found.first_sequence is None:
            found.first_sequence, found.first_prev_hash = sequence, prev_hash
            problem = ""
        else:
            problem = _link_problem(
                {"sequence": sequence, "prev_hash": prev_hash},
                found.last_sequence + 1,
                found.last_hash,
            )
        if not problem and sha256(chain.canonical_row(values)).hexdigest() != stored_hash:
            problem = "its stored fields no longer match its hash (the event was changed)"
        if problem:
            found.broken_at, found.reason = sequence, problem
            break
        found.checked += 1
        found.last_sequence, found.last_hash = sequence, stored_hash
    return found


def _rows(low: int, high: int):
    """Events as (values in chain.FIELDS order, stored hash), through the ORM."""
    # Plain rows rather than model instances: at millions of events, building an instance per
    # event would cost more than the hashing itself.
    events = (
        AuditEvent.objects.filter(sequence__gte=low, sequence__lte=high)
        .order_by("sequence")
        .values_list(*chain.COLUMNS, "hash")
        .iterator(chunk_size=CHUNK)
    )
    for values in events:
        yield (values[0], chain.timestamp(values[1]), *values[2:-1]), values[-1]


# The same rows with PostgreSQL doing the cheap parts: `at` already in its canonical text, and
# the three JSON columns as one array to decode in one call.
_POSTGRESQL_ROWS = f"""
    SELECT sequence, {chain.TIMESTAMP_SQL.format("at")}, action,
           actor_id, actor_label, on_behalf_of_id, object_type, object_id, object_reference,
           site_id, policy_version_label, jsonb_build_array(before, after, context)::text,
           comment, prev_hash, hash
    FROM audit_auditevent WHERE sequence BETWEEN %s AND %s ORDER BY sequence
"""  # noqa: S608 - constant text, no input in it


def _rows_postgresql(low: int, high: int):
    loads = json.loads
    with connection.chunked_cursor() as cursor:
        cursor.execute(_POSTGRESQL_ROWS, [low, high])
        while batch := cursor.fetchmany(CHUNK):
            for row in batch:
                before, after, context = loads(row[11])
                yield (*row[:11], before, after, row[12], context, row[13]), row[14]


def _walk_apart(low: int, high: int) -> _Range:
    """`_walk` in a worker process, which then lets its own connection go."""
    try:
        return _walk(low, high)
    finally:
        connection.close()


def _link_problem(fields: dict, expected_sequence: int, previous_hash: str) -> str:
    if fields["sequence"] != expected_sequence:
        return f"expected event #{expected_sequence} here; events are missing"
    if fields["prev_hash"] != previous_hash:
        return "its prev_hash is not the hash of the event before it"
    return ""


def _joined(ranges: list[_Range]) -> Verdict:
    """The verdict of one walk from the first event, from the ranges' findings in order."""
    expected_sequence, previous_hash, checked = 1, chain.GENESIS, 0
    for found in ranges:
        if found.first_sequence is None:
            continue  # no events in this range: the next range's first event shows the gap
        problem = _link_problem(
            {"sequence": found.first_sequence, "prev_hash": found.first_prev_hash},
            expected_sequence,
            previous_hash,
        )
        if problem:
            return Verdict(False, checked, broken_at=found.first_sequence, reason=problem)
        if found.broken_at is not None:
            return Verdict(
                False, checked + found.checked, broken_at=found.broken_at, reason=found.reason
            )
        checked += found.checked
        expected_sequence, previous_hash = found.last_sequence + 1, found.last_hash
    head = expected_sequence - 1 if checked else None
    return Verdict(True, checked, head_sequence=head, head_hash=previous_hash)


def check_checkpoints(verdict: Verdict) -> str:
    """Compare the chain with the checkpoints taken earlier; '' when they agree."""
    for checkpoint in AuditCheckpoint.objects.order_by("-sequence").iterator():
        stored = (
            AuditEvent.objects.filter(sequence=checkpoint.sequence)
            .values_list("hash", flat=True)
            .first()
        )
        if stored != checkpoint.hash:
            return (
                f"checkpoint of {checkpoint.at:%Y-%m-%d %H:%M} UTC recorded event "
                f"#{checkpoint.sequence} as {checkpoint.hash[:16]}…, the ledger now says "
                f"{(stored or 'nothing')[:16]}…: history was rewritten"
            )
    return ""


# What comparing the ledger with checkpoints kept outside it can find.
AGREES, REWRITTEN, BEHIND = "agrees", "rewritten", "behind"


@dataclass(frozen=True)
class CheckpointFinding:
    kind: str
    message: str
    last: dict | None = None  # the latest checkpoint compared


def check_external_checkpoints(verdict: Verdict, checkpoints: list[dict]) -> CheckpointFinding:
    """Compare an intact chain with checkpoints read from outside the database.

    The checkpoints inside the database travel with it: a database restored from a backup has
    exactly the checkpoints that backup had, and they agree with it. Only a copy kept elsewhere
    shows that the ledger once went further. A checkpoint beyond the ledger's head means events
    that were sealed are gone (the database was restored from a backup older than that
    checkpoint, or the chain was cut); one whose hash differs means history was rewritten.
    """
    if not checkpoints:
        return CheckpointFinding(AGREES, "")
    head = verdict.head_sequence or 0
    last = max(checkpoints, key=lambda checkpoint: checkpoint["sequence"])
    if last["sequence"] > head:
        return CheckpointFinding(
            BEHIND,
            f"the checkpoint of {last['at'] or 'an unknown time'} recorded event "
            f"#{last['sequence']} ({last['hash'][:16]}…), but the ledger ends at #{head}: "
            f"{last['sequence'] - head} sealed events are missing. The database was restored "
            "from a backup older than that checkpoint, or the chain was cut",
            last,
        )
    wanted = {checkpoint["sequence"] for checkpoint in checkpoints}
    stored = dict(AuditEvent.objects.filter(sequence__in=wanted).values_list("sequence", "hash"))
    for checkpoint in sorted(checkpoints, key=lambda checkpoint: -checkpoint["sequence"]):
        if stored.get(checkpoint["sequence"]) != checkpoint["hash"]:
            return CheckpointFinding(
                REWRITTEN,
                f"the checkpoint of {checkpoint['at'] or 'an unknown time'} recorded event "
                f"#{checkpoint['sequence']} as {checkpoint['hash'][:16]}…, the ledger now says "
                f"{(stored.get(checkpoint['sequence']) or 'nothing')[:16]}…: history was "
                "rewritten",
                checkpoint,
            )
    return CheckpointFinding(AGREES, "", last)
