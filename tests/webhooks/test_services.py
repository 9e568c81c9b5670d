"""Processing and secrets: failures stay visible, secrets are checked and audited."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied

from exceptions.models import ExceptionCase
from portal.audit.models import AuditEvent
from portal.webhooks import services
from portal.webhooks.models import DeliveryStatus, InboundDelivery, WebhookSource
from tests.webhooks.conftest import carrier_event

pytestmark = pytest.mark.usefixtures("sources")


def accepted(site, body: bytes) -> InboundDelivery:
    payload = json.loads(body)
    return InboundDelivery.objects.create(
        source=WebhookSource.objects.get(name="carrier"),
        webhook_id="msg_1",
        body=body.decode(),
        event_type=payload["type"],
        status=DeliveryStatus.ACCEPTED,
        site=site,
    )


def test_processing_error_marks_the_delivery_failed_with_the_error(site_a1, monkeypatch):
    delivery = accepted(site_a1, carrier_event())

    def broken(**kwargs):
        raise RuntimeError("case queue unavailable")

    monkeypatch.setattr(services, "case_raise", broken)
    services.delivery_process(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == "RuntimeError: case queue unavailable"
    assert AuditEvent.objects.filter(action="webhook.failed").exists()
    assert not ExceptionCase.objects.exists()


def test_processing_twice_raises_one_case_once(site_a1):
    delivery = accepted(site_a1, carrier_event())

    services.delivery_process(delivery_id=delivery.pk)
    services.delivery_process(delivery_id=delivery.pk)

    assert ExceptionCase.objects.get().occurrences == 1


def test_carrier_delay_joins_the_open_case_of_the_odoo_sync(site_a1):
    synced, _ = services.case_raise(
        kind="shipment_delay",
        site=site_a1,
        severity="high",
        title="A1/OUT/00042 is 8.0 days late",
        source="odoo",
        dedupe_key="stock.picking:A1/OUT/00042:shipment_delay",
        payload={"id": 42, "name": "A1/OUT/00042"},
        evidence={},
        odoo_model="stock.picking",
        odoo_id=42,
    )
    delivery = accepted(site_a1, carrier_event())

    services.delivery_process(delivery_id=delivery.pk)

    synced.refresh_from_db()
    assert ExceptionCase.objects.count() == 1
    assert synced.occurrences == 2


def test_unreadable_secret_is_refused():
    carrier = WebhookSource.objects.get(name="carrier")

    with pytest.raises(ValueError, match="base64"):
        services.webhook_secret_add(actor=None, source=carrier, secret="whsec_")


def test_adding_a_secret_is_audited_without_the_secret():
    carrier = WebhookSource.objects.get(name="carrier")
    secret = "whsec_c2Vjb25kLWNhcnJpZXItc2VjcmV0"

    services.webhook_secret_add(actor=None, source=carrier, secret=secret)

    event = AuditEvent.objects.filter(action="webhook.secret_added").last()
    assert "c2Vjb25k" not in json.dumps([event.before, event.after, event.context, event.comment])


@pytest.mark.parametrize("who", ["administrator", "regional_manager", "staff_without_superuser"])
def test_only_a_superuser_adds_or_retires_a_webhook_secret(request, who, django_user_model):
    """A secret signs deliveries for every site: an administrator of some sites (or staff who
    may open the admin) may not add one, and nothing is stored or recorded when refused."""
    if who == "staff_without_superuser":
        actor = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    else:
        actor = request.getfixturevalue(who)
    carrier = WebhookSource.objects.get(name="carrier")
    kept = carrier.secrets.first()
    secrets_before = list(carrier.secrets.values_list("pk", "secret", "retired_at"))
    events_before = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        services.webhook_secret_add(
            actor=actor, source=carrier, secret="whsec_c2Vjb25kLWNhcnJpZXItc2VjcmV0"
        )
    with pytest.raises(PermissionDenied):
        services.webhook_secret_retire(actor=actor, secret_id=kept.pk)
    with pytest.raises(PermissionDenied):
        services.webhook_source_create(actor=actor, name="rogue")

    assert list(carrier.secrets.values_list("pk", "secret", "retired_at")) == secrets_before
    assert not WebhookSource.objects.filter(name="rogue").exists()
    assert AuditEvent.objects.count() == events_before


def test_a_superuser_adds_a_webhook_secret(django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="x")
    carrier = WebhookSource.objects.get(name="carrier")

    added = services.webhook_secret_add(
        actor=boss, source=carrier, secret="whsec_c2Vjb25kLWNhcnJpZXItc2VjcmV0"
    )

    assert added.source == carrier and added.retired_at is None
    event = AuditEvent.objects.filter(action="webhook.secret_added").last()
    assert (event.actor_id, event.object_id) == (boss.pk, str(added.pk))


def test_a_delivery_whose_task_was_lost_is_processed_by_the_sweep(site_a1):
    stranded = accepted(site_a1, carrier_event())
    just_in = InboundDelivery.objects.create(
        source=stranded.source,
        webhook_id="msg_2",
        body=carrier_event(picking_ref="A1/OUT/00043").decode(),
        event_type="shipment.delayed",
        status=DeliveryStatus.ACCEPTED,
        site=site_a1,
    )
    later = stranded.received_at + services.STRANDED_AFTER + timedelta(seconds=1)
    InboundDelivery.objects.filter(pk=just_in.pk).update(received_at=later)

    assert services.deliveries_stranded_sweep(now=later) == 1

    stranded.refresh_from_db()
    just_in.refresh_from_db()
    assert stranded.status == DeliveryStatus.PROCESSED
    assert stranded.case.dedupe_key == "stock.picking:A1/OUT/00042:shipment_delay"
    assert just_in.status == DeliveryStatus.ACCEPTED
    assert services.deliveries_stranded_sweep(now=later) == 0


def test_the_stranded_sweep_runs_on_beat(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "webhooks.process_stranded" in tasks
