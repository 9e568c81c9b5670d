"""Celery entry points for the audit ledger."""

from celery import shared_task

from portal.audit.checkpoints import checkpoint_take


@shared_task(name="audit.checkpoint")
def checkpoint() -> int | None:
    """Write the ledger's head down, inside and outside the database (daily, from beat)."""
    taken = checkpoint_take()
    return taken.sequence if taken else None
