from celery import shared_task


@shared_task(name="portal.ping", ignore_result=False, acks_late=False)
def ping() -> str:
    """Answer from a worker, proving the broker delivers and a worker consumes."""
    return "pong"
