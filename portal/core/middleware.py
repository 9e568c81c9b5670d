"""Middleware of every page: the person's locale for numbers and dates, chosen once per
request, and the content security policy, built once per process.

Tollgate's words stay English; only how numbers, money and dates are written follows the
browser's preferred languages (Accept-Language), negotiated against the locales Babel knows.
"""

import functools

from babel import Locale
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

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


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the site-wide policy built once per process.

    Every response that neither sets a policy of its own (django-csp's decorators) nor used a
    nonce carries the same header, which the library rebuilt from the settings on every response
    (a few hundred microseconds, on every page). Those responses get the header built once;
    any other is left to the library as before. Changed settings (tests) build it again.
    """

    _OWN_POLICY = (
        "_csp_config",
        "_csp_update",
        "_csp_replace",
        "_csp_config_ro",
        "_csp_update_ro",
        "_csp_replace_ro",
    )

    def process_response(self, request, response):
        own = any(getattr(response, name, None) is not None for name in self._OWN_POLICY)
        if own or getattr(request, "_csp_nonce", None) is not None or settings.DEBUG:
            return super().process_response(request, response)
        for header, value, exempt, prefixes in _site_policies():
            if (
                value
                and header not in response
                and getattr(response, exempt, False) is False
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = value
        # As the library does: a nonce asked for after the header went out is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


@functools.cache
def _site_policies() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(header, value, exemption attribute, excluded path prefixes) of the enforced policy and
    of the report-only one, as the settings give them."""
    found = []
    for header, setting, report_only, exempt in (
        (HEADER, "CONTENT_SECURITY_POLICY", False, "_csp_exempt"),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True, "_csp_exempt_ro"),
    ):
        policy = getattr(settings, setting, None) or {}
        prefixes = tuple(policy.get("EXCLUDE_URL_PREFIXES", None) or ())
        found.append((header, build_policy(report_only=report_only), exempt, prefixes))
    return tuple(found)


@receiver(setting_changed)
def _forget_site_policies(*, setting, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "DEBUG":
        _site_policies.cache_clear()
