"""The benchmark datasets: built (or reused), the right size and shape, the ledger intact.

Measures how long each scale took to build (recorded when it was built: a reused dataset reports
its original build) and how long `verify_audit` takes over the 10k ledger. Target: the company
and all three scales built in at most 10 minutes. Counts are checked on the rows the generator
wrote (the first N ids), since other benchmarks may add requests and events of their own.
"""

import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from approvals.authority import Authority
from approvals.models import ApprovalStep
from tests.benchmarks import dataset
from tests.benchmarks.harness import use_database

BUILD_BUDGET_S = 600
# The named people whose reach needs more than ten memberships (one per region).
WIDE = {"all_200", "auditor", "admin"}
DECIDERS = ("site_1", "region_10", "all_200", "site_manager", "regional_manager", "finance")


def _one(sql: str, params=()) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@pytest.mark.parametrize("scale", list(dataset.SCALES))
def test_dataset_has_the_size_and_shape_of_its_scale(scale, results):
    data = dataset.ensure(scale)
    n = dataset.SCALES[scale]
    with use_database(data.database):
        requests, pending = _one(
            "SELECT count(*), count(*) FILTER (WHERE state = 'in_review') "
            "FROM approvals_approvalrequest WHERE id <= %s",
            [n],
        )
        assert requests == n
        assert abs(pending / n - dataset.PENDING_SHARE) <= 0.01
        # The decision and webhook benchmarks add their own region (ZBENCH) and site.
        assert (
            _one(
                "SELECT count(*) FROM sites_site s JOIN sites_region r ON r.id = s.region_id "
                "WHERE r.code <> 'ZBENCH'"
            )[0]
            == 200
        )
        assert _one("SELECT count(*) FROM sites_region WHERE code <> 'ZBENCH'")[0] == 20
        assert _one("SELECT count(*) FROM auth_user WHERE id <= %s", [dataset.USERS])[0] == 5_000
        assert _one("SELECT count(*) FROM audit_auditevent WHERE sequence <= %s", [2 * n]) == (
            2 * n,
        )
        assert _one("SELECT count(*) FROM exceptions_exceptioncase WHERE id <= %s", [n // 5]) == (
            n // 5,
        )
        _assert_roles_per_user()
        _assert_pending_tiers_spread(n)
        _assert_deciders_have_work(data)
    seconds = dataset.build_seconds(scale)
    results.add("dataset", f"build {scale}", seconds, "s", note=f"{n:,} requests")


def _assert_roles_per_user() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.username, count(m.id) FROM auth_user u "
            "LEFT JOIN sites_membership m ON m.user_id = u.id "
            "WHERE u.id <= %s GROUP BY u.username",
            [dataset.USERS],
        )
        held = dict(cursor.fetchall())
    assert len(held) == dataset.USERS
    narrow = [count for name, count in held.items() if name not in WIDE]
    assert min(narrow) >= 1 and max(narrow) <= 10
    assert all(held[name] == dataset.REGIONS for name in WIDE)


def _assert_pending_tiers_spread(n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.position, count(*) FROM approvals_approvalstep s "
            "JOIN approvals_approvalrequest r ON r.id = s.request_id "
            "WHERE s.state = 'active' AND r.state = 'in_review' AND r.id <= %s "
            "GROUP BY s.position",
            [n],
        )
        by_tier = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FILTER (WHERE due_at < now()), count(*) FILTER (WHERE due_at >= now())"
            " FROM approvals_approvalrequest WHERE state = 'in_review' AND id <= %s",
            [n],
        )
        overdue, not_yet = cursor.fetchone()
    assert set(by_tier) == {1, 2, 3}
    assert overdue > 0 and not_yet > 0


def _assert_deciders_have_work(data: dataset.Dataset) -> None:
    users = get_user_model().objects
    for key in DECIDERS:
        user = users.get(username=data.users_by_reach[key])
        assert ApprovalStep.objects.filter(Authority.of(user).steps()).exists(), key


def test_the_10k_ledger_verifies(results):
    data = dataset.ensure("10k")
    with use_database(data.database):
        out = StringIO()
        started = time.perf_counter()
        call_command("verify_audit", stdout=out)
        seconds = time.perf_counter() - started
    assert out.getvalue().startswith("Audit ledger intact")
    results.add("dataset", "verify_audit 10k", seconds, "s", note=f"{data.audit_events:,} events")


def test_build_time_of_all_scales(results):
    for scale in dataset.SCALES:
        dataset.ensure(scale)
    seconds = [dataset.build_seconds(scale) for scale in ("company", *dataset.SCALES)]
    total = sum(seconds)
    results.add(
        "dataset",
        "build company + 10k + 100k + 1m",
        total,
        "s",
        target=f"≤ {BUILD_BUDGET_S} s",
        ok=total <= BUILD_BUDGET_S,
    )
