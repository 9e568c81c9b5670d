"""Pages not covered by their own files' query-count tests: each costs the same number of
queries whether its list holds a few rows or many."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import email_links, services
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def test_bulk_page_costs_the_same_queries_however_many_routine_items(
    client, matrix, requester, site_a1, site_manager
):
    client.force_login(site_manager)
    url = reverse("approvals:bulk")
    raise_request(requester, site_a1, amount="1000")
    raise_request(requester, site_a1, amount="7000", title="One by one")
    few = _queries(client, url)
    for i in range(8):
        raise_request(requester, site_a1, amount=str(1010 + i))
        raise_request(requester, site_a1, amount=str(7010 + i), title=f"Material {i}")

    assert _queries(client, url) == few


def test_decision_trail_costs_the_same_queries_however_long_the_story(
    client, matrix, requester, site_a1, site_manager, regional_manager, auditor
):
    client.force_login(auditor)
    short = raise_request(requester, site_a1, amount="1000")
    long = raise_request(requester, site_a1, amount="6000")
    services.request_approve(actor=site_manager, request_id=long.pk, comment="Tier one")
    services.request_approve(actor=regional_manager, request_id=long.pk, comment="Tier two")

    few = _queries(client, reverse("audit:trail", args=["request", short.pk]))
    many = _queries(client, reverse("audit:trail", args=["request", long.pk]))

    assert many == few


def test_email_link_confirmation_and_preferences_cost_the_same_queries_as_the_inbox_grows(
    client, matrix, requester, site_a1, site_manager
):
    client.force_login(site_manager)
    first = raise_request(requester, site_a1, amount="1000")
    step = first.steps.get(state="active")
    link = reverse("approvals:email_link", args=[email_links.make_token(step, site_manager)])
    preferences = reverse("manage:preferences")
    before = (_queries(client, link), _queries(client, preferences))
    for i in range(6):
        raise_request(requester, site_a1, amount=str(1100 + i))

    assert (_queries(client, link), _queries(client, preferences)) == before
