"""The one governed inbox: what the signed-in person can act on now.

Approval tiers come from approvals.selectors.inbox_for (their own and those they stand in for,
soonest due first, keyset pages); exception cases open at the person's sites, narrowed to the
queues they work. The page also keeps the person's sites and roles. Everything about the person
is read once (their authority, sites and memberships) and reused by every section; the long
lists are written out by portal.inbox.rows.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import BooleanField, Count, F, Func, Q, Window
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from approvals.authority import Authority, authority_for
from approvals.models import ApprovalRequest
from approvals.selectors import (
    COUNT_CAP,
    LISTED_WITHOUT,
    InboxFilters,
    capped,
    inbox_count,
    inbox_for,
    inbox_head,
    inbox_rows,
)
from exceptions import policies as case_policies
from exceptions.models import OPEN_CASE_STATES, ExceptionCase
from portal.inbox import rows
from portal.inbox.forms import InboxFilterForm, cursor_text
from portal.inbox.templatetags.portal_nav import remember_roles
from sites.roles import MEANINGS
from sites.selectors import memberships_in_force, sites_listed

PAGE_SIZE = 25
CASE_LIMIT = 50
OWN_LIMIT = 10


@login_required
def home(request):
    """The inbox, its filters and counts, and the sites and roles behind them."""
    authority = authority_for(request)
    now = authority.at
    # The sites the person may view are those their authority already read from the grants.
    sites = list(sites_listed(authority.view_site_ids))
    memberships = list(memberships_in_force(request.user))
    remember_roles(request, memberships)
    form = InboxFilterForm(request.GET, sites=sites)
    errors = []
    if not form.is_valid():
        # Show what was wrong, and the inbox under the filters that were right.
        errors = [_error_text(form, name, found) for name, found in form.errors.items()]
        kept = {k: v for k, v in request.GET.items() if k not in form.errors}
        form = InboxFilterForm(kept, sites=sites)
        form.is_valid()
    data = form.cleaned_data
    # The filter travels to the request page, so that "and next" stays within it.
    inbox_query = urlencode([(k, v) for k, v in request.GET.items() if k != "after" and v])
    approvals = _approvals(authority, form, now)
    cases = _cases(form, sites, authority, request.user, now)
    context_data = {
        "form": form,
        "filter_errors": errors,
        "now": now,
        "sites": sites,
        "site_rows": rows.site_rows(sites),
        "memberships": [(m, MEANINGS[m.role]) for m in memberships],
        **approvals,
        "approval_rows": rows.approval_rows(approvals["entries"], now, inbox_query),
        **cases,
        "case_rows": rows.case_rows(cases["cases"], now, request.user.pk),
        "own_requests": _own_requests(authority),
        "own_limit": OWN_LIMIT,
        "page_size": PAGE_SIZE,
        "inbox_query": inbox_query,
        "filtered": any(data.get(k) for k in ("site", "kind", "queue", "overdue", "q"))
        or data.get("min_amount") is not None
        or data.get("max_amount") is not None,
    }
    template = (
        "inbox/_list.html" if request.htmx and not request.htmx.boosted else "inbox/home.html"
    )
    return render(request, template, context_data)


def _own_requests(authority: Authority) -> list:
    """The requests the person raised, newest first (one query): where a requester tracks them.

    Whoever raised a request may open it (`Authority.visible`), so these need no test of the
    person's sites, and the query reads the requester's own rows only.
    """
    if authority.user_id is None:
        return []
    return list(
        ApprovalRequest.objects.filter(requester=authority.user_id)
        .select_related("site")
        .defer(*LISTED_WITHOUT)
        .order_by("-created_at", "-pk")[:OWN_LIMIT]
    )


def _error_text(form: InboxFilterForm, name: str, found) -> str:
    label = form.fields[name].label if name in form.fields and name != "after" else ""
    return f"{label}: {' '.join(found)}" if label else " ".join(found)


def _approvals(authority: Authority, form: InboxFilterForm, now) -> dict:
    if not form.shows_requests:
        return {"entries": [], "next_cursor": "", "request_counts": _no_counts()}
    data = form.cleaned_data
    filters = _request_filters(data)
    after = data.get("after")
    if after is None:
        # The first page and its counts come from one query.
        head = inbox_head(authority, filters, limit=PAGE_SIZE)
        requests, next_cursor, counts = head.requests, head.next_cursor, head.counts
    else:
        page = inbox_for(authority, filters=filters, after=after, limit=PAGE_SIZE)
        requests, next_cursor = page.requests, page.next_cursor
        counts = inbox_count(authority, filters)
    return {
        "entries": inbox_rows(authority, requests),
        "next_cursor": cursor_text(next_cursor),
        "request_counts": counts,
        "paged": after is not None,
    }


def _request_filters(data: dict) -> InboxFilters:
    return InboxFilters(
        site_id=data.get("site"),
        kind=data.get("kind") or "",
        min_amount=data.get("min_amount"),
        max_amount=data.get("max_amount"),
        overdue=bool(data.get("overdue")),
        text=data.get("q") or "",
    )


# How far down the inbox "next" looks for the item after the one just seen.
NEXT_WINDOW = 50


@login_required
def next_item(request):
    """The inbox item after `done` under the inbox filter `from`: after deciding or skipping.

    A decided request has left the inbox, so the first item is the next one; a skipped one is
    still there, so the item after it is. With nothing left, back to the inbox with a word.
    """
    authority = authority_for(request)
    form, origin = _origin_filters(authority, request.GET.get("from", ""))
    done = request.GET.get("done", "")
    following = _following(authority, form, int(done) if done.isdigit() else None)
    if following is None:
        messages.info(
            request,
            "Nothing else waits for you under these filters."
            if origin
            else "Nothing else waits for your decision.",
        )
        home = reverse("inbox:home")
        return redirect(f"{home}?{origin}" if origin else home)
    detail = reverse("approvals:detail", args=[following.pk])
    return redirect(f"{detail}?{urlencode({'from': origin})}")


def _origin_filters(authority: Authority, raw: str) -> tuple[InboxFilterForm, str]:
    """The inbox filter form for a carried query string, keeping only the valid filters."""
    query = QueryDict(raw if len(raw) <= 500 else "", mutable=True)
    query.pop("after", None)
    kept = {k: v for k, v in query.items() if v and k in InboxFilterForm.base_fields}
    sites = list(sites_listed(authority.view_site_ids))
    form = InboxFilterForm(kept, sites=sites)
    if not form.is_valid():
        kept = {k: v for k, v in kept.items() if k not in form.errors}
        form = InboxFilterForm(kept, sites=sites)
        form.is_valid()
    return form, urlencode(kept)


def _following(authority: Authority, form: InboxFilterForm, done: int | None):
    if not form.shows_requests:
        return None
    page = inbox_for(authority, filters=_request_filters(form.cleaned_data), limit=NEXT_WINDOW)
    ids = [r.pk for r in page.requests]
    if done in ids:
        index = ids.index(done)
        rest = page.requests[index + 1 :] + page.requests[:index]
        return rest[0] if rest else None
    return page.requests[0] if page.requests else None


def _cases(form: InboxFilterForm, sites, authority: Authority, user, now) -> dict:
    """Open cases in the queues the person works, soonest due first: one page and its capped
    counts, in one query (two for someone who works queues at many sites), however many cases
    are open in scope.

    The cases are open ones in a queue the person works at the case's site
    (exceptions.policies.worked_cases), judged from the grant rows their authority already
    read, so the queries test plain site lists.
    """
    if not form.shows_cases:
        return {"cases": [], "case_counts": _no_counts()}
    data = form.cleaned_data
    by_id = {site.pk: site for site in sites}
    reach = case_policies.reach_of(user, grants=authority.grants)
    # Soonest due first, so the capped window holds every overdue case, up to the cap.
    size = max(COUNT_CAP, CASE_LIMIT) + 1
    many = max((len(worked) for worked in reach.worked.values()), default=0) > CASE_SITES_MAX
    if many and connection.vendor == "postgresql":
        cases, counts = _cases_by_queue(data, reach, size, now)
    else:
        worked = _narrowed_cases(ExceptionCase.objects.all(), data, now).filter(
            case_policies.worked_cases(user, reach=reach), state__in=OPEN_CASE_STATES
        )
        window = worked.order_by(*_SOONEST).values("pk")[:size]
        # The page read from the window and the window counted with it.
        cases = list(
            ExceptionCase.objects.filter(pk__in=window)
            .annotate(
                window_total=Window(Count("pk")),
                window_overdue=Window(Count("pk", filter=Q(due_at__lt=now))),
            )
            .select_related("owner")
            .defer(*_CASE_LISTED_WITHOUT)
            .order_by(*_SOONEST)[:CASE_LIMIT]
        )
        counts = (cases[0].window_total, cases[0].window_overdue) if cases else (0, 0)
    for case in cases:
        case.site = by_id[case.site_id]
    return {"cases": cases, "case_counts": capped(*counts)}


# Beyond this many sites in one queue, the open cases are read queue by queue and state by
# state in due order (an index range each, merged) rather than site by site and sorted.
CASE_SITES_MAX = 24
_SOONEST = (F("due_at").asc(nulls_last=True), "pk")
# What the list of cases never shows: each case's documents and notes, left unread.
_CASE_LISTED_WITHOUT = ("payload", "evidence", "resolution_note")


def _narrowed_cases(cases, data: dict, now):
    """`cases` under the inbox filters."""
    narrowing = {"queue": data.get("queue"), "site": data.get("site"), "kind": data.get("kind")}
    cases = cases.filter(**{k: v for k, v in narrowing.items() if v})
    if data.get("overdue"):
        cases = cases.filter(due_at__lt=now)
    low, high = data.get("min_amount"), data.get("max_amount")
    if low is not None:
        cases = cases.filter(amount_at_stake__gte=low)
    if high is not None:
        cases = cases.filter(amount_at_stake__lte=high)
    text = (data.get("q") or "").strip()
    if text:
        cases = cases.filter(title__icontains=text)
    return cases


class _AnyOf(Func):
    """`field = ANY(%s)` with the values as one array parameter (PostgreSQL): a list of hundreds
    of sites costs one parameter to build and send, not one each."""

    output_field = BooleanField()

    def __init__(self, field: str, values: list[int]):
        super().__init__(F(field))
        self.values = values

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        return f"{column} = ANY(%s)", (*params, self.values)


_ONE_RANGE = ("inbox-range-queue", "inbox-range-state")


def _merged_ranges(data: dict, ranges: list, size: int, now) -> list | None:
    """`_cases_by_queue`'s window as one UNION ALL of the compiled text of one range, or None
    when the compiled range does not start with its sites, queue and state."""
    sites = [0]
    one = (
        ExceptionCase.objects.filter(_AnyOf("site", sites), queue=_ONE_RANGE[0])
        .filter(state=_ONE_RANGE[1])
        .order_by(*_SOONEST)
    )
    one = _narrowed_cases(one, data, now).values_list("pk", "due_at")[:size]
    sql, params = one.query.sql_with_params()
    if len(params) < 3 or params[0] is not sites or tuple(params[1:3]) != _ONE_RANGE:
        return None
    # Only Django's own compiled text is repeated; every value travels as a parameter.
    merged = " UNION ALL ".join(f"({sql})" for _ in ranges)
    values = [value for found in ranges for value in (*found, *params[3:])]
    with connection.cursor() as cursor:
        cursor.execute(f"{merged} ORDER BY 2 ASC NULLS LAST, 1 ASC LIMIT %s", [*values, size])
        return cursor.fetchall()


def _cases_by_queue(data: dict, reach, size: int, now) -> tuple[list, tuple[int, int]]:
    """The page and the window's counts for someone who works a queue at many sites (two
    queries). Each queue the person works, in each open state, is one range of the
    (queue, state, due) index read in due order, narrowed to the sites where they work that
    queue (exactly `worked_cases`' branch for the queue); the soonest `size` of them merged.

    The ranges differ only in their queue, state and sites, so Django compiles one of them and
    the others reuse its text with their own values."""
    ranges = [
        (sorted(worked), queue, state)
        for queue, worked in sorted(reach.worked.items())
        if worked
        for state in OPEN_CASE_STATES
    ]
    window = _merged_ranges(data, ranges, size, now)
    if window is None:
        streams = [
            _narrowed_cases(ExceptionCase.objects.all(), data, now)
            .filter(_AnyOf("site", sites), queue=queue, state=state)
            .order_by(*_SOONEST)
            .values_list("pk", "due_at")[:size]
            for sites, queue, state in ranges
        ]
        window = list(streams[0].union(*streams[1:], all=True).order_by("due_at", "pk")[:size])
    overdue = sum(1 for _pk, due in window if due is not None and due < now)
    shown = [pk for pk, _due in window[:CASE_LIMIT]]
    cases = list(
        ExceptionCase.objects.filter(pk__in=shown)
        .select_related("owner")
        .defer(*_CASE_LISTED_WITHOUT)
        .order_by(*_SOONEST)
    )
    return cases, (len(window), overdue)


def _no_counts() -> dict:
    return capped(0, 0)
