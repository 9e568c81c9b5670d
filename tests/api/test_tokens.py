"""API tokens: created once-visible and hashed, listed, revoked, expiring, narrowed, audited."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from portal.api import selectors, services
from portal.api.models import ApiToken
from portal.audit.models import AuditEvent

PROBLEM = "application/problem+json"


def test_token_is_stored_hashed_and_shown_once(requester):
    token, secret = services.token_create(actor=requester, user=requester, name="n8n")
    assert secret.startswith(token.prefix)
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret not in {stored.digest, stored.prefix, stored.name}
    assert stored.digest == selectors.digest(secret)
    assert stored.expires_at - timezone.now() > timedelta(days=89)


def test_creating_and_revoking_a_token_are_audited(requester):
    token, _ = services.token_create(actor=requester, user=requester, name="n8n")
    services.token_revoke(actor=requester, token_id=token.pk)
    services.token_revoke(actor=requester, token_id=token.pk)
    actions = list(
        AuditEvent.objects.filter(object_type="api.apitoken", object_id=str(token.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == ["api_token.created", "api_token.revoked"]


def test_nobody_creates_a_token_for_someone_else(requester, site_manager):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.token_create(actor=site_manager, user=requester, name="sneaky")
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": " "}, "name"),
        ({"expires_at": "past"}, "expires_at"),
        ({"expires_at": "far"}, "expires_at"),
        ({"actions": ["approve everything"]}, "actions"),
    ],
)
def test_bad_token_options_are_refused(requester, options, field):
    options = {"name": "n8n", **options}
    when = {"past": timedelta(minutes=-1), "far": timedelta(days=400)}
    if options.get("expires_at") in when:
        options["expires_at"] = timezone.now() + when[options["expires_at"]]
    with pytest.raises(ValidationError) as raised:
        services.token_create(actor=requester, user=requester, **options)
    assert field in raised.value.message_dict
    assert not ApiToken.objects.exists()


def test_token_and_bearer_keywords_both_authenticate(api_client_for, requester):
    client = api_client_for(requester)
    for keyword in ("Token", "Bearer"):
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {client.secret}")
        response = client.get("/api/v1/tokens/")
        assert response.status_code == 200, keyword
        assert [row["id"] for row in response.json()["results"]] == [client.token.pk]


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked", "user_deactivated"])
def test_a_bad_token_gets_401_problem(api_client_for, requester, state):
    client = api_client_for(requester)
    if state == "unknown":
        client.credentials(HTTP_AUTHORIZATION="Bearer tg_not-a-real-token")
    elif state == "expired":
        ApiToken.objects.filter(pk=client.token.pk).update(expires_at=timezone.now())
    elif state == "revoked":
        services.token_revoke(actor=requester, token_id=client.token.pk)
    else:
        requester.is_active = False
        requester.save(update_fields=["is_active"])
    response = client.get("/api/v1/tokens/")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "token_invalid"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_credentials_get_401_problem(anonymous_api):
    response = anonymous_api.get("/api/v1/tokens/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_last_used_is_written_at_most_once_a_minute(api_client_for, requester, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    client = api_client_for(requester)
    client.get("/api/v1/tokens/")
    first = ApiToken.objects.get(pk=client.token.pk).last_used_at
    assert first is not None
    time_machine.shift(timedelta(seconds=30))
    client.get("/api/v1/tokens/")
    assert ApiToken.objects.get(pk=client.token.pk).last_used_at == first
    time_machine.shift(timedelta(seconds=61))
    client.get("/api/v1/tokens/")
    assert ApiToken.objects.get(pk=client.token.pk).last_used_at > first


def test_read_only_token_cannot_mutate(api_client_for, requester):
    client = api_client_for(requester, read_only=True)
    assert client.get("/api/v1/tokens/").status_code == 200
    response = client.post("/api/v1/tokens/", {"name": "escalated"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "token_read_only"
    assert ApiToken.objects.filter(user=requester).count() == 1


def test_token_narrowed_to_actions_calls_only_those(api_client_for, requester):
    client = api_client_for(requester, actions=("tokens.list",))
    assert client.get("/api/v1/tokens/").status_code == 200
    response = client.get(f"/api/v1/tokens/{client.token.pk}/")
    assert response.status_code == 403
    assert response.json()["code"] == "token_action_not_allowed"
    assert "tokens.retrieve" in response.json()["detail"]


def test_token_created_through_a_token_is_no_broader(api_client_for, requester):
    client = api_client_for(requester, actions=("tokens.create", "tokens.list"))
    broader = client.post("/api/v1/tokens/", {"name": "wider"}, format="json")
    assert broader.status_code == 403
    assert broader.json()["code"] == "permission_denied"
    assert "actions" in broader.json()["detail"]
    outliving = client.post(
        "/api/v1/tokens/",
        {"name": "longer", "actions": ["tokens.list"], "expires_in_days": 365},
        format="json",
    )
    assert outliving.status_code == 403
    assert "outlive" in outliving.json()["detail"]
    assert ApiToken.objects.filter(user=requester).count() == 1
    narrower = client.post(
        "/api/v1/tokens/", {"name": "lister", "actions": ["tokens.list"]}, format="json"
    )
    assert narrower.status_code == 201


def test_the_expiry_is_given_in_days_within_the_longest_a_token_lives(
    api_client_for, requester, settings
):
    client = api_client_for(requester)
    settings.API_TOKEN_MAX_DAYS = 30
    created = client.post("/api/v1/tokens/", {"name": "week", "expires_in_days": 7}, format="json")
    assert created.status_code == 201
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)

    as_float = client.post(
        "/api/v1/tokens/", {"name": "float", "expires_in_days": 7.0}, format="json"
    )
    assert as_float.status_code == 201  # JSON Schema's integer: 7.0 is one

    for days in (0, 31, "soon", 7.5, True):
        refused = client.post(
            "/api/v1/tokens/", {"name": "odd", "expires_in_days": days}, format="json"
        )
        assert refused.status_code == 422, days
        assert set(refused.json()["errors"]) == {"expires_in_days"}
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    field = schema["components"]["schemas"]["TokenCreateRequest"]["properties"]["expires_in_days"]
    assert (field["minimum"], field["maximum"]) == (1, 30)


def test_an_expiry_as_a_moment_is_refused_not_ignored(api_client_for, requester):
    """`expires_at` was the input once; a client still sending it is told, not handed a token
    that lives longer than it asked for."""
    client = api_client_for(requester)
    in_a_week = (timezone.now() + timedelta(days=7)).isoformat()
    refused = client.post(
        "/api/v1/tokens/", {"name": "old client", "expires_at": in_a_week}, format="json"
    )
    assert refused.status_code == 422
    assert "expires_in_days" in refused.json()["errors"]["expires_at"][0]
    assert ApiToken.objects.filter(user=requester).count() == 1


def test_create_shows_the_secret_once_and_the_list_never(api_client_for, requester):
    client = api_client_for(requester)
    created = client.post(
        "/api/v1/tokens/", {"name": "carrier feed", "read_only": True}, format="json"
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    assert created.json()["read_only"] is True
    assert created.json()["expires_at"].endswith("Z")
    listed = client.get("/api/v1/tokens/").content.decode()
    assert secret not in listed
    assert "carrier feed" in listed
    fresh = client.__class__()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert fresh.get("/api/v1/tokens/").status_code == 200


def test_revoke_endpoint_revokes_and_the_token_stops_working(api_client_for, requester):
    client = api_client_for(requester)
    other, secret = services.token_create(actor=requester, user=requester, name="old")
    response = client.post(f"/api/v1/tokens/{other.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert response.json()["active"] is False
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/tokens/").status_code == 401


def test_delete_revokes_too(api_client_for, requester):
    client = api_client_for(requester)
    other, _ = services.token_create(actor=requester, user=requester, name="old")
    assert client.delete(f"/api/v1/tokens/{other.pk}/").status_code == 204
    assert ApiToken.objects.get(pk=other.pk).revoked_at is not None


def test_someone_elses_token_is_404(api_client_for, requester, site_manager):
    theirs, _ = services.token_create(actor=site_manager, user=site_manager, name="theirs")
    client = api_client_for(requester)
    for response in (
        client.get(f"/api/v1/tokens/{theirs.pk}/"),
        client.post(f"/api/v1/tokens/{theirs.pk}/revoke/"),
        client.delete(f"/api/v1/tokens/{theirs.pk}/"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_session_user_manages_tokens_with_csrf_enforced(requester):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(requester)
    assert client.get("/api/v1/tokens/").status_code == 200
    response = client.post("/api/v1/tokens/", {"name": "from the browser"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not ApiToken.objects.exists()


def test_tokens_for_lists_only_the_users_own(requester, site_manager):
    mine, _ = services.token_create(actor=None, user=requester, name="mine")
    services.token_create(actor=None, user=site_manager, name="theirs")
    assert list(selectors.tokens_for(requester)) == [mine]


def test_create_api_token_command_prints_the_token_once(requester, capsys):
    call_command(
        "create_api_token",
        "requester",
        "--name",
        "edi",
        "--expires-days",
        "7",
        "--read-only",
        "--action",
        "approvals.list",
    )
    secret = capsys.readouterr().out.strip()
    token = selectors.token_by_secret(secret)
    assert token.user == requester
    assert token.read_only is True
    assert token.actions == ["approvals.list"]
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)


def test_create_api_token_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named"):
        call_command("create_api_token", "nobody")


def test_a_superuser_revokes_a_leaked_token_in_the_admin(requester, client):
    from tests.factories import UserFactory

    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    token, _ = services.token_create(actor=None, user=requester, name="leaked")
    client.force_login(admin)
    page = client.get(f"/admin/api/apitoken/{token.pk}/change/")
    assert page.status_code == 200
    assert token.digest not in page.content.decode()
    response = client.post(
        "/admin/api/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="api_token.revoked", object_id=str(token.pk))
    assert event.actor == admin


def test_revoking_a_leaked_token_revokes_the_tokens_it_created(api_client_for, requester):
    # Whoever holds a leaked token could mint more through it; revoking the leaked one must
    # shut them out, not leave its offspring working.
    leaked = api_client_for(requester)
    child = leaked.post("/api/v1/tokens/", {"name": "child"}, format="json").json()
    minted = APIClient()
    minted.credentials(HTTP_AUTHORIZATION=f"Bearer {child['token']}")
    grandchild = minted.post("/api/v1/tokens/", {"name": "grandchild"}, format="json").json()
    _, unrelated_secret = services.token_create(actor=None, user=requester, name="own")

    services.token_revoke(actor=requester, token_id=leaked.token.pk)

    for secret in (leaked.secret, child["token"], grandchild["token"]):
        shut_out = APIClient()
        shut_out.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert shut_out.get("/api/v1/tokens/").status_code == 401
    still = APIClient()
    still.credentials(HTTP_AUTHORIZATION=f"Bearer {unrelated_secret}")
    assert still.get("/api/v1/tokens/").status_code == 200
    revoked = AuditEvent.objects.filter(action="api_token.revoked")
    assert {event.object_id for event in revoked} == {
        str(leaked.token.pk),
        str(child["id"]),
        str(grandchild["id"]),
    }
    assert revoked.get(object_id=str(child["id"])).comment.startswith("Created through")


def test_revoking_through_the_api_also_revokes_the_offspring(api_client_for, requester):
    client = api_client_for(requester)
    other = api_client_for(requester)
    child = other.post("/api/v1/tokens/", {"name": "child"}, format="json").json()

    assert client.delete(f"/api/v1/tokens/{other.token.pk}/").status_code == 204

    assert ApiToken.objects.get(pk=child["id"]).revoked_at is not None
    assert ApiToken.objects.get(pk=client.token.pk).revoked_at is None


def test_a_read_only_token_cannot_revoke_or_delete_any_token(api_client_for, requester):
    # The scope matrix leaves the token routes to this file; a read-only token changes nothing
    # here either, not even itself.
    client = api_client_for(requester, read_only=True)
    other, _ = services.token_create(actor=None, user=requester, name="other")
    for target in (client.token.pk, other.pk):
        for response in (
            client.post(f"/api/v1/tokens/{target}/revoke/"),
            client.delete(f"/api/v1/tokens/{target}/"),
        ):
            assert response.status_code == 403
            assert response.json()["code"] == "token_read_only"
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()


def test_the_schema_states_what_an_action_name_looks_like(anonymous_api, api_client_for, requester):
    """The service's rule for an action name is in the contract, and the API applies it."""
    schema = anonymous_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    items = schema["components"]["schemas"]["TokenCreateRequest"]["properties"]["actions"]["items"]
    assert items["pattern"] == services.ACTION_NAME.pattern

    client = api_client_for(requester)
    refused = client.post("/api/v1/tokens/", {"name": "n", "actions": ["À"]}, format="json")
    assert refused.status_code == 422
    assert "actions" in refused.json()["errors"]
    assert ApiToken.objects.filter(user=requester).count() == 1  # the client's own token
