"""The requests list: everything a person may see, in tabs, filtered, sorted, paged by keyset.

Scope is `selectors.requests_visible_to`; the list only ever narrows it. "Waiting for me" asks
`approvals.authority`, the rule the inbox is built on, so the tab and the inbox agree.
A page costs the same queries whatever the number of rows: the rows (sites and requesters
joined) and the decisions on them with their people; "waiting for me" first reads candidates in
the list's order and tests them batch by batch, as the inbox does. Newest first, each site's
head is read on its own (an index range per site) for people with few sites.
There is no total: counting everything a person may see would cost more than the page itself.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.core import signing
from django.db import connection
from django.db.models import Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from approvals.authority import Authority
from approvals.list_filters import (
    DATES_OF,
    PERIODS,
    SORT_LABELS,
    SORTS,
    TAB_SORTS,
    TABS,
    ListFilters,
    parse_filters,
)
from approvals.models import ApprovalRequest, Decision, RequestState
from approvals.selectors import decidable_by, requests_visible_to

__all__ = [  # the list's callers import the filters from here too
    "DATES_OF",
    "PERIODS",
    "SORTS",
    "SORT_LABELS",
    "TABS",
    "TAB_SORTS",
    "CursorError",
    "ListFilters",
    "ListPage",
    "Row",
    "make_cursor",
    "ordered",
    "parse_filters",
    "period_bounds",
    "read_cursor",
    "requests_page",
    "scoped",
]

PAGE_SIZE = 50
# What a page of the list never shows: each request's long texts and documents (the CSV keeps
# `details`, for the Odoo reference). Reading them cost more than the rest of the rows.
SHOWN_WITHOUT = ("reason", "details", "odoo_snapshot", "drift", "apply_error", "risk_flags")
_REFERENCE = re.compile(r"^(?:AR-?)?0*(\d{1,9})(?:-r\d+)?$", re.IGNORECASE)
_CURSOR_SALT = "approvals.listing.cursor"


class CursorError(ValueError):
    """A page link that was not made by this list (edited, truncated or for another sort)."""


# --- the rows ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One request in the list, with its last decision (None when nobody decided yet)."""

    request: ApprovalRequest
    last_decision: Decision | None
    overdue: bool


@dataclass
class ListPage:
    rows: list[Row]
    next_cursor: str


def scoped(
    user, filters: ListFilters, *, zone: ZoneInfo, at: datetime, authority: Authority | None = None
) -> QuerySet:
    """The requests `user` may see that pass `filters` (not ordered).
    Pass the `authority` already built for this web request, if there is one."""
    authority = authority or Authority.of(user, at=at)
    return _tab(_unannotated(user, filters, zone, at, authority), authority, filters.tab)


def _unannotated(
    user, filters: ListFilters, zone: ZoneInfo, at, authority, *, visible: bool = True
) -> QuerySet:
    """`scoped` without the per-step test of "waiting for me": the candidates, which a page
    reads in its order before testing the few it shows. `visible` False leaves out the
    person's scope, for a query that states it itself (a site of theirs, their own requests)
    and only names candidates for one that keeps it."""
    query = requests_visible_to(authority) if visible else ApprovalRequest.objects.all()
    if filters.tab == "raised":
        query = query.filter(requester=user.pk)
    elif filters.tab == "decided":
        query = query.filter(_decided_by(user))
    elif filters.tab == "waiting":
        # Only requests in review at a site where they decide can be theirs to decide.
        query = query.filter(state=RequestState.IN_REVIEW, site__in=authority.deciding_site_ids())
    return _narrowed(query, user, filters, zone, at)


# Up to this many requests decided, "decided by me" starts from the person's decisions: a
# lookup each (about 26 µs at a million requests, cold) beats walking the list's order until a
# page of theirs turns up, which reads about page ÷ their share of all requests; the two meet
# near two thousand at a million requests.
DECIDED_IDS_READ = 2_000


def _decided_by(user) -> Q:
    """The requests `user` decided, from their decisions read first (one query by the index
    on the decision's actor). PostgreSQL cannot tell from its statistics a person who decided
    nothing from one who decided thousands, and for either it walked every request in the
    list's order testing each for their decision: seconds at a million requests for someone
    who had decided none. Past DECIDED_IDS_READ their decisions are dense enough for that walk
    to stop early (tens of milliseconds for 16,000 decisions, where reading them first took
    ten times that), and the test stays a correlated one."""
    decided = Decision.objects.filter(actor=user.pk)
    # Decisions, not requests, are counted (one request may hold several of theirs): the
    # index on the actor stops after DECIDED_IDS_READ + 1 rows, however many there are.
    read = list(decided.order_by().values_list("request", flat=True)[: DECIDED_IDS_READ + 1])
    if len(read) > DECIDED_IDS_READ:
        return Q(Exists(decided.filter(request=OuterRef("pk"))))
    ids = sorted(set(read))
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of placeholders.
        return Q(pk__in=RawSQL("SELECT unnest(%s::bigint[])", (ids,)))
    return Q(pk__in=ids)


def _tab(query: QuerySet, authority: Authority, tab: str) -> QuerySet:
    if tab == "waiting":
        # The inbox's own rule: the request has an active tier the person may decide now.
        return query.filter(_decidable(authority))
    return query


def _decidable(authority: Authority) -> Exists:
    return decidable_by(authority)


def _narrowed(query: QuerySet, user, filters: ListFilters, zone: ZoneInfo, at) -> QuerySet:
    if filters.state:
        query = query.filter(state=filters.state)
    if filters.kind:
        query = query.filter(kind=filters.kind)
    if filters.site_id:
        query = query.filter(site=filters.site_id)
    if filters.min_amount is not None:
        query = query.filter(amount_base__gte=filters.min_amount)
    if filters.max_amount is not None:
        query = query.filter(amount_base__lte=filters.max_amount)
    if filters.overdue:
        query = query.filter(state=RequestState.IN_REVIEW, due_at__lt=at)
    if filters.text:
        query = query.filter(_matching(filters.text))
    start, end = period_bounds(filters, zone, at)
    if start or end:
        query = query.filter(_dated(user, filters, start, end))
    return query


def _matching(text: str) -> Q:
    found = (
        Q(title__icontains=text)
        | Q(counterparty__icontains=text)
        | Q(details__odoo_reference__icontains=text)
    )
    reference = _REFERENCE.match(text)
    if reference:
        found |= Q(pk=int(reference.group(1)))
    return found


def period_bounds(filters: ListFilters, zone: ZoneInfo, at: datetime):
    """[start, end) of the period asked for; whole days in `zone` for the dates typed in."""
    if filters.period in ("7d", "30d"):
        return at - timedelta(days=int(filters.period[:-1])), None
    if filters.period != "custom":
        return None, None
    start = end = None
    if filters.date_from:
        start = datetime.combine(filters.date_from, time.min, tzinfo=zone)
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _dated(user, filters: ListFilters, start, end) -> Q:
    bounds = {}
    if start:
        bounds["gte"] = start
    if end:
        bounds["lt"] = end
    if filters.dates_of == "submitted":
        return Q(**{f"submitted_at__{op}": moment for op, moment in bounds.items()})
    decisions = Decision.objects.filter(
        request=OuterRef("pk"), **{f"at__{op}": moment for op, moment in bounds.items()}
    )
    if filters.tab == "decided":
        decisions = decisions.filter(actor=user.pk)
    return Q(Exists(decisions))


def ordered(query: QuerySet, filters: ListFilters) -> QuerySet:
    """In the asked order, empty values last, the id breaking ties in the same direction."""
    column = F(SORTS[filters.sort_key])
    if filters.descending:
        return query.order_by(column.desc(nulls_last=True), "-pk")
    return query.order_by(column.asc(nulls_last=True), "pk")


def _after(query: QuerySet, filters: ListFilters, value, pk: int) -> QuerySet:
    """The rows after (value, pk) in the order of `ordered`; rows without a value come last."""
    name = SORTS[filters.sort_key]
    beyond, ties = ("lt", "lt") if filters.descending else ("gt", "gt")
    if value is None:
        return query.filter(**{f"{name}__isnull": True, f"pk__{ties}": pk})
    return query.filter(
        Q(**{f"{name}__{beyond}": value})
        | Q(**{name: value, f"pk__{ties}": pk})
        | Q(**{f"{name}__isnull": True})
    )


def requests_page(
    user,
    filters: ListFilters,
    *,
    after: str = "",
    limit: int | None = None,
    zone: ZoneInfo,
    at: datetime | None = None,
    authority: Authority | None = None,
    without: tuple[str, ...] = SHOWN_WITHOUT,
) -> ListPage:
    """One page of the list after the opaque cursor `after`, its rows read without the fields
    `without` (by default those the page never shows: long texts and documents).

    Two queries: the rows (their sites and requesters joined) and the decisions on them with
    their people, of which each row shows the last. "Waiting for me" first reads candidates
    with whether each is the person's to decide, one query a batch (usually one batch, at most
    three), then the rows.
    Raises CursorError when the cursor was not made by this list for this sort.
    """
    at = at or timezone.now()
    limit = limit or PAGE_SIZE
    authority = authority or Authority.of(user, at=at)
    cursor = read_cursor(after, filters) if after else None
    # "Waiting for me" reads requests at the sites where the person decides, all of which they
    # may view (deciding never widens the scope), so the scope is left to that list of sites
    # (and to `_read`'s check in hand) rather than repeated beside it.
    waiting = filters.tab == "waiting"
    query = _unannotated(user, filters, zone, at, authority, visible=not waiting)
    heads = None
    if filters.tab in ("all", "waiting") and _indexed_per_site(filters):
        # The same filters without the scope: each site's head is read from the index of
        # that site alone, and the page's own query keeps the scope.
        loose = query
        if not waiting:
            loose = _unannotated(user, filters, zone, at, authority, visible=False)
        if filters.tab == "all":
            heads = _Heads(loose, _sites(filters, authority.view_site_ids), user.pk)
        else:
            heads = _Heads(loose, _sites(filters, authority.deciding_site_ids()), None)
        if not 0 < len(heads.sites) <= PER_SITE_MAX:
            heads = None
    if filters.tab == "waiting":
        found = _waiting(query, filters, authority, cursor, limit + 1, heads, without)
    else:
        found = _first(query, filters, cursor, limit + 1, heads, without)
    rows, more = found[:limit], len(found) > limit
    # Each row's last decision: the decisions of the page's requests (a few each), newest first.
    last: dict[int, Decision] = {}
    if rows:
        decisions = Decision.objects.filter(request__in=[r.pk for r in rows])
        decisions = decisions.select_related("actor", "on_behalf_of")
        decisions = decisions.order_by("request_id", "-at", "-pk")
        if connection.vendor == "postgresql":
            decisions = decisions.distinct("request_id")  # only the last of each is read
        for decision in decisions:
            last.setdefault(decision.request_id, decision)
    return ListPage(
        rows=[Row(r, last.get(r.pk), _is_overdue(r, at)) for r in rows],
        next_cursor=make_cursor(rows[-1], filters) if more else "",
    )


def _sites(filters: ListFilters, site_ids) -> list[int]:
    """The sites whose rows the page can hold: those given, narrowed to the one chosen."""
    if filters.site_id:
        return [filters.site_id] if filters.site_id in site_ids else []
    return sorted(site_ids)


# Up to this many sites, each site's head is read on its own (a range of a per-site index in
# the list's order) and the heads merged; beyond it, one walk over an index of every site's
# rows in that order is cheaper.
PER_SITE_MAX = 24


def _indexed_per_site(filters: ListFilters) -> bool:
    """Whether an index per site holds the rows in the list's order: newest first (see
    `request_site_recent`), or soonest due among requests in review (the inbox's
    `request_site_inbox`)."""
    if connection.vendor != "postgresql":
        return False
    return filters.sort == "-submitted" or (filters.sort == "due" and filters.tab == "waiting")


@dataclass(frozen=True)
class _Heads:
    """Where a page's candidates can be read site by site: `query` (the page's filters
    without the scope) at each of `sites`, and the requests of `own`, when not None."""

    query: QuerySet
    sites: list[int]
    own: int | None


def _first(
    query: QuerySet, filters: ListFilters, cursor, need: int, heads=None, without=()
) -> list:
    """The first `need` rows of `query` after `cursor` in the list's order, with their sites
    and requesters and without the fields `without`; with `heads`, only among the first `need`
    of those."""
    if cursor:
        query = _after(query, filters, *cursor)
    if heads is not None:
        query = query.filter(pk__in=_head_ids(heads, filters, cursor, need))
    query = query.select_related("site", "requester").defer(*without)
    return list(ordered(query, filters)[:need])


# Batches of candidates "waiting for me" reads before the last resort: the first twice the page
# (most people may decide about half of what waits at their sites), or four times it when read
# site by site (a site manager may decide about a third of what waits at their site, the later
# tiers being someone else's; the test costs an index lookup per candidate, less than a second
# batch), each next one sized by the share the one before held, at most four times it.
WAITING_BATCHES = 3


def _waiting(
    query: QuerySet, filters: ListFilters, authority: Authority, cursor, need, heads, without
):
    """The first `need` requests `authority` may decide now among `query` (requests in review
    at their deciding sites, under the filters), after `cursor` in the list's order.

    As the inbox's head does (`approvals.selectors.inbox_head`), the per-tier test runs on
    batches of candidates read in the list's order, each batch read with whether each
    candidate is the person's to decide (one query a batch, usually one), not on every request
    in review: only the last resort, for someone who may decide few of the requests at their
    sites, tests every remaining one.
    """
    decidable = _decidable(authority)
    column = SORTS[filters.sort_key]
    found: list[int] = []
    size = (2 if heads is None else 4) * need
    for _ in range(WAITING_BATCHES):
        if heads is not None:
            candidates = _head_ids(heads, filters, cursor, size)
        else:
            after = _after(query, filters, *cursor) if cursor else query
            candidates = Subquery(ordered(after, filters).values("pk")[:size])
        # The candidates passed the filters already: only the test is left, on ids alone
        # (the rows are read once, for the page).
        batch = list(
            ordered(ApprovalRequest.objects.filter(pk__in=candidates), filters)
            .annotate(theirs=decidable)
            .values_list("pk", column, "theirs")
        )
        got = [pk for pk, _value, theirs in batch if theirs]
        found += got[: need - len(found)]
        if len(found) >= need or len(batch) < size:
            return _read(found, filters, authority, without)
        cursor = batch[-1][1], batch[-1][0]
        # Enough for what is missing at twice the share this batch held, up to four times it.
        size = min(4 * size, max(need, 2 * (need - len(found)) * len(batch) // max(len(got), 1)))
    rest = _first(query.filter(decidable), filters, cursor, need - len(found), without=without)
    return _read(found, filters, authority, without) + [r for r in rest if authority.may_view(r)]


def _read(ids: list[int], filters: ListFilters, authority: Authority, without) -> list:
    """The rows `ids`, in the list's order, with their sites and requesters; the
    scope checked in hand (the heads leave it to the page, and deciding never widens it)."""
    if not ids:
        return []
    query = ApprovalRequest.objects.filter(pk__in=ids)
    rows = _first(query, filters, None, len(ids), without=without)
    return [row for row in rows if authority.may_view(row)]


def _head_ids(heads: _Heads, filters: ListFilters, cursor, size: int) -> RawSQL:
    """The ids of `_head_sql`, for a query that keeps the scope and the filters."""
    sql, params = _head_sql(heads, filters, cursor, size)
    return RawSQL(f"SELECT first.id FROM ({sql}) AS first(id, value)", params)  # noqa: S608, S611


def _head_sql(heads: _Heads, filters: ListFilters, cursor, size: int) -> tuple[str, tuple]:
    """(id, sort value) of the first `size` rows after `cursor` of each site's first `size`
    (and of `own`'s), in the list's order: the first `size` of `heads.query` at those sites."""
    column = SORTS[filters.sort_key]
    query = _after(heads.query, filters, *cursor) if cursor else heads.query
    granted = RawSQL("granted.site_id", (), output_field=IntegerField())
    per_site = ordered(query.filter(site=granted), filters).values_list("pk", column)[:size]
    sql, params = per_site.query.sql_with_params()
    # Only Django's own compiled queries are spliced in; every value travels as a parameter.
    branches = (
        "SELECT head.id, head.value FROM unnest(%s::integer[]) AS granted(site_id) "  # noqa: S608
        f"CROSS JOIN LATERAL ({sql}) AS head(id, value)"
    )
    params = (heads.sites, *params)
    if heads.own is not None:
        own = ordered(query.filter(requester=heads.own), filters).values_list("pk", column)
        own_sql, own_params = own[:size].query.sql_with_params()
        # UNION, not UNION ALL: a request of their own at one of their sites is one candidate.
        branches += f" UNION ({own_sql})"
        params = (*params, *own_params)
    way = "DESC" if filters.descending else "ASC"
    first = (
        f"SELECT heads.id, heads.value FROM ({branches}) AS heads(id, value) "  # noqa: S608
        f"ORDER BY heads.value {way} NULLS LAST, heads.id {way} LIMIT %s"
    )
    return first, (*params, size)


def _is_overdue(request: ApprovalRequest, at: datetime) -> bool:
    return request.state == RequestState.IN_REVIEW and bool(request.due_at and request.due_at < at)


# --- the cursor -------------------------------------------------------------------------------


def make_cursor(row: ApprovalRequest, filters: ListFilters) -> str:
    """An opaque, signed page link for the rows after `row` in this sort."""
    value = getattr(row, SORTS[filters.sort_key])
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    return signing.dumps([filters.sort, value, row.pk], salt=_CURSOR_SALT, compress=True)


def read_cursor(text: str, filters: ListFilters):
    """(value, pk) from a cursor made by `make_cursor` for the same sort."""
    try:
        sort, value, pk = signing.loads(text, salt=_CURSOR_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise CursorError("That page link is damaged or was not made by Tollgate.") from None
    if sort != filters.sort or not isinstance(pk, int):
        raise CursorError("That page link belongs to another order of the list.")
    if value is None:
        return None, pk
    try:
        if filters.sort_key == "amount":
            return Decimal(value), pk
        return datetime.fromisoformat(value), pk
    except (InvalidOperation, ValueError, TypeError):
        raise CursorError("That page link is damaged or was not made by Tollgate.") from None
