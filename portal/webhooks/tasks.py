"""Celery wrappers around the webhook services."""

from celery import shared_task

from portal.webhooks import services


@shared_task(name="webhooks.process_delivery")
def process_delivery(delivery_id: int) -> None:
    """Process one stored delivery; a second run of the same delivery does nothing."""
    services.delivery_process(delivery_id=delivery_id)
