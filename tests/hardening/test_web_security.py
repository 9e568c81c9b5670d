"""The browser-facing defences: CSRF on every route, sessions, security headers, no leaked secret.

`manage.py check --deploy` with production variables is run in tests/portal/test_settings.py.
"""

import io
import logging
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from approvals.models import ApprovalRequest, RequestState
from portal.api import services as token_services
from portal.webhooks import demo as webhook_demo
from sites.roles import Role
from tests.conftest import persona
from tests.hardening.security_fixtures import (
    _working_morning,
    fingerprint,
    matrix,
    open_case,
    pending_request,
    staffed,
)

__all__ = ["_working_morning", "matrix", "open_case", "pending_request", "staffed"]

PASSWORD = "correct-horse-battery"

# Routes that take a POST without the CSRF token, each for a reason a reviewer can check.
CSRF_EXEMPT = {
    # Senders are integrations, not browsers: every delivery must carry a valid Standard
    # Webhooks signature (tests/webhooks/test_inbound.py), which a forged form cannot.
    "api:webhooks:receive": "signed webhook",
    # No route: whatever reaches these answers a 404 problem document and changes nothing.
    "api:unrouted": "unrouted address under /api/v1/",
    "portal.api.problems.unrouted": "unrouted address under /api/",
}
# Routes that never accept a POST; a tokenless POST may get 405 there, never a change.
GET_ONLY = {"api:schema", "api:docs"}
# Routes that take no session at all (a token only): a session's request is 401 before CSRF.
TOKEN_ONLY = {"api:audit-export-list"}


def _sample(content: str, known: str | None) -> list[str]:
    """Candidate values for a URL parameter (`content` is its regular expression, if any)."""
    first_alternative = content.split("|")[0].strip("()^$")
    return [value for value in (known, "1", "x", first_alternative, "api.apitoken") if value]


def _walk(patterns, prefix=(), namespace=""):
    for entry in patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            space = namespace
            if entry.namespace:
                space = f"{namespace}{entry.namespace}:"
            yield from _walk(entry.url_patterns, (*prefix, route), space)
        elif isinstance(entry, URLPattern):
            yield (*prefix, route), f"{namespace}{entry.name or entry.lookup_str}"


def _concrete(pieces: tuple[str, ...], known: dict[str, str]) -> str | None:
    """A path that resolves to the pattern built from `pieces`, or None if none was found."""
    hole = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>([^)]*)\)")
    candidates = [""]
    for piece in pieces:
        piece = piece.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        position = 0
        for match in hole.finditer(piece):
            literal = piece[position : match.start()].replace("\\", "")
            candidates = [
                candidate + literal + value
                for candidate in candidates
                for value in _sample(
                    match.group(3) or "", known.get(match.group(1) or match.group(2))
                )
            ]
            position = match.end()
        candidates = [candidate + piece[position:].replace("\\", "") for candidate in candidates]
    for candidate in candidates:
        try:
            resolve("/" + candidate)
        except Resolver404:
            continue
        return "/" + candidate
    return None


def browser_routes(request_id=None, case_id=None) -> list[tuple[str, str]]:
    """(url name, path) of every route of the URL configuration, parameters filled in: the
    given request or case where the route takes one, else any value that resolves."""
    routes = []
    for pieces, name in _walk(get_resolver().url_patterns):
        ids = {"request_id": request_id, "case_id": case_id, "source": "carrier"}
        ids["pk"] = case_id if "exceptions" in name else request_id
        url = _concrete(pieces, {key: str(value) for key, value in ids.items() if value})
        assert url is not None, f"no concrete path found for {''.join(pieces)}"
        routes.append((name, url))
    return routes


@pytest.fixture
def superuser(region_a, site_a1, site_a2):
    user = persona("root", Role.ADMIN, region=region_a)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


# --- CSRF ---------------------------------------------------------------------------------------


def test_the_walk_reaches_every_kind_of_route(db):
    names = {name for name, _ in browser_routes()}

    # If the walk silently lost a part of the URL configuration, the CSRF test would pass
    # without checking it.
    for expected in (
        "approvals:approve",
        "exceptions:resolve",
        "manage:preferences",
        "manage:policy_publish",
        "audit:verify",
        "login",
        "logout",
        "password_reset",
        "admin:index",
        "api:approvals-approve",
        "api:tokens-list",
        "api:webhooks:receive",
    ):
        assert expected in names, expected


def test_every_post_without_a_csrf_token_is_refused_and_changes_nothing(
    superuser, pending_request, open_case
):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)
    before = fingerprint()
    answers = {}

    for name, url in browser_routes(pending_request.pk, open_case.pk):
        fields = {"comment": "forged", "reason": "forged", "note": "forged", "to": "me"}
        form = browser.post(url, fields)
        as_json = browser.post(url, fields, content_type="application/json")
        answers[name] = (url, form.status_code, as_json.status_code)

    def refused(name, form, as_json):
        if name.startswith("api:") and name in GET_ONLY:
            return form == as_json == 405
        if name in TOKEN_ONLY:
            return form == as_json == 401
        if name.startswith("api:"):
            # The API reads JSON only; a form-encoded body, all a cross-site form can send
            # without a preflight, is refused for its media type before anything else.
            return form in (403, 415) and as_json == 403
        return form == as_json == 403

    unexpected = {
        name: answer
        for name, answer in answers.items()
        if name not in CSRF_EXEMPT and not refused(name, *answer[1:])
    }
    assert unexpected == {}
    assert fingerprint() == before
    assert answers["approvals:approve"][0] == f"/approvals/{pending_request.pk}/approve/"
    assert answers["api:exceptions-resolve"][0] == f"/api/v1/exceptions/{open_case.pk}/resolve/"


def test_the_csrf_refusal_is_a_page_that_says_nothing_changed(site_manager, pending_request):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(site_manager)

    response = browser.post(f"/approvals/{pending_request.pk}/approve/", {"comment": "forged"})

    assert response.status_code == 403
    assert "nothing was changed" in response.text
    assert ApprovalRequest.objects.get(pk=pending_request.pk).state == RequestState.IN_REVIEW


def test_the_same_post_with_its_token_goes_through(site_manager, pending_request):
    # The counterpart of the refusals above: the token, not something else, makes the difference.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(site_manager)
    page = browser.get(f"/approvals/{pending_request.pk}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = browser.post(
        f"/approvals/{pending_request.pk}/approve/",
        {"comment": "fine", "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    assert ApprovalRequest.objects.get(pk=pending_request.pk).state != RequestState.IN_REVIEW


def test_the_api_asks_a_session_for_csrf_but_not_a_token(site_manager, pending_request):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(site_manager)
    url = f"/api/v1/approvals/{pending_request.pk}/approve/"

    forged = browser.post(url, {"comment": "forged"}, content_type="application/json")

    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    assert ApprovalRequest.objects.get(pk=pending_request.pk).state == RequestState.IN_REVIEW
    _, secret = token_services.token_create(actor=None, user=site_manager, name="n8n")
    integration = Client(enforce_csrf_checks=True)
    done = integration.post(
        url,
        {"comment": "ok"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert done.status_code == 200


# --- sessions -----------------------------------------------------------------------------------


def test_signing_in_gives_a_new_session_key_and_retires_the_planted_one(requester):
    browser = Client()
    planted = browser.session.session_key  # as if an attacker had set the victim's cookie
    assert SessionStore().exists(planted)

    browser.post("/accounts/login/", {"username": "requester", "password": PASSWORD})

    fresh = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert fresh != planted
    assert not SessionStore().exists(planted)
    attacker = Client()
    attacker.cookies[django_settings.SESSION_COOKIE_NAME] = planted
    assert attacker.get("/").status_code == 302


def test_signing_out_makes_the_old_session_key_useless(requester):
    browser = Client()
    browser.post("/accounts/login/", {"username": "requester", "password": PASSWORD})
    key = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    thief = Client()
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = key
    assert thief.get("/").status_code == 200

    browser.post("/accounts/logout/")

    assert not SessionStore().exists(key)
    assert thief.get("/").status_code == 302
    assert thief.get("/api/v1/approvals/").status_code in (401, 403)


def test_signing_out_by_a_link_is_refused(requester):
    # A GET would let any page sign people out with an <img>; Django accepts only a POST.
    browser = Client()
    browser.force_login(requester)

    assert browser.get("/accounts/logout/").status_code == 405
    assert browser.get("/").status_code == 200


# --- headers ------------------------------------------------------------------------------------


def _assert_security_headers(response):
    csp = response["Content-Security-Policy"]
    directives = {}
    for part in csp.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in response["Strict-Transport-Security"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_security_headers_on_a_page_an_api_answer_and_error_pages(requester, client):
    client.force_login(requester)
    _, secret = token_services.token_create(actor=None, user=requester, name="n8n")
    api = Client()

    answers = {
        "page": client.get("/", secure=True),
        "sign-in": Client().get("/accounts/login/", secure=True),
        "api": api.get("/api/v1/tokens/", secure=True, HTTP_AUTHORIZATION=f"Bearer {secret}"),
        "page 404": client.get("/approvals/999999/", secure=True),
        "api 404": api.get("/api/v1/nothing-here/", secure=True),
        "api 401": Client().get("/api/v1/tokens/", secure=True),
    }

    assert {name: r.status_code for name, r in answers.items()} == {
        "page": 200,
        "sign-in": 200,
        "api": 200,
        "page 404": 404,
        "api 404": 404,
        "api 401": 401,
    }
    for response in answers.values():
        _assert_security_headers(response)


def test_security_headers_on_the_500_page(requester, monkeypatch):
    browser = Client(raise_request_exception=False)
    browser.force_login(requester)
    monkeypatch.setattr("portal.inbox.views.sites_listed", _boom)

    response = browser.get("/", secure=True)

    assert response.status_code == 500
    assert "Something went wrong" in response.text
    _assert_security_headers(response)


def test_cookies_are_secure_http_only_and_same_site(requester):
    browser = Client()
    browser.get("/accounts/login/", secure=True)
    response = browser.post(
        "/accounts/login/", {"username": "requester", "password": PASSWORD}, secure=True
    )

    session = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"
    assert browser.cookies[django_settings.CSRF_COOKIE_NAME]["secure"]


def test_no_template_carries_inline_script_or_event_handlers():
    # The CSP would block them in the browser; here the templates are checked at the source.
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
    offenders = []
    for folder in [django_settings.BASE_DIR / "templates"]:
        for path in folder.rglob("*.html"):
            text = path.read_text()
            if inline_script.search(text) or handler.search(text):
                offenders.append(str(path.relative_to(django_settings.BASE_DIR)))
    assert offenders == []


# --- secrets in error pages and logs ------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("the inbox failed while drawing the page")


@pytest.fixture
def console_log():
    """What the configured console handler prints (its redaction filter included), at DEBUG."""
    root = logging.getLogger()
    console = next(h for h in root.handlers if h.get_name() == "console")
    buffer = io.StringIO()
    previous_stream, previous_level = console.setStream(buffer), root.level
    root.setLevel(logging.DEBUG)
    yield buffer
    console.setStream(previous_stream)
    root.setLevel(previous_level)


def test_no_secret_reaches_an_error_page_or_the_log(
    requester, site_a1, settings, monkeypatch, console_log, caplog
):
    from tests.webhooks.conftest import signed_headers

    caplog.set_level(logging.DEBUG)
    settings.ODOO_API_KEY = "odoo-key-that-must-stay-hidden-7f3a"
    webhook_demo.seed()
    webhook_secret = webhook_demo.demo_secret("carrier")
    _, token = token_services.token_create(actor=None, user=requester, name="edi")
    password_typed = "Tr0ub4dor&3-typed-in-a-form"
    browser = Client(raise_request_exception=False)

    # A failed sign-in, a page that fails with the person's password in the form data, an API
    # call with a revoked-looking token, a token creation, a webhook with a bad signature and
    # one signed with the real secret.
    browser.post("/accounts/login/", {"username": "requester", "password": password_typed})
    browser.force_login(requester)
    monkeypatch.setattr("portal.inbox.views.sites_listed", _boom)
    failed = browser.post("/", {"password": password_typed, "token": token})
    api = Client(raise_request_exception=False)
    api.get("/api/v1/tokens/", HTTP_AUTHORIZATION=f"Bearer {token}x")
    created = api.post(
        "/api/v1/tokens/",
        {"name": "child"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    body = b'{"type": "shipment.delayed"}'
    good = signed_headers(body, secret=webhook_secret)
    forged = signed_headers(body, secret="whsec_" + "A" * 32)
    for headers in (forged, good):
        api.post(
            "/api/v1/webhooks/carrier/", data=body, content_type="application/json", headers=headers
        )

    assert failed.status_code == 500
    assert created.status_code == 201
    secrets_ = {
        "SECRET_KEY": settings.SECRET_KEY,
        "ODOO_API_KEY": settings.ODOO_API_KEY,
        "webhook secret": webhook_secret.removeprefix("whsec_"),
        "API token": token,
        "child API token": created.json()["token"],
        "password": password_typed,
    }
    printed = console_log.getvalue() + caplog.text
    assert "Internal Server Error" in printed  # the log was captured at all
    for label, secret in secrets_.items():
        assert secret not in failed.text, label
        assert secret not in printed, label


def test_the_500_page_shows_no_internals(requester, monkeypatch):
    browser = Client(raise_request_exception=False)
    browser.force_login(requester)
    monkeypatch.setattr("portal.inbox.views.sites_listed", _boom)

    page = browser.get("/")

    assert page.status_code == 500
    assert "Traceback" not in page.text
    assert "the inbox failed" not in page.text
    assert "sites_listed" not in page.text
