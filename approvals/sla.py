"""When a tier is due: SLA hours counted on the clock, or in the site's business hours.

Business hours are the site's own (its opening and closing time on its working weekdays, in its
time zone), so a 4-hour SLA raised at 17:00 on a Friday in Amsterdam falls due on Monday at
11:00 Amsterdam time, whatever the server's zone.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

# A misconfigured calendar must not spin forever looking for working time.
_MAX_DAYS_AHEAD = 366


def deadline(start: datetime, hours: Decimal, *, site, business_hours: bool) -> datetime:
    """The moment `hours` of (business) time have passed since `start`, in UTC."""
    remaining = timedelta(seconds=float(hours) * 3600)
    cursor = start.astimezone(UTC)
    if not business_hours:
        return cursor + remaining
    tz = ZoneInfo(site.time_zone)
    day = cursor.astimezone(tz).date()
    for _ in range(_MAX_DAYS_AHEAD):
        opens, closes = _window(day, site, tz)
        if opens is not None and cursor < closes:
            begin = max(cursor, opens)
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"Site {site.code} has no working hours within a year.")


def is_business_time(moment: datetime, site) -> bool:
    """Whether `moment` falls inside the site's working hours, in the site's time zone."""
    tz = ZoneInfo(site.time_zone)
    opens, closes = _window(moment.astimezone(tz).date(), site, tz)
    return opens is not None and opens <= moment < closes


def _window(day: date, site, tz: ZoneInfo) -> tuple[datetime, datetime] | tuple[None, None]:
    # In UTC, so that a window spanning a clock change holds the hours that really pass in it.
    if str(day.isoweekday()) not in site.business_days:
        return None, None
    return (
        datetime.combine(day, site.opens_at, tzinfo=tz).astimezone(UTC),
        datetime.combine(day, site.closes_at, tzinfo=tz).astimezone(UTC),
    )
