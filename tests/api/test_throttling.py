"""Each token has a request budget per window; over it, 429 with Retry-After, across processes."""

import time

import pytest
import redis
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from portal.api.throttling import parse_rate

TOKENS = "/api/v1/tokens/"
REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def three_a_minute(settings, time_machine):
    settings.API_RATE_LIMIT = "3/minute"
    # Early in a window, so that the test never straddles two.
    time_machine.move_to(time.time() // 60 * 60 + 5, tick=False)


def test_over_the_budget_is_429_with_retry_after(three_a_minute, api_client_for, requester):
    client = api_client_for(requester)
    assert [client.get(TOKENS).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(TOKENS)
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert response["Retry-After"] == "55"


def test_the_budget_comes_back_in_the_next_window(
    three_a_minute, api_client_for, requester, time_machine
):
    client = api_client_for(requester)
    for _ in range(4):
        client.get(TOKENS)
    time_machine.shift(60)
    assert client.get(TOKENS).status_code == 200


def test_each_token_has_its_own_budget(three_a_minute, api_client_for, requester):
    busy, quiet = api_client_for(requester), api_client_for(requester)
    for _ in range(4):
        busy.get(TOKENS)
    assert busy.get(TOKENS).status_code == 429
    assert quiet.get(TOKENS).status_code == 200


def test_anonymous_calls_are_not_counted_against_anyone(three_a_minute, anonymous_api):
    assert {anonymous_api.get(TOKENS).status_code for _ in range(5)} == {401}


@pytest.mark.skipif(not _redis_available(), reason="needs the Redis server at 127.0.0.1:6379")
def test_the_budget_is_shared_through_redis(three_a_minute, settings, api_client_for, requester):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"tollgate-test-{time.monotonic_ns()}",
        }
    }
    client = api_client_for(requester)
    for _ in range(2):
        assert client.get(TOKENS).status_code == 200
    # Another web process: its own connection to the same Redis, nothing shared in memory.
    caches["default"].close()
    del caches["default"]
    assert client.get(TOKENS).status_code == 200
    assert client.get(TOKENS).status_code == 429


@pytest.mark.parametrize(
    ("rate", "parsed"), [("600/minute", (600, 60)), ("10/s", (10, 1)), ("5000/day", (5000, 86400))]
)
def test_rates_are_read_from_settings(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["600", "many/minute", "10/fortnight"])
def test_a_bad_rate_names_the_setting(rate):
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT"):
        parse_rate(rate)
