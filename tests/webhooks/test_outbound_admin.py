"""Administrators add receivers (seeing the secret once), rotate, disable and redeliver."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from portal.audit.models import AuditEvent
from portal.webhooks import outbound
from portal.webhooks.models import OutboundDelivery, SubscriptionSecret, WebhookSubscription
from tests.webhooks.test_outbound import receiver  # noqa: F401 - fixture used by name


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw")
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_adding_a_subscription_shows_its_secret_once(admin_client, receiver):  # noqa: F811
    response = admin_client.post(
        "/admin/webhooks/webhooksubscription/add/",
        {"name": "n8n", "url": receiver.url, "event_types": ["approval.decided"], "region": ""},
    )

    assert response.status_code == 302
    subscription = WebhookSubscription.objects.get(name="n8n")
    secret = SubscriptionSecret.objects.get(subscription=subscription).secret
    shown = admin_client.get(response.url)
    assert secret in shown.content.decode()
    # Once shown, never again: not on the next visit to the same pages.
    pages = [
        admin_client.get(response.url),
        admin_client.get(f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/"),
        admin_client.get("/admin/webhooks/webhooksubscription/"),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200]
    raw = secret.removeprefix("whsec_")
    assert all(raw not in page.content.decode() for page in pages)
    assert AuditEvent.objects.filter(action="webhook.subscription_created").count() == 1


def test_a_private_target_is_refused_in_the_form(admin_client, settings):
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = []

    response = admin_client.post(
        "/admin/webhooks/webhooksubscription/add/",
        {"name": "inside", "url": "https://10.0.0.8/hook", "event_types": ["sla.breached"]},
    )

    assert response.status_code == 200
    assert "a private address" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_rotate_and_disable_actions(admin_client, receiver):  # noqa: F811
    subscription, _ = outbound.subscription_create(
        actor=None, name="n8n", url=receiver.url, event_types=["approval.decided"]
    )
    changelist = "/admin/webhooks/webhooksubscription/"

    rotated = admin_client.post(
        changelist, {"action": "rotate_secret", "_selected_action": [subscription.pk]}
    )
    admin_client.post(changelist, {"action": "disable", "_selected_action": [subscription.pk]})

    newest = subscription.secrets.order_by("-id").first().secret
    assert any(newest in text for text in messages_of(rotated))
    subscription.refresh_from_db()
    assert subscription.active is False
    assert subscription.disabled_reason == "Disabled by root."
    disabled = AuditEvent.objects.get(action="webhook.subscription_disabled")
    assert disabled.actor_label == "root"


def test_redeliver_action_sends_again(
    admin_client,
    receiver,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    _, receiver.secret = outbound.subscription_create(
        actor=None, name="n8n", url=receiver.url, event_types=["approval.decided"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        outbound.publish("approval.decided", data={"reference": "AR-000001"})
    delivery = OutboundDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/webhooks/outbounddelivery/",
            {"action": "redeliver", "_selected_action": [delivery.pk]},
        )

    assert len(receiver.received) == 2 and all(item.verified for item in receiver.received)
    page = admin_client.get(f"/admin/webhooks/outbounddelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert page.content.decode().count("204") >= 2
    lists = [
        admin_client.get(f"/admin/webhooks/{model}/")
        for model in ("outboundevent", "outbounddelivery", "deliveryattempt")
    ]
    assert [response.status_code for response in lists] == [200, 200, 200]
    assert delivery.event.event_id in lists[0].content.decode()
