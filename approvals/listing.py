"""The requests list: everything a person may see, in tabs, filtered, sorted, paged by keyset.

Scope is `selectors.requests_visible_to`; the list only ever narrows it. "Waiting for me" asks
`approvals.authority`, the rule the inbox is built on, so the tab and the inbox agree.
A page costs the same queries whatever the number of rows: the rows (sites and requesters
joined, the last decision's id and time as subqueries) and the last decisions with their people.
There is no total: counting everything a person may see would cost more than the page itself.
"""

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.core import signing
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.http import QueryDict
from django.utils import timezone

from approvals.authority import Authority
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    RequestKind,
    RequestState,
)
from approvals.selectors import requests_visible_to

TABS = {
    "waiting": "Waiting for me",
    "raised": "Raised by me",
    "decided": "Decided by me",
    "all": "All in my scope",
}
# What each column sorts on; "decided" is the time of the request's last decision.
SORTS = {
    "submitted": "submitted_at",
    "amount": "amount_base",
    "due": "due_at",
    "decided": "last_decided_at",
}
SORT_LABELS = {"submitted": "Submitted", "amount": "Amount", "due": "Due", "decided": "Decided"}
# A tab opens sorted the way its question is asked: what is due first, what I decided last.
TAB_SORTS = {"waiting": "due", "raised": "-submitted", "decided": "-decided", "all": "-submitted"}
PERIODS = {
    "": "Any time",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "custom": "Between the dates below",
}
DATES_OF = {"submitted": "Date submitted", "decided": "Date decided"}
PAGE_SIZE = 50
AMOUNT_LIMIT = Decimal("99999999999999.99")
_REFERENCE = re.compile(r"^(?:AR-?)?0*(\d{1,9})(?:-r\d+)?$", re.IGNORECASE)
_CURSOR_SALT = "approvals.listing.cursor"


class CursorError(ValueError):
    """A page link that was not made by this list (edited, truncated or for another sort)."""


@dataclass(frozen=True)
class ListFilters:
    """What the person asked the list for, parsed from the query string."""

    tab: str = "all"
    state: str = ""
    kind: str = ""
    site_id: int | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    period: str = ""
    date_from: date | None = None
    date_to: date | None = None
    dates_of: str = "submitted"
    overdue: bool = False
    text: str = ""
    sort: str = "-submitted"

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def narrowed(self) -> bool:
        """Whether anything beyond the tab narrows the list (the empty state says so)."""
        defaults = ListFilters(tab=self.tab, sort=self.sort, dates_of=self.dates_of)
        return self != defaults

    def query(self, **changes) -> str:
        """These filters (with `changes`) as a query string, default values left out."""
        chosen = replace(self, **changes)
        params = QueryDict(mutable=True)
        pairs = {
            "tab": chosen.tab,
            "state": chosen.state,
            "kind": chosen.kind,
            "site": chosen.site_id or "",
            "amount_min": "" if chosen.min_amount is None else chosen.min_amount,
            "amount_max": "" if chosen.max_amount is None else chosen.max_amount,
            "period": chosen.period,
            "from": chosen.date_from.isoformat() if chosen.date_from else "",
            "to": chosen.date_to.isoformat() if chosen.date_to else "",
            "dates": "" if chosen.dates_of == _default_dates_of(chosen.tab) else chosen.dates_of,
            "overdue": "1" if chosen.overdue else "",
            "q": chosen.text,
            "sort": "" if chosen.sort == TAB_SORTS[chosen.tab] else chosen.sort,
        }
        for key, value in pairs.items():
            if value != "":
                params[key] = str(value)
        return params.urlencode()


def _default_dates_of(tab: str) -> str:
    # "Decided by me, last 7 days" means what I decided in the last seven days.
    return "decided" if tab == "decided" else "submitted"


def parse_filters(query: QueryDict, *, site_ids=()) -> tuple[ListFilters, dict[str, str]]:
    """The filters in `query`, and a message per parameter that could not be understood.

    A bad value is left out of the filters (the rest still apply), so the caller can show
    the message next to its control and the list as the good filters give it.
    """
    errors: dict[str, str] = {}
    tab = query.get("tab", "") or "all"
    if tab not in TABS:
        errors["tab"] = "There is no such tab; showing all requests in your scope."
        tab = "all"
    values = {"tab": tab, "dates_of": _default_dates_of(tab), "sort": TAB_SORTS[tab]}
    state = query.get("state", "")
    if state and state not in RequestState.values:
        errors["state"] = "Choose a state from the list."
    elif state:
        values["state"] = state
    kind = query.get("kind", "")
    if kind and kind not in RequestKind.values:
        errors["kind"] = "Choose a kind from the list."
    elif kind:
        values["kind"] = kind
    site = query.get("site", "")
    if site:
        if site.isascii() and site.isdigit() and int(site) in site_ids:
            values["site_id"] = int(site)
        else:
            errors["site"] = "Choose one of your sites from the list."
    for name, key in (("amount_min", "min_amount"), ("amount_max", "max_amount")):
        raw = query.get(name, "").strip()
        if raw:
            amount = _amount(raw)
            if amount is None:
                errors[name] = "Enter an amount such as 2500 or 2500.50, without a currency sign."
            else:
                values[key] = amount
    low, high = values.get("min_amount"), values.get("max_amount")
    if low is not None and high is not None and low > high:
        errors["amount_max"] = "The upper amount is below the lower one."
        del values["max_amount"]
    _parse_dates(query, values, errors)
    overdue = query.get("overdue", "")
    if overdue not in ("", "1", "on", "true"):
        errors["overdue"] = "Overdue is either ticked or not."
    values["overdue"] = overdue in ("1", "on", "true")
    text = query.get("q", "").strip()
    if len(text) > 100:
        errors["q"] = "Search for at most 100 characters."
    else:
        values["text"] = text
    sort = query.get("sort", "")
    if sort and sort.lstrip("-") not in SORTS:
        errors["sort"] = "The list cannot be sorted that way; sorted as the tab is."
    elif sort:
        values["sort"] = sort
    return ListFilters(**values), errors


def _amount(raw: str) -> Decimal | None:
    try:
        amount = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > AMOUNT_LIMIT:
        return None
    return amount


def _parse_dates(query: QueryDict, values: dict, errors: dict) -> None:
    period = query.get("period", "")
    if period not in PERIODS:
        errors["period"] = "Choose a period from the list."
        period = ""
    days = {}
    for name in ("from", "to"):
        raw = query.get(name, "").strip()
        if not raw:
            continue
        try:
            days[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = "Enter a date as year-month-day, for example 2026-12-01."
    if days and period == "":
        period = "custom"  # a date typed in says which period is meant
    if period == "custom":
        if "from" in days and "to" in days and days["from"] > days["to"]:
            errors["to"] = "The end date is before the start date."
            del days["to"]
        values["date_from"], values["date_to"] = days.get("from"), days.get("to")
    values["period"] = period
    dates_of = query.get("dates", "")
    if dates_of and dates_of not in DATES_OF:
        errors["dates"] = "Dates count either when submitted or when decided."
    elif dates_of:
        values["dates_of"] = dates_of


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
    """The requests `user` may see that pass `filters`, annotated for sorting (not ordered).
    Pass the `authority` already built for this web request, if there is one."""
    authority = authority or Authority.of(user, at=at)
    query = requests_visible_to(authority)
    query = _tab(query, user, authority, filters.tab)
    query = _narrowed(query, user, filters, zone, at)
    last = Decision.objects.filter(request=OuterRef("pk")).order_by("-at", "-pk")
    return query.annotate(
        last_decision_id=Subquery(last.values("pk")[:1]),
        last_decided_at=Subquery(last.values("at")[:1]),
    )


def _tab(query: QuerySet, user, authority: Authority, tab: str) -> QuerySet:
    if tab == "raised":
        return query.filter(requester=user.pk)
    if tab == "decided":
        return query.filter(Exists(Decision.objects.filter(request=OuterRef("pk"), actor=user.pk)))
    if tab == "waiting":
        # The inbox's own rule: the request has an active tier the person may decide now.
        # Only requests in review at a site where they decide have one; saying so lets the
        # database start from the inbox index at those sites instead of testing every row.
        steps = ApprovalStep.objects.filter(authority.steps(), request=OuterRef("pk"))
        return query.filter(
            Exists(steps), state=RequestState.IN_REVIEW, site__in=authority.deciding_site_ids()
        )
    return query


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
) -> ListPage:
    """One page of the list after the opaque cursor `after` (two queries).

    Raises CursorError when the cursor was not made by this list for this sort.
    """
    at = at or timezone.now()
    limit = limit or PAGE_SIZE
    query = scoped(user, filters, zone=zone, at=at, authority=authority)
    query = query.select_related("site", "requester")
    if after:
        query = _after(query, filters, *read_cursor(after, filters))
    found = list(ordered(query, filters)[: limit + 1])
    rows, more = found[:limit], len(found) > limit
    decisions = Decision.objects.filter(
        pk__in=[r.last_decision_id for r in rows if r.last_decision_id]
    ).select_related("actor", "on_behalf_of")
    by_id = {decision.pk: decision for decision in decisions} if rows else {}
    return ListPage(
        rows=[Row(r, by_id.get(r.last_decision_id), _is_overdue(r, at)) for r in rows],
        next_cursor=make_cursor(rows[-1], filters) if more else "",
    )


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
