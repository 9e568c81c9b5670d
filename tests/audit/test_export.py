"""Auditor exports: streamed files, their manifest, the standalone verifier, and scope."""

import csv
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from portal.audit import chain
from portal.audit.export import COLUMNS, CSV_COLUMNS, NAME_COLUMNS, audit_export
from portal.audit.models import AuditEvent
from portal.audit.selectors import ExportFilters
from tests.audit.activity import _working_morning, activity, company_auditor, matrix, staffed

__all__ = ["_working_morning", "activity", "company_auditor", "matrix", "staffed"]

TOOL = Path(__file__).resolve().parents[2] / "portal" / "audit" / "verify_export.py"
FORMATS = ["csv", "jsonl"]


def export(actor, tmp_path, fmt="jsonl", **filters) -> tuple[Path, Path, dict]:
    data, manifest = tmp_path / f"events.{fmt}", tmp_path / f"events.{fmt}.manifest.json"
    with data.open("wb") as out, manifest.open("wb") as manifest_out:
        result = audit_export(
            actor=actor,
            filters=ExportFilters(**filters),
            fmt=fmt,
            out=out,
            manifest_out=manifest_out,
        )
    return data, manifest, result


def verifier(data: Path, manifest: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The tool as an auditor runs it: isolated, without site-packages, outside the repository."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(TOOL), str(data), str(manifest)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_rows(data: Path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    with data.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def event_with_comment(comment: str, action: str) -> AuditEvent:
    return AuditEvent.objects.get(comment=comment, action=action)


# --- the files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_row_carries_every_canonical_field_and_its_hash(
    activity, company_auditor, tmp_path, fmt
):
    data, _, manifest = export(company_auditor, tmp_path, fmt)

    rows = read_rows(data, fmt)
    assert len(rows) == manifest["row_count"] == AuditEvent.objects.count() - 1  # less the export
    assert all(set(row) == {*COLUMNS, *NAME_COLUMNS} for row in rows)
    assert [str(row["sequence"]) for row in rows] == [str(n) for n in range(1, len(rows) + 1)]


def test_a_jsonl_row_is_the_canonical_form_plus_the_hash(activity, company_auditor, tmp_path):
    data, _, _ = export(company_auditor, tmp_path, "jsonl")
    decision = event_with_comment("Within budget", "decision.approve")

    line = data.read_text(encoding="utf-8").splitlines()[decision.sequence - 1]
    row = json.loads(line)

    assert line.encode() == chain.canonical(row)
    hashed = {name: value for name, value in row.items() if name not in NAME_COLUMNS}
    assert hashed == {**chain.payload(decision), "hash": decision.hash}


def test_csv_columns_are_the_canonical_fields_with_names_beside_ids_then_the_hash(
    activity, company_auditor, tmp_path
):
    data, _, _ = export(company_auditor, tmp_path, "csv")

    header = data.read_bytes().split(b"\r\n", 1)[0].decode().split(",")

    assert header == list(CSV_COLUMNS)
    assert [name for name in header if name not in NAME_COLUMNS] == [*chain.FIELDS, "hash"]
    assert header[header.index("actor_id") : header.index("actor_id") + 3] == [
        "actor_id",
        "actor_username",
        "actor_name",
    ]
    assert header[header.index("site_id") + 1 : header.index("site_id") + 3] == [
        "site_code",
        "site_name",
    ]


def test_a_csv_row_keeps_quotes_commas_line_breaks_and_accents(activity, company_auditor, tmp_path):
    data, _, _ = export(company_auditor, tmp_path, "csv")
    rejection = event_with_comment("Not this quarter,\r\nsee me", "decision.reject")

    row = read_rows(data, "csv")[rejection.sequence - 1]

    assert row["comment"] == "Not this quarter,\r\nsee me"
    assert row["on_behalf_of_id"] == ""
    assert json.loads(row["context"]) == rejection.context
    created = AuditEvent.objects.get(action="request.created", object_id=rejection.object_id)
    created = read_rows(data, "csv")[created.sequence - 1]
    assert json.loads(created["after"])["title"] == 'Café chairs, "red"'


def test_the_manifest_describes_the_file(activity, company_auditor, tmp_path):
    data, manifest_path, manifest = export(company_auditor, tmp_path, "csv", kind="request.")

    assert json.loads(manifest_path.read_text()) == manifest
    rows = read_rows(data, "csv")
    assert manifest["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert manifest["row_count"] == len(rows)
    assert (manifest["first_sequence"], manifest["first_hash"]) == (
        int(rows[0]["sequence"]),
        rows[0]["hash"],
    )
    assert (manifest["last_sequence"], manifest["last_hash"]) == (
        int(rows[-1]["sequence"]),
        rows[-1]["hash"],
    )
    assert manifest["filters"]["kind"] == "request."
    assert manifest["format"] == "csv"
    assert manifest["full_range"] is False
    assert manifest["generated_by"] == "chief.auditor"
    assert manifest["generated_at"].startswith("2026-03-10T")
    assert manifest["canonical_version"] == chain.CANONICAL_VERSION
    assert manifest["data_file"] == "events.csv"


def test_an_unfiltered_export_of_the_whole_ledger_is_a_full_range(
    activity, company_auditor, tmp_path
):
    _, _, manifest = export(company_auditor, tmp_path)

    assert manifest["full_range"] is True
    assert manifest["first_sequence"] == 1


def test_a_regional_auditors_unfiltered_export_is_not_a_full_range(activity, auditor, tmp_path):
    data, _, manifest = export(auditor, tmp_path)

    assert manifest["full_range"] is False
    rows = read_rows(data, "jsonl")
    assert {row["site_id"] for row in rows} == {
        activity["approved"].site_id,
        activity["in_a2"].site_id,
        None,
    }
    assert {row["context"].get("region") for row in rows if row["site_id"] is None} == {"RA"}


# --- the standalone verifier -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_verifier_accepts_a_fresh_export(activity, company_auditor, tmp_path, fmt):
    data, manifest, result = export(company_auditor, tmp_path, fmt)

    run = verifier(data, manifest, cwd=tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith(f"VERIFIED {data}: {result['row_count']} rows")
    assert "chain linked from its start" in run.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_verifier_rejects_one_edited_row_naming_it(activity, company_auditor, tmp_path, fmt):
    data, manifest, _ = export(company_auditor, tmp_path, fmt)
    edited = event_with_comment("Within budget", "decision.approve")
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("Within budget", "Within budgets", 1), encoding="utf-8")

    run = verifier(data, manifest, cwd=tmp_path)

    assert run.returncode == 1
    assert f"row with sequence {edited.sequence} " in run.stdout
    assert "do not match its hash" in run.stdout
    assert "SHA-256" in run.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_verifier_rejects_a_full_range_with_a_row_deleted(
    activity, company_auditor, tmp_path, fmt
):
    data, manifest, _ = export(company_auditor, tmp_path, fmt)
    lines = data.read_bytes().split(b"\n")
    header = 1 if fmt == "csv" else 0
    del lines[header + 9]  # the event numbered 10
    data.write_bytes(b"\n".join(lines))

    run = verifier(data, manifest, cwd=tmp_path)

    assert run.returncode == 1
    assert "row with sequence 11 " in run.stdout
    assert "expected event #10" in run.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_filtered_subset_verifies_row_by_row(activity, auditor, tmp_path, fmt):
    data, manifest, result = export(auditor, tmp_path, fmt, sites=("A1",), kind="decision")

    run = verifier(data, manifest, cwd=tmp_path)

    assert result["row_count"] == 2 and result["full_range"] is False
    assert run.returncode == 0, run.stdout + run.stderr
    assert "a subset: each row checked on its own" in run.stdout


def test_a_subset_with_an_edited_row_fails(activity, auditor, tmp_path):
    data, manifest, _ = export(auditor, tmp_path, "jsonl", sites=("A1",))
    rows = data.read_text(encoding="utf-8").splitlines()
    tampered = json.loads(rows[3])
    tampered["actor"] = "someone.else"
    rows[3] = json.dumps(tampered)
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")

    run = verifier(data, manifest, cwd=tmp_path)

    assert run.returncode == 1
    assert f"row with sequence {tampered['sequence']} " in run.stdout


def test_the_verifier_needs_two_readable_files(tmp_path):
    missing = verifier(tmp_path / "nope.csv", tmp_path / "nope.json", cwd=tmp_path)
    no_arguments = subprocess.run(
        [sys.executable, "-I", "-S", str(TOOL)], capture_output=True, text=True, check=False
    )

    assert missing.returncode == 2 and "cannot read the manifest" in missing.stderr
    assert no_arguments.returncode == 2 and "Usage" in no_arguments.stderr


def test_the_verifier_implements_the_same_canonical_form_as_the_ledger(activity):
    spec = importlib.util.spec_from_file_location("verify_export", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    event = AuditEvent.objects.get(sequence=5)

    assert tool.FIELDS == chain.FIELDS
    assert tool.CANONICAL_VERSION == chain.CANONICAL_VERSION
    assert tool.GENESIS == chain.GENESIS
    assert tool.seal(chain.payload(event)) == chain.seal(chain.payload(event)) == event.hash


# --- scope and accountability ----------------------------------------------------------------


def test_each_export_is_recorded_in_the_ledger(activity, auditor, tmp_path):
    _, _, manifest = export(auditor, tmp_path, "csv", region="RA")

    recorded = AuditEvent.objects.get(action="audit.exported")
    assert recorded.sequence == manifest["recorded_as_sequence"]
    assert recorded.actor == auditor
    assert recorded.after["filters"]["region"] == "RA"
    assert recorded.after["row_count"] == manifest["row_count"]
    assert recorded.after["data_sha256"] == manifest["data_sha256"]


@pytest.mark.parametrize(
    "filters",
    [{"region": "RB"}, {"sites": ("B1",)}, {"sites": ("A1", "B1")}, {"sites": ("ZZ",)}],
    ids=["region-b", "site-b1", "a1-and-b1", "unknown-site"],
)
def test_a_regional_auditor_cannot_export_another_region_and_the_attempt_is_recorded(
    activity, auditor, filters
):
    out, manifest_out = io.BytesIO(), io.BytesIO()

    with pytest.raises(PermissionDenied):
        audit_export(
            actor=auditor,
            filters=ExportFilters(**filters),
            fmt="csv",
            out=out,
            manifest_out=manifest_out,
        )

    assert out.getvalue() == manifest_out.getvalue() == b""
    refused = AuditEvent.objects.get(action="audit.export_refused")
    assert refused.actor == auditor
    assert "may not audit" in refused.comment
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_someone_who_audits_nothing_cannot_export(activity, outsider):
    with pytest.raises(PermissionDenied):
        audit_export(
            actor=outsider,
            filters=ExportFilters(),
            fmt="jsonl",
            out=io.BytesIO(),
            manifest_out=io.BytesIO(),
        )

    assert AuditEvent.objects.filter(action="audit.export_refused", actor=outsider).exists()


# --- manage.py export_audit ------------------------------------------------------------------


def test_the_command_writes_the_data_and_its_manifest(activity, auditor, tmp_path):
    output = tmp_path / "a1.csv"
    stdout = io.StringIO()

    call_command(
        "export_audit",
        "--as=auditor",
        "--site=a1",
        "--from=2026-03-10",
        "--to=2026-03-10",
        "--format=csv",
        f"--output={output}",
        stdout=stdout,
    )

    manifest = json.loads((tmp_path / "a1.csv.manifest.json").read_text())
    assert manifest["filters"]["sites"] == ["A1"]
    assert manifest["data_file"] == "a1.csv"
    assert manifest["data_sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert f"Exported {manifest['row_count']} events" in stdout.getvalue()
    assert verifier(output, tmp_path / "a1.csv.manifest.json", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "--as USERNAME"),
        (["--as=nobody"], "No active user 'nobody'"),
        (["--as=auditor", "--from=10/03/2026"], "YYYY-MM-DD"),
        (["--as=auditor", "--from=2026-03-10", "--to=2026-03-01"], "--to must not come before"),
        (["--as=auditor", "--region=RB"], "Export refused: You may not audit every site"),
    ],
)
def test_the_command_refuses_bad_input_and_writes_nothing(
    activity, auditor, tmp_path, arguments, message
):
    output = tmp_path / "events.jsonl"

    with pytest.raises(CommandError, match=message):
        call_command("export_audit", *arguments, "--format=jsonl", f"--output={output}")

    assert list(tmp_path.iterdir()) == []


class _WriteRecorder(io.BytesIO):
    """A file that remembers how big its largest single write was."""

    largest = 0
    writes = 0

    def write(self, data) -> int:
        self.largest = max(self.largest, len(data))
        self.writes += 1
        return super().write(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_long_export_is_written_in_bounded_blocks_not_held_in_memory(fmt, monkeypatch):
    from datetime import UTC, datetime

    from portal.audit import export as export_module
    from portal.audit.export_writers import HashingSink

    monkeypatch.setattr(HashingSink, "BLOCK_BYTES", 16_384)
    at = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    values = (
        (
            n,
            at,
            "request.approved",
            7,
            "rm.benelux",
            None,
            "approvals.approvalrequest",
            str(n),
            f"AR-{n:06}",
            3,
            "Benelux v2",
            {"state": "in_review"},
            {"state": "approved"},
            "Within budget.",
            {"ip": "10.0.0.1"},
            f"{n - 1:064x}",
            f"{n:064x}",
            *("rm.benelux", "Rita", "Marsh", None, None, None, "AMS", "Amsterdam"),
        )
        for n in range(1, 5_001)
    )
    out = _WriteRecorder()

    summary = export_module.WRITERS[fmt](values, out)

    assert summary.row_count == 5_000
    assert summary.digest.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()
    assert out.writes >= 10
    assert out.largest < 16_384 + 300_000  # a block, plus at most one CSV drain of 500 rows
