"""The requests list and its CSV: what the person may see, in tabs, filtered and sorted.

Bad filter values answer 400 with a message beside their control and the list as the other
filters give it; a page link that was edited answers 400 with the first page. Neither is a 500.
"""

import html
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from approvals import listing
from approvals.authority import Authority, authority_for
from approvals.models import Outcome, RequestKind, RequestState
from portal.core import formatting, spreadsheet
from portal.core.formatting import zone_of
from sites.selectors import site_list_for_user, sites_listed

EXPORT_MAX = 50_000
EXPORT_BATCH = 1_000
# The CSV reads each request's Odoo reference from its details; the page does not.
CSV_WITHOUT = tuple(name for name in listing.SHOWN_WITHOUT if name != "details")
# Every filter control, so that a refreshed list can clear or set the message beside each.
FILTER_FIELDS = (
    "state",
    "kind",
    "site",
    "amount_min",
    "amount_max",
    "period",
    "from",
    "to",
    "dates",
    "q",
    "overdue",
    "sort",
    "tab",
)


@login_required
def requests(request):
    """The list page (or, for htmx, its rows) under the filters in the query string."""
    authority = authority_for(request)
    now = authority.at
    # The sites the person may view are those their authority already read from the grants.
    sites = _sites(authority.view_site_ids)
    filters, errors = listing.parse_filters(request.GET, site_ids={site.pk for site in sites})
    zone, zone_note = _zone(filters, sites)
    paging = {"zone": zone, "at": now, "authority": authority}
    try:
        page = listing.requests_page(
            request.user, filters, after=request.GET.get("after", ""), **paging
        )
    except listing.CursorError as error:
        errors["after"] = f"{error} Showing the first page."
        page = listing.requests_page(request.user, filters, **paging)
    context = {
        "filters": filters,
        "errors": errors,
        "error_slots": [(name, errors.get(name, "")) for name in FILTER_FIELDS],
        "page": page,
        "rows_html": _rows_html(page.rows),
        "site_options": _site_options(sites, filters.site_id),
        "paged": bool(request.GET.get("after")) and "after" not in errors,
        "query": filters.query(),
        "tabs": _tabs(filters),
        "columns": _columns(filters),
        "states": RequestState.choices,
        "kinds": RequestKind.choices,
        "periods": listing.PERIODS.items(),
        "dates_of": listing.DATES_OF.items(),
        "zone": zone,
        "zone_note": zone_note,
        "base_currency": settings.TOLLGATE_BASE_CURRENCY,
        "last_week": "tab=decided&period=7d",
        "more_open": filters.overdue
        or filters.min_amount is not None
        or filters.max_amount is not None
        or bool({"amount_min", "amount_max", "overdue"} & errors.keys()),
    }
    fragment = request.htmx and not request.htmx.boosted
    template = "approvals/_list_rows.html" if fragment else "approvals/list.html"
    return render(request, template, context, status=400 if errors else 200)


class _Site(NamedTuple):
    """A site as the list's filter and zone note name it (two hundred for some people: read as
    rows, not as models with their regions)."""

    pk: int
    code: str
    name: str
    time_zone: str


def _sites(site_ids) -> list[_Site]:
    """The sites `site_ids`, in the order the rest of the portal lists them."""
    return [_Site(*row) for row in sites_listed(site_ids).values_list(*_Site._fields)]


def _zone(filters: listing.ListFilters, sites) -> tuple[ZoneInfo, str]:
    """The zone whose whole days the typed dates mean, and how the page names it."""
    chosen = next((site for site in sites if site.pk == filters.site_id), None)
    if chosen is not None:
        return zone_of(chosen), f"{chosen.time_zone}, the time zone of {chosen.code}"
    if sites:
        first = sites[0]
        return (
            zone_of(first),
            f"{first.time_zone}, the time zone of {first.code}, your first site "
            "(choose a site to count days in its zone)",
        )
    return zone_of(settings.TIME_ZONE), settings.TIME_ZONE


def _tabs(filters: listing.ListFilters) -> list[dict]:
    return [
        {
            "key": key,
            "label": label,
            "query": filters.query(
                tab=key,
                sort=listing.TAB_SORTS[key],
                dates_of="decided" if key == "decided" else "submitted",
            ),
            "current": key == filters.tab,
        }
        for key, label in listing.TABS.items()
    ]


def _columns(filters: listing.ListFilters) -> dict[str, dict]:
    """Each sortable column's link: the current one flips, another starts newest (due: soonest)."""
    columns = {}
    for key, label in listing.SORT_LABELS.items():
        current = filters.sort_key == key
        if current:
            sort = key if filters.descending else f"-{key}"
        else:
            sort = key if key == "due" else f"-{key}"
        columns[key] = {
            "label": label,
            "query": filters.query(sort=sort),
            "aria": ("descending" if filters.descending else "ascending") if current else "",
        }
    return columns


# --- rows, written in Python: a page of fifty rows is most of the page's own time -----------


# Choice labels by value, as get_FOO_display gives them (it rebuilds the mapping per call).
_KIND_LABELS = {value: str(label) for value, label in RequestKind.choices}
_STATE_LABELS = {value: str(label) for value, label in RequestState.choices}
_OUTCOME_LABELS = {value: str(label) for value, label in Outcome.choices}


def _esc(value) -> str:
    """Django's `escape` without its lazy-string wrapper (this runs a thousand times a page)."""
    return html.escape(str(value))


def _rows_html(rows: list[listing.Row]) -> SafeString:
    """The table's rows as HTML, every value escaped, each line indented as the template
    around it: one value for the template to place, not fifty to loop over."""
    sentinel = 2_147_483_647
    detail = reverse("approvals:detail", args=[sentinel])
    lines = (_row_line(row, detail.replace(str(sentinel), str(row.request.pk))) for row in rows)
    return mark_safe("".join(f"{line}\n      " for line in lines))  # noqa: S308 - escaped below


def _row_line(row: listing.Row, link: str) -> str:
    """One row of the table as HTML, every value escaped."""
    r, d = row.request, row.last_decision
    site, state = r.site, r.state
    state_label = _esc(_STATE_LABELS.get(state, state))
    counterparty = f'<span class="muted"> · {_esc(r.counterparty)}</span>' if r.counterparty else ""
    due = ""
    if r.due_at:
        since = "since" if row.overdue else "due"
        due = f'<span class="due muted">{since} {_esc(formatting.moment(r.due_at, site))}</span>'
    overdue = ' <span class="tag overdue-tag">overdue</span>' if row.overdue else ""
    if r.submitted_at:
        submitted = _esc(formatting.moment(r.submitted_at, site))
    else:
        submitted = '<span class="muted">Not submitted</span>'
    if d:
        decided = _esc(_OUTCOME_LABELS.get(d.outcome, d.outcome))
        if d.actor:
            decided += f" by {_esc(_name(d.actor))}"
            if d.on_behalf_of:
                decided += f" for {_esc(_name(d.on_behalf_of))}"
        decided += f'<span class="muted when">{_esc(formatting.moment(d.at, site))}</span>'
    elif r.decided_at:
        decided = (
            f"{state_label}"
            f'<span class="muted when">{_esc(formatting.moment(r.decided_at, site))}</span>'
        )
    else:
        decided = '<span class="muted">Not yet</span>'
    return (
        f'<tr class="request-row{" overdue" if row.overdue else ""}" data-request="{r.pk}" '
        "data-keys-row>\n"
        '        <td class="ref-cell" data-label="Reference"><div class="v">'
        f'<a class="item-link" href="{_esc(link)}">{_esc(r.reference)}</a></div></td>\n'
        '        <td class="title-cell" data-label="Title"><div class="v">'
        f"{_esc(r.title)}{counterparty}</div></td>\n"
        '        <td class="kind-cell" data-label="Kind"><div class="v">'
        f"{_esc(_KIND_LABELS.get(r.kind, r.kind))}</div></td>\n"
        f'        <td data-label="Site"><div class="v">{_esc(site.code)} · {_esc(site.name)}'
        "</div></td>\n"
        f'        <td data-label="Requester"><div class="v">{_esc(_name(r.requester))}'
        "</div></td>\n"
        '        <td class="num amount" data-label="Amount"><div class="v">'
        f"{_esc(formatting.money(r.amount, r.currency))}</div></td>\n"
        '        <td data-label="State"><div class="v">'
        f'<span class="state state-{_esc(state)}">{state_label}</span>'
        f"{overdue}{due}</div></td>\n"
        f'        <td class="moment" data-label="Submitted"><div class="v">{submitted}</div></td>\n'
        f'        <td data-label="Decided"><div class="v">{decided}</div></td>\n'
        "      </tr>"
    )


def _site_options(sites, chosen: int | None) -> SafeString:
    """The site filter's options (two hundred for some people), written once in Python."""
    return mark_safe(  # noqa: S308 - every value is escaped
        "".join(
            f'<option value="{site.pk}"{" selected" if site.pk == chosen else ""}>'
            f"{_esc(site.code)} · {_esc(site.name)}</option>"
            for site in sites
        )
    )


# --- CSV --------------------------------------------------------------------------------------

HEADER = [
    "reference",
    "request_id",
    "title",
    "kind",
    "kind_label",
    "state",
    "state_label",
    "overdue",
    "site_code",
    "site_name",
    "requester_username",
    "requester_name",
    "amount",
    "currency",
    "amount_base",
    "base_currency",
    "counterparty",
    "odoo_reference",
    "time_zone",
    "submitted_at",
    "due_at",
    "last_decision",
    "last_decided_by_username",
    "last_decided_by_name",
    "on_behalf_of_name",
    "last_decided_at",
]


class _Line:
    """A file-like object that hands back what is written, for streaming rows."""

    def write(self, value: str) -> str:
        return value


@login_required
def export(request):
    """The filtered list as CSV, every page, up to EXPORT_MAX rows."""
    now = timezone.now()
    sites = list(site_list_for_user(request.user))
    filters, errors = listing.parse_filters(request.GET, site_ids={site.pk for site in sites})
    errors.pop("after", None)
    if errors:
        text = "The list was not exported: " + " ".join(errors.values())
        return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")
    zone, _note = _zone(filters, sites)
    rows = _csv_rows(request.user, filters, zone, now)
    writer = spreadsheet.writer(_Line())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    stamp = now.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="tollgate-requests-{stamp}.csv"'
    return response


def _csv_rows(user, filters, zone, now):
    yield HEADER
    authority = Authority.of(user, at=now)
    written, cursor = 0, ""
    while written < EXPORT_MAX:
        limit = min(EXPORT_BATCH, EXPORT_MAX - written)
        page = listing.requests_page(
            user,
            filters,
            after=cursor,
            limit=limit,
            zone=zone,
            at=now,
            authority=authority,
            without=CSV_WITHOUT,
        )
        for row in page.rows:
            yield _csv_row(row)
        written += len(page.rows)
        cursor = page.next_cursor
        if not cursor:
            return
    yield [f"# The export stops at {EXPORT_MAX:,} rows; narrow the filters to export the rest."]


def _csv_row(row: listing.Row) -> list:
    r, decision = row.request, row.last_decision
    zone = zone_of(r.site)
    actor = decision.actor if decision else None
    behalf = decision.on_behalf_of if decision else None
    details = r.details if isinstance(r.details, dict) else {}
    return [
        r.reference,
        r.pk,
        r.title,
        r.kind,
        r.get_kind_display(),
        r.state,
        r.get_state_display(),
        "yes" if row.overdue else "no",
        r.site.code,
        r.site.name,
        r.requester.get_username(),
        _name(r.requester),
        r.amount,
        r.currency,
        "" if r.amount_base is None else r.amount_base,
        settings.TOLLGATE_BASE_CURRENCY,
        r.counterparty,
        str(details.get("odoo_reference", "")),
        r.site.time_zone,
        _iso(r.submitted_at, zone),
        _iso(r.due_at, zone),
        decision.get_outcome_display() if decision else "",
        actor.get_username() if actor else "",
        _name(actor) if actor else "",
        _name(behalf) if behalf else "",
        _iso(decision.at if decision else None, zone),
    ]


def _name(person) -> str:
    return person.get_full_name() or person.get_username()


def _iso(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat() if moment else ""
