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


@shared_task(name="accounts.password_reset_mail")
def password_reset_mail(address: str) -> int:
    """Send the password-reset mail for `address` if it is an active account's (else nothing)."""
    from portal.accounts import send_password_reset_mail

    return send_password_reset_mail(address)
