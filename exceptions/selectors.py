"""The exception queues, already scoped to the person asking, in priority order.

The ranking is exceptions.priority's formula (severity, then lateness, then money at stake in
the base currency), computed in SQL so a queue is ranked and paged in the database; only the
page shown is read into Python, where each case gets the same points with its reasons in
words, its age in the site's working days and its stake in the base currency. Counts per
queue are one grouped query.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.utils import timezone

from exceptions import policies, priority
from exceptions.models import OPEN_CASE_STATES, ExceptionCase
from exceptions.rules import QUEUE_ROLES
from portal.core.formatting import zone_of
from portal.core.periods import membership_in_force

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
    worked_only: bool = False


# What the queue page shows of each case, what ranks it (`_item`) and whom it may be assigned to
# (`workers_of`): a hundred cases read whole cost more than ranking thousands.
PAGE_FIELDS = (
    "title",
    "queue",
    "state",
    "severity",
    "due_at",
    "detected_at",
    "amount_at_stake",
    "currency",
    "evidence",
    "site__code",
    "site__name",
    "site__region",
    "site__time_zone",
    "site__business_days",
    "site__currency",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
)


@dataclass(frozen=True)
class QueueItem:
    case: ExceptionCase
    score: int
    reason: str
    stake: Decimal | None = None
    age_days: int = 0
    workable: bool = True


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int


def open_cases_for(
    user, filters: QueueFilters | None = None, *, at=None, reach: policies.CaseReach | None = None
) -> QuerySet:
    """The open cases `user` may see, narrowed by `filters` (one query when evaluated).

    `reach`, when given, is the person's (`policies.reach_of`), read once for the page."""
    at = at or timezone.now()
    filters = filters or QueueFilters()
    if filters.worked_only and reach is not None:
        # One list of sites per group of queues: the seen sites written beside it as well would
        # make the database walk its index once for every pair of sites of the two lists.
        scope = policies.worked_cases(user, at=at, reach=reach, seen_only=True)
    else:
        scope = policies.visible_cases(user, reach=reach)
        if filters.worked_only:
            scope &= policies.worked_cases(user, at=at, reach=reach)
    cases = ExceptionCase.objects.filter(scope, state__in=OPEN_CASE_STATES).select_related(
        "site", "owner"
    )
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


def ranked(
    user,
    filters: QueueFilters | None = None,
    *,
    at=None,
    rates=None,
    reach: policies.CaseReach | None = None,
) -> QuerySet:
    """The open cases in scope ordered by priority in the database, marked workable or not."""
    at = at or timezone.now()
    rates = rates if rates is not None else priority.rates_at(at)
    if filters is not None and filters.worked_only:
        # Only worked cases are left: each is workable, without asking the database again.
        workable = Value(True, BooleanField())
    else:
        workable = ExpressionWrapper(
            policies.worked_cases(user, at=at, reach=reach), BooleanField()
        )
    cases = open_cases_for(user, filters, at=at, reach=reach).annotate(workable=workable)
    return priority.annotate(cases, at=at, rates=rates)


def prioritised(
    user, filters: QueueFilters | None = None, *, at=None, limit: int | None = None
) -> list[QueueItem]:
    """The open cases in scope, highest priority first, each with why it ranks there."""
    return queue_page(user, filters, at=at, limit=limit, counted=False).items


def queue_page(
    user,
    filters: QueueFilters | None = None,
    *,
    at=None,
    limit: int | None = None,
    counted=True,
    reach: policies.CaseReach | None = None,
    total: int | None = None,
    fields: tuple[str, ...] | None = None,
) -> QueuePage:
    """The first `limit` cases by priority, and how many there are in all (two queries).

    `total`, when the caller already knows how many cases `filters` keep (the queue summary
    counts them), is taken as the count instead of counting them again. `fields`, when given,
    are the only ones read of each case (`PAGE_FIELDS` for the queue page); else all but the
    payload."""
    at = at or timezone.now()
    rates = priority.rates_at(at)
    cases = ranked(user, filters, at=at, rates=rates, reach=reach)
    cases = cases.only(*fields) if fields is not None else cases.defer("payload")
    if limit is None:
        rows = list(cases)
        return QueuePage([_item(case, at, rates) for case in rows], len(rows))
    # The ranking reads every case in scope, but only the page's cases leave the database, in
    # the same pass that counts them all (unless the count is known already).
    if counted and total is None:
        cases = cases.annotate(total=Window(Count("pk")))
    rows = list(cases[:limit])
    if counted and total is None:
        total = rows[0].total if rows else 0
    items = [_item(case, at, rates) for case in rows]
    return QueuePage(items, total if counted else len(items))


def _item(case: ExceptionCase, at: datetime, rates: dict) -> QueueItem:
    ranking = priority.priority_of(case, at=at, rates=rates)
    return QueueItem(
        case=case,
        score=ranking.points,
        reason=ranking.reasons,
        stake=ranking.stake,
        age_days=working_days(case.detected_at, at, case.site),
        workable=bool(getattr(case, "workable", True)),
    )


def working_days(since: datetime, at: datetime, site) -> int:
    """Whole working days of the site between two moments, counted in its own zone."""
    zone = zone_of(site)
    first, last = since.astimezone(zone).date(), at.astimezone(zone).date()
    days = (last - first).days
    if days <= 0:
        return 0
    working = {int(d) for d in (getattr(site, "business_days", "") or "12345")}
    weeks, rest = divmod(days, 7)
    total = weeks * len(working)
    for offset in range(1, rest + 1):
        day = first + timedelta(days=weeks * 7 + offset)
        total += day.isoweekday() in working
    return total


def sites_seen(reach: policies.CaseReach) -> QuerySet:
    """The sites whose cases the person sees, in the order `sites.selectors.site_list_for_user`
    lists them (one query)."""
    from sites.models import Site

    return (
        Site.objects.filter(pk__in=sorted(reach.seen))
        .select_related("region")
        .order_by("region__code", "code")
    )


def queue_summary(
    user,
    *,
    at=None,
    filters: QueueFilters | None = None,
    reach: policies.CaseReach | None = None,
) -> dict[str, dict]:
    """Per queue: open cases, overdue ones, and how long they have waited (one query).

    It counts a column of the index of open cases by site and queue, not the ids: everything it
    reads is then in that index, and the database need not visit the cases themselves."""
    at = at or timezone.now()
    buckets = {}
    lower = None
    for label, days in AGING_BUCKETS:
        newer = Q(detected_at__gt=at - timedelta(days=days)) if days is not None else Q()
        older = Q(detected_at__lte=at - timedelta(days=lower)) if lower is not None else Q()
        buckets[label] = Count("site", filter=newer & older)
        lower = days
    aliases = {f"bucket_{i}": expr for i, expr in enumerate(buckets.values())}
    rows = (
        open_cases_for(user, filters, at=at, reach=reach)
        .order_by()
        .values("queue")
        .annotate(open=Count("site"), overdue=Count("site", filter=Q(due_at__lt=at)), **aliases)
    )
    summary: dict[str, dict] = {}
    for row in rows:
        summary[row["queue"]] = {
            "open": row["open"],
            "overdue": row["overdue"],
            "aging": {label: row[f"bucket_{i}"] for i, label in enumerate(buckets)},
        }
    return summary


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


def workers_of(queues, sites) -> QuerySet:
    """The active people who work one of `queues` at one of `sites` (or their regions)."""
    from django.contrib.auth import get_user_model

    from sites.models import Membership

    sites = list(sites)
    roles = sorted({role for queue in queues for role in QUEUE_ROLES.get(queue, ())})
    now = timezone.now()
    memberships = Membership.objects.filter(
        Q(site__in=[s.pk for s in sites]) | Q(region__in={s.region_id for s in sites}),
        membership_in_force(now),
        user=OuterRef("pk"),
        role__in=roles,
    )
    people = get_user_model().objects.filter(Exists(memberships), is_active=True)
    return people.order_by("first_name", "last_name", "username")


def cases_linked_to_request(request_id: int) -> list[int]:
    """The cases linked to one approval request (a write-off's case waits for it)."""
    return list(
        ExceptionCase.objects.filter(linked_request=request_id).values_list("pk", flat=True)
    )


def request_linked_to_case(case_id: int) -> list[int]:
    """The approval request one case is linked to, if any."""
    linked = ExceptionCase.objects.filter(pk=case_id, linked_request__isnull=False)
    return list(linked.values_list("linked_request", flat=True))
