"""The requests list's filters: the tabs, sorts and periods it offers, and the query string
parsed into `ListFilters` with a message for each value that could not be understood."""

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django.http import QueryDict

from approvals.models import RequestKind, RequestState

TABS = {
    "waiting": "Waiting for me",
    "raised": "Raised by me",
    "decided": "Decided by me",
    "all": "All in my scope",
}
# What each column sorts on; "decided" is the time of the request's last decision, which the
# services keep on the request as they record decisions.
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
AMOUNT_LIMIT = Decimal("99999999999999.99")


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
        # As QueryDict.urlencode writes them (it encodes each pair so), without building one.
        return urlencode([(key, str(value)) for key, value in pairs.items() if value != ""])


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
