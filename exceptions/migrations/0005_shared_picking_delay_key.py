"""Open late-shipment cases move to the key both the Odoo sync and carriers now use, and open
cases raised before reminders existed get their reminder time (three quarters of their SLA)."""

from django.db import migrations

OPEN = ("new", "assigned", "in_progress")


def _picking_name(case) -> str | None:
    if case.dedupe_key.startswith("carrier:stock.picking:"):
        return case.dedupe_key.removeprefix("carrier:stock.picking:").removesuffix(
            ":shipment_delay"
        )
    name = case.payload.get("name") if isinstance(case.payload, dict) else None
    return name if isinstance(name, str) and name else None


def rekey_and_backfill(apps, schema_editor):
    ExceptionCase = apps.get_model("exceptions", "ExceptionCase")
    delays = ExceptionCase.objects.filter(
        kind="shipment_delay", state__in=OPEN, dedupe_key__endswith=":shipment_delay"
    ).exclude(dedupe_key__startswith="stock.picking:")
    for case in delays.order_by("pk"):
        name = _picking_name(case)
        key = f"stock.picking:{name}:shipment_delay"
        # Two open cases about one picking stay apart; the older one takes the shared key.
        if name and not ExceptionCase.objects.filter(dedupe_key=key, state__in=OPEN).exists():
            case.dedupe_key = key
            case.save(update_fields=["dedupe_key"])
    waiting = ExceptionCase.objects.filter(
        state__in=OPEN, remind_at__isnull=True, due_at__isnull=False
    )
    for case in waiting:
        case.remind_at = case.detected_at + (case.due_at - case.detected_at) * 3 / 4
        case.save(update_fields=["remind_at"])


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0004_queue_rules_and_case_sla")]

    operations = [migrations.RunPython(rekey_and_backfill, migrations.RunPython.noop)]
