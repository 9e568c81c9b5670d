"""A per-token (and per-session-user) request budget, counted in the shared cache.

Fixed one-window counters with the cache's atomic add and incr, so every web process that shares
the cache (Redis through CACHE_URL) counts against the same budget; with the embedded local-memory
cache each process counts on its own. The budget is API_RATE_LIMIT, e.g. "600/minute".
"""

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

from portal.api.models import ApiToken

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "600/minute" -> (600, 60); the unit is read from its first letter."""
    try:
        count, unit = rate.split("/")
        return int(count), _PERIODS[unit.strip()[0].lower()]
    except (ValueError, KeyError, IndexError):
        raise ImproperlyConfigured(
            f"API_RATE_LIMIT must look like 600/minute (per second, minute, hour or day); "
            f"got {rate!r}."
        ) from None


class TokenRateThrottle(BaseThrottle):
    """Counts each request of a token (or of a session user) in the current window."""

    def __init__(self):
        self.wait_seconds: float | None = None

    def allow_request(self, request, view) -> bool:
        who = _budget_holder(request)
        if who is None:
            return True
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        key = f"api-rate:{who}:{period}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # the window's counter expired between add and incr
            cache.add(key, 1, timeout=period + 1)
            count = 1
        if count <= limit:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return math.ceil(self.wait_seconds) if self.wait_seconds is not None else None


def _budget_holder(request) -> str | None:
    if isinstance(request.auth, ApiToken):
        return f"token:{request.auth.pk}"
    user = request.user
    return f"user:{user.pk}" if user is not None and user.is_authenticated else None
