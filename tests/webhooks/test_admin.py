"""Administrators see senders, secrets and deliveries; never a secret's value."""

import pytest
from django.contrib.auth import get_user_model

from portal.webhooks.models import WebhookSecret

pytestmark = pytest.mark.usefixtures("sources")


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw")
    client.force_login(user)
    return client


def test_secret_lists_and_pages_never_show_the_secret(superuser_client):
    secret = WebhookSecret.objects.get(source__name="carrier")
    raw = secret.secret.removeprefix("whsec_")

    pages = [
        superuser_client.get("/admin/webhooks/webhooksecret/"),
        superuser_client.get(f"/admin/webhooks/webhooksecret/{secret.pk}/change/"),
        superuser_client.get("/admin/webhooks/webhooksecret/add/"),
        superuser_client.get("/admin/webhooks/inbounddelivery/"),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    assert all(raw not in page.content.decode() for page in pages)


def test_adding_a_secret_in_the_admin_goes_through_the_service(superuser_client):
    carrier = WebhookSecret.objects.get(source__name="carrier").source

    response = superuser_client.post(
        "/admin/webhooks/webhooksecret/add/",
        {"source": carrier.pk, "secret": "whsec_YWRtaW4tYWRkZWQtc2VjcmV0"},
    )

    assert response.status_code == 302
    assert carrier.secrets.filter(retired_at=None).count() == 2
