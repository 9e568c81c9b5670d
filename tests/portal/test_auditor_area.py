"""The auditor area: ledger search in scope, exports as downloads, verification status."""

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from portal.audit.checkpoints import checkpoint_take
from portal.audit.models import AuditEvent
from tests import ledger
from tests.audit.activity import _working_morning, activity, company_auditor, matrix, staffed

__all__ = ["_working_morning", "activity", "company_auditor", "matrix", "staffed"]

pytestmark = pytest.mark.django_db


def search(client, **params):
    response = client.get(reverse("audit:home"), params)
    assert response.status_code == 200
    return response.context["events"]


def test_search_finds_only_events_in_scope(client, activity, auditor):
    client.force_login(auditor)
    events = search(client)
    assert events
    assert {event.site.code for event in events if event.site} <= {"A1", "A2"}
    assert not search(client, q=activity["in_b1"].reference)
    page = client.get(reverse("audit:home")).content.decode()
    assert activity["in_b1"].reference not in page


def test_search_filters_by_object_actor_action_and_site(client, activity, auditor, site_manager):
    client.force_login(auditor)
    rejected = activity["rejected"]
    by_object = search(client, q=rejected.reference)
    assert by_object and {e.object_id for e in by_object if e.object_type.endswith("request")} == {
        str(rejected.pk)
    }
    by_actor = search(client, actor=site_manager.username)
    assert by_actor and {e.actor_label for e in by_actor} == {site_manager.username}
    by_action = search(client, action="request.rejected")
    assert [e.object_id for e in by_action] == [str(rejected.pk)]
    by_family = search(client, action="request.")
    assert by_family and all(e.action.startswith("request.") for e in by_family)
    by_site = search(client, site="A2")
    assert by_site and {e.site.code for e in by_site} == {"A2"}


def test_search_links_to_the_decision_trail(client, activity, auditor):
    client.force_login(auditor)
    page = client.get(reverse("audit:home"), {"q": activity["approved"].reference}).content
    assert reverse("audit:trail", args=["request", activity["approved"].pk]).encode() in page


def test_search_pages_by_sequence(client, activity, auditor, monkeypatch):
    monkeypatch.setattr("portal.audit.views.PAGE_SIZE", 3)
    client.force_login(auditor)
    first = client.get(reverse("audit:home"), {"action": "request."})
    page_one = first.context["events"]
    assert len(page_one) == 3 and first.context["next_before"] == page_one[-1].sequence
    second = search(client, action="request.", before=first.context["next_before"])
    assert second and max(e.sequence for e in second) < min(e.sequence for e in page_one)


def test_bad_search_dates_are_explained(client, activity, auditor):
    client.force_login(auditor)
    response = client.get(
        reverse("audit:home"), {"date_from": "2026-03-10", "date_to": "2026-03-01"}
    )
    assert response.status_code == 200
    assert "must not come before" in response.content.decode()
    assert response.context["events"] == []


def test_people_who_audit_nothing_find_no_auditor_area(client, activity, site_manager):
    client.force_login(site_manager)
    assert client.get(reverse("audit:home")).status_code == 404
    assert client.post(reverse("audit:export"), {}).status_code == 404
    assert client.post(reverse("audit:verify")).status_code == 404


def _download(response, tmp_path) -> tuple[dict, Path]:
    """The package's manifest and the folder it was unzipped into."""
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    (folder,) = {name.split("/", 1)[0] for name in archive.namelist()}
    assert sorted(archive.namelist()) == [
        f"{folder}/{name}"
        for name in (
            "README.txt",
            "events.csv",
            "events.jsonl",
            "manifest.json",
            "verify_export.py",
        )
    ]
    archive.extractall(tmp_path)
    return json.loads(archive.read(f"{folder}/manifest.json")), tmp_path / folder


def test_export_downloads_the_auditors_package_and_is_audited(client, activity, auditor, tmp_path):
    client.force_login(auditor)
    response = client.post(reverse("audit:export"), {"sites": ["A1"]})
    manifest, folder = _download(response, tmp_path)
    assert [(entry["name"], entry["format"]) for entry in manifest["files"]] == [
        ("events.jsonl", "jsonl"),
        ("events.csv", "csv"),
    ]
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256((folder / entry["name"]).read_bytes()).hexdigest()
    assert manifest["filters"]["sites"] == ["A1"]
    expected = AuditEvent.objects.filter(site__code="A1").count()
    assert manifest["row_count"] == expected > 0
    recorded = AuditEvent.objects.get(sequence=manifest["recorded_as_sequence"])
    assert recorded.action == "audit.exported" and recorded.actor == auditor
    assert response.filename == f"{folder.name}.zip"
    assert folder.name.startswith("tollgate-ledger-A1-")
    assert folder.name.endswith(f"Z-export{manifest['recorded_as_sequence']}")
    # The bundled checker accepts both files, as an outside auditor runs it.
    checked = subprocess.run(
        [sys.executable, "-I", str(folder / "verify_export.py"), "manifest.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("VERIFIED") == 2
    readme = (folder / "README.txt").read_text()
    assert "python3 -I verify_export.py manifest.json --public-key" in readme
    assert "http://testserver/.well-known/tollgate-audit-key" in readme
    page = client.get(reverse("audit:home")).content.decode()
    assert "Your recent exports" in page and "Events of sites A1" in page


def test_export_outside_scope_is_refused_and_recorded(client, activity, auditor):
    client.force_login(auditor)
    response = client.post(reverse("audit:export"), {"region": "RB"})
    # RB is not offered to a region-A auditor: the form refuses it before any export runs.
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_export_of_a_site_not_offered_changes_nothing(client, activity, auditor):
    client.force_login(auditor)
    before = AuditEvent.objects.count()
    response = client.post(reverse("audit:export"), {"sites": ["ZZ"]})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert AuditEvent.objects.count() == before


def test_verify_now_records_the_result_and_is_rate_limited(client, activity, auditor):
    client.force_login(auditor)
    checkpoint_take()
    response = client.post(reverse("audit:verify"), follow=True)
    # The task runs in the worker (in process here); the page shows its recorded verdict.
    assert "Verification started" in response.content.decode()
    verified = AuditEvent.objects.filter(action="audit.verified")
    assert verified.count() == 1 and verified.get().after["intact"] is True
    page = client.get(reverse("audit:home")).content.decode()
    assert "Intact" in page and "Last checkpoint" in page and "kept in the database only" in page
    again = client.post(reverse("audit:verify"), follow=True)
    assert "can be verified again in" in again.content.decode()
    assert verified.count() == 1
    assert client.get(reverse("audit:verify")).status_code == 405


def test_verify_reports_a_tampered_ledger(client, activity, auditor, settings):
    from django.db import connection

    settings.AUDIT_VERIFY_INTERVAL_SECONDS = 0
    client.force_login(auditor)
    victim = AuditEvent.objects.filter(action="request.rejected").get()
    ledger.set_aside(connection)
    try:
        AuditEvent.objects.filter(pk=victim.pk).update(comment="Approved after all")
    finally:
        ledger.enforce(connection)
    response = client.post(reverse("audit:verify"), follow=True)
    page = response.content.decode()
    assert "Broken" in page and f"at event #{victim.sequence}" in page
    result = AuditEvent.objects.filter(action="audit.verified").get()
    assert result.after["intact"] is False and result.after["broken_at"] == victim.sequence


def test_area_costs_the_same_queries_whatever_the_ledger(
    client, activity, auditor, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(auditor)
    with CaptureQueriesContext(connection) as first:
        client.get(reverse("audit:home"))
    from approvals import services
    from tests.approvals.conftest import raise_request

    for amount in ("610", "620", "630"):
        request = raise_request(activity["delegate"], activity["approved"].site, amount=amount)
        services.request_withdraw(actor=activity["delegate"], request_id=request.pk)
    with django_assert_max_num_queries(len(first.captured_queries)):
        client.get(reverse("audit:home"))


def test_a_second_press_while_a_verification_runs_starts_none(client, activity, auditor):
    from django.core.cache import cache

    from portal.audit.views import VERIFY_LOCK

    client.force_login(auditor)
    cache.set(VERIFY_LOCK, "running", 60)  # as another web process leaves it while one runs

    response = client.post(reverse("audit:verify"), follow=True)

    assert "A verification is already running" in response.content.decode()
    assert not AuditEvent.objects.filter(action="audit.verified").exists()


@pytest.mark.parametrize("object_id", [str(10**30), "\N{SUPERSCRIPT TWO}", "12\x00", "-1"])
def test_a_trail_named_by_a_number_no_row_can_have_is_404(client, activity, auditor, object_id):
    client.force_login(auditor)
    for object_type in ("request", "case"):
        url = f"/audit/trail/{object_type}/{object_id}/"
        assert client.get(url).status_code == 404, url
    assert client.get(f"/audit/trail/approvals.delegation/{object_id}/").status_code == 404
    real = reverse("audit:trail", args=["request", activity["approved"].pk])
    assert client.get(real).status_code == 200


def test_an_event_waiting_for_its_seal_shows_as_pending(client, activity, auditor):
    request = activity["approved"]
    latest = AuditEvent.objects.filter(object_id=str(request.pk)).latest("sequence")
    waiting = AuditEvent(
        **{
            field.attname: getattr(latest, field.attname)
            for field in AuditEvent._meta.concrete_fields
            if field.attname not in {"id", "sequence", "prev_hash", "hash", "sealed_at", "txid"}
        }
    )
    waiting.comment = "Recorded a moment ago"
    waiting.save(force_insert=True)
    client.force_login(auditor)

    trail = client.get(reverse("audit:trail", args=["request", request.pk])).content.decode()
    assert "Recorded a moment ago" in trail
    assert "1 event pending seal" in trail
    assert f'id="pending-{waiting.pk}"' in trail
    assert "None" not in trail

    found = search(client)
    assert found[0].pk == waiting.pk  # newest first: the one not yet numbered leads
    assert "pending seal" in client.get(reverse("audit:home")).content.decode()
