"""Each request keeps the time of its last decision, which the list's "Decided" order reads.

Every way a decision is recorded sets `ApprovalRequest.last_decided_at` to the newest
`Decision.at` of the request, in the same transaction; migration 0009 fills it for decisions
made before; the list sorts on the column instead of reading decisions per row.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import listing, services
from approvals.listing import ListFilters
from approvals.models import ApprovalRequest, Decision, HeldAt, OnBreach, RequestState
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request, tier
from tests.approvals.test_sla import _publish_site_policy

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _stored_and_newest(request) -> tuple:
    stored = ApprovalRequest.objects.get(pk=request.pk).last_decided_at
    newest = Decision.objects.filter(request=request).aggregate(at=Max("at"))["at"]
    return stored, newest


def _assert_kept(request) -> None:
    stored, newest = _stored_and_newest(request)
    assert newest is not None, "the request has a decision"
    assert stored == newest


def test_fast_path_stores_the_policys_decision_time(matrix, requester, site_a1):
    target = raise_request(requester, site_a1, amount="120")

    assert target.state == RequestState.APPROVED
    _assert_kept(target)


def test_each_approval_moves_the_time_whether_or_not_it_ends_the_tier_or_the_request(
    matrix, requester, site_a1, site_manager, regional_manager, staffed, _working_morning
):
    two_tiers = raise_request(requester, site_a1, amount="6000")
    assert ApprovalRequest.objects.get(pk=two_tiers.pk).last_decided_at is None

    services.request_approve(actor=site_manager, request_id=two_tiers.pk)  # opens the next tier
    _assert_kept(two_tiers)
    _working_morning.shift(timedelta(hours=2))
    services.request_approve(actor=regional_manager, request_id=two_tiers.pk)  # the last
    assert ApprovalRequest.objects.get(pk=two_tiers.pk).state == RequestState.APPROVED
    _assert_kept(two_tiers)

    quorum = raise_request(requester, site_a1, kind="expedited_freight", amount="300")
    services.request_approve(actor=regional_manager, request_id=quorum.pk)  # quorum not met
    assert ApprovalRequest.objects.get(pk=quorum.pk).state == RequestState.IN_REVIEW
    _assert_kept(quorum)
    _working_morning.shift(timedelta(hours=1))
    services.request_approve(actor=staffed["regional_manager_2"], request_id=quorum.pk)
    _assert_kept(quorum)


def test_parallel_tier_approval_that_leaves_another_tier_open_stores_the_time(
    matrix, requester, site_a1, site_manager, finance, _working_morning
):
    target = raise_request(requester, site_a1, amount="60000")
    services.request_approve(actor=site_manager, request_id=target.pk)
    _working_morning.shift(timedelta(hours=3))

    services.request_approve(actor=finance, request_id=target.pk)

    assert ApprovalRequest.objects.get(pk=target.pk).state == RequestState.IN_REVIEW
    _assert_kept(target)


def test_rejection_stores_the_time(matrix, requester, site_a1, site_manager, _working_morning):
    target = raise_request(requester, site_a1, amount="1000")
    _working_morning.shift(timedelta(hours=1))

    services.request_reject(actor=site_manager, request_id=target.pk, reason="Not this month")

    _assert_kept(target)


def test_decision_under_delegation_stores_the_time(
    matrix, requester, site_a1, site_manager, colleague
):
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=WORKING_MORNING,
        ends_at=WORKING_MORNING + timedelta(days=14),
    )
    target = raise_request(requester, site_a1, amount="1000")

    decision = services.request_approve(actor=colleague, request_id=target.pk)

    assert decision.on_behalf_of == site_manager
    _assert_kept(target)


def test_bulk_approval_stores_each_requests_time(client, matrix, requester, site_a1, site_manager):
    routine = [raise_request(requester, site_a1, amount=str(1000 + i)) for i in range(2)]
    client.force_login(site_manager)

    response = client.post(
        reverse("approvals:bulk"),
        {
            "group": f"purchase:{routine[0].rule_id}",
            "requests": [r.pk for r in routine],
            "comment": "Weekly restock",
        },
    )

    assert response.status_code == 200
    for request in routine:
        _assert_kept(request)


def test_sla_breach_that_rejects_stores_the_systems_decision_time(
    matrix, requester, site_a1, _working_morning
):
    _publish_site_policy(
        site_a1,
        tier(Role.SITE_MANAGER, sla="8", on_breach=OnBreach.REJECT),
        tier(Role.FINANCE, stage=2, held_at=HeldAt.REGION),
    )
    target = raise_request(requester, site_a1, amount="1000")
    _working_morning.move_to(WORKING_MORNING + timedelta(hours=8, minutes=1))

    assert services.sla_sweep() == services.SweepResult(rejected=1)

    _assert_kept(target)


# --- the list reads the column ---------------------------------------------------------------


def _rows_query(user, filters: ListFilters) -> str:
    with CaptureQueriesContext(connection) as queries:
        page = listing.requests_page(user, filters, zone=AMSTERDAM)
    assert page.rows, "the fixture gives the list rows"
    [rows] = [q["sql"] for q in queries if 'FROM "approvals_approvalrequest"' in q["sql"]]
    return rows


@pytest.fixture
def decided(matrix, requester, site_a1, site_manager, _working_morning):
    made = []
    for amount in ("1000", "1100", "1200"):
        made.append(raise_request(requester, site_a1, amount=amount))
    for request in (made[1], made[0]):
        _working_morning.shift(timedelta(minutes=10))
        services.request_approve(actor=site_manager, request_id=request.pk)
    return made


def test_decided_order_reads_the_stored_column_not_decisions_per_row(decided, site_manager):
    rows = _rows_query(site_manager, ListFilters(tab="all", sort="-decided"))

    # Nothing but the column: no subquery over decisions for each row.
    assert '"approvals_decision"' not in rows
    assert '"last_decided_at" DESC NULLS LAST' in rows


def test_decided_by_me_starts_from_their_decisions_when_they_are_few(decided, site_manager):
    with CaptureQueriesContext(connection) as queries:
        page = listing.requests_page(
            site_manager, ListFilters(tab="decided", sort="-decided"), zone=AMSTERDAM
        )
    assert [row.request.pk for row in page.rows] == [decided[0].pk, decided[1].pk]
    sql = [q["sql"] for q in queries]
    # Their decisions read once by the actor, then the rows by id: no walk over every request
    # testing each for a decision of theirs.
    [theirs] = [q for q in sql if q.startswith('SELECT "approvals_decision"."request_id"')]
    assert f'"approvals_decision"."actor_id" = {site_manager.pk}' in theirs
    [rows] = [q for q in sql if 'FROM "approvals_approvalrequest"' in q]
    assert '"approvals_decision"' not in rows


def test_decided_by_me_tests_each_request_when_they_decided_many(
    decided, site_manager, monkeypatch
):
    monkeypatch.setattr(listing, "DECIDED_IDS_READ", 1)
    rows = _rows_query(site_manager, ListFilters(tab="decided", sort="-decided"))

    assert rows.count('"approvals_decision"') == 1  # the tab's EXISTS (theirs), not the order


def test_decided_order_is_last_decision_first_undecided_last_and_pages_add_up(
    decided, site_manager
):
    expected = [decided[0].pk, decided[1].pk, decided[2].pk]  # decided last, then first, then not
    for limit in (1, 2, 50):
        rows, cursor = [], ""
        filters = ListFilters(tab="all", sort="-decided")
        while True:
            page = listing.requests_page(
                site_manager, filters, after=cursor, limit=limit, zone=AMSTERDAM
            )
            rows += [row.request.pk for row in page.rows]
            cursor = page.next_cursor
            if not cursor:
                break
        assert [pk for pk in rows if pk in expected] == expected, limit


# --- migration 0009 fills the column for decisions already made --------------------------------

BEFORE = [("approvals", "0008_list_order_indexes")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_migration_fills_the_time_from_the_decisions_already_made(
    matrix, requester, site_a1, site_manager, regional_manager, _working_morning
):
    two = raise_request(requester, site_a1, amount="6000")
    services.request_approve(actor=site_manager, request_id=two.pk)
    _working_morning.shift(timedelta(hours=2))
    services.request_approve(actor=regional_manager, request_id=two.pk)
    fast = raise_request(requester, site_a1, amount="120")
    waiting = raise_request(requester, site_a1, amount="1000")

    _migrate(BEFORE)
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    _assert_kept(two)
    _assert_kept(fast)
    assert ApprovalRequest.objects.get(pk=waiting.pk).last_decided_at is None
