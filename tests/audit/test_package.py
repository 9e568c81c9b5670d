"""The auditor's package: signed manifests, the stdlib Ed25519 check, published keys, names
beside ids, spreadsheet-safe CSV, unique names, trail exports and the polled verdict."""

import base64
import csv
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from approvals import services as approval_services
from exceptions.services import case_raise
from portal.audit import signing
from portal.audit.checkpoints import checkpoint_take
from portal.audit.models import AuditEvent
from portal.audit.services import ledger_verify
from portal.audit.views import VERIFY_LOCK
from portal.core import spreadsheet
from tests.approvals.conftest import raise_request
from tests.audit.activity import _working_morning, activity, company_auditor, matrix, staffed
from tests.audit.test_export import export

__all__ = ["_working_morning", "activity", "company_auditor", "matrix", "staffed"]

TOOL = Path(__file__).resolve().parents[2] / "portal" / "audit" / "verify_export.py"
FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)"]


def _tool():
    spec = importlib.util.spec_from_file_location("verify_export_standalone", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The checker as an outside auditor runs it: isolated, no site-packages."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(TOOL), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def seed_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode()


def public_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


# --- Ed25519 in the standard library (RFC 8032 section 7.1) -----------------------------------

RFC_8032_VECTORS = [
    (  # TEST 1
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (  # TEST 2
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
        "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (  # TEST 3
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67"
        "f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("public", "message", "signature"), RFC_8032_VECTORS)
def test_the_stdlib_verifier_accepts_the_rfc_8032_test_vectors(public, message, signature):
    tool = _tool()
    public, message, signature = map(bytes.fromhex, (public, message, signature))

    assert tool.ed25519_verify(public, message, signature)
    assert not tool.ed25519_verify(public, message + b"!", signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not tool.ed25519_verify(public, message, flipped)


def test_the_stdlib_verifier_refuses_a_signature_with_s_not_below_the_group_order():
    tool = _tool()
    public, message, signature = map(bytes.fromhex, RFC_8032_VECTORS[0])
    s = int.from_bytes(signature[32:], "little") + tool._L  # same point, malleated scalar

    assert not tool.ed25519_verify(public, message, signature[:32] + s.to_bytes(32, "little"))


def test_the_stdlib_verifier_agrees_with_cryptography_on_fresh_signatures():
    tool = _tool()
    for size in (0, 1, 63, 64, 1000):
        key = Ed25519PrivateKey.generate()
        message = bytes(range(256)) * 4
        message = message[:size]
        public = base64.b64decode(public_b64(key))
        assert tool.ed25519_verify(public, message, key.sign(message))
        other = base64.b64decode(public_b64(Ed25519PrivateKey.generate()))
        assert not tool.ed25519_verify(other, message, key.sign(message))


def test_the_verifiers_restore_rule_is_the_spreadsheet_writers():
    tool = _tool()
    samples = ["", "'", "''", "'=1", "=1", "'a", "a'", "-", "'\t", "\r", "@x", "plain", "+"]

    assert tool.CSV_TRIGGERS == spreadsheet.TRIGGERS
    assert tool.CSV_ESCAPE == spreadsheet.ESCAPE
    for text in samples:
        assert tool.restore(spreadsheet.neutralise(text)) == text
        assert tool.restore(text) == spreadsheet.restore(text)


# --- signed manifests ---------------------------------------------------------------------------


def test_a_manifest_is_signed_and_checks_with_the_published_key(
    activity, company_auditor, tmp_path, client
):
    data, manifest_path, manifest = export(company_auditor, tmp_path, "jsonl")
    document = client.get("/.well-known/tollgate-audit-key").json()
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(document))

    assert manifest["signature"]["algorithm"] == "Ed25519"
    assert manifest["signature"]["key_id"] == document["current"]["key_id"]
    for key in (str(key_file), document["current"]["public_key"]):
        run = run_tool(data, manifest_path, "--public-key", key, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.startswith("VERIFIED")
        assert f"signed by the installation's key {manifest['signature']['key_id']}" in run.stdout


def test_a_manifest_changed_after_signing_is_rejected(activity, company_auditor, tmp_path):
    data, manifest_path, manifest = export(company_auditor, tmp_path, "jsonl")
    manifest["generated_by"] = "someone.else"
    manifest_path.write_text(json.dumps(manifest))

    run = run_tool(data, manifest_path, "--public-key", signing.current_key().base64, cwd=tmp_path)

    assert run.returncode == 1
    assert run.stdout.startswith("REJECTED")
    assert "signature does not verify" in run.stdout


def test_a_manifest_signed_by_an_unknown_key_is_rejected_naming_the_key(
    activity, company_auditor, tmp_path, settings
):
    stranger = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = seed_b64(stranger)
    data, manifest_path, _ = export(company_auditor, tmp_path, "jsonl")
    settings.AUDIT_SIGNING_KEY = seed_b64(Ed25519PrivateKey.generate())

    run = run_tool(data, manifest_path, "--public-key", signing.current_key().base64, cwd=tmp_path)

    assert run.returncode == 1
    stranger_id = signing.key_id(base64.b64decode(public_b64(stranger)))
    assert f"signed by key {stranger_id}, which is not among the keys given" in run.stdout


def test_after_rotation_an_export_signed_by_the_previous_key_still_verifies(
    activity, company_auditor, tmp_path, settings, client
):
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = seed_b64(old)
    data, manifest_path, _ = export(company_auditor, tmp_path, "csv")
    settings.AUDIT_SIGNING_KEY = seed_b64(new)
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = [f"{public_b64(old)}@2026-03-01"]

    document = client.get("/.well-known/tollgate-audit-key").json()
    (tmp_path / "keys.json").write_text(json.dumps(document))
    run = run_tool(data, manifest_path, "--public-key", tmp_path / "keys.json", cwd=tmp_path)

    assert document["current"]["public_key"] == public_b64(new)
    assert document["previous"] == [
        {
            "key_id": signing.key_id(base64.b64decode(public_b64(old))),
            "public_key": public_b64(old),
            "retired_on": "2026-03-01",
        }
    ]
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_published_key_is_public_cacheable_and_never_the_private_key(client, settings):
    response = client.get("/.well-known/tollgate-audit-key")
    pem = client.get("/.well-known/tollgate-audit-key", {"format": "pem"})

    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "max-age=3600" in response["Cache-Control"]
    document = response.json()
    raw = base64.b64decode(document["current"]["public_key"])
    assert document["algorithm"] == "Ed25519"
    assert document["current"]["key_id"] == signing.key_id(raw) == _sha_prefix(raw)
    assert pem.content.decode().startswith("-----BEGIN PUBLIC KEY-----")
    assert settings.AUDIT_SIGNING_KEY not in response.content.decode() + pem.content.decode()


def _sha_prefix(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()[:16]


# --- what a manifest and a row say ------------------------------------------------------------


def test_the_manifest_names_the_range_and_the_latest_checkpoint(
    activity, company_auditor, tmp_path
):
    checkpoint = checkpoint_take()
    _, _, manifest = export(company_auditor, tmp_path, "jsonl", sites=("A1",))

    assert manifest["checkpoint"] == {
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "at": checkpoint.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    a1 = AuditEvent.objects.filter(site__code="A1").order_by("sequence")
    assert (manifest["first_sequence"], manifest["last_sequence"]) == (
        a1.first().sequence,
        a1.last().sequence,
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rows_carry_names_beside_ids(activity, company_auditor, tmp_path, fmt):
    deputy = activity["delegate"]
    deputy.first_name, deputy.last_name = "Dana", "Deputy"
    deputy.save()
    data, _, _ = export(company_auditor, tmp_path, fmt)
    approve = AuditEvent.objects.get(comment="Within budget", action="decision.approve")

    if fmt == "jsonl":
        rows = [json.loads(line) for line in data.read_text().splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(data.read_text(), newline="")))
    row = rows[approve.sequence - 1]

    assert (row["actor_username"], row["actor_name"]) == ("deputy", "Dana Deputy")
    assert row["on_behalf_of_username"] == approve.on_behalf_of.username
    assert (row["site_code"], row["site_name"]) == ("A1", approve.site.name)


# --- spreadsheet safety ---------------------------------------------------------------------


@pytest.fixture
def formulas(site_a1, requester, site_manager, matrix):
    """A case title and request comments typed as spreadsheet formulas."""
    cases = []
    for number, text in enumerate(FORMULAS):
        case, _ = case_raise(
            kind="invoice_mismatch",
            site=site_a1,
            severity="high",
            title=text,
            source="odoo",
            dedupe_key=f"odoo:account.move:{number}:invoice_mismatch",
            payload={"id": number},
            evidence={},
        )
        cases.append(case)
        request = raise_request(requester, site_a1, amount="900", title=text)
        approval_services.request_reject(actor=site_manager, request_id=request.pk, reason=text)
    return cases


def test_formulas_typed_by_people_come_out_neutralised_in_the_ledger_csv(
    formulas, company_auditor, tmp_path
):
    data, manifest_path, manifest = export(company_auditor, tmp_path, "csv")
    text = data.read_text(encoding="utf-8")
    cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]

    for formula in FORMULAS:
        assert f"'{formula}" in cells  # the comment, escaped
        assert formula not in cells  # never a live formula
    assert manifest["files"][0]["csv_escaping"] == spreadsheet.RULE
    accepted = run_tool(data, manifest_path, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr

    data.write_text(text.replace("'@SUM(A1)", "'@SUM(A2)", 1), encoding="utf-8")
    rejected = run_tool(data, manifest_path, cwd=tmp_path)
    assert rejected.returncode == 1
    assert "do not match its hash" in rejected.stdout


def test_formulas_come_out_neutralised_in_the_chart_csv(client, regional_manager, monkeypatch):
    from portal.inbox import dashboards

    rows = [
        {"queue": "q", "site": text, "age": "1 day", "open": 1, "overdue": -1} for text in FORMULAS
    ]
    monkeypatch.setattr(dashboards, "exception_backlog", lambda user, now: rows)
    client.force_login(regional_manager)

    body = client.get(reverse("dashboards:csv", args=["exception-backlog"])).content.decode()
    cells = [row[1] for row in csv.reader(io.StringIO(body, newline=""))][1:]

    assert cells == [f"'{formula}" for formula in FORMULAS]
    assert body.splitlines()[1].endswith(",1,-1")  # numbers stay numbers


# --- the package from the pages -------------------------------------------------------------


def _unzip(response, tmp_path) -> tuple[dict, Path]:
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    (folder,) = {name.split("/", 1)[0] for name in archive.namelist()}
    archive.extractall(tmp_path)
    return json.loads(archive.read(f"{folder}/manifest.json")), tmp_path / folder


def test_a_requests_trail_exports_with_its_linked_case(
    activity, auditor, site_a1, tmp_path, client
):
    request = activity["rejected"]
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="high",
        title="Bill differs from its order",
        source="odoo",
        dedupe_key="odoo:account.move:7:invoice_mismatch",
        payload={"id": 7},
        evidence={},
    )
    type(case).objects.filter(pk=case.pk).update(linked_request=request)
    client.force_login(auditor)

    manifest, folder = _unzip(
        client.post(reverse("audit:trail-export", args=["request", request.pk])), tmp_path
    )

    rows = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert {(row["object_type"], row["object_id"]) for row in rows} == {
        ("approvals.approvalrequest", str(request.pk)),
        ("exceptions.exceptioncase", str(case.pk)),
    }
    assert manifest["subject"] == {
        "type": "request",
        "id": str(request.pk),
        "reference": request.reference,
    }
    assert folder.name.startswith(f"tollgate-trail-{request.reference}-")
    run = run_tool(
        folder / "manifest.json", "--public-key", signing.current_key().base64, cwd=folder
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Trail of " + request.reference in client.get(reverse("audit:home")).content.decode()


def test_people_who_may_not_audit_the_request_get_404_for_its_export(
    activity, site_manager, outsider, client
):
    url = reverse("audit:trail-export", args=["request", activity["approved"].pk])
    for person in (site_manager, outsider):
        client.force_login(person)
        assert client.post(url).status_code == 404
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_request_page_offers_the_export_to_its_auditor_only(
    activity, auditor, requester, client
):
    url = reverse("approvals:detail", args=[activity["approved"].pk])
    client.force_login(auditor)
    assert "Export this trail" in client.get(url).content.decode()
    client.force_login(requester)
    assert "Export this trail" not in client.get(url).content.decode()


def test_two_exports_in_the_same_second_get_different_names(activity, auditor, client):
    client.force_login(auditor)
    url = reverse("audit:trail-export", args=["request", activity["approved"].pk])
    second_start = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)
    with time_machine.travel(second_start, tick=False):
        first, second = client.post(url), client.post(url)

    assert first.filename != second.filename
    stamp = second_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for response in (first, second):
        assert response.filename.startswith(
            f"tollgate-trail-{activity['approved'].reference}-{stamp}-export"
        )


# --- "Verify now" ---------------------------------------------------------------------------


def test_the_verification_panel_polls_while_running_and_shows_the_verdict_when_done(
    activity, auditor, client
):
    client.force_login(auditor)
    status = reverse("audit:verify-status")
    cache.set(VERIFY_LOCK, datetime.now(UTC).isoformat(), 60)

    running = client.get(status).content.decode()
    ledger_verify(actor=auditor)
    done = client.get(status).content.decode()
    cache.delete(VERIFY_LOCK)

    assert 'hx-trigger="every 2s"' in running and "Checking" in running
    head = AuditEvent.objects.filter(action="audit.verified").get().after["head_sequence"]
    assert "hx-trigger" not in done
    assert "Intact" in done and f"up to event #{head}" in done


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def test_the_auditor_page_and_its_status_cost_the_same_queries_however_many_exports(
    activity, auditor, client
):
    client.force_login(auditor)
    url = reverse("audit:trail-export", args=["request", activity["approved"].pk])
    client.post(url)
    few = (
        _queries(client, reverse("audit:home")),
        _queries(client, reverse("audit:verify-status")),
    )
    for _ in range(6):
        client.post(url)
        ledger_verify(actor=auditor)

    many = (
        _queries(client, reverse("audit:home")),
        _queries(client, reverse("audit:verify-status")),
    )

    assert many == few


def test_without_a_signing_key_an_export_is_refused_plainly_and_records_nothing(
    activity, auditor, client, settings
):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.DEBUG = False
    client.force_login(auditor)

    response = client.post(reverse("audit:export"), {"sites": ["A1"]})
    page = client.get(reverse("audit:home")).content.decode()

    assert response.status_code == 503
    assert "No audit signing key: set AUDIT_SIGNING_KEY" in response.content.decode()
    assert "Exports cannot be signed" in page
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
    assert client.get("/.well-known/tollgate-audit-key").status_code == 404
