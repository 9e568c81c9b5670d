"""The queue ranking: severity, then lateness, then money; the SQL and the Python forms agree."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals.services import currency_rate_add
from exceptions import priority
from exceptions.models import ExceptionCase
from exceptions.selectors import prioritised
from exceptions.services import case_raise
from tests.factories import SiteFactory

NOW = timezone.now().replace(microsecond=0)

# name: (kind, severity, amount, currency, detected hours ago, shipment days late, points)
# Default deadlines: critical 4 h, high 24 h, medium 72 h, low 168 h after detection.
TABLE = {
    "bill differs by 49 EUR": ("invoice_mismatch", "medium", "49", "EUR", 0, None, 20),
    "shipment 99 days late": ("shipment_delay", "high", None, "", 0, 99.2, 50),
    "critical, fresh": ("receipt_discrepancy", "critical", None, "", 0, None, 40),
    "critical, an hour overdue": ("receipt_discrepancy", "critical", None, "", 5, None, 42),
    "high, 150,000 EUR": ("invoice_mismatch", "high", "150000", "EUR", 0, None, 38),
    "high, 1,000 EUR": ("invoice_mismatch", "high", "1000", "EUR", 0, None, 34),
    "medium, 10,000 EUR": ("invoice_mismatch", "medium", "10000", "EUR", 0, None, 26),
    "low, fresh": ("asn_conflict", "low", None, "", 0, None, 10),
    "low, a day overdue": ("asn_conflict", "low", None, "", 8 * 24 + 1, None, 14),
    "low, 40 days overdue": ("asn_conflict", "low", None, "", 47 * 24, None, 26),
    "medium, 5,000 SEK (435 EUR)": ("invoice_mismatch", "medium", "5000", "SEK", 0, None, 22),
    "medium, 300 NOK, no rate": ("invoice_mismatch", "medium", "300", "NOK", 0, None, 22),
    "medium, a day overdue": ("receipt_discrepancy", "medium", None, "", 4 * 24, None, 24),
    "medium shipment 5 days late": ("shipment_delay", "medium", None, "", 0, 5, 28),
    "medium, 99 EUR": ("invoice_mismatch", "medium", "99.99", "EUR", 0, None, 20),
}


@pytest.fixture
def table(region_a, site_a1, finance):
    currency_rate_add(
        actor=None, currency="SEK", units_per_base=Decimal("11.5"), valid_from=NOW - timedelta(1)
    )
    sites = {
        "EUR": site_a1,
        "": site_a1,
        "SEK": SiteFactory(code="A3", region=region_a, currency="SEK"),
        "NOK": SiteFactory(code="A4", region=region_a, currency="NOK"),
    }
    cases = {}
    for name, (kind, severity, amount, currency, hours, late, _) in TABLE.items():
        found = {"days_late": late} if late is not None else {}
        case, _ = case_raise(
            kind=kind,
            site=sites[currency],
            severity=severity,
            title=name,
            source="odoo",
            dedupe_key=f"priority:{name}",
            payload={},
            evidence=found,
            amount_at_stake=Decimal(amount) if amount else None,
            currency=currency if amount else "",
            at=NOW - timedelta(hours=hours),
        )
        cases[name] = case
    return cases


def test_each_case_gets_the_points_of_the_formula(table):
    rates = priority.rates_at(NOW)
    for name, case in table.items():
        case = ExceptionCase.objects.select_related("site").get(pk=case.pk)
        assert priority.priority_of(case, at=NOW, rates=rates).points == TABLE[name][-1], name


def test_the_database_ranks_exactly_as_the_python_formula(table):
    rates = priority.rates_at(NOW)
    ranked = list(
        priority.annotate(ExceptionCase.objects.select_related("site"), at=NOW, rates=rates)
    )
    python_points = {c.pk: priority.priority_of(c, at=NOW, rates=rates).points for c in ranked}

    assert {c.pk: c.priority for c in ranked} == python_points
    by_python = sorted(
        ranked,
        key=lambda c: (-python_points[c.pk], c.due_at is None, c.due_at, c.detected_at, c.pk),
    )
    assert [c.title for c in ranked] == [c.title for c in by_python]


def test_a_long_late_high_severity_shipment_comes_before_a_small_bill_difference(table, finance):
    titles = [item.case.title for item in prioritised(finance, at=NOW)]

    assert titles.index("shipment 99 days late") == 0
    assert titles.index("bill differs by 49 EUR") > titles.index("low, 40 days overdue")
    items = {item.case.title: item for item in prioritised(finance, at=NOW)}
    assert items["shipment 99 days late"].reason == "high severity · 99 days late"
    assert items["bill differs by 49 EUR"].reason == "medium severity · €49.00 at stake"
    assert items["low, 40 days overdue"].reason == "low severity · 40 days overdue"


def test_equal_points_put_the_earlier_deadline_first(table, finance):
    titles = [item.case.title for item in prioritised(finance, at=NOW)]

    # Both 26 points: the low case fell due weeks ago, the medium one is not due yet.
    assert titles.index("low, 40 days overdue") < titles.index("medium, 10,000 EUR")


def test_money_never_outweighs_a_step_of_severity(table, finance):
    rates = priority.rates_at(NOW)
    most_money = max(points for _, points in priority.MONEY_POINTS)
    steps = sorted(priority.SEVERITY_POINTS.values())

    assert all(b - a > most_money for a, b in itertools.pairwise(steps))
    high_small = table["high, 1,000 EUR"]
    medium_big = table["medium, 10,000 EUR"]
    points = {
        c.pk: c.priority
        for c in priority.annotate(
            ExceptionCase.objects.filter(pk__in=[high_small.pk, medium_big.pk]),
            at=NOW,
            rates=rates,
        )
    }
    assert points[high_small.pk] > points[medium_big.pk]


def test_the_ranking_pages_in_the_database(table):
    rates = priority.rates_at(NOW)
    query = priority.annotate(ExceptionCase.objects.all(), at=NOW, rates=rates)[:3]

    sql = str(query.query).upper()

    assert "CASE WHEN" in sql and "LIMIT 3" in sql
    assert [c.priority for c in query] == [50, 42, 40]
