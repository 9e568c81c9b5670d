"""The sequencer: events arrive unsealed with no lock, and are sealed once, in order.

The races run on PostgreSQL with committed transactions (the sequencer's ordering rests on
PostgreSQL's transaction ids); the database's refusal of every UPDATE but the seal is tested on
both databases.
"""

import multiprocessing
import os
import signal
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from portal.audit import chain, sequencer
from portal.audit.models import AuditEvent
from portal.audit.services import appended_at_end, audit_record
from portal.audit.verify import verify_chain
from tests import ledger

POSTGRESQL = connection.vendor == "postgresql"
only_postgresql = pytest.mark.skipif(
    not POSTGRESQL,
    reason="the sequencer orders by PostgreSQL transaction ids; SQLite seals inline",
)


def _unsealed(obj, comment: str = "", **fields) -> AuditEvent:
    """An event as a writer leaves it: content final, no seal yet (inserted directly)."""
    event = AuditEvent(
        action="test.arrived",
        actor_label="tollgate",
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_reference=str(obj),
        comment=comment,
        context={},
        **fields,
    )
    event.save(force_insert=True)
    return event


SEAL = (
    "UPDATE audit_auditevent SET sequence = %s, prev_hash = %s, hash = %s, sealed_at = %s "
    "WHERE id = %s"
)


def _refused():
    return pytest.raises(DatabaseError, match="append-only")


# --- what the database lets through ----------------------------------------------------------


def test_the_database_lets_an_unsealed_event_be_sealed_once(site_a1):
    event = _unsealed(site_a1)
    with connection.cursor() as cursor:
        cursor.execute(SEAL, [999_001, "", "a" * 64, timezone.now(), event.pk])
    sealed = AuditEvent.objects.get(pk=event.pk)
    assert (sealed.sequence, sealed.prev_hash, sealed.hash) == (999_001, "", "a" * 64)
    assert sealed.sealed_at is not None

    with _refused(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SEAL, [999_002, "", "b" * 64, timezone.now(), event.pk])
    with _refused(), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(sequence=None, hash=None)
    assert AuditEvent.objects.get(pk=event.pk).sequence == 999_001


@pytest.mark.parametrize(
    "statement",
    [
        # Part of the seal only.
        "UPDATE audit_auditevent SET sequence = 999001 WHERE id = %s",
        "UPDATE audit_auditevent SET hash = 'aa' WHERE id = %s",
        # The seal, with the content changed on the way.
        "UPDATE audit_auditevent SET sequence = 999001, prev_hash = '', hash = 'aa', "
        "sealed_at = at, comment = 'rewritten' WHERE id = %s",
        "UPDATE audit_auditevent SET sequence = 999001, prev_hash = '', hash = 'aa', "
        "sealed_at = at, object_reference = 'elsewhere' WHERE id = %s",
        # The content alone.
        "UPDATE audit_auditevent SET action = 'test.other' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_any_other_change_to_an_unsealed_event(site_a1, statement):
    event = _unsealed(site_a1, comment="as recorded")

    with _refused(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [event.pk])

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.sequence, stored.hash, stored.comment) == (None, None, "as recorded")


def test_the_orm_cannot_change_an_unsealed_event_either(site_a1):
    event = _unsealed(site_a1, comment="as recorded")
    with _refused(), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(comment="rewritten")
    with _refused(), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).comment == "as recorded"


def test_a_sealed_events_seal_columns_are_refused_by_the_database(site_a1, requester):
    with transaction.atomic():
        audit_record(action="test.sealed", actor=requester, obj=site_a1)
    event = AuditEvent.objects.filter(sequence__isnull=False).latest("sequence")
    for change in (
        {"sequence": event.sequence + 100},
        {"hash": "f" * 64},
        {"prev_hash": "f" * 64},
        {"sealed_at": timezone.now()},
    ):
        with _refused(), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(**change)
    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash


# --- the seal's delay, watched ---------------------------------------------------------------


def test_verify_audit_exits_2_naming_an_event_left_unsealed_past_the_delay(
    site_a1, settings, time_machine
):
    settings.AUDIT_MAX_SEAL_SECONDS = 10
    time_machine.move_to(timezone.now(), tick=False)
    with transaction.atomic():
        audit_record(action="test.sealed", actor=None, obj=site_a1)
    late = _unsealed(site_a1, comment="waiting")

    out, err = StringIO(), StringIO()
    call_command("verify_audit", workers=1, stdout=out, stderr=err)
    assert "Pending seal: 1 event waits" in out.getvalue()

    time_machine.shift(timedelta(seconds=11))
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit", workers=1, stdout=out, stderr=err)
    assert exited.value.code == 2
    assert "Audit ledger intact" in out.getvalue()  # the sealed chain still verifies
    assert "NOT FULLY SEALED" in err.getvalue()
    assert f"event {late.pk} test.arrived" in err.getvalue()
    assert "waiting 11 s (allowed 10 s)" in err.getvalue()


def test_readyz_is_degraded_and_says_why_when_an_event_waits_too_long(
    client, site_a1, settings, time_machine, monkeypatch
):
    from portal import health

    for name in ("broker", "odoo"):  # only the ledger is under test here
        monkeypatch.setitem(health.READINESS_CHECKS, name, lambda: None)
    settings.AUDIT_MAX_SEAL_SECONDS = 10
    time_machine.move_to(timezone.now(), tick=False)
    _unsealed(site_a1)

    fresh = client.get("/readyz").json()
    assert fresh["status"] == "ok"
    assert fresh["checks"]["audit_seal"]["ok"] is True
    assert fresh["checks"]["audit_seal"]["unsealed"] == 1

    time_machine.shift(timedelta(seconds=30))
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200  # the node still serves; the ledger is behind
    assert body["status"] == "degraded"
    assert body["checks"]["audit_seal"]["ok"] is False
    assert body["checks"]["audit_seal"]["unsealed"] == 1
    assert body["checks"]["audit_seal"]["error"] == (
        "audit ledger: 1 event waits to be sealed, the oldest for 30 s (allowed: 10 s)"
    )


# --- the sequencer on PostgreSQL --------------------------------------------------------------


def _record(obj, comment: str) -> None:
    audit_record(action="test.race", actor=None, obj=obj, comment=comment)


def _assert_chain_whole() -> list[tuple[int, str]]:
    rows = list(AuditEvent.objects.order_by("sequence").values_list("sequence", "comment"))
    assert [sequence for sequence, _ in rows] == list(range(1, len(rows) + 1))
    verdict = verify_chain()
    assert verdict.intact, verdict.reason
    assert verdict.checked == len(rows)
    return rows


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_writer_takes_no_lock_and_never_waits_for_the_chain(site_a1):
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [sequencer.CHAIN_LOCK])
        done = threading.Event()

        def write() -> None:
            try:
                with transaction.atomic():
                    _record(site_a1, "while the chain is locked")
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND pid = pg_backend_pid()"
                        )
                        assert cursor.fetchone()[0] == 0
                done.set()
            finally:
                connection.close()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=10)
        assert done.is_set(), "the writer waited for the chain lock"
        event = AuditEvent.objects.get(comment="while the chain is locked")
        assert event.sequence is None  # arrived; the sealer could not run
        assert sequencer.seal() == 0  # the lock is taken: returns at once
    finally:
        holder.close()  # ends the session and its lock
    ledger.seal_all()
    assert AuditEvent.objects.get(comment="while the chain is locked").sequence is not None
    _assert_chain_whole()


INSERT_EVENT = (
    "INSERT INTO audit_auditevent (at, action, actor_label, object_type, object_id, "
    "object_reference, policy_version_label, comment, context) VALUES "
    "(now(), 'test.race', 'tollgate', 'sites.site', %s, '', '', %s, '{}'::jsonb)"
)


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_change_still_writing_the_ledger_holds_back_later_ones_not_their_ids_order(site_a1):
    ledger.seal_all()
    early = connections.create_connection("default")
    try:
        # The early change records its event first, with the lower id, and stays open.
        early.set_autocommit(False)
        with early.cursor() as cursor:
            cursor.execute(INSERT_EVENT, [str(site_a1.pk), "early change"])
        # A later change commits first; the sequencer must not seal past the early one.
        with transaction.atomic():
            _record(site_a1, "later change")
        sequencer.seal()
        assert AuditEvent.objects.get(comment="later change").sequence is None  # held back
        early.commit()
    finally:
        early.close()
    # A change that rolled back leaves nothing to seal.
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(site_a1, "rolled back")
        raise RuntimeError("the change failed")

    sequencer.seal()
    early_event = AuditEvent.objects.get(comment="early change")
    later_event = AuditEvent.objects.get(comment="later change")
    assert early_event.sequence + 1 == later_event.sequence
    assert later_event.prev_hash == early_event.hash
    assert not AuditEvent.objects.filter(comment="rolled back").exists()
    _assert_chain_whole()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_does_not_write_the_ledger_holds_nothing_back(site_a1, region_a):
    ledger.seal_all()
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:  # a long change elsewhere: it has a transaction id
            cursor.execute("UPDATE sites_region SET name = name WHERE id = %s", [region_a.pk])
            cursor.execute("SELECT pg_current_xact_id()")
        with transaction.atomic():
            _record(site_a1, "sealed at once")
        assert sequencer.settle()  # the sealer thread, woken by the commit, has sealed
        assert AuditEvent.objects.get(comment="sealed at once").sequence is not None
        # When it does record, later, it comes after: the two overlapped, neither saw the other.
        with other.cursor() as cursor:
            cursor.execute(INSERT_EVENT, [str(site_a1.pk), "recorded late"])
        other.commit()
    finally:
        other.close()
    ledger.seal_all()
    late = AuditEvent.objects.get(comment="recorded late")
    assert late.sequence == AuditEvent.objects.get(comment="sealed at once").sequence + 1
    _assert_chain_whole()


class _HeldSeal:
    """Stops this process's sealer thread inside its next seal until released; counts seals."""

    def __init__(self, monkeypatch):
        # A seal already under way (woken by the fixtures' commits) would not be held and could
        # seal what the test writes next: let it finish first.
        assert sequencer.settle()
        self.entered, self.release = threading.Event(), threading.Event()
        self.seals = 0
        original = sequencer._seal_batch

        def held(batch):
            self.seals += 1
            self.entered.set()
            self.release.wait(30)
            return original(batch)

        monkeypatch.setattr(sequencer, "_seal_batch", held)


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_writer_neither_seals_nor_waits_for_the_seal(site_a1, monkeypatch):
    ledger.seal_all()
    held = _HeldSeal(monkeypatch)
    started = time.monotonic()
    with transaction.atomic():
        _record(site_a1, "written while the sealer is stuck")
    assert held.entered.wait(10), "the commit did not wake the sealer thread"
    # The seal is stuck, in another thread: the writer went on all the same.
    assert time.monotonic() - started < 10
    event = AuditEvent.objects.get(comment="written while the sealer is stuck")
    assert event.sequence is None
    held.release.set()
    assert sequencer.settle()
    event.refresh_from_db()
    assert event.sequence is not None
    _assert_chain_whole()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_commits_that_arrive_while_the_sealer_seals_are_sealed_together(site_a1, monkeypatch):
    ledger.seal_all()
    held = _HeldSeal(monkeypatch)
    with transaction.atomic():
        _record(site_a1, "first")
    assert held.entered.wait(10)
    for number in range(20):
        with transaction.atomic():
            _record(site_a1, f"then {number}")
    held.release.set()
    assert sequencer.settle()
    # One seal for the first commit, one more for the twenty that came while it was held.
    assert held.seals == 2
    assert not AuditEvent.objects.filter(sequence__isnull=True).exists()
    _assert_chain_whole()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_settled_sealer_holds_no_connection(site_a1):
    with transaction.atomic():
        _record(site_a1, "wakes the sealer")
    assert sequencer.settle()
    # Its session is gone (a server process takes a moment to leave after the client hangs
    # up), so that a test database can be dropped at the end of the run.
    others = []
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT application_name, state, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            others = cursor.fetchall()
        if not others:
            break
        time.sleep(0.05)
    assert others == []
    assert AuditEvent.objects.get(comment="wakes the sealer").sequence is not None


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_backlog_is_read_in_order_through_its_index_not_a_bitmap(site_a1):
    with transaction.atomic():
        for number in range(50):
            _record(site_a1, f"sealed {number}")
    ledger.seal_all()  # fifty entries of the backlog's index now point at superseded rows
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sequencer._LOCK, [sequencer.CHAIN_LOCK])
        cursor.execute("SET LOCAL enable_seqscan = off")  # as on a ledger of millions
        plans = []
        for _ in range(2):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sequencer._BACKLOG, [10])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    # An index scan marks the superseded entries dead as it passes them, and later reads skip
    # them; a bitmap scan would visit their rows again on every seal until the next vacuum.
    for plan in plans:
        assert "Index Scan using audit_unsealed" in plan, plan
        assert "Bitmap" not in plan, plan


WRITERS_EACH = 16  # threads, and as many processes
CHANGES = 15
ROLLED_BACK_EVERY = 5


def _write_changes(site_id: int, name: str) -> None:
    """One writer: CHANGES changes of 1–3 events each; every fifth one rolls back."""
    from sites.models import Site

    site = Site.objects.get(pk=site_id)
    for number in range(CHANGES):
        parts = 1 + number % 3
        try:
            with transaction.atomic():
                with appended_at_end() if number % 2 else transaction.atomic():
                    for part in range(parts):
                        _record(site, f"{name}.{number}.{part}")
                if number % ROLLED_BACK_EVERY == ROLLED_BACK_EVERY - 1:
                    raise _RolledBack
        except _RolledBack:
            pass


class _RolledBack(Exception):
    pass


def _writer_process(site_id: int, name: str) -> None:
    connections.close_all()  # never share the parent's socket
    try:
        _write_changes(site_id, name)
    finally:
        connections.close_all()


def _sealer_process(stop) -> None:
    """A sealer of its own (another web node or worker): seals until told to stop."""
    connections.close_all()
    try:
        while not stop.is_set():
            sequencer.seal()
    finally:
        connections.close_all()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_thirty_two_writers_two_sealers_and_the_beat_leave_one_gapless_chain(site_a1):
    from portal.audit import tasks

    ledger.seal_all()
    stop = threading.Event()
    failures: list[BaseException] = []

    def guarded(work) -> None:
        try:
            work()
        except BaseException as error:  # collected and asserted below
            failures.append(error)
        finally:
            connection.close()

    def beat() -> None:
        while not stop.is_set():
            tasks.seal()  # the beat job's own entry point
            stop.wait(0.05)

    connection.close()  # the forked writers and sealers must not inherit an open connection
    context = multiprocessing.get_context("fork")
    sealers_stop = context.Event()
    sealers = [context.Process(target=_sealer_process, args=(sealers_stop,)) for _ in range(2)]
    processes = [
        context.Process(target=_writer_process, args=(site_a1.pk, f"p{n}"))
        for n in range(WRITERS_EACH)
    ]
    for process in sealers + processes:  # forked before any other thread runs
        process.start()
    helpers = [threading.Thread(target=guarded, args=(beat,))]
    threads = [
        threading.Thread(target=guarded, args=(lambda n=n: _write_changes(site_a1.pk, f"t{n}"),))
        for n in range(WRITERS_EACH)
    ]
    for worker in helpers + threads:
        worker.start()
    for worker in processes + threads:
        worker.join(timeout=120)
    stop.set()
    sealers_stop.set()
    for helper in helpers + sealers:
        helper.join(timeout=30)

    assert [sealer.exitcode for sealer in sealers] == [0, 0]
    assert failures == []
    assert [process.exitcode for process in processes] == [0] * WRITERS_EACH
    ledger.seal_all()
    rows = _assert_chain_whole()
    raced = [comment for _, comment in rows if comment[:1] in "pt" and comment.count(".") == 2]
    expected = {
        f"{kind}{n}.{number}.{part}"
        for kind in "pt"
        for n in range(WRITERS_EACH)
        for number in range(CHANGES)
        if number % ROLLED_BACK_EVERY != ROLLED_BACK_EVERY - 1
        for part in range(1 + number % 3)
    }
    assert len(raced) == len(set(raced)), "an event was sealed twice"
    assert set(raced) == expected  # every committed event, none of a rolled-back change
    # Each writer's changes follow one another, so the chain keeps each writer's order.
    for kind in "pt":
        for n in range(WRITERS_EACH):
            mine = [c for c in raced if c.startswith(f"{kind}{n}.")]
            order = [tuple(int(x) for x in c.split(".")[1:]) for c in mine]
            assert order == sorted(order), f"{kind}{n} out of order"
    delays = AuditEvent.objects.filter(comment__in=expected).values_list("at", "sealed_at")
    assert all(sealed >= at for at, sealed in delays)


def _killed_writer(site_id: int, ready) -> None:
    from sites.models import Site

    connections.close_all()
    site = Site.objects.get(pk=site_id)
    with transaction.atomic():
        _record(site, "killed writer")
        ready.set()
        time.sleep(60)


def _killed_sealer(ready) -> None:
    connections.close_all()

    def stop_before_commit() -> None:
        ready.set()
        time.sleep(60)

    sequencer._before_seal_commit = stop_before_commit
    sequencer.seal()


def _kill_when_ready(target, *args) -> None:
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    connection.close()
    process = context.Process(target=target, args=(*args, ready))
    process.start()
    try:
        assert ready.wait(30), "the child did not get that far"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.join(timeout=30)
    assert process.exitcode == -signal.SIGKILL


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_writer_killed_mid_transaction_leaves_nothing(site_a1):
    _kill_when_ready(_killed_writer, site_a1.pk)
    with transaction.atomic():
        _record(site_a1, "after the kill")
    ledger.seal_all()
    assert not AuditEvent.objects.filter(comment="killed writer").exists()
    assert AuditEvent.objects.get(comment="after the kill").sequence is not None
    _assert_chain_whole()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_sealer_killed_mid_seal_leaves_the_chain_as_it_was(site_a1):
    ledger.seal_all()
    head = AuditEvent.objects.filter(sequence__isnull=False).latest("sequence")
    pending = AuditEvent.objects.filter(comment__startswith="pending")
    with sequencer._sealing_here:  # this process's sealer thread waits: only the child seals
        with transaction.atomic():
            for number in range(5):
                _record(site_a1, f"pending {number}")

        # A sealer numbers and hashes the five, writes the seal and is killed before its COMMIT.
        _kill_when_ready(_killed_sealer)

        assert AuditEvent.objects.filter(sequence__isnull=False).latest("sequence") == head
        assert pending.filter(sequence__isnull=True).count() == 5
    ledger.seal_all()  # the next sealer gets the lock once the killed one's session is gone
    sealed = list(pending.order_by("sequence").values_list("sequence", flat=True))
    assert sealed == list(range(head.sequence + 1, head.sequence + 6))
    _assert_chain_whole()


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_one_byte_edit_of_a_sealed_event_is_located(site_a1):
    with transaction.atomic():
        for number in range(3):
            _record(site_a1, f"edit {number}")
    ledger.seal_all()
    target = AuditEvent.objects.get(comment="edit 1")
    with connection.cursor() as cursor:
        ledger.set_aside(connection)
        try:
            cursor.execute(
                "UPDATE audit_auditevent SET comment = 'edit 7' WHERE id = %s", [target.pk]
            )
        finally:
            ledger.enforce(connection)
    verdict = verify_chain()
    assert not verdict.intact
    assert verdict.broken_at == target.sequence
    assert "no longer match" in verdict.reason
    assert chain.seal(chain.payload(AuditEvent.objects.get(pk=target.pk))) != target.hash


@only_postgresql
def test_the_beat_seals_every_few_seconds_where_events_arrive_unsealed():
    from django.conf import settings as django_settings

    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-seal"]
    assert entry["task"] == "audit.seal"
    assert entry["schedule"] == django_settings.AUDIT_SEAL_SECONDS <= 5
