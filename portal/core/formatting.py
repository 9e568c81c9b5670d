"""How values read for people: money in their locale with the currency's own minor units, and
moments in the site's zone as words ("today 14:05 CET", "Mon 7 Dec").

Babel does the locale work; nothing here formats a number or a month name by hand. The locale
is the person's (see `portal.core.middleware`); the zone is the site's, because a warehouse
lead in Gothenburg and an auditor in London must read the same due time the same way.
"""

from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_day_names
from babel.numbers import format_currency, format_decimal, get_currency_precision
from django.conf import settings
from django.utils import timezone

DEFAULT_LOCALE = "en_GB"
# The locale of the person being served, set per request by portal.core.middleware; outside a
# request (e-mails, exports, tasks) the installation's default applies.
current_locale: ContextVar[str | None] = ContextVar("tollgate_format_locale", default=None)


def locale_or_default(name: str | None) -> str:
    """A locale Babel knows, from a name such as 'de-DE' or 'en_GB'; the default otherwise."""
    name = name or current_locale.get()
    known = _known_locale(name) if name else None
    return known or getattr(settings, "TOLLGATE_DEFAULT_LOCALE", DEFAULT_LOCALE)


# A page formats a hundred values or more: Babel parses each locale name once per process, not
# once per value (its functions take the parsed Locale as they take the name).
@lru_cache(maxsize=256)
def _known_locale(name: str) -> str | None:
    try:
        return str(Locale.parse(name.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


@lru_cache(maxsize=64)
def _babel(name: str) -> Locale:
    return Locale.parse(name)


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def money(amount, currency: str, locale: str | None = None) -> str:
    """'1,234.50 EUR' as the locale writes it: '€1,234.50' (en_GB), '1.234,50 €' (de_DE).

    The currency's own minor units decide the decimals (JPY none, KWD three), and a value that is
    not a number shows as a dash rather than breaking the page.
    """
    number = _decimal(amount)
    if number is None or not currency:
        return "—"
    return _money(str(number), currency.upper(), locale_or_default(locale))


# Pages show the same amounts and deadlines again and again (a queue's cases, to everyone who
# opens it): each written form is kept, keyed by everything that decides it.
@lru_cache(maxsize=4096)
def _money(number: str, currency: str, locale: str) -> str:
    return format_currency(Decimal(number), currency, locale=_babel(locale), currency_digits=True)


def quantity(value, locale: str | None = None) -> str:
    """A quantity with the locale's separators and no trailing zeros: '1,250', '2.5'."""
    number = _decimal(value)
    if number is None:
        return "—"
    normal = number.normalize()
    if normal == normal.to_integral():
        normal = normal.quantize(Decimal(1))
    return format_decimal(normal, locale=locale_or_default(locale))


def percent(value, locale: str | None = None, *, digits: int = 1) -> str:
    """'12.5 %'-style share, value given as a percentage (12.5, not 0.125)."""
    number = _decimal(value)
    if number is None:
        return "—"
    rounded = round(number, digits).normalize()
    return f"{format_decimal(rounded, locale=locale_or_default(locale))} %"


def minor_units(currency: str) -> int:
    """How many decimals the currency uses (2 for EUR, 0 for JPY, 3 for KWD)."""
    return get_currency_precision(currency.upper())


def zone_of(site_or_zone) -> ZoneInfo:
    """The time zone of a site (anything with `time_zone`), a zone name, or UTC."""
    name = getattr(site_or_zone, "time_zone", site_or_zone) or "UTC"
    try:
        return ZoneInfo(str(name))
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
    return None


def moment(
    value,
    zone=None,
    locale: str | None = None,
    *,
    now: datetime | None = None,
    with_zone: bool = True,
) -> str:
    """A moment as people say it, in the site's zone.

    'today 14:05 CET', 'yesterday 09:30 CET', 'tomorrow 08:00 CET', 'Mon 7 Dec 14:05 CET' this
    year, '7 Dec 2025' before that.
    """
    when = _as_datetime(value)
    if when is None:
        if isinstance(value, date):
            return day(value, locale=locale)
        return "—"
    tz = zone_of(zone)
    today = (now or timezone.now()).astimezone(tz).date()
    # In UTC the moment has one spelling, so equal keys are the same instant.
    return _moment(when.astimezone(UTC), tz, today, locale_or_default(locale), with_zone)


@lru_cache(maxsize=4096)
def _moment(when: datetime, tz: ZoneInfo, today: date, locale: str, with_zone: bool) -> str:
    local = when.astimezone(tz)
    loc = _babel(locale)
    clock = format_time(local, "HH:mm", locale=loc)
    suffix = f" {local.tzname()}" if with_zone else ""
    offset = (local.date() - today).days
    if offset == 0:
        return f"today {clock}{suffix}"
    if offset == -1:
        return f"yesterday {clock}{suffix}"
    if offset == 1:
        return f"tomorrow {clock}{suffix}"
    if local.year == today.year or abs(offset) < 7:
        return f"{format_date(local, 'EEE d MMM', locale=loc)} {clock}{suffix}"
    return format_date(local, "d MMM y", locale=loc)


def day(value, zone=None, locale: str | None = None) -> str:
    """A calendar day: 'Mon 7 Dec 2026'; a moment is first moved into the site's zone."""
    when = _as_datetime(value)
    if when is not None:
        value = when.astimezone(zone_of(zone)).date()
    if not isinstance(value, date):
        return "—"
    return format_date(value, "EEE d MMM y", locale=locale_or_default(locale))


def age(since, *, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit that reads naturally: '3 days', '5 months'."""
    when = _as_datetime(since)
    if when is None:
        return "—"
    elapsed = (now or timezone.now()) - when
    if elapsed < timedelta(hours=1):
        minutes = max(0, int(elapsed.total_seconds() // 60))
        return _plural(minutes, "minute")
    if elapsed < timedelta(days=1):
        return _plural(int(elapsed.total_seconds() // 3600), "hour")
    days = elapsed.days
    if days < 60:
        return _plural(days, "day")
    if days < 730:
        return _plural(days // 30, "month")
    return _plural(days // 365, "year")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def count(number: int, singular: str, plural: str | None = None) -> str:
    """'1 line', '3 lines' — never 'line(s)'."""
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def working_hours(days: str, start, end, locale: str | None = None) -> str:
    """A site's business hours as people write them: 'Mon–Fri 08:00–18:00'.

    `days` are ISO weekdays as the site stores them ('12345', 1 = Monday); runs of consecutive
    days read as a range ('1235' is 'Mon–Wed, Fri'), and the day names are the person's locale's.
    """
    numbers = sorted({int(d) for d in str(days or "") if d in "1234567"})
    if not numbers:
        return "no working days"
    names = get_day_names("abbreviated", locale=locale_or_default(locale))
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    spans = [
        names[run[0] - 1] if len(run) == 1 else f"{names[run[0] - 1]}–{names[run[-1] - 1]}"
        for run in runs
    ]
    return f"{', '.join(spans)} {start:%H:%M}–{end:%H:%M}"
