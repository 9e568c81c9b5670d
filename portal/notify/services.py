"""Sending notifications through the outbox, once each, whether or not the broker is up.

The outbox follows the Odoo write-back's design (portal.integrations.odoo.services):

- `outbox_add` runs inside the transaction of the change it tells of, so the row commits or
  rolls back with that change.
- On commit, `schedule` hands the new rows to a worker in few tasks (at most `CHUNK` rows
  each), so the Odoo sync raising hundreds of requests enqueues a handful of tasks. A broker
  that cannot be reached is logged and the rows wait: beat's `notify.drain_outbox` enqueues
  every due row again, so nothing depends on the enqueue succeeding.
- `outbox_send` locks the row (`SKIP LOCKED`), sends, and marks it sent in that one
  transaction, so two workers (the fast path and the drain, or a task delivered twice) never
  both send a row: the second finds it locked or no longer pending.
- A mail server that fails (any `OSError`, which includes every `smtplib` error) is retried
  with exponential backoff and jitter up to `NOTIFY_MAX_ATTEMPTS` (the drain enqueues a row
  again once its `next_attempt_at` has come); then, or at once for an
  error that is not the mail server's, the row is `failed`: logged as an error and listed for
  superusers in the admin, where they can send it again. Nothing is dropped silently.
- Sent rows are purged after `NOTIFY_RETENTION_DAYS`; pending and failed rows are kept.

The one gap is at the mail server: if the worker dies (or its database connection is cut)
after the server accepted the e-mails but before the row's transaction commits, the row is
still pending and is sent again. Delivery is therefore at least once across such a crash and
exactly once otherwise; no SMTP server offers a way to make the two one atomic step.
"""

import logging
import random
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from portal.notify.models import MailState, OutboxMail, Topic

logger = logging.getLogger(__name__)

# A row the drain enqueued is enqueued again only if it is still pending this much later.
DRAIN_LEASE = timedelta(minutes=5)
# Rows per task: small enough to finish well inside the task time limit on a slow mail server.
CHUNK = 100

# Who renders and sends each topic: f(object_id, reason, connection=...) -> e-mails sent.
SENDERS = {
    Topic.STEP: "approvals.notifications.send_step_notification",
    Topic.REQUEST: "approvals.notifications.send_requester_notification",
    Topic.CASE: "exceptions.notifications.send_case_notification",
}


def outbox_add(topic: str, object_ids, reason: str = "") -> list[int]:
    """Record notifications to send; call inside the transaction of the change they tell of."""
    if topic not in SENDERS:
        raise ValueError(f"Unknown notification topic {topic!r}.")
    now = timezone.now()
    rows = OutboxMail.objects.bulk_create(
        OutboxMail(
            topic=topic, object_id=object_id, reason=reason, next_attempt_at=now, created_at=now
        )
        for object_id in object_ids
    )
    return [row.pk for row in rows]


def schedule(item_ids: list[int]) -> list[int]:
    """Hand committed rows to workers in few tasks; returns the ids that could not be handed
    over. A broker that cannot be reached is logged; the rows stay pending and the drain
    enqueues them once it is back."""
    from portal.celery import broker_outage_logged
    from portal.notify.tasks import send_outbox

    left: list[int] = []
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start : start + CHUNK]
        left += chunk
        with broker_outage_logged(f"{len(chunk)} notification(s) (left for the outbox drain)"):
            send_outbox.delay(chunk)
            del left[-len(chunk) :]
    return left


def schedule_on_commit(item_ids: list[int]) -> None:
    if item_ids:
        transaction.on_commit(lambda: schedule(item_ids))


def send_many(item_ids: list[int]) -> dict[str, int]:
    """Send each row in turn over one mail connection; returns how many ended in each way.

    Once the mail server fails, the rest of the batch backs off with the failed row instead of
    each waiting for its own timeout."""
    outcomes: dict[str, int] = {}
    connection = get_connection()
    trouble: OSError | None = None
    try:
        connection.open()
    except OSError as error:
        trouble = error
    try:
        for item_id in item_ids:
            if trouble is None:
                outcome, trouble = outbox_send(item_id=item_id, connection=connection)
            else:
                outcome = outbox_defer(item_id=item_id, error=trouble)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        connection.close()
    return outcomes


def outbox_send(*, item_id: int, connection=None) -> tuple[str, OSError | None]:
    """Send one row if it is pending and nobody else is sending it.

    Returns the outcome (sent | retry | failed | skipped) and the mail server's error, if any.
    The row stays locked while its e-mails go out and is marked in the same transaction."""
    with transaction.atomic():
        item = _locked(item_id)
        if item is None:
            return "skipped", None
        item.attempts += 1
        try:
            with transaction.atomic():  # a failed send leaves nothing it wrote behind
                sent = import_string(SENDERS[item.topic])(
                    item.object_id, item.reason, connection=connection
                )
        except OSError as error:
            if connection is not None:
                connection.close()
            return _failed(item, error, transient=True), error
        except SoftTimeLimitExceeded:
            raise  # rolled back: the row stays pending for the drain
        except Exception as error:
            # A bug, or data the template cannot render: retrying would fail the same way.
            logger.exception("notification %s could not be sent", item.pk)
            return _failed(item, error, transient=False), None
        item.mark_sent(mails=sent)
        item.save(update_fields=["state", "sent_at", "mails_sent", "attempts", "last_error"])
        return "sent", None


def outbox_defer(*, item_id: int, error: OSError) -> str:
    """Count a failed attempt for a row the mail server could not take (it was down)."""
    with transaction.atomic():
        item = _locked(item_id)
        if item is None:
            return "skipped"
        item.attempts += 1
        return _failed(item, error, transient=True)


def _locked(item_id: int) -> OutboxMail | None:
    return (
        OutboxMail.objects.select_for_update(skip_locked=True)
        .filter(pk=item_id, state=MailState.PENDING)
        .first()
    )


def _failed(item: OutboxMail, error: Exception, *, transient: bool) -> str:
    item.last_error = f"{type(error).__name__}: {error}"[:2000]
    if transient and item.attempts < settings.NOTIFY_MAX_ATTEMPTS:
        delay = backoff_seconds(item.attempts)
        item.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        item.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        # Beat's drain enqueues it once due: a mail server that is down fails a whole batch,
        # which then comes back as a few tasks rather than one per row.
        logger.warning("notification %s will retry in %.0f s: %s", item.pk, delay, error)
        return "retry"
    item.mark_failed()
    item.save(update_fields=["attempts", "last_error", "state"])
    logger.error("notification %s failed after %s attempt(s): %s", item.pk, item.attempts, error)
    return "failed"


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter, capped (attempt 1 waits up to the base)."""
    base = settings.NOTIFY_BACKOFF_SECONDS
    ceiling = min(settings.NOTIFY_BACKOFF_MAX_SECONDS, base * 2 ** (attempt - 1))
    return random.uniform(base / 2, max(base / 2, ceiling))  # noqa: S311 - jitter, not security


def outbox_due(*, now: datetime | None = None, limit: int = 5000) -> list[int]:
    """Ids of pending rows whose time has come (the beat job's safety net for lost tasks)."""
    now = now or timezone.now()
    return list(
        OutboxMail.objects.filter(state=MailState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_drain(*, now: datetime | None = None) -> int:
    """Enqueue the rows that are due, and lease them for DRAIN_LEASE: a row whose task waits
    behind a long queue is not enqueued again by every drain meanwhile. Rows the broker did not
    take are due again at once. Returns how many rows were enqueued."""
    now = now or timezone.now()
    with transaction.atomic():
        due = outbox_due(now=now)
        OutboxMail.objects.filter(pk__in=due, state=MailState.PENDING).update(
            next_attempt_at=now + DRAIN_LEASE
        )
    left = schedule(due)
    if left:
        OutboxMail.objects.filter(pk__in=left, state=MailState.PENDING).update(next_attempt_at=now)
    return len(due) - len(left)


def outbox_retry(*, item_ids) -> int:
    """Send failed rows again (an administrator asked for it); returns how many."""
    with transaction.atomic():
        ids = list(
            OutboxMail.objects.select_for_update()
            .filter(pk__in=list(item_ids), state=MailState.FAILED)
            .values_list("pk", flat=True)
        )
        OutboxMail.objects.filter(pk__in=ids).retry(at=timezone.now())
        schedule_on_commit(ids)
    return len(ids)


def outbox_purge(*, now: datetime | None = None) -> int:
    """Delete rows sent more than NOTIFY_RETENTION_DAYS ago; pending and failed rows stay."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.NOTIFY_RETENTION_DAYS)
    deleted, _ = OutboxMail.objects.filter(state=MailState.SENT, sent_at__lt=cutoff).delete()
    return deleted
