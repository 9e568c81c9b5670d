"""The ledger: sealed in a chain, refused changes by the database, verified end to end."""

import itertools
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from portal.audit import chain, checkpoints
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.services import audit_record
from sites import services as site_services
from sites.roles import Role
from tests import ledger
from tests.factories import UserFactory

ON_POSTGRES = connection.vendor == "postgresql"


def _record(actor, obj, action="test.happened", **extra):
    with transaction.atomic():
        return audit_record(action=action, actor=actor, obj=obj, **extra)


def test_events_form_a_chain_each_sealing_the_one_before(site_a1, requester):
    for number in range(3):
        _record(requester, site_a1, comment=f"event {number}")
    events = list(AuditEvent.objects.order_by("sequence"))

    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == ""
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    for event in events:
        assert chain.seal(chain.payload(event)) == event.hash


def test_an_event_read_as_plain_values_has_the_canonical_form_of_the_model(site_a1, requester):
    event = _record(
        requester,
        site_a1,
        before={"state": "draft"},
        after={"amount": "12.50", "note": "Café ✓"},
        comment="read back without a model instance",
    )
    values = AuditEvent.objects.values_list(*chain.COLUMNS).get(pk=event.pk)

    assert chain.payload_of_values(values) == chain.payload(AuditEvent.objects.get(pk=event.pk))
    assert chain.seal(chain.payload_of_values(values)) == event.hash


def test_an_event_carries_the_request_it_came_from(client, requester, site_a1):
    client.force_login(requester)

    client.get("/", HTTP_USER_AGENT="Firefox/140", HTTP_X_REQUEST_ID="corr-123")
    client.post("/accounts/logout/", HTTP_USER_AGENT="Firefox/140", HTTP_X_REQUEST_ID="corr-9")

    signed_out = AuditEvent.objects.get(action="auth.signed_out")
    assert signed_out.context["user_agent"] == "Firefox/140"
    assert signed_out.context["correlation_id"] == "corr-9"
    assert signed_out.context["ip"] == "127.0.0.1"


# --- the database refuses changes -----------------------------------------------------------

ORM_CHANGES = {
    "queryset update": lambda: AuditEvent.objects.update(comment="rewritten"),
    "queryset delete": lambda: AuditEvent.objects.all().delete(),
    "instance delete": lambda: AuditEvent.objects.first().delete(),
}
RAW_CHANGES = {
    "raw update": "UPDATE audit_auditevent SET comment = 'rewritten'",
    "raw delete": "DELETE FROM audit_auditevent",
}
if ON_POSTGRES:
    RAW_CHANGES["raw truncate"] = "TRUNCATE audit_auditevent"


@pytest.mark.parametrize("change", sorted(ORM_CHANGES))
def test_the_database_refuses_orm_changes_to_the_ledger(site_a1, requester, change):
    _record(requester, site_a1)
    before = list(AuditEvent.objects.values_list("sequence", "hash", "comment"))

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        ORM_CHANGES[change]()

    assert list(AuditEvent.objects.values_list("sequence", "hash", "comment")) == before


@pytest.mark.parametrize("statement", sorted(RAW_CHANGES))
def test_the_database_refuses_raw_sql_changes_to_the_ledger(site_a1, requester, statement):
    _record(requester, site_a1)
    count = AuditEvent.objects.count()

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        if ON_POSTGRES:
            # Django's foreign keys are deferred; settle them so that PostgreSQL judges the
            # TRUNCATE itself rather than refusing it for pending constraint checks.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(RAW_CHANGES[statement])

    assert AuditEvent.objects.count() == count


def test_saving_a_recorded_event_again_is_refused_before_the_database(site_a1, requester):
    event = _record(requester, site_a1)
    event.comment = "rewritten"

    with pytest.raises(ValueError, match="never changed"):
        event.save()


# --- verify_audit ---------------------------------------------------------------------------


def _verify() -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def _as_superuser_without_triggers(statement: str, params=()) -> None:
    """What a database superuser can do: set the triggers aside and edit a row."""
    ledger.set_aside(connection)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
    ledger.enforce(connection)


def test_verify_audit_finds_an_intact_ledger_intact(site_a1, requester):
    for _ in range(5):
        _record(requester, site_a1)

    status, output = _verify()

    assert status == 0
    count = AuditEvent.objects.count()
    assert f"intact: {count} events, head #{count}" in output


def test_verify_audit_names_the_event_whose_byte_a_superuser_changed(site_a1, requester):
    for number in range(6):
        _record(requester, site_a1, comment=f"approved batch {number}")
    target = AuditEvent.objects.get(comment="approved batch 3")

    _as_superuser_without_triggers(
        "UPDATE audit_auditevent SET comment = %s WHERE sequence = %s",
        ["approved batch 8", target.sequence],
    )
    status, output = _verify()

    assert status == 1
    assert f"BROKEN at event #{target.sequence}:" in output
    assert "was changed" in output


def test_verify_audit_notices_a_deleted_event(site_a1, requester):
    for _ in range(4):
        _record(requester, site_a1)
    last = AuditEvent.objects.order_by("-sequence").first().sequence

    _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE sequence = %s", [last - 1])
    status, output = _verify()

    assert status == 1
    assert f"BROKEN at event #{last}:" in output


def test_a_checkpoint_catches_a_chain_rewritten_consistently(
    site_a1, requester, settings, tmp_path
):
    settings.AUDIT_CHECKPOINT_SINK = str(tmp_path / "checkpoints.jsonl")
    for _ in range(3):
        _record(requester, site_a1)
    checkpoint = checkpoints.checkpoint_take()
    assert checkpoint.delivered
    assert f'"hash": "{checkpoint.hash}"' in Path(settings.AUDIT_CHECKPOINT_SINK).read_text()

    # Someone rebuilds every event from the checkpoint on with fresh, self-consistent hashes.
    event = AuditEvent.objects.get(sequence=checkpoint.sequence)
    event.comment = "history rewritten"
    forged = chain.seal(chain.payload(event) | {"comment": "history rewritten"})
    _as_superuser_without_triggers(
        "UPDATE audit_auditevent SET comment = %s, hash = %s WHERE sequence = %s",
        ["history rewritten", forged, checkpoint.sequence],
    )
    status, output = _verify()

    assert status == 1
    assert "history was rewritten" in output


def test_an_unreachable_checkpoint_sink_is_recorded_not_hidden(site_a1, requester, settings):
    settings.AUDIT_CHECKPOINT_SINK = "/nonexistent-dir/checkpoints.jsonl"
    _record(requester, site_a1)

    checkpoint = checkpoints.checkpoint_take()

    assert not checkpoint.delivered
    assert "could not reach" in checkpoint.error
    assert AuditCheckpoint.objects.count() == 1


# --- coverage ---------------------------------------------------------------------------------


def test_membership_changes_are_in_the_ledger(site_a1, stranger):
    membership = site_services.membership_grant(
        actor=None, user=stranger, role=Role.AUDITOR, site=site_a1
    )
    site_services.membership_end(actor=None, membership=membership)

    actions = list(
        AuditEvent.objects.filter(object_type="sites.membership").values_list("action", flat=True)
    )
    assert actions == ["membership.granted", "membership.ended"]


def test_sign_ins_failures_and_lockouts_are_in_the_ledger(client, settings, db, time_machine):
    # Well inside one window of failed sign-ins, whenever the test runs.
    time_machine.move_to("2026-06-01 10:05:00Z", tick=False)
    settings.SIGN_IN_FAILURE_WINDOW_SECONDS = 900
    UserFactory(username="dana")
    client.post("/accounts/login/", {"username": "dana", "password": "correct-horse-battery"})
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "dana", "password": "wrong"})

    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "auth.signed_in" in actions
    # One summary per account, address and window, however many attempts (portal.accounts).
    assert actions.count("auth.sign_in_failed") == 1
    assert actions.count("auth.locked_out") == 1
    assert not any("wrong" in str(e.context) for e in AuditEvent.objects.all())


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.skipif(
    not ON_POSTGRES, reason="needs concurrent connections; SQLite serialises every writer anyway"
)
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_writers_leave_one_unbroken_chain(region_a):
    site = site_services.site_create(
        actor=None,
        code="CC1",
        name="Concurrency",
        region=region_a,
        time_zone="Europe/Amsterdam",
        currency="EUR",
        odoo_company_id=1,
    )
    start = threading.Barrier(50)
    failures: list[BaseException] = []

    def write(number: int) -> None:
        try:
            start.wait()
            with transaction.atomic():
                audit_record(action="test.concurrent", actor=None, obj=site, comment=str(number))
        except BaseException as error:  # collected and asserted below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    ledger.seal_all()
    assert AuditEvent.objects.filter(action="test.concurrent").count() == 50
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert _verify()[0] == 0


@pytest.mark.parametrize("number", [1e16, -0.0, 0.1, 123456789.123])
def test_floats_in_an_event_read_back_exactly_and_the_chain_holds(site_a1, requester, number):
    _record(requester, site_a1, after={"measured": number, "nested": [number]})

    event = AuditEvent.objects.get(action="test.happened")
    assert event.after == {"measured": repr(number), "nested": [repr(number)]}
    assert _verify()[0] == 0


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="the workers are separate processes that see only committed rows, which SQLite's "
    "in-memory test database cannot share with them",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("damage", ["none", "changed", "deleted"])
def test_verifying_in_several_processes_finds_what_one_walk_finds(
    site_a1, requester, monkeypatch, damage
):
    from portal.audit import verify

    monkeypatch.setattr(verify, "PARALLEL_FROM", 0)
    for number in range(9):
        _record(requester, site_a1, comment=f"approved batch {number}")
    ledger.seal_all()
    sequences = sorted(AuditEvent.objects.values_list("sequence", flat=True))
    middle = sequences[len(sequences) // 2]
    if damage == "changed":
        _as_superuser_without_triggers(
            "UPDATE audit_auditevent SET comment = 'rewritten' WHERE sequence = %s", [middle]
        )
    elif damage == "deleted":
        _as_superuser_without_triggers("DELETE FROM audit_auditevent WHERE sequence = %s", [middle])

    assert verify._may_fork()
    several = verify.verify_chain(workers=3)
    one = verify.verify_chain(workers=1)

    assert several == one
    assert one.intact is (damage == "none")
    if damage != "none":
        assert one.broken_at == (middle if damage == "changed" else middle + 1)
