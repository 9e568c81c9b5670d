"""Celery entry points for the notification outbox: thin wrappers that call one service each."""

from celery import shared_task

from portal.notify import services


@shared_task(name="notify.send_outbox")
def send_outbox(item_ids: list[int]) -> dict:
    """Send these outbox rows; rows already sent or being sent elsewhere are skipped."""
    return services.send_many(item_ids)


@shared_task(name="notify.drain_outbox")
def drain_outbox() -> int:
    """Enqueue the rows that are due: those whose task was lost (the broker was down or
    restarted) and those whose retry time has come."""
    return services.outbox_drain()


@shared_task(name="notify.purge_sent")
def purge_sent() -> int:
    """Forget notifications sent longer ago than the retention period."""
    return services.outbox_purge()
