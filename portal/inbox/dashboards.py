"""The numbers behind the dashboards, each an aggregate over the viewer's sites.

Every selector first reads the sites `sites.policies.sites_where(user, Capability.VIEW)` gives
and filters on them, so a viewer never receives another site's numbers, and aggregates in the
database: no selector reads request rows into Python, so they keep their cost at millions of
requests. The indexes they rely on (requests by site and decision or submission time, tiers by
activation, the active tiers) are declared on the approvals models.

Cycle-time percentiles use PostgreSQL's `percentile_cont`. SQLite has no ordered-set
aggregate, so there the same continuous percentile is computed from the (at most two) rows
around each percentile's rank, picked by window functions in SQL.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStep, RequestState, StepState
from exceptions.models import OPEN_CASE_STATES, ExceptionCase
from portal.integrations.odoo.models import OutboxItem, OutboxState
from sites.policies import Capability, sites_where

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
# Requests whose outcome is known: they count towards cycle time and straight-through rate.
DECIDED_STATES = (
    RequestState.APPROVED,
    RequestState.REJECTED,
    RequestState.APPLIED,
    RequestState.APPLY_FAILED,
)
# Upper bounds in days; the last bucket is open-ended.
AGE_BUCKETS = (("under 1 day", 1), ("1–3 days", 3), ("3–7 days", 7), ("over 7 days", None))


@dataclass(frozen=True)
class Period:
    """The window a dashboard looks at: the last `days` days up to `end`."""

    days: int
    end: datetime

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


def period_of(days: int | None, *, now: datetime | None = None) -> Period:
    """The period for `days`, falling back to the default for anything not offered."""
    return Period(days if days in PERIODS else DEFAULT_PERIOD, now or timezone.now())


class HoursBetween(Func):
    """Hours from the first expression to the second, as a float, on either database."""

    output_field = FloatField()
    arity = 2

    def as_sql(self, compiler, connection, **extra):
        (start, start_params), (end, end_params) = (
            compiler.compile(expression) for expression in self.source_expressions
        )
        if connection.vendor == "postgresql":
            sql = f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"
        else:
            sql = f"((julianday({end}) - julianday({start})) * 24.0)"
        return sql, (*end_params, *start_params)


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile of an expression within each group."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _visible(user, site_field: str) -> Q:
    """A filter keeping the rows at the sites `user` may view.

    The sites are read first (one small query) and the aggregate then filters on their ids:
    with the ids in the statement the planner knows how much of each table they cover. Left as
    a correlated permission check, or a subquery, its selectivity is guessed at a single site
    whoever the viewer is, and the plans chosen for an auditor's 200 sites then walk the
    requests one by one (seconds at a million requests).
    """
    return Q(**{f"{site_field}__in": _site_ids(user)})


def _site_ids(user) -> list[int]:
    return list(sites_where(user, Capability.VIEW).order_by().values_list("pk", flat=True))


def _requests(user) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(_visible(user, "site"))


def _age_bucket(field: str, now: datetime) -> Case:
    """The AGE_BUCKETS index of `field`'s age at `now`, computed in SQL."""
    whens = [
        When(**{f"{field}__gt": now - timedelta(days=days)}, then=Value(index))
        for index, (_, days) in enumerate(AGE_BUCKETS)
        if days is not None
    ]
    return Case(*whens, default=Value(len(AGE_BUCKETS) - 1), output_field=IntegerField())


# --- approval cycle time ----------------------------------------------------------------------


def cycle_time(user, period: Period) -> list[dict]:
    """Median and 90th-percentile hours from submission to decision, by site and kind."""
    decided = (
        _requests(user)
        .filter(
            state__in=DECIDED_STATES,
            submitted_at__isnull=False,
            decided_at__gte=period.start,
            decided_at__lt=period.end,
        )
        .annotate(site_code=F("site__code"), hours=HoursBetween("submitted_at", "decided_at"))
    )
    if connection.vendor == "postgresql":
        rows = (
            decided.values("site_code", "kind")
            .annotate(
                decided=Count("pk"),
                median=PercentileCont("hours", 0.5),
                p90=PercentileCont("hours", 0.9),
            )
            .order_by("site_code", "kind")
        )
        return [_cycle_row(row) for row in rows]
    return _cycle_time_by_rank(decided)


def _cycle_row(row: dict) -> dict:
    return {
        "site": row["site_code"],
        "kind": row["kind"],
        "decided": row["decided"],
        "median_hours": round(row["median"], 2),
        "p90_hours": round(row["p90"], 2),
    }


def _cycle_time_by_rank(decided: QuerySet) -> list[dict]:
    """percentile_cont without the aggregate: only the rows next to each rank leave SQL."""
    try:
        inner, params = decided.values("site_code", "kind", "hours").query.sql_with_params()
    except EmptyResultSet:  # the viewer has no site: nothing to rank
        return []
    # 1-based rank of percentile p among n rows is 1 + p * (n - 1); keep floor and floor + 1.
    sql = f"""
        WITH durations AS ({inner}),
        ranked AS (
            SELECT site_code, kind, hours,
                   ROW_NUMBER() OVER (PARTITION BY site_code, kind ORDER BY hours) AS rank,
                   COUNT(*) OVER (PARTITION BY site_code, kind) AS n
            FROM durations
        )
        SELECT site_code, kind, n, rank, hours FROM ranked
        WHERE rank IN (
            CAST(0.5 * (n - 1) AS INTEGER) + 1, CAST(0.5 * (n - 1) AS INTEGER) + 2,
            CAST(0.9 * (n - 1) AS INTEGER) + 1, CAST(0.9 * (n - 1) AS INTEGER) + 2
        )
        ORDER BY site_code, kind, rank
    """  # noqa: S608 - the inner query is Django's own, compiled with its parameters
    groups: dict[tuple[str, str], dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for site_code, kind, n, rank, hours in cursor.fetchall():
            group = groups.setdefault((site_code, kind), {"n": n, "values": {}})
            group["values"][rank] = hours
    rows = []
    for (site_code, kind), group in groups.items():
        n, values = group["n"], group["values"]
        rows.append(
            _cycle_row(
                {
                    "site_code": site_code,
                    "kind": kind,
                    "decided": n,
                    "median": _interpolate(values, n, 0.5),
                    "p90": _interpolate(values, n, 0.9),
                }
            )
        )
    return rows


def _interpolate(values: dict[int, float], n: int, fraction: float) -> float:
    position = 1 + fraction * (n - 1)
    lower = math.floor(position)
    upper = min(lower + 1, n)
    low, high = values[lower], values[upper]
    return low + (position - lower) * (high - low)


# --- SLA breaches -----------------------------------------------------------------------------


def sla_breach_rate(user, period: Period) -> list[dict]:
    """Share of tiers, activated in the period, that ran past their due time, by site."""
    late = Q(completed_at__gt=F("due_at")) | Q(
        state=StepState.ACTIVE, due_at__lt=period.end, completed_at__isnull=True
    )
    rows = (
        ApprovalStep.objects.filter(
            _visible(user, "site"),
            activated_at__gte=period.start,
            activated_at__lt=period.end,
            due_at__isnull=False,
        )
        .values(site_code=F("site__code"))
        .annotate(
            tiers=Count("pk"), breached=Count("pk", filter=late | Q(escalated_at__isnull=False))
        )
        .order_by("site_code")
    )
    return [
        {
            "site": row["site_code"],
            "tiers": row["tiers"],
            "breached": row["breached"],
            "breach_rate_pct": _pct(row["breached"], row["tiers"]),
        }
        for row in rows
    ]


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# --- open requests ----------------------------------------------------------------------------


def open_by_tier_and_age(user, *, now: datetime | None = None) -> list[dict]:
    """Tiers waiting for a decision now, by tier position and how long they have waited."""
    now = now or timezone.now()
    rows = (
        ApprovalStep.objects.filter(
            _visible(user, "site"),
            state=StepState.ACTIVE,
            request__state=RequestState.IN_REVIEW,
        )
        .annotate(bucket=_age_bucket("activated_at", now))
        .values("position", "bucket")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
        .order_by("position", "bucket")
    )
    return [
        {
            "tier": row["position"],
            "age": AGE_BUCKETS[row["bucket"]][0],
            "open": row["open"],
            "overdue": row["overdue"],
        }
        for row in rows
    ]


# --- exceptions -------------------------------------------------------------------------------


def exception_backlog(user, *, now: datetime | None = None) -> list[dict]:
    """Open exception cases now, by queue, site and age."""
    now = now or timezone.now()
    rows = (
        ExceptionCase.objects.filter(_visible(user, "site"), state__in=OPEN_CASE_STATES)
        .annotate(bucket=_age_bucket("detected_at", now))
        .values("queue", "bucket", site_code=F("site__code"))
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
        .order_by("queue", "site_code", "bucket")
    )
    return [
        {
            "queue": row["queue"],
            "site": row["site_code"],
            "age": AGE_BUCKETS[row["bucket"]][0],
            "open": row["open"],
            "overdue": row["overdue"],
        }
        for row in rows
    ]


# --- straight-through -------------------------------------------------------------------------


def straight_through(user, period: Period) -> list[dict]:
    """Share of requests decided in the period that the fast path approved, by site and kind."""
    rows = (
        _requests(user)
        .filter(state__in=DECIDED_STATES, decided_at__gte=period.start, decided_at__lt=period.end)
        .values("kind", site_code=F("site__code"))
        .annotate(decided=Count("pk"), fast_path=Count("pk", filter=Q(fast_path=True)))
        .order_by("site_code", "kind")
    )
    return [
        {
            "site": row["site_code"],
            "kind": row["kind"],
            "decided": row["decided"],
            "fast_path": row["fast_path"],
            "straight_through_pct": _pct(row["fast_path"], row["decided"]),
        }
        for row in rows
    ]


# --- Odoo write-backs -------------------------------------------------------------------------


def failed_write_backs(user) -> list[dict]:
    """Write-backs to Odoo that are not getting through, by site: outbox items that failed and
    requests marked "Odoo update failed" (those with a write-back) need an administrator now;
    items retrying after Odoo refused or did not answer show an outage while it lasts."""
    failed, retrying = Q(state=OutboxState.FAILED), Q(state=OutboxState.PENDING, attempts__gt=0)
    site_ids = _site_ids(user)
    items = (
        OutboxItem.objects.filter(request__site__in=site_ids)
        .filter(failed | retrying)
        .values(site_code=F("request__site__code"))
        .annotate(
            outbox_failed=Count("pk", filter=failed), outbox_retrying=Count("pk", filter=retrying)
        )
    )
    # Two narrow aggregates rather than one over "item failed OR request failed": that OR spans
    # two tables, so no index can serve it and every write-back ever made would be read.
    with_write_back = OutboxItem.objects.filter(request=OuterRef("pk"))
    failed_requests = (
        ApprovalRequest.objects.filter(
            Exists(with_write_back), site__in=site_ids, state=RequestState.APPLY_FAILED
        )
        .values(site_code=F("site__code"))
        .annotate(count=Count("pk"))
    )
    by_site: dict[str, dict] = {}

    def entry(code: str) -> dict:
        empty = {"site": code, "outbox_failed": 0, "apply_failed": 0, "outbox_retrying": 0}
        return by_site.setdefault(code, empty)

    for row in items:
        entry(row["site_code"]).update(
            outbox_failed=row["outbox_failed"], outbox_retrying=row["outbox_retrying"]
        )
    for row in failed_requests:
        entry(row["site_code"])["apply_failed"] = row["count"]
    return [by_site[code] for code in sorted(by_site)]


# --- throughput -------------------------------------------------------------------------------


def daily_throughput(user, period: Period) -> list[dict]:
    """Requests submitted and decided per UTC day of the period (days without any included)."""
    last = period.end.astimezone(UTC).date()
    days = [last - timedelta(days=offset) for offset in reversed(range(period.days))]
    start = datetime.combine(days[0], time.min, tzinfo=UTC)
    scoped = _requests(user)
    submitted = _per_day(scoped, "submitted_at", start, period.end, Q())
    decided = _per_day(scoped, "decided_at", start, period.end, Q(state__in=DECIDED_STATES))
    return [
        {"day": day.isoformat(), "submitted": submitted.get(day, 0), "decided": decided.get(day, 0)}
        for day in days
    ]


def _per_day(scoped: QuerySet, field: str, start: datetime, end: datetime, condition: Q) -> dict:
    rows = (
        scoped.filter(condition, **{f"{field}__gte": start, f"{field}__lt": end})
        .annotate(day=TruncDate(field, tzinfo=UTC))
        .values("day")
        .annotate(count=Count("pk"))
        .order_by("day")
    )
    return {row["day"]: row["count"] for row in rows}
