"""The inbox page's long lists, written out in Python.

Someone with roles at two hundred sites sees two hundred rows in their reach, besides the
approvals and cases waiting for them. Through the template language every value on a row costs
a lookup, a filter and an escape, and those rows made up most of the page's time. The markup
here is the one the templates had, and every value from the database goes through `_e`, the
same HTML escape the templates apply.
"""

from html import escape
from urllib.parse import quote

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from portal.core import formatting


def _e(value) -> str:
    return escape(str(value))


def _joined(rows) -> SafeString:
    return mark_safe("".join(rows))  # noqa: S308 - every value in the rows went through _e


def _link(view_name: str):
    """The URL of `view_name` for an object id: reversed once, not once a row (the id is the
    only part that varies, an integer path segment)."""
    marker = "2147483647"
    head, tail = reverse(view_name, args=[int(marker)]).split(marker)
    return lambda pk: f"{_e(head)}{pk}{_e(tail)}"


_CLOSED_ROW = ' class="inactive"'
_CLOSED_TAG = ' <span class="tag">closed</span>'
_OVERDUE_LABEL = '<strong class="overdue-label">Overdue</strong> since'
_YOURS = ' · <span class="tag">yours</span>'


def site_rows(sites) -> SafeString:
    """The rows of the "Your reach" table of sites."""
    return _joined(
        f"\n        <tr{'' if site.active else _CLOSED_ROW}>\n"
        f"          <td><strong>{_e(site.code)}</strong> {_e(site.name)}"
        f"{'' if site.active else _CLOSED_TAG}</td>\n"
        f"          <td>{_e(site.region.name)}</td>\n"
        f"          <td>{_e(site.time_zone)}</td>\n"
        f"          <td>{_e(site.currency)}</td>\n"
        "        </tr>\n      "
        for site in sites
    )


def _due(due_at, now, site) -> str:
    """When an item is due, as the approvals and cases lists both say it."""
    if not due_at:
        return "No deadline"
    label = _OVERDUE_LABEL if due_at < now else "Due"
    return (
        f'{label} <time datetime="{_e(template_localtime(due_at).isoformat())}">'
        f"{_e(formatting.moment(due_at, site))}</time>"
    )


def _overdue(due_at, now) -> str:
    return " overdue" if due_at and due_at < now else ""


def approval_rows(entries, now, inbox_query: str) -> SafeString:
    """The rows of "Approvals waiting for you"; each link carries the inbox filter along."""
    carried = _e(quote(inbox_query, safe="/"))
    link = _link("approvals:detail")
    return _joined(_approval_row(entry, now, link, carried) for entry in entries)


def _approval_row(entry, now, link, carried: str) -> str:
    r = entry.request
    meta = f"{_e(r.get_kind_display())} · {_e(r.site.code)}"
    if r.counterparty:
        meta += f" · {_e(r.counterparty)}"
    if entry.on_behalf_of:
        person = entry.on_behalf_of
        name = person.get_full_name() or person.username
        meta += f' · <span class="tag behalf">on behalf of {_e(name)}</span>'
    if r.risk_flags:
        flags = len(r.risk_flags)
        meta += f' · <span class="tag risk">{flags} risk flag{"" if flags == 1 else "s"}</span>'
    return (
        f'\n      <li class="item{_overdue(r.due_at, now)}" data-request="{r.pk}" data-keys-row>\n'
        f'        <a class="item-link" href="{link(r.pk)}?from={carried}">\n'
        '          <span class="item-main">\n'
        f'            <span class="ref">{_e(r.reference)}</span>\n'
        f'            <span class="title">{_e(r.title)}</span>\n'
        f'            <span class="meta">{meta}</span>\n'
        "          </span>\n"
        '          <span class="item-side">\n'
        f'            <span class="amount">{_e(formatting.money(r.amount, r.currency))}</span>\n'
        f'            <span class="due">{_due(r.due_at, now, r.site)}</span>\n'
        "          </span>\n"
        "        </a>\n"
        "      </li>\n      "
    )


def case_rows(cases, now, user_id) -> SafeString:
    """The rows of "Exception cases in your queues"."""
    link = _link("exceptions:detail")
    return _joined(_case_row(case, now, link, user_id) for case in cases)


def _case_row(case, now, link, user_id) -> str:
    if case.owner_id == user_id:
        owner = _YOURS
    elif case.owner:
        owner = f" · {_e(case.owner.get_full_name() or case.owner.get_username())}"
    else:
        owner = ""
    stake = ""
    if case.amount_at_stake:
        amount = formatting.money(case.amount_at_stake, case.currency)
        stake = f'<span class="amount">{_e(amount)}</span>'
    severity = _e(case.get_severity_display())
    severity = f'<span class="tag sev-{_e(case.severity)}">{severity}</span>'
    overdue = _overdue(case.due_at, now)
    return (
        f'\n      <li class="item{overdue}" data-case="{case.pk}" data-keys-row>\n'
        f'        <a class="item-link" href="{link(case.pk)}">\n'
        '          <span class="item-main">\n'
        f'            <span class="ref">{_e(case.reference)}</span>\n'
        f'            <span class="title">{_e(case.title)}</span>\n'
        f'            <span class="meta">{_e(case.get_kind_display())} · '
        f"{_e(case.get_queue_display())} queue · {_e(case.site.code)} · {severity}{owner}</span>\n"
        "          </span>\n"
        '          <span class="item-side">\n'
        f"            {stake}\n"
        f'            <span class="due">{_due(case.due_at, now, case.site)}</span>\n'
        "          </span>\n"
        "        </a>\n"
        "      </li>\n      "
    )
