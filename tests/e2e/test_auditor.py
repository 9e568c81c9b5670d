"""An auditor searches the ledger and exports a filtered set as the auditor's package."""

import json
import re
import zipfile

from playwright.sync_api import expect

from approvals import services
from portal.audit.checkpoints import checkpoint_take
from portal.audit.models import AuditEvent


def test_auditor_exports_a_filtered_trail_and_gets_both_files(demo, page_for, screenshot):
    users = demo.users
    approved = demo.raise_request("requester", "AMS", "1400")
    services.request_approve(actor=users["site.manager"], request_id=approved.pk, comment="OK")
    demo.raise_request("sm.london", "LON", "1300")
    checkpoint_take()

    page = page_for(users["auditor"])
    page.get_by_role("link", name="Audit").click()
    page.wait_for_url("**/audit/")
    page.get_by_role("button", name="Verify the chain now").click()
    page.wait_for_load_state()
    assert "Verification started" in page.locator("main").inner_text()
    assert "Intact" in page.locator("#verification").inner_text()
    page.get_by_label("Object").fill(approved.reference)
    page.get_by_label("Object").press("Enter")  # the search acts at once, as every filter does
    results = page.locator("#events")
    expect(page).to_have_url(re.compile(r"[?&]q=AR-"))
    expect(results).to_contain_text(approved.reference)
    assert "LON" not in results.inner_text()

    export = page.locator("#export")
    export.get_by_label("Sites (none: all in your scope)").select_option("AMS")
    with page.expect_download() as download_info:
        export.get_by_role("button", name="Export and download").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    folder = download.suggested_filename.removesuffix(".zip")
    assert folder.startswith("tollgate-ledger-AMS-")
    with zipfile.ZipFile(download.path()) as archive:
        names = sorted(archive.namelist())
        members = ("README.txt", "events.csv", "events.jsonl", "manifest.json", "verify_export.py")
        assert names == [f"{folder}/{name}" for name in members]
        manifest = json.loads(archive.read(f"{folder}/manifest.json"))
        rows = [
            json.loads(line)
            for line in archive.read(f"{folder}/events.jsonl").decode().splitlines()
        ]
    assert manifest["row_count"] == len(rows) > 0
    assert manifest["filters"]["sites"] == ["AMS"]
    assert any(row["object_reference"].startswith(approved.reference) for row in rows)
    assert AuditEvent.objects.filter(action="audit.exported", actor=users["auditor"]).exists()

    page.reload()
    assert "Your recent exports" in page.locator("#export").inner_text()
