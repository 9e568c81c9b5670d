"""Odoo as the apps beneath its integration see it: the address of a record's page in its web
client, and a search of its products and partners for the raise form.

Approvals and cases sit below the Odoo integration (it reads Odoo into them and writes their
decisions back), so they may not import it. The integration plugs itself in here from its
AppConfig.ready() (`connect`); pages that only link into Odoo or search it ask here.
"""

from collections.abc import Collection
from typing import Protocol


class SearchUnavailable(Exception):
    """Odoo could not be searched just now; the person can still type the name."""


class Erp(Protocol):
    partner_kinds: Collection[str]

    def record_url(self, model: str, record_id: int) -> str:
        """The page of one record; "" when there is no record to link to."""

    def search_products(self, term: str) -> list[dict]:
        """Products whose name or reference contains `term`; SearchUnavailable on failure."""

    def search_partners(self, term: str, kind: str) -> list[dict]:
        """Partners of `kind` whose name contains `term`; SearchUnavailable on failure."""


_connected: Erp | None = None


def connect(erp: Erp) -> None:
    """Make `erp` the Odoo that the functions below ask."""
    global _connected
    _connected = erp


def _erp() -> Erp:
    if _connected is None:
        raise RuntimeError("No Odoo integration is installed.")
    return _connected


def record_url(model: str, record_id: int) -> str:
    """The address of one Odoo record's page; "" when there is no record to link to."""
    return _erp().record_url(model, record_id)


def partner_kinds() -> Collection[str]:
    """The kinds of partner `search_partners` tells apart ("vendor", "customer")."""
    return _erp().partner_kinds


def search_products(term: str) -> list[dict]:
    """Odoo products whose name or reference contains `term`; SearchUnavailable on failure."""
    return _erp().search_products(term)


def search_partners(term: str, kind: str) -> list[dict]:
    """Odoo partners of `kind` whose name contains `term`; SearchUnavailable on failure."""
    return _erp().search_partners(term, kind)
