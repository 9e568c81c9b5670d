import json

import pytest
from django.test import override_settings

from portal.celery import app as celery_app


def test_healthz_answers_ok_without_touching_anything(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_broker_reachable(client, db):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


@pytest.fixture
def unreachable_broker():
    keys = ("broker_url", "broker_write_url")
    original = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(dict.fromkeys(keys, "redis://user:s3cret-password@127.0.0.1:1/0"))
    yield
    celery_app.conf.update(original)


def test_readyz_is_503_when_the_broker_is_down_and_leaks_no_url(client, db, unreachable_broker):
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "s3cret" not in json.dumps(body) and "127.0.0.1" not in json.dumps(body)


@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_is_redirected_to_https_except_the_probes(client, db):
    assert client.get("/accounts/login/").status_code == 301
    assert client.get("/healthz").status_code == 200


def test_probes_answer_a_load_balancer_probing_by_ip_address(client, db):
    for probe in ("/healthz", "/readyz"):
        assert client.get(probe, HTTP_HOST="10.1.2.3:8000").status_code == 200


def test_other_pages_still_refuse_an_unknown_host(client, db):
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_probes_refuse_other_methods(client, db):
    assert client.post("/healthz").status_code == 405
