"""The numbers behind the dashboards, each an aggregate over the viewer's sites.

Every selector first reads the sites `sites.policies.sites_where(user, Capability.VIEW)` gives
and filters on them, so a viewer never receives another site's numbers, and aggregates in the
database: no selector reads request rows into Python, so they keep their cost at millions of
requests. The indexes they rely on (requests by site and decision or submission time, tiers by
activation, the active tiers) are declared on the approvals models.

Durations (approval cycle time, exception resolution time, invoice matching speed, transfer
lead time) are reported as median and 90th percentile, using PostgreSQL's `percentile_cont`.
SQLite has no ordered-set aggregate, so there the same continuous percentile is computed from
the (at most two) rows around each percentile's rank, picked by window functions in SQL.
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

from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    RequestKind,
    RequestState,
    StepState,
)
from exceptions.models import OPEN_CASE_STATES, CaseKind, CaseState, ExceptionCase
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
    return [
        {
            "site": row["site_code"],
            "kind": row["kind"],
            "decided": row["n"],
            "median_hours": row["median_hours"],
            "p90_hours": row["p90_hours"],
        }
        for row in _percentiles(decided, ("site_code", "kind"))
    ]


def _percentiles(durations: QuerySet, groups: tuple[str, ...]) -> list[dict]:
    """Count, median and 90th percentile of the `hours` annotation per group, ordered by group.

    PostgreSQL computes them with `percentile_cont`; elsewhere the same continuous percentile
    is interpolated from the rows next to each rank, the only rows that leave SQL.
    """
    if connection.vendor == "postgresql":
        rows = (
            durations.values(*groups)
            .annotate(
                n=Count("pk"),
                median=PercentileCont("hours", 0.5),
                p90=PercentileCont("hours", 0.9),
            )
            .order_by(*groups)
        )
        return [_percentile_row(row, groups) for row in rows]
    return _percentiles_by_rank(durations, groups)


def _percentile_row(row: dict, groups: tuple[str, ...]) -> dict:
    return {
        **{key: row[key] for key in groups},
        "n": row["n"],
        "median_hours": round(row["median"], 2),
        "p90_hours": round(row["p90"], 2),
    }


def _percentiles_by_rank(durations: QuerySet, groups: tuple[str, ...]) -> list[dict]:
    """percentile_cont without the aggregate: only the rows next to each rank leave SQL."""
    try:
        inner, params = durations.values(*groups, "hours").query.sql_with_params()
    except EmptyResultSet:  # the viewer has no site: nothing to rank
        return []
    columns = ", ".join(groups)
    # 1-based rank of percentile p among n rows is 1 + p * (n - 1); keep floor and floor + 1.
    sql = f"""
        WITH durations AS ({inner}),
        ranked AS (
            SELECT {columns}, hours,
                   ROW_NUMBER() OVER (PARTITION BY {columns} ORDER BY hours) AS rank,
                   COUNT(*) OVER (PARTITION BY {columns}) AS n
            FROM durations
        )
        SELECT {columns}, n, rank, hours FROM ranked
        WHERE rank IN (
            CAST(0.5 * (n - 1) AS INTEGER) + 1, CAST(0.5 * (n - 1) AS INTEGER) + 2,
            CAST(0.9 * (n - 1) AS INTEGER) + 1, CAST(0.9 * (n - 1) AS INTEGER) + 2
        )
        ORDER BY {columns}, rank
    """  # noqa: S608 - the inner query is Django's own, compiled with its parameters
    width = len(groups)
    by_group: dict[tuple, dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for record in cursor.fetchall():
            key, (n, rank, hours) = tuple(record[:width]), record[width:]
            by_group.setdefault(key, {"n": n, "values": {}})["values"][rank] = hours
    return [
        _percentile_row(
            {
                **dict(zip(groups, key, strict=True)),
                "n": group["n"],
                "median": _interpolate(group["values"], group["n"], 0.5),
                "p90": _interpolate(group["values"], group["n"], 0.9),
            },
            groups,
        )
        for key, group in by_group.items()
    ]


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
    """Tiers waiting for a decision now, by tier position, the role it waits for and how long
    it has waited."""
    now = now or timezone.now()
    rows = (
        ApprovalStep.objects.filter(
            _visible(user, "site"),
            state=StepState.ACTIVE,
            request__state=RequestState.IN_REVIEW,
        )
        .annotate(bucket=_age_bucket("activated_at", now))
        .values("position", "role", "bucket")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
        .order_by("position", "role", "bucket")
    )
    return [
        {
            "tier": row["position"],
            "role": row["role"],
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


def exception_resolution_time(user, period: Period) -> list[dict]:
    """Exception resolution time: median and 90th-percentile hours from a case being opened
    (`detected_at`) to being resolved (`closed_at`), for cases resolved in the period, by queue
    and site. Dismissed cases are not resolutions and are left out; a reopened case counts from
    when it was first opened to its last resolution."""
    resolved = ExceptionCase.objects.filter(
        _visible(user, "site"),
        state=CaseState.RESOLVED,
        closed_at__gte=period.start,
        closed_at__lt=period.end,
    ).annotate(site_code=F("site__code"), hours=HoursBetween("detected_at", "closed_at"))
    return [
        {
            "queue": row["queue"],
            "site": row["site_code"],
            "resolved": row["n"],
            "median_hours": row["median_hours"],
            "p90_hours": row["p90_hours"],
        }
        for row in _percentiles(resolved, ("queue", "site_code"))
    ]


def invoice_matching_speed(user, period: Period) -> list[dict]:
    """Invoice matching speed: for vendor bills that did not match their purchase order within
    tolerance (invoice-mismatch cases), median and 90th-percentile hours from the bill's arrival
    (the case being opened) to the difference being settled (the case resolved or dismissed),
    for cases settled in the period, by site.

    Bills that match within tolerance never become a case and Tollgate keeps no row for them, so
    the share matched without a case cannot be told here; what is measured is how long the bills
    that needed a person took."""
    settled = ExceptionCase.objects.filter(
        _visible(user, "site"),
        kind=CaseKind.INVOICE_MISMATCH,
        state__in=(CaseState.RESOLVED, CaseState.DISMISSED),
        closed_at__gte=period.start,
        closed_at__lt=period.end,
    ).annotate(site_code=F("site__code"), hours=HoursBetween("detected_at", "closed_at"))
    return [
        {
            "site": row["site_code"],
            "settled": row["n"],
            "median_hours": row["median_hours"],
            "p90_hours": row["p90_hours"],
        }
        for row in _percentiles(settled, ("site_code",))
    ]


def transfer_lead_time(user, period: Period) -> list[dict]:
    """Transfer lead time: for inter-site transfer requests applied in Odoo in the period,
    median and 90th-percentile hours from submission (`submitted_at`) to the transfer being
    applied in Odoo (`applied_at`), by the site the request was raised at."""
    applied = (
        _requests(user)
        .filter(
            state=RequestState.APPLIED,
            kind=RequestKind.TRANSFER,
            submitted_at__isnull=False,
            applied_at__gte=period.start,
            applied_at__lt=period.end,
        )
        .annotate(site_code=F("site__code"), hours=HoursBetween("submitted_at", "applied_at"))
    )
    return [
        {
            "site": row["site_code"],
            "applied": row["n"],
            "median_hours": row["median_hours"],
            "p90_hours": row["p90_hours"],
        }
        for row in _percentiles(applied, ("site_code",))
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
