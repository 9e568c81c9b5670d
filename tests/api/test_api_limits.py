"""What the API must not give away or take without limit.

- Assigning a case to someone who may not work it answers exactly as for a user id that does not
  exist: the refusal names nobody, so it cannot be used to list the user directory.
- Free text is capped as the portal's forms cap it, in the serializers (the schema says so) and
  again in the services, so no entry point stores more.
- The audit export records itself in the ledger, so it is not answered to the browser's session:
  a page on another site could otherwise make a signed-in auditor's browser export (and record
  it) with a plain link. Integrations call it with a token, which no other site can send.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from approvals import services as approval_services
from approvals.models import Decision
from exceptions import services as case_services
from exceptions.models import CaseState
from exceptions.services import case_raise
from portal.audit.models import AuditEvent
from portal.core.textlimits import COMMENT_MAX, JUSTIFICATION_MAX
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

APPROVALS = "/api/v1/approvals/"
CASES = "/api/v1/exceptions/"
EXPORT = "/api/v1/audit/export/"


@pytest.fixture
def invoice_a1(site_a1):
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="high",
        title="Bill 41 differs from its order",
        source="odoo",
        dedupe_key="odoo:account.move:41:invoice_mismatch",
        payload={"id": 41},
        evidence={"difference": "120.00", "tolerance_pct": "2"},
        amount_at_stake=Decimal("120.00"),
        currency="EUR",
    )
    return case


@pytest.fixture
def purchase_a1(matrix, requester, site_a1):
    return raise_request(requester, site_a1, amount="1000")


# --- assigning names nobody -------------------------------------------------------------------


def test_assigning_to_a_non_worker_answers_as_for_no_such_user(
    finance_api, site_manager, invoice_a1, django_user_model
):
    missing_id = (django_user_model.objects.order_by("-pk").first().pk or 0) + 1000
    url = f"{CASES}{invoice_a1.pk}/assign/"

    not_a_worker = finance_api.post(url, {"owner_id": site_manager.pk}, format="json")
    no_such_user = finance_api.post(url, {"owner_id": missing_id}, format="json")

    assert not_a_worker.status_code == no_such_user.status_code == 404
    assert not_a_worker.json() == no_such_user.json()
    assert site_manager.get_username() not in not_a_worker.content.decode()
    invoice_a1.refresh_from_db()
    assert invoice_a1.owner is None


# --- free text is capped ----------------------------------------------------------------------


def _too_long(limit: int) -> str:
    return "x" * (limit + 1)


@pytest.mark.parametrize(
    ("client_name", "path", "body", "field"),
    [
        ("site_manager_api", "approve/", {"comment": _too_long(COMMENT_MAX)}, "comment"),
        ("site_manager_api", "reject/", {"reason": _too_long(COMMENT_MAX)}, "reason"),
        ("requester_api", "withdraw/", {"reason": _too_long(COMMENT_MAX)}, "reason"),
    ],
)
def test_decision_text_longer_than_the_forms_allow_is_refused(
    request, purchase_a1, client_name, path, body, field
):
    client = request.getfixturevalue(client_name)
    events = AuditEvent.objects.count()

    response = client.post(f"{APPROVALS}{purchase_a1.pk}/{path}", body, format="json")

    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    purchase_a1.refresh_from_db()
    assert purchase_a1.state == "in_review"
    assert AuditEvent.objects.count() == events


def test_a_justification_longer_than_the_form_allows_is_refused(requester_api, matrix, site_a1):
    body = {
        "kind": "purchase",
        "site_id": site_a1.pk,
        "title": "Crates",
        "reason": _too_long(JUSTIFICATION_MAX),
        "amount": "100.00",
    }

    response = requester_api.post(APPROVALS, body, format="json")

    assert response.status_code == 422, response.content
    assert "reason" in response.json()["errors"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "resolve/",
            {"kind": "invoice_mismatch", "code": "bill_corrected", "note": _too_long(COMMENT_MAX)},
            "note",
        ),
        ("dismiss/", {"reason": _too_long(COMMENT_MAX)}, "reason"),
    ],
)
def test_case_text_longer_than_the_forms_allow_is_refused(
    finance_api, invoice_a1, path, body, field
):
    response = finance_api.post(f"{CASES}{invoice_a1.pk}/{path}", body, format="json")

    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    invoice_a1.refresh_from_db()
    assert invoice_a1.state == CaseState.NEW


def test_the_schema_states_the_caps(anonymous_api, db):
    schemas = anonymous_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    schemas = schemas["components"]["schemas"]

    # A text that may be blank is "the capped text, or nothing" (a oneOf).
    comment = schemas["ApproveRequest"]["properties"]["comment"]
    assert max(choice["maxLength"] for choice in comment["oneOf"]) == COMMENT_MAX
    assert schemas["RejectRequest"]["properties"]["reason"]["maxLength"] == COMMENT_MAX
    assert schemas["InvoiceMismatchResolveRequest"]["properties"]["note"]["maxLength"] == (
        COMMENT_MAX
    )
    assert schemas["ReasonRequest"]["properties"]["reason"]["maxLength"] == COMMENT_MAX
    creating = schemas["PurchaseRequestCreateRequest"]["properties"]
    assert creating["reason"]["maxLength"] == JUSTIFICATION_MAX


def test_the_services_refuse_overlong_text_whoever_calls_them(
    site_manager, requester, finance, purchase_a1, invoice_a1, site_a1
):
    """Every entry point (forms, API, e-mail links, bulk actions) ends in these services."""
    overlong = _too_long(COMMENT_MAX)
    calls = [
        lambda: approval_services.request_approve(
            actor=site_manager, request_id=purchase_a1.pk, comment=overlong
        ),
        lambda: approval_services.request_reject(
            actor=site_manager, request_id=purchase_a1.pk, reason=overlong
        ),
        lambda: approval_services.request_withdraw(
            actor=requester, request_id=purchase_a1.pk, reason=overlong
        ),
        lambda: case_services.case_dismiss(actor=finance, case_id=invoice_a1.pk, reason=overlong),
        lambda: case_services.case_resolve(
            actor=finance, case_id=invoice_a1.pk, code="bill_corrected", note=overlong
        ),
        lambda: raise_request(requester, site_a1, reason=_too_long(JUSTIFICATION_MAX)),
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert not Decision.objects.filter(request=purchase_a1).exists()
    invoice_a1.refresh_from_db()
    assert invoice_a1.state == CaseState.NEW


# --- the export is for tokens -----------------------------------------------------------------


def test_the_audit_export_is_not_answered_to_a_browser_session(auditor, purchase_a1):
    browser = APIClient()
    browser.force_login(auditor)
    events = AuditEvent.objects.count()

    response = browser.get(EXPORT, {"format": "csv"})

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert AuditEvent.objects.count() == events


def test_the_audit_export_still_answers_a_token(auditor_api, purchase_a1):
    response = auditor_api.get(EXPORT, {"format": "csv"})

    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="audit.exported").count() == 1


# --- values of the JSON type the schema states --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("dismiss/", {"reason": -971425346}, "reason"),
        ("resolve/", {"kind": "invoice_mismatch", "code": "bill_corrected", "note": 7}, "note"),
        ("assign/", {"owner_id": "5"}, "owner_id"),
        ("assign/", {"owner_id": True}, "owner_id"),
    ],
)
def test_a_value_of_another_json_type_is_refused_not_converted(
    finance_api, invoice_a1, path, body, field
):
    """DRF would read 7 as "7" and "5" as 5; the schema says text and a whole number, so a
    request that breaks it is refused and changes nothing."""
    response = finance_api.post(f"{CASES}{invoice_a1.pk}/{path}", body, format="json")

    assert response.status_code == 422, response.content
    assert set(response.json()["errors"]) == {field}
    invoice_a1.refresh_from_db()
    assert (invoice_a1.state, invoice_a1.owner_id) == ("new", None)


def test_a_request_amount_is_a_decimal_string_and_submit_a_truth_value(requester_api, site_a1):
    body = {"kind": "expedited_freight", "site_id": site_a1.pk, "title": "Courier"}
    body |= {"reason": "Urgent", "details": {"carrier": "DHL"}}

    as_number = requester_api.post(APPROVALS, {**body, "amount": 100}, format="json")
    as_word = requester_api.post(
        APPROVALS, {**body, "amount": "100", "submit": "no"}, format="json"
    )

    assert set(as_number.json()["errors"]) == {"amount"}
    assert set(as_word.json()["errors"]) == {"submit"}
    assert as_number.status_code == as_word.status_code == 422
