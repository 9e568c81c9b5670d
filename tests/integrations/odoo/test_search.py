"""Search-as-you-type over the sandbox's products and partners, through the real client."""

import pytest
from django.core.cache import cache

from portal.integrations.odoo import search
from portal.integrations.odoo.errors import OdooError


@pytest.fixture
def connected(settings, odoo_sandbox):
    settings.ODOO_URL = odoo_sandbox.url
    settings.ODOO_DB = odoo_sandbox.db
    settings.ODOO_LOGIN = odoo_sandbox.login
    settings.ODOO_API_KEY = odoo_sandbox.api_key
    settings.ODOO_VERSION = "17.0"
    cache.clear()
    return odoo_sandbox


def test_products_are_found_by_name_and_internal_reference(connected):
    by_name = search.search_products("frozen fr")
    by_code = search.search_products("TG-0011")

    assert by_name == by_code
    (fries,) = by_name
    assert fries["label"] == "[TG-0011] Frozen Fries 4x2.5kg"
    assert fries["ref"] == "product.product,11"
    assert fries["unit_price"] == "13.20" and fries["category"] == "All / Goods / Frozen"


def test_vendors_and_customers_are_searched_apart(connected):
    vendors = {row["label"] for row in search.search_partners("co", "vendor")}
    customers = {row["label"] for row in search.search_partners("co", "customer")}

    assert "Hanse Coffee Traders" in vendors and "Hanse Coffee Traders" not in customers
    assert "Cork Street Kitchen" in customers and "Cork Street Kitchen" not in vendors


def test_an_answer_is_reused_without_asking_odoo_again(connected):
    search.search_products("Frozen")
    connected.server.stop()

    assert search.search_products("frozen")[0]["ref"] == "product.product,11"


def test_one_letter_asks_odoo_nothing(settings):
    settings.ODOO_URL = "http://127.0.0.1:9"

    assert search.search_products("f") == []


def test_unreachable_odoo_raises_and_the_failure_is_not_remembered(settings, connected):
    settings.ODOO_URL = "http://127.0.0.1:9"

    with pytest.raises(OdooError):
        search.search_partners("Hanse", "vendor")
    settings.ODOO_URL = connected.url
    assert search.search_partners("Hanse", "vendor")[0]["label"] == "Hanse Coffee Traders"
