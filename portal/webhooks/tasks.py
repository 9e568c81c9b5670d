"""Celery wrappers around the webhook services."""

from celery import shared_task

from portal.webhooks import outbound, services


@shared_task(name="webhooks.process_delivery")
def process_delivery(delivery_id: int) -> None:
    """Process one stored delivery; a second run of the same delivery does nothing."""
    services.delivery_process(delivery_id=delivery_id)


@shared_task(name="webhooks.process_deliveries")
def process_deliveries(delivery_ids: list[int]) -> None:
    """Process stored deliveries one by one, each as `process_delivery` does."""
    for delivery_id in delivery_ids:
        services.delivery_process(delivery_id=delivery_id)


@shared_task(name="webhooks.process_stranded")
def process_stranded() -> int:
    """Enqueue again the accepted deliveries whose task was lost; returns how many."""
    return services.deliveries_stranded_sweep()


@shared_task(name="webhooks.deliver_outbound")
def deliver_outbound(delivery_id: int) -> None:
    """Attempt one outbound delivery if it is due; a second run of the same attempt does nothing.

    Failures are not retried by Celery: the delivery row holds its own retry time and the
    due-delivery sweep picks it up then.
    """
    outbound.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.deliver_due")
def deliver_due() -> None:
    """Enqueue every outbound delivery whose next attempt is due."""
    outbound.deliveries_due_sweep()
