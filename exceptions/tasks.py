"""Celery entry points for exception cases: thin wrappers that take ids and call one function."""

from celery import shared_task

from exceptions import notifications, services, suggestions


@shared_task(name="exceptions.sla_sweep")
def sla_sweep() -> dict:
    """Remind and escalate open cases by their due time; safe to run in several places at once."""
    return vars(services.case_sla_sweep())


@shared_task(name="exceptions.train_resolution_models")
def train_resolution_models() -> dict:
    """Learn each kind's suggested resolutions again from the cases resolved so far."""
    return {
        trained.kind: trained.reason or f"{trained.model.accuracy:.0%}"
        for trained in suggestions.train_all()
    }


@shared_task(
    name="exceptions.notify_case",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def notify_case(case_id: int, reason: str) -> int:
    """E-mail the people who should hear that a case falls due soon or is overdue (kept for
    messages an earlier release queued; notifications now go through notify.send_outbox)."""
    return notifications.send_case_mail(case_id, reason)
