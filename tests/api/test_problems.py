"""Every API error is an RFC 9457 problem with a stable code, and never leaks internals."""

import base64
import json
import logging
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404
from django.urls import path
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from portal.api.models import ApiToken
from portal.core.errors import Conflict
from tests.approvals.conftest import _working_morning, matrix, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

PROBLEM = "application/problem+json"


class _Input(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=1)


RAISED = {
    "transition": lambda: TransitionNotAllowed(
        "No transition from approved", object=SimpleNamespace(state="approved"), method=None
    ),
    "concurrent": lambda: ConcurrentTransition("Changed meanwhile"),
    "conflict": lambda: Conflict("AR-000001 was already decided."),
    "django_validation": lambda: ValidationError({"amount": ["Must be positive."]}),
    "django_validation_plain": lambda: ValidationError("Not on a Sunday."),
    "permission": lambda: PermissionDenied("You do not decide your own request."),
    "http404": lambda: Http404("gone"),
    "does_not_exist": lambda: ObjectDoesNotExist("ApprovalRequest matching query"),
    "unexpected": lambda: RuntimeError("password=hunter2 at db.internal:5432"),
}


class Raiser(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request, kind):
        raise RAISED[kind]()

    def post(self, request, kind):
        _Input(data=request.data).is_valid(raise_exception=True)
        return Response(status=204)


def _crash(request):
    raise RuntimeError("password=hunter2")


urlpatterns = [
    path("api/v1/raise/<str:kind>/", Raiser.as_view()),
    path("api/v1/plain-crash/", _crash),
]
handler404 = "portal.api.problems.handler404"
handler500 = "portal.api.problems.handler500"


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:tollgate:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("transition", 409, "transition_not_allowed"),
        ("concurrent", 409, "concurrent_transition"),
        ("conflict", 409, "conflict"),
        ("django_validation", 422, "validation_failed"),
        ("django_validation_plain", 422, "validation_failed"),
        ("permission", 403, "permission_denied"),
        ("http404", 404, "not_found"),
        ("does_not_exist", 404, "not_found"),
    ],
)
def test_service_errors_become_problems(db, kind, status, code):
    _problem(APIClient().get(f"/api/v1/raise/{kind}/"), status, code)


@pytest.mark.urls(__name__)
def test_stale_transition_says_the_current_state(db):
    body = _problem(APIClient().get("/api/v1/raise/transition/"), 409, "transition_not_allowed")
    assert body["current_state"] == "approved"


@pytest.mark.urls(__name__)
def test_conflict_keeps_the_services_message(db):
    body = _problem(APIClient().get("/api/v1/raise/conflict/"), 409, "conflict")
    assert body["detail"] == "AR-000001 was already decided."


@pytest.mark.urls(__name__)
def test_field_errors_are_listed_per_field(db):
    response = APIClient().post("/api/v1/raise/x/", {"amount": "0"}, format="json")
    body = _problem(response, 422, "validation_failed")
    assert list(body["errors"]) == ["amount"]
    assert body["detail"].startswith("amount: ")
    django_body = _problem(
        APIClient().get("/api/v1/raise/django_validation/"), 422, "validation_failed"
    )
    assert django_body["errors"] == {"amount": ["Must be positive."]}


@pytest.mark.urls(__name__)
def test_unexpected_error_is_a_logged_500_without_internals(db, caplog):
    with caplog.at_level(logging.ERROR, logger="portal.api.problems"):
        response = APIClient().get("/api/v1/raise/unexpected/")
    body = _problem(response, 500, "internal_error")
    assert "hunter2" not in response.content.decode()
    assert body["detail"] == "Something went wrong on our side."
    assert any("hunter2" in record.exc_text for record in caplog.records if record.exc_text)


@pytest.mark.urls(__name__)
def test_a_crash_outside_drf_under_api_is_a_problem_too(db):
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/plain-crash/")
    _problem(response, 500, "internal_error")
    assert "hunter2" not in response.content.decode()


def test_unknown_api_address_is_a_404_problem(db):
    _problem(APIClient().get("/api/v1/no-such-resource/"), 404, "not_found")


UNROUTED = [
    "/api/v1/no-such-resource/",
    "/api/v1/tokens/1/else/",
    "/api/v1/approvals/abc/",
    "/api/v1/approvals",
    "/api/v2/approvals/",
    "/api/",
]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_every_unrouted_api_address_is_a_404_problem_whatever_debug_says(
    settings, requester, debug, method
):
    """Not Django's HTML 404 page nor its debug page, nor the CSRF failure page for a session's
    unsafe request: no route serves these, so there is nothing to protect."""
    settings.DEBUG = debug
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(requester)
    for url in UNROUTED:
        response = getattr(client, method)(url, HTTP_IDEMPOTENCY_KEY="same-key-for-all")
        _problem(response, 404, "not_found")
    assert "end in a slash" in client.get("/api/v1/approvals").json()["detail"]


def _operations(client) -> dict[str, set[str]]:
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    return {
        address: {method for method in operations if method != "parameters"}
        for address, operations in schema["paths"].items()
        if not address.startswith("/api/v1/webhooks/")
    }


def test_every_undeclared_method_is_a_405_problem_with_allow(api_client_for, requester):
    client = api_client_for(requester)
    for address, declared in _operations(client).items():
        url = address.replace("{id}", "1")
        for method in {"get", "post", "put", "patch", "delete"} - declared:
            # With an Idempotency-Key too: a method no route serves claims no key.
            response = getattr(client, method)(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
            _problem(response, 405, "method_not_allowed")
            allowed = {name.strip().lower() for name in response["Allow"].split(",")}
            assert declared <= allowed, (address, method, response["Allow"])
    created = client.post(
        "/api/v1/tokens/", {"name": "n"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert created.status_code == 201


def test_unknown_page_outside_the_api_stays_html(db):
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_unparseable_json_is_400(api_client_for, requester):
    response = api_client_for(requester).post(
        "/api/v1/tokens/", data="{not json", content_type="application/json"
    )
    _problem(response, 400, "malformed_request")
    assert ApiToken.objects.filter(user=requester).count() == 1


def test_wrong_media_type_is_415(api_client_for, requester):
    response = api_client_for(requester).post(
        "/api/v1/tokens/", data="name=x", content_type="application/x-www-form-urlencoded"
    )
    _problem(response, 415, "unsupported_media_type")


def test_unacceptable_accept_header_is_406(api_client_for, requester):
    response = api_client_for(requester).get("/api/v1/tokens/", HTTP_ACCEPT="application/xml")
    _problem(response, 406, "not_acceptable")


def test_unsupported_method_is_405(api_client_for, requester):
    response = api_client_for(requester).put("/api/v1/tokens/", {}, format="json")
    _problem(response, 405, "method_not_allowed")


def test_oversized_body_is_413_and_changes_nothing(api_client_for, requester, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = api_client_for(requester)
    response = client.post("/api/v1/tokens/", {"name": "x" * 2000}, format="json")
    _problem(response, 413, "payload_too_large")
    keyed = client.post(
        "/api/v1/tokens/", {"name": "x" * 2000}, format="json", HTTP_IDEMPOTENCY_KEY="big"
    )
    _problem(keyed, 413, "payload_too_large")
    assert ApiToken.objects.filter(user=requester).count() == 1


def test_a_cursor_the_list_did_not_give_out_names_no_page(api_client_for, requester):
    # Opaque to the schema, so a well-formed but unknown cursor is a missing page (404), like an
    # id that names no object, not invalid input.
    response = api_client_for(requester).get("/api/v1/tokens/?cursor=bm9wZQ")
    body = _problem(response, 404, "not_found")
    assert "cursor" in body["detail"]


LISTS = [
    "/api/v1/approvals/",
    "/api/v1/exceptions/",
    "/api/v1/audit/events/",
    "/api/v1/sites/",
    "/api/v1/policies/",
    "/api/v1/tokens/",
]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize(
    "position", ["abc", "1e5", "\x00", "9" * 30, "-" + "9" * 30, "2026-13-01", "10000-01-01"]
)
def test_a_crafted_cursor_is_404_on_every_list(api_client_for, auditor, url, position):
    # A cursor is base64 anyone can write; its position used to reach the database as is.
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    response = api_client_for(auditor).get(url, {"cursor": cursor})
    body = _problem(response, 404, "not_found")
    assert "cursor" in body["detail"]


def test_a_cursor_this_api_gave_out_still_pages(api_client_for, requester):
    from portal.api import services

    for number in range(3):
        services.token_create(actor=None, user=requester, name=f"t{number}")
    client = api_client_for(requester)
    first = client.get("/api/v1/tokens/?page_size=2").json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 2
    assert {row["id"] for row in first["results"]}.isdisjoint(
        row["id"] for row in second["results"]
    )


def test_json_nested_too_deeply_is_400_not_500(api_client_for, requester):
    body = "[" * 50_000 + "]" * 50_000
    response = api_client_for(requester).post(
        "/api/v1/tokens/", data=body, content_type="application/json"
    )
    _problem(response, 400, "malformed_request")
    assert ApiToken.objects.filter(user=requester).count() == 1


@pytest.mark.parametrize("size", ["0", "201", "ten", "-1", "5.0", "٣"])
def test_bad_page_size_is_422(api_client_for, requester, size):
    response = api_client_for(requester).get(f"/api/v1/tokens/?page_size={size}")
    body = _problem(response, 422, "validation_failed")
    assert "page_size" in body["errors"]


def test_page_size_pages_with_a_cursor(api_client_for, requester):
    from portal.api import services

    for number in range(3):
        services.token_create(actor=None, user=requester, name=f"t{number}")
    client = api_client_for(requester)
    first = client.get("/api/v1/tokens/?page_size=3").json()
    assert len(first["results"]) == 3
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1
    seen = {row["id"] for row in first["results"] + second["results"]}
    assert len(seen) == 4


def test_an_offset_beyond_what_the_database_takes_is_compared_in_utc(api_client_for, requester):
    # ISO 8601 allows offsets up to 23:59; PostgreSQL refuses those beyond 15:59 (it was a 500).
    response = api_client_for(requester).get(
        "/api/v1/approvals/",
        {"created_after": "0784-06-21T13:10:45+13:39", "created_before": "4269-03-25T16:44-23:36"},
    )
    assert response.status_code == 200, response.content


def test_an_export_without_a_signing_key_is_a_503_problem(api_client_for, auditor, settings):
    settings.DEBUG = False
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = ""
    response = api_client_for(auditor).get("/api/v1/audit/export/", {"format": "csv"})
    body = _problem(response, 503, "signing_unavailable")
    assert "AUDIT_SIGNING_KEY" in body["detail"]


def test_optional_text_of_spaces_is_a_value_not_a_blank(api_client_for, site_manager):
    # The schema allows any non-empty text; trimming spaces to nothing refused it as blank.
    client = api_client_for(site_manager)
    assert client.get("/api/v1/approvals/inbox/", {"q": "  "}).status_code == 200
    assert client.get("/api/v1/approvals/inbox/", {"cursor": " "}).status_code == 404


def test_a_nul_character_in_details_is_refused_not_a_500(
    api_client_for, requester, matrix, site_a1
):
    body = {
        "kind": "purchase",
        "site_id": site_a1.pk,
        "title": "Crates",
        "reason": "Stock",
        "amount": "10.00",
        "counterparty": "Acme",
        "details": {"note": ["fine", {"deep\x00key": "x"}]},
    }
    response = api_client_for(requester).post("/api/v1/approvals/", body, format="json")
    body = _problem(response, 422, "validation_failed")
    assert "details" in body["errors"]
