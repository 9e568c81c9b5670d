"""The exception queues, already scoped to the person asking, in priority order.

Priority = severity weight × (1 + log10(1 + amount at stake)) × (1 + days open): a critical
case outranks a low one, money at stake counts but does not swamp everything, and a case left
waiting climbs. Amounts are compared in the base currency (at the rate in force), since one
queue spans sites that keep their books in different currencies. Each item carries the numbers
and a one-line reason so people can see why a case is where it is. Scoring runs over the open
cases in scope; the database does the scoping and filtering in one query.
"""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from exceptions import policies
from exceptions.models import OPEN_CASE_STATES, ExceptionCase, Severity
from exceptions.rules import QUEUE_ROLES

SEVERITY_WEIGHT = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 4, Severity.CRITICAL: 8}
AGING_BUCKETS = (("under 1 day", 1), ("1–3 days", 3), ("3–7 days", 7), ("over 7 days", None))


@dataclass(frozen=True)
class QueueFilters:
    queue: str = ""
    site_id: int | None = None
    kind: str = ""
    severity: str = ""
    owner_id: int | None = None
    overdue: bool = False
    older_than_days: int | None = None


@dataclass(frozen=True)
class QueueItem:
    case: ExceptionCase
    score: float
    reason: str


def open_cases_for(user, filters: QueueFilters | None = None, *, at=None) -> QuerySet:
    """The open cases `user` may see, narrowed by `filters` (one query when evaluated)."""
    at = at or timezone.now()
    filters = filters or QueueFilters()
    cases = ExceptionCase.objects.filter(
        policies.visible_cases(user), state__in=OPEN_CASE_STATES
    ).select_related("site", "owner")
    narrowing = {
        "queue": filters.queue,
        "site": filters.site_id,
        "kind": filters.kind,
        "severity": filters.severity,
        "owner": filters.owner_id,
    }
    cases = cases.filter(**{k: v for k, v in narrowing.items() if v})
    if filters.overdue:
        cases = cases.filter(due_at__lt=at)
    if filters.older_than_days is not None:
        cases = cases.filter(detected_at__lt=at - timedelta(days=filters.older_than_days))
    return cases


def prioritised(user, filters: QueueFilters | None = None, *, at=None) -> list[QueueItem]:
    """The open cases in scope, highest priority first, each with why it ranks there."""
    at = at or timezone.now()
    rates = _rates(at)
    items = [_scored(case, at, rates) for case in open_cases_for(user, filters, at=at)]
    return sorted(items, key=lambda item: (-item.score, item.case.detected_at, item.case.pk))


def _rates(at: datetime) -> dict[str, Decimal]:
    """Units of each currency per unit of the base currency, at the rate in force (one query)."""
    from approvals.models import CurrencyRate

    rates = {settings.TOLLGATE_BASE_CURRENCY: Decimal(1)}
    newest_first = CurrencyRate.objects.filter(valid_from__lte=at).order_by(
        "currency", "-valid_from"
    )
    for currency, rate in newest_first.values_list("currency", "units_per_base"):
        rates.setdefault(currency, rate)
    return rates


def _scored(case: ExceptionCase, at: datetime, rates: dict[str, Decimal]) -> QueueItem:
    weight = SEVERITY_WEIGHT[case.severity]
    currency = case.currency or case.site.currency
    amount = case.amount_at_stake or Decimal(0)
    # Without a rate the amount counts as it is; the reason says so.
    rate = rates.get(currency)
    stake = float(amount / rate) if rate else float(amount)
    days = max((at - case.detected_at).total_seconds() / 86400, 0)
    score = weight * (1 + math.log10(1 + stake)) * (1 + days)
    money = "no amount at stake"
    if case.amount_at_stake:
        money = f"{case.amount_at_stake} {currency} at stake"
        base = settings.TOLLGATE_BASE_CURRENCY
        if currency != base:
            money += f" (≈ {stake:.2f} {base})" if rate else f" (no {currency} rate)"
    overdue = " and overdue" if case.due_at and case.due_at < at else ""
    reason = f"{case.get_severity_display()}, {money}, open {days:.1f} days{overdue}"
    return QueueItem(case, round(score, 2), reason)


def queue_summary(user, *, at=None) -> dict[str, dict]:
    """Per queue: open cases, overdue ones, and how long they have waited (aging buckets)."""
    at = at or timezone.now()
    summary: dict[str, dict] = {}
    rows = open_cases_for(user, at=at).values_list("queue", "detected_at", "due_at")
    for queue, detected_at, due_at in rows:
        entry = summary.setdefault(
            queue, {"open": 0, "overdue": 0, "aging": Counter({b: 0 for b, _ in AGING_BUCKETS})}
        )
        entry["open"] += 1
        entry["overdue"] += bool(due_at and due_at < at)
        entry["aging"][_bucket(at - detected_at)] += 1
    return summary


def _bucket(age: timedelta) -> str:
    for label, days in AGING_BUCKETS:
        if days is None or age < timedelta(days=days):
            return label
    return AGING_BUCKETS[-1][0]


def case_audience(case: ExceptionCase, reason: str) -> list:
    """Who hears that a case falls due soon ("reminder") or is overdue ("escalated")."""
    # A reminder goes to the owner, or to the queue's people while nobody (still active) owns
    # the case; an escalation to the escalation role at the case's site or region, and to the
    # owner. Nobody holding the escalation role there must not make a late case go unheard:
    # the queue's people hear of it instead.
    from approvals.models import HeldAt
    from approvals.selectors import role_holders

    owner = [case.owner] if case.owner_id and case.owner.is_active else []
    queue = role_holders(sorted(QUEUE_ROLES[case.queue]), HeldAt.SITE, case.site)
    if reason == "reminder":
        people = owner or list(queue)
    else:
        escalation = list(role_holders([case.escalation_role], HeldAt.SITE, case.site))
        people = (escalation or list(queue)) + owner
    return sorted({person.pk: person for person in people}.values(), key=lambda p: p.username)


def case_for(user, case_id: int) -> ExceptionCase:
    """One case if `user` may see it, else ExceptionCase.DoesNotExist (shown as 404)."""
    return ExceptionCase.objects.filter(policies.visible_cases(user)).get(pk=case_id)


def cases_visible_to(user) -> QuerySet:
    """Every case `user` may open, open or closed, newest first (anything else answers 404)."""
    return (
        ExceptionCase.objects.filter(policies.visible_cases(user))
        .select_related("site", "owner", "linked_request")
        .order_by("-id")
    )
