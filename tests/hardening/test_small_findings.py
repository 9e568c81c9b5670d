"""Smaller hardening: a cached readiness probe, a password-reset request that takes the same
path for every address, requester text quoted in step e-mails, cases deduplicated per site,
start-up checks of the security settings, and a CSRF cookie scripts cannot read."""

import re
from decimal import Decimal

import pytest
from django.core import checks, mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal import health
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed

STRONG_TOKEN = "q3X9vTz7LmW2pK8rN4sY6bH1cJ5dF0gA"


# --- /readyz ----------------------------------------------------------------------------------


@pytest.fixture
def counted_checks(monkeypatch, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rz"}
    }
    settings.READYZ_CACHE_SECONDS = 5
    calls = []
    fakes = {name: (lambda name=name: calls.append(name)) for name in ("database", "broker")}
    monkeypatch.setattr(health, "READINESS_CHECKS", fakes)
    return calls


def test_readyz_runs_its_checks_at_most_once_per_cache_period(client, db, counted_checks):
    answers = [client.get("/readyz") for _ in range(5)]

    assert {answer.status_code for answer in answers} == {200}
    assert counted_checks == ["database", "broker"]


def test_readyz_checks_again_once_the_period_is_over(client, db, counted_checks, time_machine):
    time_machine.move_to("2026-12-07 10:00:00Z", tick=False)
    client.get("/readyz")
    time_machine.move_to("2026-12-07 10:00:06Z", tick=False)
    client.get("/readyz")

    assert counted_checks == ["database", "broker"] * 2


# --- password reset ---------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch):
    """Tasks enqueued by the request, kept instead of run, so the request's own work shows."""
    from celery.app.task import Task

    kept = []

    def apply_async(self, args=None, kwargs=None, **options):
        kept.append((self, args or (), kwargs or {}))

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return kept


def _reset(address: str):
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse("password_reset"), {"email": address})
    return response, len(queries)


def test_reset_requests_do_the_same_work_for_known_and_unknown_addresses(
    requester, enqueued, settings
):
    settings.TOLLGATE_BASE_URL = "https://tollgate.example.com"
    known, known_queries = _reset(requester.email)
    unknown, unknown_queries = _reset("nobody@example.test")

    assert known.status_code == unknown.status_code == 302
    assert mail.outbox == [], "nothing is sent during the request"
    assert known_queries == unknown_queries
    assert [(task.name, args, kwargs) for task, args, kwargs in enqueued] == [
        ("accounts.password_reset_mail", (requester.email,), {}),
        ("accounts.password_reset_mail", ("nobody@example.test",), {}),
    ]
    for task, args, kwargs in enqueued:
        task.run(*args, **kwargs)
    assert [message.to for message in mail.outbox] == [[requester.email]]
    assert "https://tollgate.example.com/accounts/password_reset/" in mail.outbox[0].body


# --- step e-mails -----------------------------------------------------------------------------

FORGED = (
    "Stock for the spring season.\n"
    "\n"
    "— Tollgate\n"
    "SECURITY NOTICE: your approval rights expire today. Confirm them at "
    "https://evil.example/tollgate"
)


def test_the_requesters_words_are_quoted_in_the_step_email(
    matrix, requester, site_a1, site_manager, mailoutbox
):
    from approvals import notifications

    request = raise_request(requester, site_a1, amount="1000", reason=FORGED)
    step = request.steps.get(state="active")
    mailoutbox.clear()

    notifications.send_step_mail([step.pk], "activated")

    body = next(m for m in mailoutbox if site_manager.email in m.to).body
    lines = body.splitlines()
    name = requester.get_full_name() or requester.username
    heading = lines.index(f"{name} wrote:")
    quoted = lines[heading + 1 : heading + 1 + len(FORGED.splitlines())]
    assert quoted == [f"> {line}".rstrip() for line in FORGED.splitlines()]
    # No line of the requester's text stands on its own, where it would read as Tollgate's.
    assert not [line for line in lines if line.startswith("SECURITY NOTICE")]
    assert lines.count("— Tollgate") == 1


# --- case deduplication -----------------------------------------------------------------------


def test_the_same_key_at_two_sites_opens_two_cases(site_a1, site_b1):
    from exceptions.services import case_raise

    values = {
        "kind": "invoice_mismatch",
        "severity": "high",
        "title": "Bill differs from its order",
        "source": "webhook",
        "dedupe_key": "carrier:shipment:4711",
        "payload": {"id": 4711},
        "evidence": {"difference": "120.00"},
        "amount_at_stake": Decimal("120.00"),
        "currency": "EUR",
    }
    first, opened_first = case_raise(site=site_a1, **values)
    second, opened_second = case_raise(site=site_b1, **values)
    again, opened_again = case_raise(site=site_a1, **values)

    assert opened_first and opened_second and not opened_again
    assert first.pk != second.pk
    assert (first.site, second.site) == (site_a1, site_b1)
    assert again.pk == first.pk and again.occurrences == 2
    second.refresh_from_db()
    assert second.occurrences == 1


# --- start-up checks --------------------------------------------------------------------------


def _tollgate_errors() -> dict[str, str]:
    found = checks.run_checks(include_deployment_checks=True)
    return {m.id: m.msg for m in found if m.id and m.id.startswith("tollgate.") and m.is_serious()}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = STRONG_TOKEN
    settings.TOLLGATE_BASE_URL = "https://tollgate.example.com"
    settings.TOLLGATE_BASE_URL_ALLOW_HTTP = False
    settings.ODOO_URL = "https://odoo.example.com"
    settings.ODOO_ALLOW_HTTP = []
    return settings


def test_production_settings_pass_the_checks(production):
    assert _tollgate_errors() == {}


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("short-token", "at least 32 characters"),
        ("a" * 40, "too few different characters"),
        ("0123456789" * 4, "too few different characters"),
    ],
)
def test_a_weak_metrics_token_is_refused(production, token, why):
    production.METRICS_TOKEN = token

    errors = _tollgate_errors()

    assert why in errors.get("tollgate.E001", ""), errors
    assert token not in errors["tollgate.E001"]


def test_no_metrics_token_is_allowed(production):
    production.METRICS_TOKEN = ""
    assert _tollgate_errors() == {}


def test_an_http_base_url_is_refused_with_debug_off(production):
    production.TOLLGATE_BASE_URL = "http://tollgate.example.com"

    assert "TOLLGATE_BASE_URL" in _tollgate_errors().get("tollgate.E002", "")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000"])
def test_a_loopback_base_url_is_allowed(production, url):
    production.TOLLGATE_BASE_URL = url
    assert _tollgate_errors() == {}


def test_an_http_odoo_url_is_refused_unless_its_host_is_named(production):
    production.ODOO_URL = "http://odoo.example.com:8069"
    assert "ODOO_ALLOW_HTTP" in _tollgate_errors().get("tollgate.E003", "")

    production.ODOO_ALLOW_HTTP = ["odoo.example.com"]
    assert _tollgate_errors() == {}


def test_debug_on_allows_plain_http_and_any_token(production):
    production.DEBUG = True
    production.METRICS_TOKEN = "dev"
    production.TOLLGATE_BASE_URL = "http://tollgate.example.com"
    production.ODOO_URL = "http://odoo.example.com"
    assert _tollgate_errors() == {}


# --- CSRF cookie --------------------------------------------------------------------------------


def test_the_csrf_cookie_is_http_only_and_htmx_sends_the_token_from_the_page(client, requester):
    client.force_login(requester)

    page = client.get(reverse("inbox:home"))

    cookie = page.cookies["csrftoken"]
    assert cookie["httponly"] is True
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page.text)
    assert token, "htmx takes the token from the page, not from the cookie"
    answer = Client(enforce_csrf_checks=True)
    answer.force_login(requester)
    answer.cookies["csrftoken"] = cookie.value
    logout = answer.post(reverse("logout"), HTTP_X_CSRFTOKEN=token.group(1))
    assert logout.status_code == 302
