"""Passwords are hashed with Argon2; an older PBKDF2 hash is rewritten when its holder signs in."""

import pytest
from django.contrib.auth.hashers import make_password
from django.urls import reverse

from portal import settings as tollgate_settings
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough password"


@pytest.fixture
def tollgate_hashers(settings):
    # The suite hashes with MD5 for speed; these tests are about what Tollgate itself configures.
    settings.PASSWORD_HASHERS = tollgate_settings.PASSWORD_HASHERS


def test_new_passwords_are_hashed_with_argon2(tollgate_hashers):
    person = UserFactory(username="dana")
    person.set_password(PASSWORD)

    assert person.password.startswith("argon2$argon2id$")
    assert person.check_password(PASSWORD)


def test_a_pbkdf2_password_still_signs_in_and_is_rehashed_with_argon2(tollgate_hashers, client):
    person = UserFactory(username="dana")
    person.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    person.save(update_fields=["password"])

    response = client.post(reverse("login"), {"username": "dana", "password": PASSWORD})

    assert response.status_code == 302 and response.url == reverse("inbox:home")
    person.refresh_from_db()
    assert person.password.startswith("argon2$")
    assert person.check_password(PASSWORD)
