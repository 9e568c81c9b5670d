"""Links into Odoo's web client, in the form the connected Odoo understands.

Odoo 16 and 17 open a record at `/web#id=<id>&model=<model>&view_type=form`; Odoo 18 added
`/odoo/<model>/<id>` (and still reads the old form). The version comes from `ODOO_VERSION`
when it is configured, else from the last sync, which remembers what the server said; a page
never calls Odoo to build a link.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache

from portal.integrations.odoo.client.config import major_version

VERSION_KEY = "odoo:server-version"
# Long enough to outlive any pause in syncing; a sync refreshes it every run.
VERSION_TTL = 7 * 24 * 3600
PATH_URLS_SINCE = 18


def remember_server_version(version: str) -> None:
    """Keep the version the server reported, for the pages that link into it."""
    if version:
        cache.set(VERSION_KEY, str(version), VERSION_TTL)


def server_version() -> str | None:
    """The connected Odoo's version as configured or last seen; None when nobody knows yet."""
    return getattr(settings, "ODOO_VERSION", None) or cache.get(VERSION_KEY)


def record_url(model: str, record_id: int, *, version: str | None = None) -> str:
    """The web client's page of one record; "" when there is no record to link to."""
    if not (model and record_id):
        return ""
    base = settings.ODOO_URL.rstrip("/")
    version = version or server_version()
    if version and _major(version) >= PATH_URLS_SINCE:
        return f"{base}/odoo/{model}/{int(record_id)}"
    # Unknown versions get the old form: every Odoo from 16 on opens it.
    query = urlencode({"id": int(record_id), "model": model, "view_type": "form"})
    return f"{base}/web#{query}"


def _major(version: str) -> int:
    try:
        return major_version(version)
    except (ValueError, IndexError):
        return 0
