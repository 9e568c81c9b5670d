"""API clients per persona, each authenticated by a real API token of that person.

    def test_outsider_gets_404(outsider_api, request_a1):
        assert outsider_api.get(f"/api/v1/approvals/{request_a1.pk}/").status_code == 404

`api_client_for(user, **options)` makes a client for anyone, the options being those of
`portal.api.services.token_create` (read_only=True, actions=("approvals.list",), expires_at=…);
the client's `token` attribute is the ApiToken. `anonymous_api` sends no credentials. The rate
limit is lifted here, and the cache emptied, so that only the throttling tests meet it.
"""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from portal.api import services


@pytest.fixture(autouse=True)
def _api_rate_limit_lifted(settings):
    settings.API_RATE_LIMIT = "1000000/minute"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client_for(db):
    def make(user, **token_options) -> APIClient:
        token_options.setdefault("name", f"test token of {user.get_username()}")
        token, secret = services.token_create(actor=None, user=user, **token_options)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.token = token
        client.secret = secret
        return client

    return make


@pytest.fixture
def anonymous_api():
    return APIClient()


@pytest.fixture
def requester_api(api_client_for, requester):
    return api_client_for(requester)


@pytest.fixture
def site_manager_api(api_client_for, site_manager):
    return api_client_for(site_manager)


@pytest.fixture
def regional_manager_api(api_client_for, regional_manager):
    return api_client_for(regional_manager)


@pytest.fixture
def finance_api(api_client_for, finance):
    return api_client_for(finance)


@pytest.fixture
def auditor_api(api_client_for, auditor):
    return api_client_for(auditor)


@pytest.fixture
def administrator_api(api_client_for, administrator):
    return api_client_for(administrator)


@pytest.fixture
def outsider_api(api_client_for, outsider):
    return api_client_for(outsider)


@pytest.fixture
def stranger_api(api_client_for, stranger):
    return api_client_for(stranger)
