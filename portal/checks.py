"""Start-up checks of the settings that guard secrets in transit (`manage.py check`, `migrate`,
`runserver` and every management command run them; `check --deploy` is in the deployment steps).

With DEBUG off:
- METRICS_TOKEN, when set, must be long and varied enough not to be guessed (tollgate.E001);
- TOLLGATE_BASE_URL must be https, since password-reset and decision links travel in it
  (tollgate.E002), unless it names this very machine or TOLLGATE_BASE_URL_ALLOW_HTTP is on (the
  plain-HTTP demo of `make run`);
- ODOO_URL must be https, since the API key travels to it (tollgate.E003), unless it names this
  very machine or ODOO_ALLOW_HTTP names its host.

A message never repeats a secret's value.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

METRICS_TOKEN_MIN_LENGTH = 32
METRICS_TOKEN_MIN_DISTINCT = 12


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@checks.register(checks.Tags.security)
def metrics_token_strength(app_configs=None, **kwargs):
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    if settings.DEBUG or not token:
        return []
    if len(token) < METRICS_TOKEN_MIN_LENGTH:
        why = f"it must be at least {METRICS_TOKEN_MIN_LENGTH} characters long"
    elif len(set(token)) < METRICS_TOKEN_MIN_DISTINCT:
        why = "it has too few different characters to be hard to guess"
    else:
        return []
    return [
        checks.Error(
            f"METRICS_TOKEN is too weak: {why}.",
            hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            id="tollgate.E001",
        )
    ]


@checks.register(checks.Tags.security)
def base_url_is_https(app_configs=None, **kwargs):
    url = settings.TOLLGATE_BASE_URL
    parts = urlsplit(url)
    if (
        settings.DEBUG
        or parts.scheme == "https"
        or _loopback(parts.hostname)
        or getattr(settings, "TOLLGATE_BASE_URL_ALLOW_HTTP", False)
    ):
        return []
    return [
        checks.Error(
            f"TOLLGATE_BASE_URL must be an https:// address with DEBUG off; got {url!r}. "
            "Password-reset and decision links are built on it.",
            hint="Set TOLLGATE_BASE_URL=https://<the portal's host>.",
            id="tollgate.E002",
        )
    ]


@checks.register(checks.Tags.security)
def odoo_url_is_https(app_configs=None, **kwargs):
    parts = urlsplit(settings.ODOO_URL)
    allowed = {host.lower() for host in getattr(settings, "ODOO_ALLOW_HTTP", [])}
    host = (parts.hostname or "").lower()
    if settings.DEBUG or parts.scheme != "http" or _loopback(host) or host in allowed:
        return []
    return [
        checks.Error(
            f"ODOO_URL must be an https:// address with DEBUG off (unless ODOO_ALLOW_HTTP names "
            f"its host); {host} is reached over plain http, and the Odoo API key would travel "
            "in clear.",
            hint=f"Use https://{host}, or, on a trusted network, ODOO_ALLOW_HTTP={host}.",
            id="tollgate.E003",
        )
    ]
