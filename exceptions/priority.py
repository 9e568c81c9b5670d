"""Which open case comes first in a queue: one formula, written twice and tested equal.

    priority = severity points + lateness points + money points

    severity   low 10 · medium 20 · high 30 · critical 40
    lateness   how far past its deadline the case is, or how late the shipment it is about
               already was when it was reported (`evidence["days_late"]`), whichever is more:
               overdue at all 2 · 1 day 4 · 3 days 8 · 7 days 12 · 30 days 16 · 90 days 20
    money      the amount at stake in the base currency (at the rate in force; a currency with
               no rate counts as it is): 100 → 2 · 1,000 → 4 · 10,000 → 6 · 100,000 → 8

Severity comes first (one step is 10 points, more than any amount of money can add); lateness
can lift a case by up to two severity steps, because a case that long past due is a failure
already happening; money only orders cases that are otherwise alike, and small money (under
100) counts for nothing. Equal points: the earlier deadline first, then the older case.

`annotate` writes the formula as SQL (CASE expressions over the case's columns), so a queue is
ranked and paged in the database; `priority_of` computes the same points and the reasons in
words for the cases on the page. tests/exceptions/test_priority.py holds the two equal.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf

from exceptions.models import ExceptionCase, Severity
from portal.core.formatting import count, money

SEVERITY_POINTS = {Severity.LOW: 10, Severity.MEDIUM: 20, Severity.HIGH: 30, Severity.CRITICAL: 40}
# (at least this many days late, points), most first; 0 days means "overdue at all".
LATENESS_POINTS = ((90, 20), (30, 16), (7, 12), (3, 8), (1, 4), (0, 2))
# (at least this much at stake in the base currency, points), most first.
MONEY_POINTS = ((Decimal(100000), 8), (Decimal(10000), 6), (Decimal(1000), 4), (Decimal(100), 2))

ORDERING = ("-priority", F("due_at").asc(nulls_last=True), "detected_at", "pk")


@dataclass(frozen=True)
class Priority:
    points: int
    stake: Decimal | None  # in the base currency
    days_late: int | None  # None: not late
    late_from_event: bool  # the lateness is the shipment's own, not the case's deadline
    reasons: str


def rates_at(at: datetime) -> dict[str, Decimal]:
    """Units of each currency per unit of the base currency, at the rate in force (one query)."""
    from approvals.models import CurrencyRate

    rates = {settings.TOLLGATE_BASE_CURRENCY: Decimal(1)}
    newest_first = CurrencyRate.objects.filter(valid_from__lte=at).order_by(
        "currency", "-valid_from"
    )
    for currency, rate in newest_first.values_list("currency", "units_per_base"):
        rates.setdefault(currency, rate)
    return rates


# --- the SQL form ----------------------------------------------------------------------------


def annotate(cases: QuerySet, *, at: datetime, rates: dict[str, Decimal]) -> QuerySet:
    """`cases` with a `priority` annotation, ordered by it (then deadline, age, id).

    The three parts are aliases, not columns: selected on their own, the database would work
    each of them out twice for every case in scope. Each part first answers the common case
    (no money at stake; not overdue and no shipment lateness) with one test instead of all."""
    return (
        cases.alias(stake_currency=Coalesce(NullIf(F("currency"), Value("")), F("site__currency")))
        .alias(
            severity_points=Case(
                *[When(severity=s, then=Value(p)) for s, p in SEVERITY_POINTS.items()],
                default=Value(0),
                output_field=IntegerField(),
            ),
            lateness_points=Case(
                When(_not_late(at), then=Value(0)),
                *[When(_late_by(days, at), then=Value(p)) for days, p in LATENESS_POINTS],
                default=Value(0),
                output_field=IntegerField(),
            ),
            money_points=Case(
                When(amount_at_stake__isnull=True, then=Value(0)),
                *[When(_stake_at_least(t, rates), then=Value(p)) for t, p in MONEY_POINTS],
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .annotate(priority=F("severity_points") + F("lateness_points") + F("money_points"))
        .order_by(*ORDERING)
    )


def _not_late(at: datetime) -> Q:
    # Not due yet (or due now) and no shipment lateness reported: no lateness rule can apply.
    return Q(due_at__gte=at) & ~Q(evidence__has_key="days_late")


def _late_by(days: int, at: datetime) -> Q:
    if days == 0:
        return Q(due_at__lt=at) | Q(evidence__days_late__gt=0)
    return Q(due_at__lte=at - timedelta(days=days)) | Q(evidence__days_late__gte=days)


def _stake_at_least(threshold: Decimal, rates: dict[str, Decimal]) -> Q:
    known = Q()
    for currency, rate in rates.items():
        known |= Q(stake_currency=currency, amount_at_stake__gte=threshold * rate)
    unknown = Q(amount_at_stake__gte=threshold) & ~Q(stake_currency__in=list(rates))
    return known | unknown


# --- the Python form -------------------------------------------------------------------------


def priority_of(case: ExceptionCase, *, at: datetime, rates: dict[str, Decimal]) -> Priority:
    """The case's points, as `annotate` computes them, and the reasons in words."""
    currency = case.currency or case.site.currency
    stake = None
    if case.amount_at_stake is not None:
        rate = rates.get(currency)
        stake = case.amount_at_stake / rate if rate else case.amount_at_stake
    overdue = _days_past(case.due_at, at)
    shipment = _number(case.evidence.get("days_late") if isinstance(case.evidence, dict) else None)
    late_from_event = (
        shipment is not None and shipment > 0 and (overdue is None or shipment > overdue)
    )
    days = shipment if late_from_event else overdue
    points = (
        SEVERITY_POINTS.get(case.severity, 0)
        + _lateness_points(overdue, shipment)
        + _money_points(stake)
    )
    whole = None if days is None else math.floor(days)
    return Priority(
        points, stake, whole, late_from_event, _reasons(case, stake, whole, late_from_event)
    )


def _days_past(due_at: datetime | None, at: datetime) -> float | None:
    if due_at is None or due_at >= at:
        return None
    return (at - due_at) / timedelta(days=1)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


def _lateness_points(overdue: float | None, shipment: float | None) -> int:
    for days, points in LATENESS_POINTS:
        by_deadline = overdue is not None and (overdue > 0 if days == 0 else overdue >= days)
        by_event = shipment is not None and (shipment > 0 if days == 0 else shipment >= days)
        if by_deadline or by_event:
            return points
    return 0


def _money_points(stake: Decimal | None) -> int:
    for threshold, points in MONEY_POINTS:
        if stake is not None and stake >= threshold:
            return points
    return 0


def _reasons(case, stake, days, late_from_event) -> str:
    parts = [f"{case.get_severity_display().lower()} severity"]
    if stake:
        parts.append(f"{money(stake, settings.TOLLGATE_BASE_CURRENCY)} at stake")
    if days is not None:
        if late_from_event:
            parts.append(f"{count(days, 'day')} late")
        elif days < 1:
            parts.append("overdue")
        else:
            parts.append(f"{count(days, 'day')} overdue")
    return " · ".join(parts)
