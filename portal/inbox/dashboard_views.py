"""Dashboards: the viewer's sites in numbers, each chart with its table and a CSV download.

Each chart is declared once in CHARTS (its selector, its columns and how it is drawn), so the
page, the table under each chart and the CSV can never disagree. Every chart is one or two
aggregate queries, so the page costs the same number of queries whatever the volume.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from approvals.models import RequestKind
from exceptions.models import Queue
from portal.core import spreadsheet
from portal.inbox import charts, dashboards
from sites.selectors import site_list_for_user

KINDS = dict(RequestKind.choices)
QUEUES = dict(Queue.choices)


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    description: str
    columns: tuple[tuple[str, str], ...]
    rows: Callable[[object, dashboards.Period], list[dict]]
    draw: Callable[["Chart", list[dict]], str]
    uses_period: bool = True


def _bars(label: Callable[[dict], str], value: str, *, part: str = "", unit: str = ""):
    def draw(chart: Chart, rows: list[dict]):
        bars = [
            charts.Bar(label(row), float(row[value]), float(row[part]) if part else None)
            for row in rows
        ]
        return charts.bar_chart(chart.slug, chart.title, chart.description, bars, unit=unit)

    return draw


def _throughput(chart: Chart, rows: list[dict]):
    return charts.line_chart(
        chart.slug,
        chart.title,
        chart.description,
        [row["day"] for row in rows],
        [
            charts.Series("Submitted", [row["submitted"] for row in rows], "series-a"),
            charts.Series("Decided", [row["decided"] for row in rows], "series-b"),
        ],
    )


def _site_kind(row: dict) -> str:
    return f"{row['site']} · {KINDS.get(row['kind'], row['kind'])}"


CHARTS = (
    Chart(
        "cycle-time",
        "Approval cycle time",
        "Hours from submission to decision for requests decided in the period, by site and "
        "kind: each bar is the 90th percentile, its darker part the median.",
        (
            ("site", "Site"),
            ("kind", "Kind"),
            ("decided", "Decided"),
            ("median_hours", "Median hours"),
            ("p90_hours", "90th percentile hours"),
        ),
        dashboards.cycle_time,
        _bars(_site_kind, "p90_hours", part="median_hours", unit=" h"),
    ),
    Chart(
        "sla-breaches",
        "SLA breach rate",
        "Share of tiers activated in the period that ran past their due time or escalated, "
        "by site.",
        (
            ("site", "Site"),
            ("tiers", "Tiers"),
            ("breached", "Breached"),
            ("breach_rate_pct", "Breach rate %"),
        ),
        dashboards.sla_breach_rate,
        _bars(lambda row: row["site"], "breach_rate_pct", unit="%"),
    ),
    Chart(
        "open-requests",
        "Open requests by tier and age",
        "Tiers waiting for a decision now, by tier and how long they have waited; the darker "
        "part of each bar is overdue.",
        (("tier", "Tier"), ("age", "Waiting"), ("open", "Open"), ("overdue", "Overdue")),
        lambda user, period: dashboards.open_by_tier_and_age(user, now=period.end),
        _bars(lambda row: f"Tier {row['tier']} · {row['age']}", "open", part="overdue"),
        uses_period=False,
    ),
    Chart(
        "exception-backlog",
        "Exception backlog and aging",
        "Open exception cases now, by queue, site and age; the darker part of each bar is "
        "past its deadline.",
        (
            ("queue", "Queue"),
            ("site", "Site"),
            ("age", "Open for"),
            ("open", "Open"),
            ("overdue", "Overdue"),
        ),
        lambda user, period: dashboards.exception_backlog(user, now=period.end),
        _bars(
            lambda row: f"{QUEUES.get(row['queue'], row['queue'])} · {row['site']} · {row['age']}",
            "open",
            part="overdue",
        ),
        uses_period=False,
    ),
    Chart(
        "straight-through",
        "Straight-through rate",
        "Share of requests decided in the period that the policy's fast path approved, by "
        "site and kind.",
        (
            ("site", "Site"),
            ("kind", "Kind"),
            ("decided", "Decided"),
            ("fast_path", "Fast path"),
            ("straight_through_pct", "Straight-through %"),
        ),
        dashboards.straight_through,
        _bars(_site_kind, "straight_through_pct", unit="%"),
    ),
    Chart(
        "failed-write-backs",
        "Failed Odoo write-backs",
        "Decisions that could not be written back to Odoo, by site: failed outbox items and "
        "requests marked “Odoo update failed” wait for an administrator now; items being "
        "retried show that Odoo refuses or does not answer at the moment.",
        (
            ("site", "Site"),
            ("outbox_failed", "Outbox items failed"),
            ("apply_failed", "Requests with Odoo update failed"),
            ("outbox_retrying", "Outbox items retrying"),
        ),
        lambda user, period: dashboards.failed_write_backs(user),
        _bars(lambda row: row["site"], "outbox_failed"),
        uses_period=False,
    ),
    Chart(
        "throughput",
        "Daily throughput",
        "Requests submitted and decided per day (UTC) over the period.",
        (("day", "Day (UTC)"), ("submitted", "Submitted"), ("decided", "Decided")),
        dashboards.daily_throughput,
        _throughput,
    ),
)
BY_SLUG = {chart.slug: chart for chart in CHARTS}


def _period(request) -> dashboards.Period:
    try:
        days = int(request.GET.get("days", dashboards.DEFAULT_PERIOD))
    except ValueError:
        days = dashboards.DEFAULT_PERIOD
    return dashboards.period_of(days)


@login_required
def home(request):
    """All charts for the chosen period over the sites the viewer may see."""
    period = _period(request)
    panels = []
    for chart in CHARTS:
        rows = chart.rows(request.user, period)
        panels.append(
            {
                "chart": chart,
                "svg": chart.draw(chart, rows),
                "table": [[row[key] for key, _ in chart.columns] for row in rows],
            }
        )
    return render(
        request,
        "dashboards/home.html",
        {
            "panels": panels,
            "period": period,
            "periods": dashboards.PERIODS,
            "sites": list(site_list_for_user(request.user)),
        },
    )


@login_required
def chart_csv(request, chart: str):
    """One chart's numbers as CSV, for the same period and scope as the page."""
    definition = BY_SLUG.get(chart)
    if definition is None:
        raise Http404("No such chart.")
    period = _period(request)
    rows = definition.rows(request.user, period)
    stamp = timezone.now().strftime("%Y%m%d")
    suffix = f"-{period.days}d" if definition.uses_period else ""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{chart}{suffix}-{stamp}.csv"'
    writer = spreadsheet.writer(response)
    writer.writerow([header for _, header in definition.columns])
    for row in rows:
        writer.writerow([row[key] for key, _ in definition.columns])
    return response
