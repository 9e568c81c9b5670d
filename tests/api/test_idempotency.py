"""Idempotency-Key on API mutations: replayed, refused when reused, 409 while in progress."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import include, path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from portal.api import services, tasks
from portal.api.idempotency import fingerprint
from portal.api.models import ApiToken, IdempotencyKey
from portal.webhooks.models import InboundDelivery

TOKENS = "/api/v1/tokens/"


class SlowCreate(APIView):
    """Creates a token and takes its time, so that duplicates really overlap it."""

    api_action = "tokens.create"

    def post(self, request):
        token, _ = services.token_create(
            actor=request.user, user=request.user, name=request.data["name"]
        )
        time.sleep(0.5)
        return Response({"id": token.pk}, status=201)


class CrashesFirst(APIView):
    """Fails unexpectedly on its first call, after writing; works from then on."""

    api_action = "tokens.create"
    calls: list[int] = []

    def post(self, request):
        self.calls.append(1)
        token, _ = services.token_create(actor=request.user, user=request.user, name="crashy")
        if len(self.calls) == 1:
            raise RuntimeError("the database went away")
        return Response({"id": token.pk}, status=201)


urlpatterns = [
    path("api/v1/slow-create/", SlowCreate.as_view()),
    path("api/v1/crashes-first/", CrashesFirst.as_view()),
    path("", include("portal.urls")),
]


def _tokens(user) -> int:
    return ApiToken.objects.filter(user=user).count()


def test_same_key_and_body_replays_the_first_response(api_client_for, requester):
    client = api_client_for(requester)
    first = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY='"k-1"')
    again = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY='"k-1"')
    assert first.status_code == again.status_code == 201
    # The same token, described the same way; only its secret is not repeated (next test).
    assert again.json() == {**first.json(), "token": None}
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _tokens(requester) == 2  # the client's own token and exactly one new one


def test_a_replay_never_shows_or_stores_a_new_tokens_secret(api_client_for, requester):
    client = api_client_for(requester)
    first = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-s")
    secret = first.json()["token"]
    assert secret.startswith("tg_")
    assert first["Cache-Control"] == "no-store"

    again = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-s")

    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["token"] is None
    assert again.json()["id"] == first.json()["id"]
    assert again["Cache-Control"] == "no-store"
    kept = IdempotencyKey.objects.get(key="k-s")
    assert secret.encode() not in bytes(kept.body)
    assert secret not in json.dumps(kept.headers)


def test_same_key_with_another_body_or_path_is_a_409_conflict(api_client_for, requester):
    client = api_client_for(requester)
    client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other_body = client.post(TOKENS, {"name": "edi"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other_path = client.post(
        f"{TOKENS}{client.token.pk}/revoke/", format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    for response in (other_body, other_path):
        assert response.status_code == 409
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "idempotency_key_reused"
    assert _tokens(requester) == 2
    assert ApiToken.objects.get(pk=client.token.pk).revoked_at is None


def test_a_key_belongs_to_its_caller(api_client_for, requester, site_manager):
    mine, theirs = api_client_for(requester), api_client_for(site_manager)
    for client in (mine, theirs):
        response = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
    assert _tokens(requester) == _tokens(site_manager) == 2


def test_without_a_key_every_request_runs(api_client_for, requester):
    client = api_client_for(requester)
    client.post(TOKENS, {"name": "n8n"}, format="json")
    client.post(TOKENS, {"name": "n8n"}, format="json")
    assert _tokens(requester) == 3
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ['"two words"', '"' + "x" * 255 + '"', "x" * 255])
def test_structured_field_strings_with_spaces_are_keys(api_client_for, requester, key):
    # RFC 8941 strings may hold spaces; the draft makes the key such a string.
    client = api_client_for(requester)
    first = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert _tokens(requester) == 2


@pytest.mark.parametrize(
    "key", ["", '""', "x" * 256, "tab\there", "two words", '"' + "x" * 256 + '"']
)
def test_a_malformed_key_is_400_and_changes_nothing(api_client_for, requester, key):
    client = api_client_for(requester)
    response = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert _tokens(requester) == 1


def test_a_duplicate_of_a_running_request_is_409(api_client_for, requester):
    client = api_client_for(requester)
    body = json.dumps({"name": "n8n"})
    same = APIRequestFactory().post(TOKENS, body, content_type="application/json")
    services.idempotency_claim(
        principal=f"token:{client.token.pk}", key="k-3", fingerprint=fingerprint(same)
    )
    response = client.post(
        TOKENS, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-3"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert response["Retry-After"] == "1"
    assert _tokens(requester) == 1


def test_an_abandoned_claim_is_taken_over(api_client_for, requester, settings):
    client = api_client_for(requester)
    first = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    row = IdempotencyKey.objects.get(key="k-4")
    # As if the process that claimed it had died before finishing.
    IdempotencyKey.objects.filter(pk=row.pk).update(
        completed_at=None, created_at=timezone.now() - timedelta(minutes=10)
    )
    again = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert IdempotencyKey.objects.get(pk=row.pk).completed_at is not None


@pytest.mark.urls(__name__)
def test_a_view_that_fails_releases_its_key_and_changes_nothing(api_client_for, requester):
    CrashesFirst.calls.clear()
    client = api_client_for(requester)
    crashed = client.post("/api/v1/crashes-first/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-x")
    assert crashed.status_code == 500
    assert crashed["Content-Type"] == "application/problem+json"
    assert not IdempotencyKey.objects.filter(key="k-x").exists()
    assert _tokens(requester) == 1  # the failed request's token was rolled back

    retried = client.post("/api/v1/crashes-first/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-x")

    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried
    assert _tokens(requester) == 2
    assert IdempotencyKey.objects.get(key="k-x").status_code == 201


def test_validation_errors_are_kept_and_replayed(api_client_for, requester):
    client = api_client_for(requester)
    first = client.post(TOKENS, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    again = client.post(TOKENS, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert first.status_code == again.status_code == 422
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == "application/problem+json"


def test_a_refused_request_does_not_use_up_its_key(requester):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(requester)
    forgot_csrf = client.post(TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-6")
    assert forgot_csrf.status_code == 403
    csrf = "A" * 32  # a CSRF secret, as the portal's pages set in the cookie
    client.cookies["csrftoken"] = csrf
    retried = client.post(
        TOKENS, {"name": "n8n"}, format="json", HTTP_IDEMPOTENCY_KEY="k-6", HTTP_X_CSRFTOKEN=csrf
    )
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert _tokens(requester) == 1


def test_safe_methods_and_inbound_webhooks_ignore_the_key(api_client_for, requester):
    client = api_client_for(requester)
    assert client.get(TOKENS, HTTP_IDEMPOTENCY_KEY="k-7").status_code == 200
    webhook = client.post(
        "/api/v1/webhooks/carrier/", {"type": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-7"
    )
    assert webhook.status_code == 404  # no such source here; answered by the webhook view
    assert webhook.json() == {"error": "No webhook source named 'carrier'."}
    assert not IdempotencyKey.objects.exists()
    assert not InboundDelivery.objects.exists()


def test_keys_are_kept_a_day_then_purged(api_client_for, requester, time_machine, settings):
    purges = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "api.purge_idempotency_keys"
    ]
    assert len(purges) == 1
    client = api_client_for(requester)
    time_machine.move_to(timezone.now(), tick=False)
    client.post(TOKENS, {"name": "old"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    time_machine.shift(timedelta(hours=23))
    client.post(TOKENS, {"name": "young"}, format="json", HTTP_IDEMPOTENCY_KEY="young")
    time_machine.shift(timedelta(hours=1, minutes=1))
    assert tasks.purge_idempotency_keys.delay().get() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    replay = client.post(TOKENS, {"name": "young"}, format="json", HTTP_IDEMPOTENCY_KEY="young")
    assert replay["Idempotent-Replayed"] == "true"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite lets one writer in at a time, so the claims cannot race; PostgreSQL only",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
def test_concurrent_duplicates_run_once(api_client_for, requester):
    secret = api_client_for(requester).secret
    threads_count = 12
    barrier = threading.Barrier(threads_count)
    responses: list = [None] * threads_count

    def send(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            barrier.wait(timeout=10)
            responses[index] = client.post(
                "/api/v1/slow-create/", {"name": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="race"
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    ran = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    in_progress = [r for r in responses if r.status_code == 409]
    replayed = [r for r in responses if r.get("Idempotent-Replayed") == "true"]
    assert len(ran) == 1
    assert len(ran) + len(in_progress) + len(replayed) == threads_count
    assert in_progress, "the duplicates should have overlapped the slow first request"
    assert ApiToken.objects.filter(user=requester, name="once").count() == 1
    after = APIClient()
    after.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    replay = after.post(
        "/api/v1/slow-create/", {"name": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="race"
    )
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == ran[0].content
