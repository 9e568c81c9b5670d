"""The inbox page's long lists, written out in Python.

Someone with roles at two hundred sites sees two hundred rows in their reach, besides the
approvals and cases waiting for them. Through the template language every value on a row costs
a lookup, a filter and an escape, and those rows made up most of the page's time. The markup
here is the one the templates had; every value goes through format_html, which escapes it.
"""

from urllib.parse import quote

from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from portal.core import formatting


def _joined(rows) -> SafeString:
    return mark_safe("".join(rows))  # noqa: S308 - each row comes from format_html


def site_rows(sites) -> SafeString:
    """The rows of the "Your reach" table of sites."""
    return _joined(
        format_html(
            "\n        <tr{}>\n          <td><strong>{}</strong> {}{}</td>\n"
            "          <td>{}</td>\n          <td>{}</td>\n          <td>{}</td>\n"
            "        </tr>\n      ",
            "" if site.active else mark_safe(' class="inactive"'),
            site.code,
            site.name,
            "" if site.active else mark_safe(' <span class="tag">closed</span>'),
            site.region.name,
            site.time_zone,
            site.currency,
        )
        for site in sites
    )


def _due(due_at, now, site) -> SafeString:
    """When an item is due, as the approvals and cases lists both say it."""
    if not due_at:
        return mark_safe("No deadline")
    return format_html(
        '{} <time datetime="{}">{}</time>',
        mark_safe('<strong class="overdue-label">Overdue</strong> since')
        if due_at < now
        else "Due",
        date_filter(template_localtime(due_at), "c"),
        formatting.moment(due_at, site),
    )


def _overdue(due_at, now) -> str:
    return " overdue" if due_at and due_at < now else ""


def approval_rows(entries, now, inbox_query: str) -> SafeString:
    """The rows of "Approvals waiting for you"; each link carries the inbox filter along."""
    carried = quote(inbox_query, safe="/")
    return _joined(_approval_row(entry, now, carried) for entry in entries)


def _approval_row(entry, now, carried: str) -> SafeString:
    r = entry.request
    meta = [format_html("{} · {}", r.get_kind_display(), r.site.code)]
    if r.counterparty:
        meta.append(format_html(" · {}", r.counterparty))
    if entry.on_behalf_of:
        person = entry.on_behalf_of
        meta.append(
            format_html(
                ' · <span class="tag behalf">on behalf of {}</span>',
                person.get_full_name() or person.username,
            )
        )
    if r.risk_flags:
        flags = len(r.risk_flags)
        meta.append(
            format_html(
                ' · <span class="tag risk">{} risk flag{}</span>', flags, "" if flags == 1 else "s"
            )
        )
    return format_html(
        '\n      <li class="item{}" data-request="{}" data-keys-row>\n'
        '        <a class="item-link" href="{}?from={}">\n'
        '          <span class="item-main">\n'
        '            <span class="ref">{}</span>\n'
        '            <span class="title">{}</span>\n'
        '            <span class="meta">{}</span>\n'
        "          </span>\n"
        '          <span class="item-side">\n'
        '            <span class="amount">{}</span>\n'
        '            <span class="due">{}</span>\n'
        "          </span>\n"
        "        </a>\n"
        "      </li>\n      ",
        _overdue(r.due_at, now),
        r.pk,
        reverse("approvals:detail", args=[r.pk]),
        carried,
        r.reference,
        r.title,
        _joined(meta),
        formatting.money(r.amount, r.currency),
        _due(r.due_at, now, r.site),
    )


def case_rows(cases, now, user_id) -> SafeString:
    """The rows of "Exception cases in your queues"."""
    return _joined(_case_row(case, now, user_id) for case in cases)


def _case_row(case, now, user_id) -> SafeString:
    if case.owner_id == user_id:
        owner = mark_safe(' · <span class="tag">yours</span>')
    elif case.owner:
        owner = format_html(" · {}", case.owner.get_full_name() or case.owner.get_username())
    else:
        owner = ""
    stake = (
        format_html(
            '<span class="amount">{}</span>',
            formatting.money(case.amount_at_stake, case.currency),
        )
        if case.amount_at_stake
        else ""
    )
    return format_html(
        '\n      <li class="item{}" data-case="{}" data-keys-row>\n'
        '        <a class="item-link" href="{}">\n'
        '          <span class="item-main">\n'
        '            <span class="ref">{}</span>\n'
        '            <span class="title">{}</span>\n'
        '            <span class="meta">{} · {} queue · {} · '
        '<span class="tag sev-{}">{}</span>{}</span>\n'
        "          </span>\n"
        '          <span class="item-side">\n'
        "            {}\n"
        '            <span class="due">{}</span>\n'
        "          </span>\n"
        "        </a>\n"
        "      </li>\n      ",
        _overdue(case.due_at, now),
        case.pk,
        reverse("exceptions:detail", args=[case.pk]),
        case.reference,
        case.title,
        case.get_kind_display(),
        case.get_queue_display(),
        case.site.code,
        case.severity,
        case.get_severity_display(),
        owner,
        stake,
        _due(case.due_at, now, case.site),
    )
