"""Celery wrappers around the mail services."""

from celery import shared_task

from portal.integrations.mail import poller, services


@shared_task(name="mail.process_message")
def process_message(message_id: int) -> None:
    """Read one stored message into an event or triage; a second run does nothing."""
    services.message_process(message_id=message_id)


@shared_task(name="mail.poll")
def poll() -> dict[str, str]:
    """Read every active mailbox, then enqueue the messages whose reading is due again."""
    outcomes = poller.mailboxes_poll()
    services.messages_due_sweep()
    return outcomes
