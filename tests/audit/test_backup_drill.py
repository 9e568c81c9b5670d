"""The backup and restore drill (docs/OPERATIONS.md), and what verify_audit says about a restore.

On PostgreSQL the drill is run as an operator runs it: `pg_dump --format=custom` of the live
database, `pg_restore` into a new database, and `manage.py verify_audit` in a process of its own
against the restored one, comparing it with the checkpoints kept outside the database.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from portal.audit import checkpoints
from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from tests import ledger
from tests.factories import SiteFactory

BASE_DIR = Path(__file__).resolve().parents[2]
BROKEN, BEHIND = 1, 3

NEEDS_POSTGRES = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the drill uses pg_dump and pg_restore, which need DATABASE_URL on PostgreSQL",
)


def record(count: int, site) -> None:
    for number in range(count):
        with transaction.atomic():
            audit_record(
                action="site.updated", actor=None, obj=site, site=site, after={"drill": number}
            )


def take_checkpoint(sink: Path, settings) -> dict:
    settings.AUDIT_CHECKPOINT_SINK = str(sink)
    taken = checkpoints.checkpoint_take()
    assert taken.delivered
    return {"sequence": taken.sequence, "hash": taken.hash}


def head() -> tuple[int, str]:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()


# --- verify_audit against checkpoints kept outside the database --------------------------------


def test_a_ledger_behind_its_external_checkpoint_is_reported_with_its_own_exit_code(
    db, settings, tmp_path, capsys
):
    site = SiteFactory()
    record(3, site)
    sink = tmp_path / "checkpoints.jsonl"
    sequence, hash_ = head()
    # The copy outside says the ledger once reached two events further than it does now.
    sink.write_text(
        json.dumps({"sequence": sequence, "hash": hash_, "at": "2026-12-01 00:00:00+00:00"})
        + "\n"
        + json.dumps({"sequence": sequence + 2, "hash": "a" * 64, "at": "2026-12-02 00:00:00"})
        + "\n"
    )

    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit", "--workers", "1", "--checkpoints", str(sink))

    assert exit_.value.code == BEHIND
    error = capsys.readouterr().err
    assert "BEHIND ITS CHECKPOINT" in error
    assert f"#{sequence + 2}" in error and f"ends at #{sequence}" in error
    assert "2 sealed events are missing" in error
    assert "restored from a backup older than that checkpoint" in error


def test_an_external_checkpoint_the_ledger_contradicts_means_history_was_rewritten(
    db, tmp_path, capsys
):
    record(3, SiteFactory())
    sequence, _ = head()
    sink = tmp_path / "checkpoints.jsonl"
    sink.write_text(json.dumps({"sequence": sequence - 1, "hash": "b" * 64, "at": "x"}) + "\n")

    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit", "--workers", "1", "--checkpoints", str(sink))

    assert exit_.value.code == BROKEN
    assert "history was rewritten" in capsys.readouterr().err


def test_the_sink_file_is_read_by_default_and_a_matching_checkpoint_is_named(
    db, settings, tmp_path, capsys
):
    site = SiteFactory()
    record(2, site)
    sink = tmp_path / "checkpoints.jsonl"
    taken = take_checkpoint(sink, settings)
    record(1, site)

    call_command("verify_audit", "--workers", "1")

    out = capsys.readouterr().out
    assert f"Last external checkpoint #{taken['sequence']}" in out
    assert "matches the ledger; 1 events sealed after it" in out


def test_a_damaged_checkpoint_file_is_refused_by_line(db, tmp_path):
    record(1, SiteFactory())
    sink = tmp_path / "checkpoints.jsonl"
    sink.write_text('{"sequence": 1, "hash": "short"}\n')
    with pytest.raises(CommandError, match=r"line 1: not a checkpoint"):
        call_command("verify_audit", "--workers", "1", "--checkpoints", str(sink))
    with pytest.raises(CommandError, match="is not a readable file"):
        call_command("verify_audit", "--checkpoints", str(tmp_path / "missing.jsonl"))


# --- the drill itself, on PostgreSQL ------------------------------------------------------------


def database_url(name: str) -> str:
    database = connection.settings_dict
    credentials = quote(database["USER"] or "")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"])
    host = database.get("HOST") or "localhost"
    return f"postgres://{credentials}@{host}:{database.get('PORT') or 5432}/{name}"


def pg(command: str, *args: str) -> subprocess.CompletedProcess:
    database = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": database.get("PASSWORD") or ""}
    options = ["-h", database.get("HOST") or "localhost", "-p", str(database.get("PORT") or 5432)]
    options += ["-U", database["USER"]]
    return subprocess.run(
        [command, *options, *args], env=env, capture_output=True, text=True, timeout=120
    )


def dump(path: Path) -> None:
    done = pg("pg_dump", "--format=custom", "--file", str(path), connection.settings_dict["NAME"])
    assert done.returncode == 0, done.stderr


def restore(path: Path, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    done = pg("pg_restore", "--no-owner", "--exit-on-error", "--dbname", name, str(path))
    assert done.returncode == 0, done.stderr


def verify_restored(name: str, sink: Path | None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(name),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    return subprocess.run(
        [
            *(sys.executable, "manage.py", "verify_audit", "--workers", "1"),
            *(("--checkpoints", str(sink)) if sink else ()),
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@NEEDS_POSTGRES
@pytest.mark.skipif(not shutil.which("pg_restore"), reason="pg_dump/pg_restore not installed")
@pytest.mark.django_db(transaction=True)
def test_drill_a_restore_passes_verify_audit_at_the_last_checkpoint_and_an_older_one_is_caught(
    settings, tmp_path
):
    site = SiteFactory()
    sink = tmp_path / "checkpoints.jsonl"  # the copy kept on another volume
    record(4, site)
    ledger.seal_all()
    older = tmp_path / "older.dump"
    dump(older)  # yesterday's backup

    record(5, site)
    ledger.seal_all()
    last = take_checkpoint(sink, settings)
    assert (last["sequence"], last["hash"]) == head()
    latest = tmp_path / "latest.dump"
    dump(latest)  # tonight's backup, taken after the checkpoint

    restored = f"{connection.settings_dict['NAME']}_restored"
    try:
        restore(latest, restored)
        verdict = verify_restored(restored, sink)
        assert verdict.returncode == 0, verdict.stderr
        assert f"head #{last['sequence']} {last['hash']}" in verdict.stdout
        assert f"Last external checkpoint #{last['sequence']}" in verdict.stdout
        assert "0 events sealed after it" in verdict.stdout

        restore(older, restored)
        # On its own the older database agrees with itself: its checkpoints came with it.
        assert verify_restored(restored, None).returncode == 0
        verdict = verify_restored(restored, sink)
        assert verdict.returncode == BEHIND, verdict.stdout + verdict.stderr
        assert "BEHIND ITS CHECKPOINT" in verdict.stderr
        assert f"#{last['sequence']}" in verdict.stderr
        assert "5 sealed events are missing" in verdict.stderr
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
