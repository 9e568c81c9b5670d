from celery import shared_task


@shared_task(name="portal.ping", ignore_result=False, acks_late=False)
def ping() -> str:
    """Answer from a worker, proving the broker delivers and a worker consumes."""
    return "pong"


@shared_task(name="accounts.purge_sign_in_failures")
def purge_sign_in_failures() -> int:
    """Delete failed-sign-in detail past its retention period (daily, from beat)."""
    from portal.accounts import purge_sign_in_failures as purge

    return purge()
