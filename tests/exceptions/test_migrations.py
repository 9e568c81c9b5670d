"""Open late-shipment cases raised under the old per-source keys move to the shared key."""

import importlib
from datetime import timedelta

from django.apps import apps

from exceptions.models import ExceptionCase
from exceptions.services import case_raise

migration = importlib.import_module("exceptions.migrations.0005_shared_picking_delay_key")


def delay(site, key, payload):
    case, _ = case_raise(
        kind="shipment_delay",
        site=site,
        severity="medium",
        title="Late",
        source="odoo",
        dedupe_key=key,
        payload=payload,
        evidence={},
    )
    return case


def test_old_keys_move_to_the_shared_one_and_reminders_are_backfilled(site_a1):
    synced = delay(site_a1, "odoo:stock.picking:42:shipment_delay", {"id": 42, "name": "A1/OUT/1"})
    reported = delay(site_a1, "carrier:stock.picking:A1/OUT/2:shipment_delay", {})
    clash = delay(site_a1, "carrier:stock.picking:A1/OUT/1:shipment_delay", {})
    ExceptionCase.objects.filter(pk=synced.pk).update(remind_at=None)

    migration.rekey_and_backfill(apps, None)

    keys = dict(ExceptionCase.objects.values_list("pk", "dedupe_key"))
    assert keys[synced.pk] == "stock.picking:A1/OUT/1:shipment_delay"
    assert keys[reported.pk] == "stock.picking:A1/OUT/2:shipment_delay"
    # The picking already has an open case under the shared key; the second one stays apart.
    assert keys[clash.pk] == "carrier:stock.picking:A1/OUT/1:shipment_delay"
    synced.refresh_from_db()
    assert synced.remind_at == synced.detected_at + timedelta(hours=72 * 3 / 4)
