"""When a tier is due: SLA hours counted on the clock, or in the site's business hours.

Business hours are the site's own (its opening and closing time on its working weekdays, in its
time zone), so a 4-hour SLA raised at 17:00 on a Friday in Amsterdam falls due on Monday at
11:00 Amsterdam time, whatever the server's zone.
"""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

# A misconfigured calendar must not spin forever looking for working time.
_MAX_DAYS_AHEAD = 366


def deadline(start: datetime, hours: Decimal, *, site, business_hours: bool) -> datetime:
    """The moment `hours` of (business) time have passed since `start`, in UTC."""
    remaining = timedelta(seconds=float(hours) * 3600)
    if not business_hours:
        return start + remaining
    tz = ZoneInfo(site.time_zone)
    cursor = start.astimezone(tz)
    for _ in range(_MAX_DAYS_AHEAD):
        opens, closes = _window(cursor.date(), site, tz)
        if opens is not None and cursor < closes:
            begin = max(cursor, opens)
            available = closes - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        cursor = datetime.combine(cursor.date() + timedelta(days=1), time.min, tzinfo=tz)
    raise ValueError(f"Site {site.code} has no working hours within a year.")


def is_business_time(moment: datetime, site) -> bool:
    """Whether `moment` falls inside the site's working hours, in the site's time zone."""
    local = moment.astimezone(ZoneInfo(site.time_zone))
    opens, closes = _window(local.date(), site, local.tzinfo)
    return opens is not None and opens <= local < closes


def _window(day, site, tz):
    if str(day.isoweekday()) not in site.business_days:
        return None, None
    return (
        datetime.combine(day, site.opens_at, tzinfo=tz),
        datetime.combine(day, site.closes_at, tzinfo=tz),
    )
