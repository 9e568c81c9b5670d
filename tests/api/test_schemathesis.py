"""The live OpenAPI schema against the running API: schemathesis calls every operation as each
persona, with generated valid and invalid input, and runs all its checks (no 5xx, responses and
their headers as documented, status codes documented, content types as documented, bad input
refused, good input accepted, authentication not ignored).

A failure prints schemathesis' report for it, with a `curl` command that reproduces the call.
The number of examples per operation is kept small so the whole run takes about two minutes.
"""

from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from exceptions.services import case_raise
from portal.wsgi import application
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

# Examples per operation, persona and kind of data (valid, invalid): enough to find what is
# broken, few enough for a two-minute run.
EXAMPLES = 8
PERSONAS = ["requester", "site_manager", "regional_manager", "finance", "auditor", "outsider"]

CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            # Schema-valid input can still break a business rule the schema cannot express (a
            # site outside the caller's scope, a field a request's kind needs, a date range
            # that ends before it starts); the API answers those 422 with the reason.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
            },
        }
    }
)


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
        case.call_and_validate(headers=headers)

    try:
        run()
    except (FailureGroup, Exception) as error:  # schemathesis' findings, or a crash
        found.append(f"{operation.label} ({mode.value} data):\n{error}")
    return found


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_operation_conforms_to_the_schema(persona, tokens, _connection_kept):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=CONFIG)
    headers = {"Authorization": f"Bearer {tokens[persona]}"}
    failures, called = [], set()
    for result in schema.get_all_operations():
        operation = result.ok()
        called.add(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _failures(operation, headers, mode)
    assert {"POST /api/v1/approvals/{id}/approve/", "GET /api/v1/audit/export/"} <= called
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
