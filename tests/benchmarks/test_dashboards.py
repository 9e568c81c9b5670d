"""Dashboards at one million requests: each chart's numbers for the people who read them most.

Measures each chart's data function (`portal.inbox.dashboard_views.CHARTS[...].rows`, all its
queries; approval cycle time, exception resolution time, invoice matching speed and transfer
lead time among them) for the regional manager (10 sites), finance (50 sites), the auditor and
the admin (all 200 sites) over the default 30-day period: p50/p95 and the number of queries.
Floor: the same aggregate written by hand in SQL (the viewer's sites computed in the same
statement), timed on the same data in the same run; its rows must equal the chart's rows.
Target (issue 9): every dashboard ≤ 500 ms at 1M requests.
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.inbox import dashboards
from portal.inbox.dashboard_views import CHARTS
from sites.policies import GRANTED_BY, Capability
from sites.roles import permission_codename
from tests.benchmarks import dataset
from tests.benchmarks.harness import timed, use_database

SCALE = "1m"
VIEWERS = ("regional_manager", "finance", "auditor", "admin")
TARGET_MS = 500
RUNS = 5

# The viewer's sites, as sites.policies decides them: a grant row of a VIEW role whose
# membership is in force and still covers the site.
SCOPE = """
    SELECT g.content_object_id FROM sites_siteuserobjectpermission g
    JOIN auth_user u ON u.id = g.user_id AND u.is_active
    JOIN auth_permission p ON p.id = g.permission_id AND p.codename = ANY(%(codes)s)
    JOIN sites_membership m ON m.id = g.membership_id
    JOIN sites_site s ON s.id = g.content_object_id
    WHERE g.user_id = %(user)s AND m.valid_from <= %(now)s
      AND (m.valid_to IS NULL OR m.valid_to > %(now)s)
      AND (m.site_id = s.id OR m.region_id = s.region_id)
"""
DECIDED = "('approved', 'rejected', 'applied', 'apply_failed')"
BUCKET = """CASE WHEN {field} > %(now)s - interval '1 day' THEN 0
    WHEN {field} > %(now)s - interval '3 days' THEN 1
    WHEN {field} > %(now)s - interval '7 days' THEN 2 ELSE 3 END"""

FLOORS = {
    "cycle-time": f"""
        SELECT s.code, r.kind, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY r.hours),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY r.hours)
        FROM (SELECT site_id, kind, EXTRACT(EPOCH FROM (decided_at - submitted_at)) / 3600.0 hours
              FROM approvals_approvalrequest
              WHERE site_id = ANY(ARRAY({SCOPE})) AND state IN {DECIDED}
                AND submitted_at IS NOT NULL AND decided_at >= %(start)s AND decided_at < %(now)s
             ) r JOIN sites_site s ON s.id = r.site_id
        GROUP BY s.code, r.kind ORDER BY s.code, r.kind""",  # noqa: S608 -- constant SQL; values are bound parameters
    "exception-resolution": f"""
        SELECT c.queue, s.code, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY c.hours),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY c.hours)
        FROM (SELECT site_id, queue, EXTRACT(EPOCH FROM (closed_at - detected_at)) / 3600.0 hours
              FROM exceptions_exceptioncase
              WHERE site_id = ANY(ARRAY({SCOPE})) AND state = 'resolved'
                AND closed_at >= %(start)s AND closed_at < %(now)s
             ) c JOIN sites_site s ON s.id = c.site_id
        GROUP BY c.queue, s.code ORDER BY c.queue, s.code""",  # noqa: S608 -- constant SQL; values are bound parameters
    "invoice-matching": f"""
        SELECT s.code, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY c.hours),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY c.hours)
        FROM (SELECT site_id, EXTRACT(EPOCH FROM (closed_at - detected_at)) / 3600.0 hours
              FROM exceptions_exceptioncase
              WHERE site_id = ANY(ARRAY({SCOPE})) AND kind = 'invoice_mismatch'
                AND state IN ('resolved', 'dismissed')
                AND closed_at >= %(start)s AND closed_at < %(now)s
             ) c JOIN sites_site s ON s.id = c.site_id
        GROUP BY s.code ORDER BY s.code""",  # noqa: S608 -- constant SQL; values are bound parameters
    "transfer-lead-time": f"""
        SELECT s.code, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY r.hours),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY r.hours)
        FROM (SELECT site_id, EXTRACT(EPOCH FROM (applied_at - submitted_at)) / 3600.0 hours
              FROM approvals_approvalrequest
              WHERE site_id = ANY(ARRAY({SCOPE})) AND state = 'applied' AND kind = 'transfer'
                AND submitted_at IS NOT NULL
                AND applied_at >= %(start)s AND applied_at < %(now)s
             ) r JOIN sites_site s ON s.id = r.site_id
        GROUP BY s.code ORDER BY s.code""",  # noqa: S608 -- constant SQL; values are bound parameters
    "sla-breaches": f"""
        SELECT s.code, count(*), count(*) FILTER (WHERE t.completed_at > t.due_at
            OR (t.state = 'active' AND t.due_at < %(now)s AND t.completed_at IS NULL)
            OR t.escalated_at IS NOT NULL)
        FROM approvals_approvalstep t JOIN sites_site s ON s.id = t.site_id
        WHERE t.site_id = ANY(ARRAY({SCOPE})) AND t.activated_at >= %(start)s
          AND t.activated_at < %(now)s AND t.due_at IS NOT NULL
        GROUP BY s.code ORDER BY s.code""",  # noqa: S608 -- constant SQL; values are bound parameters
    "open-requests": f"""
        SELECT t.position, t.role, {BUCKET.format(field="t.activated_at")} bucket, count(*),
               count(*) FILTER (WHERE t.due_at < %(now)s)
        FROM approvals_approvalstep t
        JOIN approvals_approvalrequest r ON r.id = t.request_id
        WHERE t.state = 'active' AND r.state = 'in_review'
          AND t.site_id = ANY(ARRAY({SCOPE}))
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",  # noqa: S608 -- constant SQL; values are bound parameters
    "exception-backlog": f"""
        SELECT c.queue, s.code, {BUCKET.format(field="c.detected_at")} bucket, count(*),
               count(*) FILTER (WHERE c.due_at < %(now)s)
        FROM exceptions_exceptioncase c JOIN sites_site s ON s.id = c.site_id
        WHERE c.state IN ('new', 'assigned', 'in_progress')
          AND c.site_id = ANY(ARRAY({SCOPE}))
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",  # noqa: S608 -- constant SQL; values are bound parameters
    "straight-through": f"""
        SELECT s.code, r.kind, count(*), count(*) FILTER (WHERE r.fast_path)
        FROM approvals_approvalrequest r JOIN sites_site s ON s.id = r.site_id
        WHERE r.site_id = ANY(ARRAY({SCOPE})) AND r.state IN {DECIDED}
          AND r.decided_at >= %(start)s AND r.decided_at < %(now)s
        GROUP BY 1, 2 ORDER BY 1, 2""",  # noqa: S608 -- constant SQL; values are bound parameters
    "failed-write-backs": f"""
        SELECT code, sum(failed), sum(requests), sum(retrying) FROM (
            SELECT s.code, count(*) FILTER (WHERE o.state = 'failed') failed, 0 requests,
                   count(*) FILTER (WHERE o.state = 'pending') retrying
            FROM odoo_outboxitem o JOIN approvals_approvalrequest r ON r.id = o.request_id
            JOIN sites_site s ON s.id = r.site_id
            WHERE (o.state = 'failed' OR (o.state = 'pending' AND o.attempts > 0))
              AND r.site_id = ANY(ARRAY({SCOPE}))
            GROUP BY s.code
            UNION ALL
            SELECT s.code, 0, count(*), 0
            FROM approvals_approvalrequest r JOIN sites_site s ON s.id = r.site_id
            WHERE r.state = 'apply_failed' AND r.site_id = ANY(ARRAY({SCOPE}))
              AND EXISTS (SELECT 1 FROM odoo_outboxitem o WHERE o.request_id = r.id)
            GROUP BY s.code
        ) x GROUP BY code ORDER BY code""",  # noqa: S608 -- constant SQL; values are bound parameters
    "throughput": f"""
        WITH scope AS MATERIALIZED (SELECT ARRAY({SCOPE}) ids)
        SELECT 's', (submitted_at AT TIME ZONE 'UTC')::date, count(*)
        FROM approvals_approvalrequest, scope
        WHERE site_id = ANY(scope.ids) AND submitted_at >= %(day_start)s AND submitted_at < %(now)s
        GROUP BY 2
        UNION ALL
        SELECT 'd', (decided_at AT TIME ZONE 'UTC')::date, count(*)
        FROM approvals_approvalrequest, scope
        WHERE site_id = ANY(scope.ids) AND state IN {DECIDED}
          AND decided_at >= %(day_start)s AND decided_at < %(now)s
        GROUP BY 2""",  # noqa: S608 -- constant SQL; values are bound parameters
}


def _labels(bucket: int) -> str:
    return dashboards.AGE_BUCKETS[bucket][0]


def _pct(part, whole) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# The duration charts counted by site alone, and what each calls its count.
DURATIONS_BY_SITE = {"invoice-matching": "settled", "transfer-lead-time": "applied"}


def _durations(median: float, p90: float) -> dict:
    return {"median_hours": round(median, 2), "p90_hours": round(p90, 2)}


def _floor_rows(slug: str, rows: list[tuple]) -> list[dict]:
    """The hand-written SQL's rows in the chart's own shape, to compare with the selector's."""
    if slug == "cycle-time":
        return [
            {
                "site": site,
                "kind": kind,
                "decided": n,
                "median_hours": round(median, 2),
                "p90_hours": round(p90, 2),
            }
            for site, kind, n, median, p90 in rows
        ]
    if slug == "exception-resolution":
        return [
            {"queue": queue, "site": site, "resolved": n, **_durations(median, p90)}
            for queue, site, n, median, p90 in rows
        ]
    if slug in DURATIONS_BY_SITE:
        return [
            {"site": site, DURATIONS_BY_SITE[slug]: n, **_durations(median, p90)}
            for site, n, median, p90 in rows
        ]
    if slug == "sla-breaches":
        return [
            {"site": site, "tiers": n, "breached": late, "breach_rate_pct": _pct(late, n)}
            for site, n, late in rows
        ]
    if slug == "open-requests":
        return [
            {"tier": tier, "role": role, "age": _labels(bucket), "open": n, "overdue": late}
            for tier, role, bucket, n, late in rows
        ]
    if slug == "exception-backlog":
        return [
            {"queue": queue, "site": site, "age": _labels(bucket), "open": n, "overdue": late}
            for queue, site, bucket, n, late in rows
        ]
    if slug == "straight-through":
        return [
            {
                "site": site,
                "kind": kind,
                "decided": n,
                "fast_path": fast,
                "straight_through_pct": _pct(fast, n),
            }
            for site, kind, n, fast in rows
        ]
    if slug == "failed-write-backs":
        return [
            {
                "site": site,
                "outbox_failed": int(failed),
                "apply_failed": int(requests),
                "outbox_retrying": int(retrying),
            }
            for site, failed, requests, retrying in rows
        ]
    counts: dict[str, dict[str, int]] = {}
    for series, day, n in rows:
        entry = counts.setdefault(day.isoformat(), {"submitted": 0, "decided": 0})
        entry["submitted" if series == "s" else "decided"] = n
    return [{"day": day, **entry} for day, entry in sorted(counts.items())]


def _comparable(slug: str, rows: list[dict]) -> list[dict]:
    if slug == "throughput":  # the chart lists every day, the SQL only days with requests
        return [row for row in rows if row["submitted"] or row["decided"]]
    return rows


def _run_floor(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.fixture(scope="module")
def dataset_1m():
    data = dataset.ensure(SCALE)
    with use_database(data.database):
        yield data


@pytest.mark.parametrize("key", VIEWERS)
def test_every_dashboard_within_500_ms_at_1m_requests(dataset_1m, key, results):
    viewer = get_user_model().objects.get(username=dataset_1m.users_by_reach[key])
    period = dashboards.period_of(dashboards.DEFAULT_PERIOD)
    first_day = period.end.date() - timedelta(days=period.days - 1)
    params = {
        "user": viewer.pk,
        "codes": [permission_codename(role) for role in GRANTED_BY[Capability.VIEW]],
        "now": period.end,
        "start": period.start,
        "day_start": f"{first_day.isoformat()}T00:00:00+00:00",
    }
    page_p95 = 0.0
    for chart in CHARTS:
        with CaptureQueriesContext(connection) as queries:
            rows = chart.rows(viewer, period)
        floor_rows = _floor_rows(chart.slug, _run_floor(FLOORS[chart.slug], params))
        assert _comparable(chart.slug, rows) == floor_rows, chart.slug
        measured = timed(lambda chart=chart: chart.rows(viewer, period), runs=RUNS, warmup=1)
        floor = timed(lambda chart=chart: _run_floor(FLOORS[chart.slug], params), runs=RUNS)
        page_p95 += measured.p95
        results.add(
            "dashboards",
            f"{chart.slug} · {key} p95",
            measured.p95,
            "ms",
            floor=floor.p95,
            floor_label="hand-written SQL p95",
            target=f"≤ {TARGET_MS} ms",
            ok=measured.p95 <= TARGET_MS,
            note=f"p50 {measured.p50:.1f} ms; {len(queries)} queries; {len(rows)} rows",
        )
    results.add("dashboards", f"all charts · {key} (sum of p95)", page_p95, "ms")
