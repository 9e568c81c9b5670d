"""Celery entry points for the Odoo connector: thin wrappers that call one service each."""

from celery import shared_task

from portal.integrations.odoo import services, sync


@shared_task(name="odoo.apply_outbox_item")
def apply_outbox_item(item_id: int) -> str:
    """Write one decision back to Odoo; the service reschedules transient failures itself."""
    return services.outbox_apply(item_id=item_id).status


@shared_task(name="odoo.drain_outbox")
def drain_outbox() -> int:
    """Re-enqueue write-backs that are due, in case a task was lost with a broker restart."""
    due = services.outbox_due()
    for item_id in due:
        apply_outbox_item.delay(item_id)
    return len(due)


@shared_task(name="odoo.sync")
def sync_odoo() -> dict:
    """Pull what changed in Odoo since the last run."""
    return {model: vars(result) for model, result in sync.sync_all().items()}
