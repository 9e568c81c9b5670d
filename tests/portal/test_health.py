import json

import pytest
from django.test import override_settings

from portal.celery import app as celery_app
from portal.integrations.odoo.sandbox.seed import seed_demo
from portal.integrations.odoo.sandbox.server import SandboxServer


def test_healthz_answers_ok_without_touching_anything(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def odoo_up(settings, tmp_path):
    """An Odoo sandbox listening where settings.ODOO_URL points."""
    seed_demo(tmp_path / "odoo.sqlite3")
    server = SandboxServer(tmp_path / "odoo.sqlite3").start()
    settings.ODOO_URL = server.url
    yield server
    server.stop()


def test_readyz_reports_database_broker_and_odoo_reachable(client, db, odoo_up):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database",
        "broker",
        "odoo",
        "audit_seal",
    }


def test_readyz_is_503_when_odoo_is_unreachable_and_leaks_no_url(client, db, settings):
    settings.ODOO_URL = "http://127.0.0.1:1"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["odoo"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in json.dumps(body)


@pytest.fixture
def unreachable_broker():
    keys = ("broker_url", "broker_write_url")
    original = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(dict.fromkeys(keys, "redis://user:s3cret-password@127.0.0.1:1/0"))
    yield
    celery_app.conf.update(original)


def test_readyz_is_503_when_the_broker_is_down_and_leaks_no_url(
    client, db, unreachable_broker, odoo_up
):
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


def test_probes_answer_a_load_balancer_probing_by_ip_address(client, db, odoo_up):
    for probe in ("/healthz", "/readyz"):
        assert client.get(probe, HTTP_HOST="10.1.2.3:8000").status_code == 200


def test_other_pages_still_refuse_an_unknown_host(client, db):
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_probes_refuse_other_methods(client, db):
    assert client.post("/healthz").status_code == 405
