"""Beat job of the API: forget idempotency keys once they are old enough."""

from celery import shared_task

from portal.api import services


@shared_task(name="api.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return services.idempotency_purge()
