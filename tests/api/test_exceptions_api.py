"""The exceptions resource: cases in scope, working them, and the queues in priority order."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from exceptions.models import CaseState
from exceptions.services import case_raise
from portal.audit.models import AuditEvent

URL = "/api/v1/exceptions/"


def _raise(site, key: str, **overrides):
    values = {
        "kind": "invoice_mismatch",
        "site": site,
        "severity": "high",
        "title": f"Bill {key} differs from its order",
        "source": "odoo",
        "dedupe_key": f"odoo:account.move:{key}:invoice_mismatch",
        "payload": {"id": key},
        "evidence": {"difference": "120.00", "tolerance_pct": "2"},
        "amount_at_stake": Decimal("120.00"),
        "currency": "EUR",
    }
    case, _ = case_raise(**(values | overrides))
    return case


@pytest.fixture
def invoice_a1(site_a1):
    return _raise(site_a1, "41")


@pytest.fixture
def invoice_b1(site_b1):
    return _raise(site_b1, "51", currency="GBP")


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def _actions(case) -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(object_type="exceptions.exceptioncase", object_id=case.pk)
    return [(event.action, event.actor_label) for event in events]


def test_finance_lists_the_cases_of_their_region_only(finance_api, invoice_a1, invoice_b1):
    assert _ids(finance_api.get(URL)) == {invoice_a1.pk}


def test_list_filters_by_queue_severity_state_and_overdue(
    finance_api, finance, site_a1, invoice_a1
):
    delay = _raise(site_a1, "42", kind="shipment_delay", severity="low", amount_at_stake=None)

    assert _ids(finance_api.get(URL, {"queue": "finance"})) == {invoice_a1.pk}
    assert _ids(finance_api.get(URL, {"severity": "low"})) == {delay.pk}
    assert _ids(finance_api.get(URL, {"state": "new"})) == {invoice_a1.pk, delay.pk}
    assert _ids(finance_api.get(URL, {"overdue": "true"})) == set()
    assert _ids(finance_api.get(URL, {"site_code": "A2"})) == set()
    assert finance_api.get(URL, {"severity": "dire"}).status_code == 422


def test_case_detail_shows_evidence_money_and_resolution_codes(finance_api, invoice_a1):
    body = finance_api.get(f"{URL}{invoice_a1.pk}/").json()

    assert body["reference"] == invoice_a1.reference
    assert body["evidence"] == {"difference": "120.00", "tolerance_pct": "2"}
    assert (body["amount_at_stake"], body["currency"]) == ("120.00", "EUR")
    assert body["occurrences"] == 1
    assert body["linked_request"] is None
    assert "credit_note_requested" in body["resolution_codes"]
    assert body["due_at"].endswith("Z")


def test_case_detail_says_what_finance_may_do_and_why_the_auditor_may_not(
    finance_api, auditor_api, invoice_a1
):
    worker = finance_api.get(f"{URL}{invoice_a1.pk}/").json()["available_actions"]
    reader = auditor_api.get(f"{URL}{invoice_a1.pk}/").json()["available_actions"]

    assert worker["assign"] == {"allowed": True, "reason": None}
    assert worker["start"] == {"allowed": False, "reason": "Work starts once the case is assigned."}
    not_worker = "Only people who work the Finance queue at A1."
    assert reader["assign"] == {"allowed": False, "reason": not_worker}
    assert reader["resolve"] == {"allowed": False, "reason": not_worker}
    assert set(worker) == set(reader) == {"assign", "start", "resolve", "dismiss", "reopen"}


def test_case_out_of_scope_answers_404(outsider_api, invoice_a1):
    assert outsider_api.get(f"{URL}{invoice_a1.pk}/").status_code == 404
    for action, body in [
        ("assign", {}),
        ("start", {}),
        ("resolve", {"code": "bill_corrected", "note": "x"}),
        ("dismiss", {"reason": "x"}),
        ("reopen", {"reason": "x"}),
    ]:
        response = outsider_api.post(f"{URL}{invoice_a1.pk}/{action}/", body, format="json")
        assert response.status_code == 404, action
    invoice_a1.refresh_from_db()
    assert invoice_a1.state == CaseState.NEW


def test_finance_takes_starts_and_resolves_a_case_each_step_audited(finance_api, invoice_a1):
    assigned = finance_api.post(f"{URL}{invoice_a1.pk}/assign/", {}, format="json")
    assert assigned.status_code == 200, assigned.content
    assert (assigned.json()["state"], assigned.json()["owner"]) == ("assigned", "finance")

    started = finance_api.post(f"{URL}{invoice_a1.pk}/start/")
    assert started.json()["state"] == "in_progress"

    resolved = finance_api.post(
        f"{URL}{invoice_a1.pk}/resolve/",
        {"kind": "invoice_mismatch", "code": "credit_note_requested", "note": "Credit 120.00"},
        format="json",
    )
    assert resolved.status_code == 200
    assert (resolved.json()["state"], resolved.json()["resolution_code"]) == (
        "resolved",
        "credit_note_requested",
    )
    assert _actions(invoice_a1)[1:] == [
        ("case.assigned", "finance"),
        ("case.started", "finance"),
        ("case.resolved", "finance"),
    ]


def test_assigning_to_someone_outside_the_queue_answers_404_and_changes_nothing(
    finance_api, site_manager, invoice_a1
):
    """An id that finds no one the case may be given to is not found, whether the person works
    elsewhere or there is no such person: the same problem document as any 404, its detail
    naming the field, and the case as it was."""
    actions = _actions(invoice_a1)
    nobody = get_user_model().objects.order_by("-pk").first().pk + 1000

    for owner_id in (site_manager.pk, nobody):
        response = finance_api.post(
            f"{URL}{invoice_a1.pk}/assign/", {"owner_id": owner_id}, format="json"
        )

        assert response.status_code == 404, owner_id
        assert response["Content-Type"] == "application/problem+json"
        assert response.json() == {
            "type": "urn:tollgate:problem:not_found",
            "title": "Not found.",
            "status": 404,
            "detail": "owner_id: No one with this id works this case's queue at its site.",
            "code": "not_found",
        }
    invoice_a1.refresh_from_db()
    assert (invoice_a1.state, invoice_a1.owner) == (CaseState.NEW, None)
    assert _actions(invoice_a1) == actions
    assert not AuditEvent.objects.filter(action="case.assigned").exists()


def test_resolving_needs_a_code_of_the_kind_and_a_note(finance_api, invoice_a1):
    url = f"{URL}{invoice_a1.pk}/resolve/"
    wrong_code = finance_api.post(
        url, {"kind": "invoice_mismatch", "code": "redelivered", "note": "Done"}, format="json"
    )
    no_note = finance_api.post(
        url, {"kind": "invoice_mismatch", "code": "bill_corrected", "note": " "}, format="json"
    )
    no_kind = finance_api.post(url, {"code": "bill_corrected", "note": "Done"}, format="json")

    assert wrong_code.status_code == no_note.status_code == no_kind.status_code == 422
    assert "credit_note_requested" in wrong_code.json()["errors"]["code"][0]
    assert set(no_note.json()["errors"]) == {"note"}
    assert set(no_kind.json()["errors"]) == {"kind"}
    invoice_a1.refresh_from_db()
    assert invoice_a1.state == CaseState.NEW


def test_a_resolution_for_another_kind_of_case_answers_409(finance_api, invoice_a1):
    """The body names the kind it was written for: a fitting code of another kind is no code
    of this case, and the case is not what the client thought it was."""
    response = finance_api.post(
        f"{URL}{invoice_a1.pk}/resolve/",
        {"kind": "delivery_failed", "code": "redelivered", "note": "Done"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "kind_mismatch"
    assert "invoice_mismatch" in response.json()["detail"]
    invoice_a1.refresh_from_db()
    assert (invoice_a1.state, invoice_a1.resolution_code) == (CaseState.NEW, "")


def test_the_schema_lists_the_codes_of_each_kind_as_administered(finance_api, db):
    from exceptions.models import ResolutionCode

    ResolutionCode.objects.create(kind="invoice_mismatch", code="bill_corrected", active=False)
    ResolutionCode.objects.create(kind="invoice_mismatch", code="paid_twice", label="Paid twice")
    schema = finance_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    variant = schema["components"]["schemas"]["InvoiceMismatchResolveRequest"]

    codes = {
        option["const"]: option["description"] for option in variant["properties"]["code"]["oneOf"]
    }
    assert "bill_corrected" not in codes
    assert codes["paid_twice"] == "Paid twice"
    assert "redelivered" not in codes
    mapping = schema["components"]["schemas"]["ResolveRequest"]["discriminator"]["mapping"]
    assert mapping["invoice_mismatch"].endswith("/InvoiceMismatchResolveRequest")


def test_a_site_manager_may_see_but_not_work_the_finance_queue(site_manager_api, invoice_a1):
    assert site_manager_api.get(f"{URL}{invoice_a1.pk}/").status_code == 200

    response = site_manager_api.post(
        f"{URL}{invoice_a1.pk}/dismiss/", {"reason": "Not mine"}, format="json"
    )

    assert response.status_code == 403


def test_dismissed_case_is_reopened_and_a_second_dismissal_of_it_conflicts(finance_api, invoice_a1):
    dismissed = finance_api.post(
        f"{URL}{invoice_a1.pk}/dismiss/", {"reason": "Duplicate bill"}, format="json"
    )
    assert dismissed.json()["state"] == "dismissed"

    stale = finance_api.post(f"{URL}{invoice_a1.pk}/dismiss/", {"reason": "Again"}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict"

    no_reason = finance_api.post(f"{URL}{invoice_a1.pk}/reopen/", {}, format="json")
    assert no_reason.status_code == 422

    reopened = finance_api.post(
        f"{URL}{invoice_a1.pk}/reopen/", {"reason": "Credit never came"}, format="json"
    )
    assert reopened.status_code == 200
    assert reopened.json()["state"] == "assigned"
    assert ("case.reopened", "finance") in _actions(invoice_a1)


def test_queue_ranks_open_cases_and_says_why(finance_api, site_a1, invoice_a1, invoice_b1):
    critical = _raise(site_a1, "43", severity="critical", amount_at_stake=Decimal("5000"))

    response = finance_api.get(f"{URL}queue/")

    assert response.status_code == 200
    items = response.json()
    assert [item["case"]["id"] for item in items] == [critical.pk, invoice_a1.pk]
    assert items[0]["reason"] == "critical severity · €5,000.00 at stake"
    assert finance_api.get(f"{URL}queue/", {"severity": "high"}).json()[0]["case"]["id"] == (
        invoice_a1.pk
    )


def test_summary_counts_open_cases_per_queue_in_scope(finance_api, invoice_a1, invoice_b1):
    response = finance_api.get(f"{URL}summary/")

    assert response.status_code == 200
    [finance_queue] = response.json()
    assert (finance_queue["queue"], finance_queue["open"], finance_queue["overdue"]) == (
        "finance",
        1,
        0,
    )
    assert finance_queue["aging"]["under 1 day"] == 1
