"""Celery entry points for approvals: thin wrappers that take ids and call one function."""

from celery import shared_task

from approvals import notifications, services


@shared_task(name="approvals.sla_sweep")
def sla_sweep() -> dict:
    """Remind and escalate tiers by their SLA; safe to run in several places at once."""
    return vars(services.sla_sweep())


@shared_task(
    name="approvals.notify_steps",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def notify_steps(step_ids: list[int], reason: str) -> int:
    """E-mail the people who can act on these tiers now.

    Notifications now go through the outbox (notify.send_outbox); this task stays so that
    messages queued by an earlier release are still carried out."""
    return notifications.send_step_mail(step_ids, reason)


@shared_task(
    name="approvals.notify_requesters",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def notify_requesters(request_ids: list[int]) -> int:
    """E-mail requesters how their requests ended (kept for messages an earlier release
    queued; notifications now go through notify.send_outbox)."""
    return notifications.send_requester_mail(request_ids)


@shared_task(name="approvals.daily_digest")
def daily_digest() -> int:
    """E-mail the daily digest to the people who chose it over one mail per tier."""
    from approvals.preferences import send_daily_digests

    return send_daily_digests()
