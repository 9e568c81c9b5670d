"""Every API route, as the URL configuration lists it, keeps region B out of region A's reach.

The routes are read from Django's resolver, not written here by hand. Each one needs an entry
in CASES saying how region B must stay invisible through it, for every method it allows:

* a route about one object answers 404 for region B's object, exactly as for one that does not
  exist, whatever the method (HEAD included; OPTIONS describes the route and reads no object);
* a list never carries a region-B row, and a list that takes a site refuses region B's.

A route added later without an entry fails `test_every_api_route_has_a_scope_case`, so nobody
can forget one. A read-only token is refused (403 `token_read_only`) on every mutating route.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.urls import URLResolver, get_resolver, reverse

from approvals.models import ApprovalPolicy, ApprovalRequest
from exceptions.models import OPEN_CASE_STATES, ExceptionCase
from exceptions.services import case_raise
from portal.audit.models import AuditEvent
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

__all__ = ["_working_morning", "matrix", "staffed"]

PREFIX = "api/v1/"

# Routes with no object of a site behind them, and where their scoping is tested instead.
SKIPPED = {
    "schema": "the OpenAPI document describes the API and holds no data",
    "docs": "the interactive documentation page holds no data",
    "tokens-list": "a token belongs to its user, not a site: tests/api/test_tokens.py",
    "tokens-detail": "a token belongs to its user, not a site: tests/api/test_tokens.py",
    "tokens-revoke": "a token belongs to its user, not a site: tests/api/test_tokens.py",
    "unrouted": "no route: every address nothing serves answers 404, tests/api/test_problems.py",
    "receive": "inbound webhooks are signed by the sender's secret, not a user's token: "
    "tests/webhooks",
}


@dataclass(frozen=True)
class Route:
    name: str
    methods: frozenset[str]
    detail: bool


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _methods(callback) -> frozenset[str]:
    actions = getattr(callback, "actions", None)
    if actions is not None:
        return frozenset(method for method in actions if method != "head")
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    names = view_class.http_method_names if view_class else ["get", "post"]
    return frozenset(m for m in names if m not in {"head", "options"} and hasattr(view_class, m))


def api_routes() -> list[Route]:
    """Every named route under /api/v1/, from the URL configuration."""
    routes = {}
    for path, pattern in _walk(get_resolver().url_patterns):
        if path.startswith(PREFIX) and pattern.name:
            detail = "<" in path or "(?P<" in path
            routes[pattern.name] = Route(pattern.name, _methods(pattern.callback), detail)
    return sorted(routes.values(), key=lambda route: route.name)


# --- the world: the same things in both regions -----------------------------------------------


@pytest.fixture
def world(matrix, requester, staffed, site_a1, site_b1, site_manager, finance, auditor):
    request_a = raise_request(requester, site_a1, amount="1000")
    request_b = raise_request(staffed["requester_b"], site_b1, amount="900")
    case_a = _case(site_a1, "a")
    case_b = _case(site_b1, "b")
    return {
        "request_a": request_a,
        "request_b": request_b,
        "case_a": case_a,
        "case_b": case_b,
        "event_a": AuditEvent.objects.filter(site=site_a1).first(),
        "event_b": AuditEvent.objects.filter(site=site_b1).first(),
        "site_a": site_a1,
        "site_b": site_b1,
        "policy_a": ApprovalPolicy.objects.get(name="Enterprise framework"),
        "policy_b": ApprovalPolicy.objects.get(name="UK thresholds"),
    }


def _case(site, key: str) -> ExceptionCase:
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=site,
        severity="high",
        title=f"Bill {key} differs",
        source="odoo",
        dedupe_key=f"scope:{key}",
        payload={},
        evidence={"difference": "10.00"},
        amount_at_stake=Decimal("10.00"),
        currency=site.currency,
    )
    return case


# --- the checks -------------------------------------------------------------------------------

Check = Callable[[object, str, str, dict], str | None]


def _call(client, method: str, url: str, data=None, query=None):
    if method in {"get", "head"}:
        return getattr(client, method)(url, query or {})
    return client.generic(
        method.upper(), url, json.dumps(data or {}), content_type="application/json"
    )


def not_found(obj: str) -> Check:
    """Region B's object answers 404, as a problem, and nothing changes."""

    def check(client, name, method, world):
        events = AuditEvent.objects.count()
        response = _call(client, method, reverse(f"api:{name}", kwargs={"pk": world[obj].pk}))
        if response.status_code != 404:
            return f"{method.upper()} {name} on {obj}: {response.status_code}, expected 404"
        if method != "head" and response["Content-Type"] != "application/problem+json":
            return f"{method.upper()} {name}: 404 is not a problem document"
        if AuditEvent.objects.count() != events:
            return f"{method.upper()} {name} on {obj} recorded an event"
        return None

    return check


def listing(ids_of: Callable[[dict], set], forbidden: Callable[[dict], set], **query) -> Check:
    """The list answers 200 and none of its rows belongs to region B."""

    def check(client, name, method, world):
        response = _call(client, method, reverse(f"api:{name}"), query=query)
        if response.status_code != 200:
            return f"GET {name}: {response.status_code}"
        leaked = ids_of(response.json()) & forbidden(world)
        return f"GET {name} shows region B's {sorted(leaked)}" if leaked else None

    return check


def refused(status: int, *, query=None, body=None, unchanged=None) -> Check:
    """Naming region B's site is refused with `status`, and nothing is created."""

    def check(client, name, method, world):
        before = unchanged() if unchanged else None
        resolved = {k: v(world) if callable(v) else v for k, v in (query or body or {}).items()}
        response = _call(
            client,
            method,
            reverse(f"api:{name}"),
            data=resolved if body else None,
            query=resolved if query else None,
        )
        if response.status_code != status:
            return f"{method.upper()} {name} naming region B: {response.status_code}, not {status}"
        if unchanged and unchanged() != before:
            return f"{method.upper()} {name} naming region B changed something"
        return None

    return check


def _results(body) -> set:
    return {row["id"] for row in body["results"]}


def _queue_ids(body) -> set:
    return {item["case"]["id"] for item in body}


def _b(*keys) -> Callable[[dict], set]:
    return lambda world: {world[key].pk for key in keys}


def _b_region_requests(world) -> set:
    return set(ApprovalRequest.objects.filter(site=world["site_b"]).values_list("pk", flat=True))


def _b_region_events(world) -> set:
    return set(AuditEvent.objects.filter(site=world["site_b"]).values_list("pk", flat=True))


def _summary(client, name, method, world):
    response = client.get(reverse(f"api:{name}"))
    total = sum(row["open"] for row in response.json())
    in_a = ExceptionCase.objects.filter(
        state__in=OPEN_CASE_STATES, site__region=world["site_a"].region
    ).count()
    return None if total <= in_a else f"GET {name} counts region B's cases ({total} > {in_a})"


def _export(client, name, method, world):
    problem = refused(403, query={"format": "jsonl", "site": "B1"})(client, name, method, world)
    if problem:
        return problem
    response = client.get(reverse(f"api:{name}"), {"format": "jsonl"})
    if response.status_code == 403:
        return None  # audits nothing at all
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    leaked = {row["sequence"] for row in rows if row["site_id"] == world["site_b"].pk}
    return f"GET {name} exports region B's events {sorted(leaked)}" if leaked else None


def _count_requests():
    return ApprovalRequest.objects.count()


CASES: dict[str, dict[str, Check]] = {
    "approvals-list": {
        "get": listing(_results, _b_region_requests, page_size=200),
        "post": refused(
            404,
            body={
                "kind": "purchase",
                "site_id": lambda world: world["site_b"].pk,
                "title": "x",
                "reason": "x",
                "amount": "10",
                "counterparty": "x",
            },
            unchanged=_count_requests,
        ),
    },
    "approvals-inbox": {"get": listing(_results, _b_region_requests, page_size=200)},
    "approvals-detail": {"get": not_found("request_b")},
    "approvals-approve": {"post": not_found("request_b")},
    "approvals-reject": {"post": not_found("request_b")},
    "approvals-withdraw": {"post": not_found("request_b")},
    "approvals-delegate": {"post": not_found("request_b")},
    "exceptions-list": {"get": listing(_results, _b("case_b"), page_size=200)},
    "exceptions-queue": {"get": listing(_queue_ids, _b("case_b"), limit=200)},
    "exceptions-summary": {"get": _summary},
    "exceptions-detail": {"get": not_found("case_b")},
    "exceptions-assign": {"post": not_found("case_b")},
    "exceptions-start": {"post": not_found("case_b")},
    "exceptions-resolve": {"post": not_found("case_b")},
    "exceptions-dismiss": {"post": not_found("case_b")},
    "exceptions-reopen": {"post": not_found("case_b")},
    "audit-events-list": {"get": listing(_results, _b_region_events, page_size=200)},
    "audit-events-detail": {"get": not_found("event_b")},
    "audit-export-list": {"get": _export},
    "sites-list": {"get": listing(_results, _b("site_b"))},
    "sites-detail": {"get": not_found("site_b")},
    "policies-list": {"get": listing(_results, _b("policy_b"))},
    "policies-detail": {"get": not_found("policy_b")},
    "policies-preview": {
        "get": refused(
            404, query={"site": lambda world: world["site_b"].pk, "kind": "purchase", "amount": "1"}
        )
    },
}

# The region-A object a detail route is about, for the read-only token check.
OWN_OBJECT = {
    "approvals": "request_a",
    "exceptions": "case_a",
    "audit-events": "event_a",
    "sites": "site_a",
    "policies": "policy_a",
}


def _covered() -> list[Route]:
    return [route for route in api_routes() if route.name not in SKIPPED]


def test_every_api_route_has_a_scope_case():
    routes = {route.name: route for route in _covered()}

    missing = sorted(set(routes) - set(CASES))
    assert not missing, f"routes without a scope case in CASES: {missing}"
    stale = sorted(set(CASES) - set(routes))
    assert not stale, f"CASES names routes that no longer exist: {stale}"
    for name, route in routes.items():
        assert set(CASES[name]) == set(route.methods), f"{name}: methods {sorted(route.methods)}"


def test_the_route_list_is_read_from_the_url_configuration():
    names = {route.name for route in api_routes()}

    assert {"approvals-approve", "exceptions-resolve", "audit-export-list", "schema"} <= names
    assert set(SKIPPED) <= names, "a skipped route no longer exists; drop it from SKIPPED"


@pytest.mark.parametrize("persona", ["site_manager", "finance", "auditor"])
def test_region_b_is_out_of_reach_of_region_a_on_every_route(
    persona, request, api_client_for, world
):
    client = api_client_for(request.getfixturevalue(persona))
    failures = []
    for route in _covered():
        for method, check in CASES.get(route.name, {}).items():
            failures.append(check(client, route.name, method, world))
            if route.detail and method == "get":
                failures.append(check(client, route.name, "head", world))
    assert [failure for failure in failures if failure] == []


def test_a_read_only_token_cannot_mutate_on_any_route(api_client_for, site_manager, world):
    client = api_client_for(site_manager, read_only=True)
    events = AuditEvent.objects.count()
    mutating = [(r, m) for r in _covered() for m in r.methods if m not in {"get", "head"}]
    assert mutating, "no mutating route found"
    for route, method in mutating:
        basename = route.name.rsplit("-", 1)[0]
        kwargs = {"pk": world[OWN_OBJECT[basename]].pk} if route.detail else {}
        response = _call(client, method, reverse(f"api:{route.name}", kwargs=kwargs))
        assert response.status_code == 403, (route.name, response.status_code)
        assert response.json()["code"] == "token_read_only", route.name
    assert AuditEvent.objects.count() == events
