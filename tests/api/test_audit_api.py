"""The audit ledger over the API: events in the caller's audit scope, and downloadable exports."""

import base64
import csv
import hashlib
import io
import json

import pytest

from portal.audit.export import CSV_COLUMNS
from portal.audit.models import AuditEvent
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

URL = "/api/v1/audit/events/"
EXPORT = "/api/v1/audit/export/"
REQUEST_TYPE = "approvals.approvalrequest"


@pytest.fixture
def purchases(matrix, requester, site_manager, staffed, site_a1, site_b1):
    """A purchase approved at A1 and one waiting at B1."""
    from approvals import services

    a1 = raise_request(requester, site_a1, amount="1000")
    services.request_approve(actor=site_manager, request_id=a1.pk, comment="Fine")
    b1 = raise_request(staffed["requester_b"], site_b1, amount="900")
    return a1, b1


def _rows(client, params=None) -> list[dict]:
    response = client.get(URL, params or {})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_auditor_reads_the_events_of_their_region_in_ledger_order(auditor_api, purchases):
    a1, b1 = purchases
    rows = _rows(auditor_api, {"page_size": 200})

    sequences = [row["sequence"] for row in rows]
    assert sequences == sorted(sequences)
    assert {row["site"] for row in rows} <= {"A1", "A2", None}
    about = {(row["object_type"], row["object_id"]) for row in rows}
    assert (REQUEST_TYPE, str(a1.pk)) in about
    assert (REQUEST_TYPE, str(b1.pk)) not in about
    assert all(len(row["hash"]) == 64 and row["at"].endswith("Z") for row in rows)


def test_filters_narrow_to_one_object_an_action_family_and_an_actor(auditor_api, purchases):
    a1, _ = purchases
    trail = _rows(auditor_api, {"object_type": REQUEST_TYPE, "object_id": a1.pk})
    assert [row["action"] for row in trail] == [
        "request.created",
        "request.submitted",
        "request.in_review",
        "decision.approve",
        "request.approved",
    ]

    decisions = _rows(auditor_api, {"action": "decision"})
    assert [(row["action"], row["actor"]) for row in decisions] == [
        ("decision.approve", "site.manager")
    ]
    assert _rows(auditor_api, {"actor": "site.manager", "action": "request.approved"})
    assert _rows(auditor_api, {"site": "B1"}) == []
    assert auditor_api.get(URL, {"at_after": "yesterday"}).status_code == 422


def test_an_event_out_of_audit_scope_answers_404(auditor_api, purchases):
    _, b1 = purchases
    outside = AuditEvent.objects.filter(object_id=str(b1.pk), object_type=REQUEST_TYPE).first()
    inside = AuditEvent.objects.filter(site__code="A1").first()

    assert auditor_api.get(f"{URL}{outside.pk}/").status_code == 404
    response = auditor_api.get(f"{URL}{inside.pk}/")
    assert response.status_code == 200
    assert response.json()["hash"] == inside.hash


def test_people_without_the_audit_role_see_no_events(site_manager_api, purchases):
    assert _rows(site_manager_api) == []


def _download(response) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content)


def _manifest(response) -> dict:
    return json.loads(base64.b64decode(response["Tollgate-Export-Manifest"]))


def test_auditor_downloads_a_jsonl_export_that_matches_its_manifest(
    auditor, auditor_api, purchases
):
    response = auditor_api.get(EXPORT, {"format": "jsonl", "site": "A1"})
    body = _download(response)

    assert response["Content-Type"].startswith("application/jsonl")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = [json.loads(line) for line in body.decode().splitlines()]
    manifest = _manifest(response)
    assert manifest["row_count"] == len(rows) > 0
    assert {row["site_id"] for row in rows} == {purchases[0].site_id}
    assert manifest["data_sha256"] == hashlib.sha256(body).hexdigest()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert response["Repr-Digest"] == f"sha-256=:{digest}:"
    recorded = AuditEvent.objects.get(sequence=manifest["recorded_as_sequence"])
    assert (recorded.action, recorded.actor_id) == ("audit.exported", auditor.pk)


def test_a_csv_export_has_the_documented_columns(auditor_api, purchases):
    body = _download(auditor_api.get(EXPORT, {"format": "csv", "kind": "decision"}))

    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[CSV_COLUMNS.index("action")] for row in rows[1:]] == ["decision.approve"]


def test_exporting_a_site_one_may_not_audit_is_refused_and_recorded(
    auditor, auditor_api, purchases
):
    response = auditor_api.get(EXPORT, {"format": "csv", "site": "B1"})

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    refusal = AuditEvent.objects.get(action="audit.export_refused")
    assert refusal.actor_id == auditor.pk
    assert "B1" in refusal.comment


def test_export_input_errors_answer_422(auditor_api, purchases):
    events_before = AuditEvent.objects.count()

    assert auditor_api.get(EXPORT, {"format": "xlsx"}).status_code == 422
    assert auditor_api.get(EXPORT, {"format": "csv", "date_from": "2026-13-01"}).status_code == 422
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize(
    "days",
    [
        {"date_from": "2026-03-10", "date_to": "2026-03-01"},  # ends before it starts
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},  # the last day there is
    ],
)
def test_a_date_range_that_matches_no_event_exports_an_empty_file(auditor_api, purchases, days):
    """The dates filter, as the events list's `at_after` and `at_before` do: a range that ends
    before it starts is valid input that matches nothing, not an error."""
    response = auditor_api.get(EXPORT, {"format": "jsonl", **days})

    assert _download(response) == b""
    manifest = _manifest(response)
    assert manifest["row_count"] == 0
    assert (manifest["filters"]["date_from"], manifest["filters"]["date_to"]) == (
        days["date_from"],
        days["date_to"],
    )


def test_a_range_to_the_last_day_there_is_ends_nowhere(auditor_api, purchases):
    everything = _manifest(auditor_api.get(EXPORT, {"format": "jsonl"}))
    to_the_end = _manifest(auditor_api.get(EXPORT, {"format": "jsonl", "date_to": "9999-12-31"}))

    assert to_the_end["row_count"] >= everything["row_count"] > 0


def test_someone_who_audits_nothing_gets_403_from_export(site_manager_api, purchases):
    assert site_manager_api.get(EXPORT, {"format": "jsonl"}).status_code == 403


def test_events_waiting_for_their_seal_are_not_listed_until_numbered(auditor_api, purchases):
    a1, _ = purchases
    latest = AuditEvent.objects.filter(object_id=str(a1.pk)).latest("sequence")
    waiting = AuditEvent(
        **{
            field.attname: getattr(latest, field.attname)
            for field in AuditEvent._meta.concrete_fields
            if field.attname not in {"id", "sequence", "prev_hash", "hash", "sealed_at", "txid"}
        }
    )
    waiting.save(force_insert=True)

    rows = _rows(auditor_api, {"page_size": 200})

    assert rows and waiting.pk not in {row["id"] for row in rows}
    assert all(row["sequence"] is not None and row["hash"] for row in rows)
    assert auditor_api.get(f"{URL}{waiting.pk}/").status_code == 404
