from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from sites import demo
from tests.seeded_demo import seed_demo

LOGIN = reverse("login")


@pytest.fixture
def demo_company(db):
    seed_demo(history=False)


def sign_in(client, username, password=demo.PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


@pytest.mark.parametrize("persona", [p.username for p in demo.PERSONAS])
def test_each_demo_persona_signs_in_and_sees_their_home(client, demo_company, persona):
    response = sign_in(client, persona)

    assert response.status_code == 302
    assert response.url == reverse("inbox:home")
    home = client.get(response.url)
    assert home.status_code == 200
    assert "Your reach" in home.text


def test_regional_manager_home_lists_the_benelux_sites_only(client, demo_company):
    sign_in(client, "regional.manager")

    page = client.get(reverse("inbox:home")).text

    assert "Amsterdam Distribution Centre" in page
    assert "Antwerp Cross-Dock" in page
    assert "Manchester" not in page


def test_home_of_a_user_without_roles_says_so(client, stranger):
    client.force_login(stranger)

    page = client.get(reverse("inbox:home")).text

    assert 'id="site-list-empty"' in page


def test_home_needs_a_signed_in_user(client, db):
    response = client.get(reverse("inbox:home"))

    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


def test_wrong_password_is_refused_with_a_message(client, demo_company):
    response = sign_in(client, "finance", "not-the-password")

    assert response.status_code == 200
    assert "did not match" in response.text


def test_lockout_after_the_failure_limit_and_release_after_the_cool_off(
    client, demo_company, settings
):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        sign_in(client, "finance", "guess")

    locked = sign_in(client, "finance")
    assert locked.status_code == 429
    assert "Signing in is paused" in locked.text

    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=5)):
        released = sign_in(client, "finance")
    assert released.status_code == 302


def test_one_failure_short_of_the_limit_still_signs_in(client, demo_company, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "finance", "guess")

    assert sign_in(client, "finance").status_code == 302


def test_lockout_of_one_user_leaves_another_free(client, demo_company, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "finance", "guess")

    assert sign_in(client, "auditor").status_code == 302


def test_sign_out_ends_the_session(client, demo_company):
    sign_in(client, "auditor")
    assert client.get(reverse("inbox:home")).status_code == 200

    client.post(reverse("logout"))

    assert client.get(reverse("inbox:home")).status_code == 302


def test_a_form_without_its_csrf_token_changes_nothing_and_says_so(demo_company):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)

    response = strict.post(LOGIN, {"username": "finance", "password": demo.PASSWORD})

    assert response.status_code == 403
    assert "nothing was changed" in response.text
    assert "_auth_user_id" not in strict.session


def test_behind_a_proxy_the_lockout_keys_on_the_client_not_the_proxy(
    client, demo_company, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        # The attacker also forges entries to the left; only the proxy's entry is trusted.
        forwarded = f"198.51.100.{attempt}, 203.0.113.66"
        client.post(
            LOGIN,
            {"username": "finance", "password": "guess"},
            HTTP_X_FORWARDED_FOR=forwarded,
            **proxy,
        )

    attacker = client.post(
        LOGIN,
        {"username": "finance", "password": demo.PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.66",
        **proxy,
    )
    colleague = client.post(
        LOGIN,
        {"username": "finance", "password": demo.PASSWORD},
        HTTP_X_FORWARDED_FOR="192.0.2.10",
        **proxy,
    )

    assert attacker.status_code == 429
    assert colleague.status_code == 302
