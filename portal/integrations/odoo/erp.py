"""The Odoo integration behind portal.core.erp: links and searches for the apps beneath it."""

from portal.core.erp import SearchUnavailable
from portal.integrations.odoo import links, search
from portal.integrations.odoo.errors import OdooError


class OdooErp:
    partner_kinds = tuple(search.PARTNER_KINDS)

    def record_url(self, model: str, record_id: int) -> str:
        return links.record_url(model, record_id)

    def search_products(self, term: str) -> list[dict]:
        try:
            return search.search_products(term)
        except OdooError as error:
            raise SearchUnavailable(str(error)) from None

    def search_partners(self, term: str, kind: str) -> list[dict]:
        try:
            return search.search_partners(term, kind)
        except OdooError as error:
            raise SearchUnavailable(str(error)) from None
