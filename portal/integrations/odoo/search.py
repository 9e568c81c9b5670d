"""Search-as-you-type over Odoo's products and partners, for the browser's raise form.

Answers are kept briefly in Django's cache (shared by every web replica when CACHE_URL names
Redis), so a person typing "fri", "frie", "fries" costs Odoo one call per distinct word, and a
colleague typing the same soon after costs none. A failure is never cached: it raises
`OdooError`, and the form says that Odoo could not be searched while still taking typed text.
"""

import dataclasses
import hashlib

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from portal.integrations.odoo.client import OdooClient, OdooSettings
from portal.integrations.odoo.errors import ErrorKind, OdooError

LIMIT = 10
MIN_TERM = 2
PARTNER_KINDS = {"vendor": "supplier_rank", "customer": "customer_rank"}
PRODUCT_FIELDS = ["display_name", "list_price", "standard_price", "uom_id", "categ_id"]
PARTNER_FIELDS = ["display_name", "ref"]


def search_products(term: str) -> list[dict]:
    """Active products whose name or internal reference contains `term` (cached)."""
    term = term.strip()
    if len(term) < MIN_TERM:
        return []
    domain = ["|", ("name", "ilike", term), ("default_code", "ilike", term)]
    return _cached("products", term, lambda: _products(domain))


def search_partners(term: str, kind: str) -> list[dict]:
    """Vendors or customers (`kind`) whose name contains `term` (cached)."""
    if kind not in PARTNER_KINDS:
        raise ValueError(f"kind is one of {', '.join(PARTNER_KINDS)}")
    term = term.strip()
    if len(term) < MIN_TERM:
        return []
    domain = [("name", "ilike", term), (PARTNER_KINDS[kind], ">", 0)]
    return _cached(kind, term, lambda: _partners(domain))


def _products(domain: list) -> list[dict]:
    rows = _client().search_read("product.product", domain, PRODUCT_FIELDS, limit=LIMIT)
    return [
        {
            "label": row["display_name"],
            "ref": f"product.product,{row['id']}",
            "unit_price": _price(row.get("standard_price") or row.get("list_price")),
            "uom": _name(row.get("uom_id")),
            "category": _name(row.get("categ_id")),
        }
        for row in rows
    ]


def _partners(domain: list) -> list[dict]:
    rows = _client().search_read("res.partner", domain, PARTNER_FIELDS, limit=LIMIT)
    return [{"label": row["display_name"], "ref": f"res.partner,{row['id']}"} for row in rows]


def _cached(scope: str, term: str, fetch) -> list[dict]:
    digest = hashlib.sha256(term.casefold().encode()).hexdigest()[:32]
    key = f"odoo-search:{scope}:{digest}"
    found = cache.get(key)
    if found is None:
        found = fetch()
        cache.set(key, found, settings.ODOO_SEARCH_CACHE_SECONDS)
    return found


def _client() -> OdooClient:
    try:
        config = OdooSettings.from_django()
    except ImproperlyConfigured as error:
        raise OdooError(str(error), kind=ErrorKind.CONNECTION, permanent=True) from None
    # A person is waiting for the answer: give up sooner than a sync or a write-back would.
    timeout = min(config.timeout, float(settings.ODOO_SEARCH_TIMEOUT))
    return OdooClient(dataclasses.replace(config, timeout=timeout))


def _name(value) -> str:
    return value[1] if isinstance(value, list | tuple) and len(value) > 1 else ""


def _price(value) -> str:
    return f"{float(value or 0):.2f}"
