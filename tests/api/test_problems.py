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

from approvals.errors import Conflict
from portal.api.models import ApiToken

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


def test_bad_cursor_is_422_not_404(api_client_for, requester):
    response = api_client_for(requester).get("/api/v1/tokens/?cursor=bm9wZQ")
    body = _problem(response, 422, "validation_failed")
    assert "cursor" in body["errors"]


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
def test_a_crafted_cursor_is_422_on_every_list(api_client_for, auditor, url, position):
    # A cursor is base64 anyone can write; its position used to reach the database as is.
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    response = api_client_for(auditor).get(url, {"cursor": cursor})
    body = _problem(response, 422, "validation_failed")
    assert "cursor" in body["errors"]


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
