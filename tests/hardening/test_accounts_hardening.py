"""Accounts under attack: guessed passwords, the password-reset flow, stolen API tokens.

The sign-in lockout at its default settings is covered in tests/portal/test_accounts.py and the
token states in tests/api/test_tokens.py; these add what an attacker would try next.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal.api import services as token_services
from portal.api.models import ApiToken
from portal.audit.models import AuditEvent

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "saffron-lantern-quietly-9"
LOGIN = reverse("login")
RESET = reverse("password_reset")
HOME = reverse("inbox:home")


def sign_in(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def without_csrf_token(page: str) -> str:
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", page)


def reset_link(message) -> str:
    """The path of the reset link in an e-mail, checked to start with the configured base."""
    found = re.search(r"(https?://\S+/accounts/password_reset/\S+/\S+/)", message.body)
    assert found, message.body
    return found.group(1)


def path_of(url: str, base: str) -> str:
    assert url.startswith(base), url
    return url[len(base) :]


# --- lockout ----------------------------------------------------------------------------------


def test_lockout_follows_the_configured_limit_and_cool_off(client, requester, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    assert sign_in(client, "requester", "guess").status_code == 200
    assert sign_in(client, "requester", "guess").status_code == 429

    locked = sign_in(client, "requester")

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.locked_out", object_id=str(requester.pk)).exists()
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=2)):
        assert sign_in(client, "requester").status_code == 429
    # An attempt during the lockout starts the cool-off again (axes' default), so a guesser who
    # keeps trying stays locked out.
    with time_machine.travel(start + timedelta(minutes=4)):
        assert sign_in(client, "requester").status_code == 429
    with time_machine.travel(start + timedelta(minutes=7, seconds=5)):
        assert sign_in(client, "requester").status_code == 302


def test_guessing_from_a_locked_address_with_the_right_password_teaches_nothing(
    client, requester, settings
):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        sign_in(client, "requester", "guess")

    wrong = sign_in(client, "requester", "another-guess")
    right = sign_in(client, "requester")

    assert wrong.status_code == right.status_code == 429
    assert without_csrf_token(wrong.text) == without_csrf_token(right.text)


# --- password reset ---------------------------------------------------------------------------


@pytest.fixture
def base_url(settings):
    settings.TOLLGATE_BASE_URL = "https://tollgate.example.com/"
    return "https://tollgate.example.com"


def ask_reset(client, email, **extra):
    return client.post(RESET, {"email": email}, **extra)


def test_the_sign_in_page_links_to_the_reset(client, db):
    assert f'href="{RESET}"' in client.get(LOGIN).text


def test_a_known_and_an_unknown_address_get_the_same_answer(client, requester):
    known = ask_reset(client, requester.email)
    unknown = ask_reset(client, "nobody@example.test")

    assert known.status_code == unknown.status_code == 302
    assert known.url == unknown.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [requester.email]
    done = client.get(known.url)
    assert "If the address belongs to an active Tollgate account" in done.text


def test_an_inactive_account_gets_no_mail(client, requester):
    requester.is_active = False
    requester.save(update_fields=["is_active"])

    assert ask_reset(client, requester.email).status_code == 302
    assert mail.outbox == []


def test_the_link_is_built_on_the_base_url_not_on_the_host_asked(client, requester, base_url):
    ask_reset(client, requester.email, HTTP_HOST="localhost")

    url = reset_link(mail.outbox[0])
    assert url.startswith(base_url + "/accounts/password_reset/")
    assert "localhost" not in mail.outbox[0].body
    assert "\n" not in mail.outbox[0].subject


def test_reset_end_to_end_sets_the_password_once_and_signs_out_other_sessions(
    client, requester, base_url
):
    elsewhere = Client()
    sign_in(elsewhere, "requester")
    assert elsewhere.get(HOME).status_code == 200
    ask_reset(client, requester.email)
    link = path_of(reset_link(mail.outbox[0]), base_url)

    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.text
    # Django moves the token out of the address into the session before showing the form.
    set_password_url = form_page.redirect_chain[-1][0]
    assert "set-password" in set_password_url
    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert done.status_code == 302
    assert done.url == reverse("password_reset_complete")
    requester.refresh_from_db()
    assert requester.check_password(NEW_PASSWORD)
    assert elsewhere.get(HOME).status_code == 302, "the other session must be signed out"
    assert sign_in(Client(), "requester").status_code == 200, "the old password still works"
    assert sign_in(Client(), "requester", NEW_PASSWORD).status_code == 302
    assert AuditEvent.objects.filter(action="auth.password_reset", actor=requester).count() == 1
    again = Client().get(link, follow=True)
    assert "This link does not work" in again.text


def test_a_weak_new_password_is_refused_and_the_old_one_stays(client, requester, base_url):
    ask_reset(client, requester.email)
    page = client.get(path_of(reset_link(mail.outbox[0]), base_url), follow=True)
    set_password_url = page.redirect_chain[-1][0]

    refused = client.post(set_password_url, {"new_password1": "short", "new_password2": "short"})

    assert refused.status_code == 400
    assert "too short" in refused.text
    requester.refresh_from_db()
    assert requester.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="auth.password_reset").exists()


def test_the_link_expires(client, requester, base_url, settings):
    ask_reset(client, requester.email)
    link = path_of(reset_link(mail.outbox[0]), base_url)

    later = timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    with time_machine.travel(later):
        page = client.get(link, follow=True)

    assert "This link does not work" in page.text
    assert 'name="new_password1"' not in page.text


def test_a_tampered_link_does_not_work(client, requester, base_url):
    ask_reset(client, requester.email)
    link = path_of(reset_link(mail.outbox[0]), base_url)
    uid, token = link.rstrip("/").split("/")[-2:]
    tampered = reverse("password_reset_confirm", args=[uid, token[:-1] + "x"])

    assert "This link does not work" in client.get(tampered, follow=True).text


def test_resets_for_one_address_are_rate_limited_known_or_not(client, requester, settings):
    settings.PASSWORD_RESET_RATE_LIMIT = 2
    for _ in range(2):
        assert ask_reset(client, requester.email).status_code == 302
        assert ask_reset(client, "nobody@example.test").status_code == 302

    known = ask_reset(client, requester.email.upper())
    unknown = ask_reset(client, "nobody@example.test")

    assert known.status_code == unknown.status_code == 429
    assert "no e-mail was sent" in known.text
    assert len(mail.outbox) == 2


def test_resets_from_one_client_address_are_rate_limited(client, db, settings):
    settings.PASSWORD_RESET_RATE_LIMIT = 1
    answers = [
        ask_reset(client, f"someone{n}@example.test", REMOTE_ADDR="203.0.113.9").status_code
        for n in range(5)
    ]
    other_client = ask_reset(client, "someone9@example.test", REMOTE_ADDR="198.51.100.7")

    assert answers == [302, 302, 302, 302, 429]
    assert other_client.status_code == 302


def test_a_malformed_address_gets_400_and_no_mail(client, requester):
    response = ask_reset(client, "not an address\x00")

    assert response.status_code == 400
    assert mail.outbox == []


# --- API tokens -------------------------------------------------------------------------------


def api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_token_stops_working_the_moment_it_expires(requester, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    expires = timezone.now() + timedelta(hours=1)
    _, secret = token_services.token_create(
        actor=requester, user=requester, name="n8n", expires_at=expires
    )
    client = api(secret)

    time_machine.move_to(expires - timedelta(seconds=1), tick=False)
    assert client.get("/api/v1/tokens/").status_code == 200
    time_machine.move_to(expires, tick=False)
    response = client.get("/api/v1/tokens/")

    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_revoked_token_is_refused_on_its_very_next_request(requester):
    token, secret = token_services.token_create(actor=requester, user=requester, name="stolen")
    holder = api(secret)
    assert holder.get("/api/v1/tokens/").status_code == 200

    token_services.token_revoke(actor=requester, token_id=token.pk)

    assert holder.get("/api/v1/tokens/").status_code == 401
    refused = holder.post("/api/v1/tokens/", {"name": "persistence"}, format="json")
    assert refused.status_code == 401
    assert ApiToken.objects.filter(user=requester).count() == 1


def test_a_password_reset_does_not_leave_a_stolen_session_but_tokens_are_separate(
    client, requester, base_url
):
    # A reset ends every browser session; API tokens are revoked on their own (documented).
    _, secret = token_services.token_create(actor=requester, user=requester, name="edi")
    thief = Client()
    sign_in(thief, "requester")
    ask_reset(client, requester.email)
    page = client.get(path_of(reset_link(mail.outbox[0]), base_url), follow=True)
    client.post(
        page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert thief.get(HOME).status_code == 302
    assert thief.get("/api/v1/tokens/").status_code in (401, 403)
    assert api(secret).get("/api/v1/tokens/").status_code == 200
