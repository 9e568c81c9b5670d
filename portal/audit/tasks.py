"""Celery entry points for the audit ledger."""

from celery import shared_task

from portal.audit.checkpoints import checkpoint_take


@shared_task(name="audit.seal")
def seal() -> int:
    """Seal whatever the writers left unsealed (every few seconds, from beat)."""
    from portal.audit.sequencer import seal as seal_backlog

    return seal_backlog()


@shared_task(name="audit.checkpoint")
def checkpoint() -> int | None:
    """Write the ledger's head down, inside and outside the database (daily, from beat)."""
    taken = checkpoint_take()
    return taken.sequence if taken else None


@shared_task(name="audit.verify")
def verify(actor_id: int | None = None) -> dict:
    """Verify the chain for the person who asked in the auditor area, and record the verdict."""
    from django.contrib.auth import get_user_model

    from portal.audit.services import ledger_verify

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return ledger_verify(actor=actor)
