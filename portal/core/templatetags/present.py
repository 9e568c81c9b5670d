"""Template filters that render values for people: `{% load present %}`.

    {{ approval.amount|money:approval.currency }}   ->  £154,482.00
    {{ step.due_at|moment:approval.site }}          ->  today 14:05 GMT
    {{ approval.created_at|on_day:approval.site }}  ->  Mon 7 Dec 2026
    {{ 3|counted:"line" }}                          ->  3 lines
    {{ request.reason|quoted }}                     ->  > Stock for the spring season

The locale comes from the request (`portal.core.middleware`), so a template never passes it.
"""

from django import template

from portal.core import formatting

register = template.Library()


@register.filter
def money(amount, currency):
    return formatting.money(amount, currency)


@register.filter
def moment(value, zone=None):
    return formatting.moment(value, zone)


@register.filter
def moment_bare(value, zone=None):
    """The same words without the zone, for tables that name the zone once in a heading."""
    return formatting.moment(value, zone, with_zone=False)


@register.filter
def on_day(value, zone=None):
    return formatting.day(value, zone)


@register.filter
def age(value):
    return formatting.age(value)


@register.filter
def quantity(value):
    return formatting.quantity(value)


@register.filter
def counted(number, words):
    """`{{ n|counted:"line" }}` or `{{ n|counted:"person,people" }}`."""
    singular, _, plural = str(words).partition(",")
    return formatting.count(int(number or 0), singular, plural or None)


@register.filter
def zone_name(site_or_zone):
    """The zone's abbreviation now, to name it once above a table: 'CET'."""
    from django.utils import timezone

    return timezone.now().astimezone(formatting.zone_of(site_or_zone)).tzname()


@register.filter
def business_hours(site):
    """`{{ site|business_hours }}` -> 'Mon–Fri 08:00–18:00'."""
    return formatting.working_hours(site.business_days, site.opens_at, site.closes_at)


@register.filter
def quoted(text):
    """Someone's own words in a plain-text e-mail: every line prefixed with "> ", so that no
    line of theirs can pass for one of Tollgate's (a forged sign-off, a fake instruction).
    Every kind of line break counts, Unicode's included."""
    lines = str(text or "").splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)
