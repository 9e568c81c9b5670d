"""The live OpenAPI schema against the running API: schemathesis calls every operation as each
demo persona, with generated valid and invalid input, and runs every one of its checks (no 5xx;
status codes, content types, headers and bodies as documented; invalid input refused; valid
input accepted; authentication not ignored; one user's objects not served to another).

Valid input must be accepted: the schema states every constraint the API enforces, so a 422 on
schema-valid input is a failure, except for the business rules listed in BUSINESS_RULES, which
depend on the data or on another field and which JSON Schema cannot state.

The one stateful exception is the Idempotency-Key: a key used again with another body is
refused with 409 `idempotency_key_reused` (the key is bound to its first request;
tests/api/test_idempotency.py), and generated keys repeat (hypothesis shrinks towards the same
few values). Each generated call that carries a valid key is given a fresh one, so it is the
request, not a previous one, that is judged. A malformed key is kept: it must answer 400.

A failure prints schemathesis' report for it, with a `curl` command that reproduces the call.
The number of examples per operation is kept small so the whole run takes a minute or two.
"""

import uuid
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from exceptions.services import case_raise
from portal.api.idempotency import HEADER, parse_key
from portal.wsgi import application
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

# Examples per operation, persona and kind of data (valid, invalid): enough to find what is
# broken, few enough for a run of a minute or two.
EXAMPLES = 3
# Invalid input is refused before anyone's rights matter (a 4xx whoever asks), so one persona
# covers it; valid input is tried as every persona, since what it reaches depends on who asks.
INVALID_INPUT_AS = "regional_manager"
# The demo's personas (sites/demo.py): the administrator, requester, site manager, regional
# manager, finance, auditor, and the outsider at another region.
PERSONAS = [
    "administrator",
    "requester",
    "site_manager",
    "regional_manager",
    "finance",
    "auditor",
    "outsider",
]

# operation -> {field in the 422's `errors`: why the schema cannot state the rule}. A 422 on
# schema-valid input is accepted only when every field it names is listed for its operation.
# Everything else the API checks, the schema states: what each kind of request needs (one
# schema per kind), the currencies Tollgate converts and the resolution codes of each kind of
# case (read from the data each time the schema is served), text that is not spaces only, a
# token's lifetime in days. A date range that ends before it starts exports nothing; a
# resolution written for another kind of case, and a request the policy in force cannot route
# (administered data, as the preview says), answer 409. A name or an id in the body that finds
# no one the caller may reach (a delegate who is no colleague at the site, an owner who does
# not work the case's queue) answers 404, as a site outside one's sites does.
BUSINESS_RULES: dict[str, dict[str, str]] = {
    "POST /api/v1/approvals/{id}/approve/": {
        "comment": "whether a comment is required depends on the tier",
    },
    "POST /api/v1/approvals/{id}/delegate/": {
        "ends_at": "the end must lie in the future, and within the longest delegation",
    },
}

CONFIG = SchemathesisConfig.from_dict({})


@pytest.fixture
def api_world(matrix, staffed, requester, site_a1, site_b1):
    """Something to find in each region, so that calls reach real rows as well as 404s."""
    raise_request(requester, site_a1, amount="1000")
    raise_request(staffed["requester_b"], site_b1, amount="900")
    case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="high",
        title="Bill differs from its order",
        source="odoo",
        dedupe_key="schemathesis:1",
        payload={},
        evidence={"difference": "10.00"},
        amount_at_stake=Decimal("10.00"),
        currency="EUR",
    )


@pytest.fixture
def _connection_kept():
    """Calls go to the WSGI application directly, not through Django's test client, so do what
    that client does: keep Django from closing the test's database connection (and with it the
    test's transaction, on PostgreSQL) at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(request, api_world, api_client_for) -> dict[str, str]:
    """A token per persona (its secret, for the Authorization header)."""
    return {name: api_client_for(request.getfixturevalue(name)).secret for name in PERSONAS}


def business_rule(label: str, response) -> bool:
    """Whether `response` is a 422 for business rules listed for the operation `label`."""
    if response.status_code != 422:
        return False
    errors = (response.json() or {}).get("errors") or {}
    allowed = BUSINESS_RULES.get(label, {})
    return bool(errors) and all(
        field in allowed or f"{field.split('.')[0]}.*" in allowed for field in errors
    )


def _fresh_key(case) -> None:
    """Replace a well-formed generated Idempotency-Key with a new one (see the docstring)."""
    headers = case.headers or {}
    if HEADER in headers and parse_key(str(headers[HEADER])) is not None:
        headers[HEADER] = str(uuid.uuid4())


def _failures(operation, headers: dict, mode: GenerationMode) -> list[str]:
    """Schemathesis' reports of what failed for `operation` with data of `mode`."""
    found: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        _fresh_key(case)
        response = case.call(headers=headers)
        excluded = []
        if business_rule(operation.label, response):
            excluded.append(positive_data_acceptance)
        case.validate_response(
            response, checks=CHECKS.get_all(), excluded_checks=excluded, headers=headers
        )

    try:
        run()
    except (FailureGroup, Exception) as error:  # schemathesis' findings, or a crash
        found.append(f"{operation.label} ({mode.value} data):\n{error}")
    return found


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_operation_conforms_to_the_schema(persona, tokens, _connection_kept):
    load_all_checks()
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=CONFIG)
    headers = {"Authorization": f"Bearer {tokens[persona]}"}
    failures, called = [], set()
    for result in schema.get_all_operations():
        operation = result.ok()
        called.add(operation.label)
        modes = [GenerationMode.POSITIVE]
        if persona == INVALID_INPUT_AS:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            failures += _failures(operation, headers, mode)
    assert {"POST /api/v1/approvals/{id}/approve/", "GET /api/v1/audit/export/"} <= called
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_every_business_rule_names_an_operation_of_the_schema(anonymous_api, db):
    paths = anonymous_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    labels = {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method in operations
        if method != "parameters"
    }
    assert set(BUSINESS_RULES) <= labels
    assert all(reason for rules in BUSINESS_RULES.values() for reason in rules.values())
