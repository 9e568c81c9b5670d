"""The person's locale for numbers and dates, chosen once per request.

Tollgate's words stay English; only how numbers, money and dates are written follows the
browser's preferred languages (Accept-Language), negotiated against the locales Babel knows.
"""

from babel import Locale

from portal.core.formatting import current_locale, locale_or_default

OFFERED = ("en_GB", "en_US", "en_IE", "de_DE", "fr_FR", "nl_NL", "sv_SE", "da_DK", "es_ES", "it_IT")


def preferred_locale(header: str) -> str:
    """The best offered locale for an Accept-Language header, or the default."""
    wanted = []
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        wanted.append((quality, tag.replace("-", "_")))
    ordered = [tag for quality, tag in sorted(wanted, key=lambda item: -item[0]) if quality > 0]
    found = Locale.negotiate(ordered, OFFERED, sep="_") if ordered else None
    return locale_or_default(str(found) if found else None)


class FormatLocaleMiddleware:
    """Sets `request.format_locale` for templates and CSV writers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.format_locale = preferred_locale(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
        token = current_locale.set(request.format_locale)
        try:
            return self.get_response(request)
        finally:
            current_locale.reset(token)
