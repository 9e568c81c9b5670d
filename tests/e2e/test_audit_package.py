"""An auditor exports one request's trail and an outside auditor checks it with the bundled
verifier alone: VERIFIED as exported; REJECTED after one edited byte, or when the manifest is
signed by another key."""

import base64
import json
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.urls import reverse

from approvals import services
from portal.audit.checkpoints import checkpoint_take
from tests.e2e.conftest import PHONE

AUDITOR_DESKTOP = {"width": 1366, "height": 900}


def check(folder: Path, key_file: Path) -> subprocess.CompletedProcess:
    """The bundled checker, run as the README says, isolated from anything installed."""
    return subprocess.run(
        [sys.executable, "-I", "verify_export.py", "manifest.json", "--public-key", str(key_file)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_outside_auditor_verifies_a_requests_trail_and_catches_tampering(
    demo, page_for, screenshot, live_server, tmp_path
):
    users = demo.users
    request = demo.raise_request("requester", "AMS", "1400")
    services.request_approve(
        actor=users["site.manager"], request_id=request.pk, comment='=HYPERLINK("http://x","y")'
    )
    checkpoint_take()

    page = page_for(users["auditor"], viewport=AUDITOR_DESKTOP)
    page.goto(reverse("audit:home"))
    package = page.locator("#export")
    key_id = package.locator("#signing-key code").first.inner_text()
    assert "The auditor's package" in package.inner_text()
    package.scroll_into_view_if_needed()
    screenshot(page, "auditor", full_page=False)

    page.goto(reverse("approvals:detail", args=[request.pk]))
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export this trail").click()
    download = download_info.value
    folder_name = download.suggested_filename.removesuffix(".zip")
    assert folder_name.startswith(f"tollgate-trail-{request.reference}-")
    with zipfile.ZipFile(download.path()) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / folder_name
    readme = (folder / "README.txt").read_text()
    assert "python3 -I verify_export.py manifest.json --public-key" in readme
    assert "What VERIFIED does not prove" in readme

    # The key comes from the installation itself, as the README tells the auditor to get it.
    key_file = tmp_path / "tollgate-audit-key.json"
    with urllib.request.urlopen(f"{live_server.url}/.well-known/tollgate-audit-key") as answer:
        key_file.write_bytes(answer.read())
    assert json.loads(key_file.read_text())["current"]["key_id"] == key_id

    verified = check(folder, key_file)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("VERIFIED") == 2
    assert f"signed by the installation's key {key_id}" in verified.stdout
    csv_text = (folder / "events.csv").read_text()
    assert """'=HYPERLINK(""http://x"",""y"")""" in csv_text  # a comment, not a formula

    data = folder / "events.jsonl"
    original = data.read_bytes()
    data.write_bytes(original.replace(b"1400", b"1401", 1))
    edited = check(folder, key_file)
    assert edited.returncode == 1
    assert edited.stdout.startswith("REJECTED")
    assert "do not match its hash" in edited.stdout and "SHA-256" in edited.stdout
    data.write_bytes(original)

    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    forger = Ed25519PrivateKey.generate()
    forged_id = _key_id(forger)
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    signed = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    manifest["signature"] = {
        "algorithm": "Ed25519",
        "key_id": forged_id,
        "value": base64.b64encode(forger.sign(signed.encode())).decode(),
    }
    manifest_file.write_text(json.dumps(manifest))
    forged = check(folder, key_file)
    assert forged.returncode == 1
    assert f"signed by key {forged_id}, which is not among the keys given" in forged.stdout

    phone = page_for(users["auditor"], viewport=PHONE)
    phone.goto(reverse("audit:home"))
    phone.locator("#signing-key").scroll_into_view_if_needed()
    screenshot(phone, "auditor-phone", full_page=False)


def _key_id(key: Ed25519PrivateKey) -> str:
    import hashlib

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
