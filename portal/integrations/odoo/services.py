"""Writing decisions back to Odoo through the outbox, exactly once.

`outbox_enqueue` runs inside the decision's own transaction (its handler, handlers.py),
so a committed decision always has its outbox row. `outbox_apply` holds the row's lock while it
talks to Odoo, so two workers never apply the same row at once; what it does in Odoo is itself
idempotent (see push.py), so a worker killed half-way leaves a row that the next run finishes
without acting twice. Transient failures are retried with exponential backoff and jitter up to
a limit; a permanent failure, or the last retry, marks the request `apply_failed` with Odoo's
message, for an administrator to see and retry.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit.services import audit_record
from portal.core.inserts import insert_once
from portal.integrations.odoo import push
from portal.integrations.odoo.errors import ErrorKind, OdooError
from portal.integrations.odoo.models import OutboxItem, OutboxState

logger = logging.getLogger(__name__)


# The columns of the unique constraint that keeps one write-back per decision.
ONE_PER_DECISION = ("request_id", "round", "action")


def outbox_enqueue(*, request, action: str) -> OutboxItem | None:
    """Record that `request`'s final decision must reach Odoo; call inside its transaction."""
    if not request.odoo_id or not request.odoo_model:
        return None
    version = request.policy_version
    item = OutboxItem(
        request=request,
        round=request.round,
        action=action,
        odoo_model=request.odoo_model,
        odoo_id=request.odoo_id,
        cancel_in_odoo=bool(version and version.cancel_in_odoo_on_reject),
    )
    if not insert_once(item, ONE_PER_DECISION):
        item = OutboxItem.objects.get(request=request, round=request.round, action=action)
    item_id = item.pk
    transaction.on_commit(lambda: _schedule(item_id, countdown=0))
    return item


def outbox_supersede(*, request) -> int:
    """Drop write-backs still waiting for a request that went back to review."""
    return OutboxItem.objects.filter(request=request).supersede()


def outbox_retry(*, request) -> OutboxItem | None:
    """Send a failed write-back again (an administrator asked for it)."""
    item = (
        OutboxItem.objects.select_for_update()
        .filter(request=request, state=OutboxState.FAILED)
        .order_by("-id")
        .first()
    )
    if item is None:
        return None
    item.retry()
    item.save(update_fields=["state", "attempts", "next_attempt_at"])
    item_id = item.pk
    transaction.on_commit(lambda: _schedule(item_id, countdown=0))
    return item


@dataclass(frozen=True)
class ApplyResult:
    status: str  # applied | retry | failed | skipped
    retry_in: float | None = None


def outbox_apply(*, item_id: int, client_factory=None) -> ApplyResult:
    """Apply one outbox row if it is due and nobody else is applying it.

    Locks the request row, then the outbox row — the order in which decisions and drift take
    them — and holds both while it talks to Odoo, so a drift arriving meanwhile waits and then
    sees the request applied.
    """
    from approvals import services as approvals
    from approvals.models import ApprovalRequest

    request_id = (
        OutboxItem.objects.filter(pk=item_id, state=OutboxState.PENDING)
        .values_list("request_id", flat=True)
        .first()
    )
    if request_id is None:
        return ApplyResult("skipped")
    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("site", "policy_version")
            .filter(pk=request_id)
            .first()
        )
        if request is None:
            # Someone is deciding or updating the request right now: come back shortly.
            transaction.on_commit(lambda: _schedule(item_id, countdown=_BUSY_RETRY_SECONDS))
            return ApplyResult("busy", _BUSY_RETRY_SECONDS)
        item = (
            OutboxItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=item_id, state=OutboxState.PENDING)
            .first()
        )
        if item is None:
            return ApplyResult("skipped")
        item.request = request
        if request.state not in ("approved", "rejected", "apply_failed"):
            item.supersede()
            item.save(update_fields=["state"])
            return ApplyResult("skipped")
        return _apply_locked(item, client_factory, approvals)


_BUSY_RETRY_SECONDS = 5


def _apply_locked(item: OutboxItem, client_factory, approvals) -> ApplyResult:
    waiting = _sibling_decision(item)
    if waiting is not None:
        return waiting
    try:
        client = (client_factory or _default_client)()
        outcome = push.apply(client, item, note=_note(item))
    except OdooError as error:
        return _failed(item, error, approvals)
    except Exception as error:
        # A bug or an answer Tollgate cannot read must not leave the row pending forever.
        logger.exception("odoo write-back %s failed unexpectedly", item.pk)
        unexpected = OdooError(
            f"Tollgate could not complete the update ({type(error).__name__}); see the log.",
            permanent=True,
            model=item.odoo_model,
        )
        return _failed(item, unexpected, approvals)
    item.mark_applied(message_id=outcome.message_id)
    item.attempts += 1
    item.save(update_fields=["state", "applied_at", "odoo_message_id", "attempts"])
    _audit(item, "odoo.write_back_applied", acted=outcome.acted)
    if item.action == OutboxItem.Action.APPROVE:
        approvals.request_mark_applied(
            request_id=item.request_id,
            note="Odoo already showed the decision" if not outcome.acted else "",
        )
    return ApplyResult("applied")


def _sibling_decision(item: OutboxItem) -> ApplyResult | None:
    """One Odoo document may need several approvals (a quotation's price override and its
    credit exception): it is confirmed only once every one of them is approved."""
    from approvals import services as approvals
    from approvals.models import ApprovalRequest

    if item.action != OutboxItem.Action.APPROVE:
        return None
    others = (
        ApprovalRequest.objects.filter(odoo_model=item.odoo_model, odoo_id=item.odoo_id)
        .exclude(kind=item.request.kind)
        .order_by("kind", "-revision")
    )
    latest = {}
    for other in others:
        latest.setdefault(other.kind, other)
    pending = [o for o in latest.values() if o.state in ("draft", "submitted", "in_review")]
    refused = [o for o in latest.values() if o.state in ("rejected", "withdrawn", "expired")]
    if refused:
        other = refused[0]
        state = other.get_state_display().lower()
        return _failed(
            item,
            OdooError(
                f"{item.odoo_model},{item.odoo_id} also needed {other.reference} "
                f"({other.get_kind_display().lower()}), which is {state}; Odoo was not changed.",
                permanent=True,
                model=item.odoo_model,
            ),
            approvals,
        )
    if pending:
        return _wait_for_siblings(item)
    return None


def _wait_for_siblings(item: OutboxItem) -> ApplyResult:
    item_id, wait = item.pk, settings.ODOO_PUSH_SIBLING_WAIT_SECONDS
    item.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    item.save(update_fields=["next_attempt_at"])
    transaction.on_commit(lambda: _schedule(item_id, countdown=wait))
    return ApplyResult("waiting", wait)


def _failed(item: OutboxItem, error: OdooError, approvals) -> ApplyResult:
    item.attempts += 1
    item.last_error = str(error)
    if error.transient and item.attempts < settings.ODOO_PUSH_MAX_ATTEMPTS:
        delay = backoff_seconds(item.attempts)
        if error.kind is ErrorKind.TIMEOUT or error.status == 504:
            # The call may still be running in Odoo after we stopped waiting for it: retry only
            # once Odoo has finished it, or the retry's read-first checks cannot see its effect.
            delay = max(delay, settings.ODOO_PUSH_SETTLE_SECONDS)
        item.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        item.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        logger.warning("odoo write-back %s will retry in %.0f s: %s", item.pk, delay, error)
        _audit(item, "odoo.write_back_retrying", error=str(error), retry_in_seconds=round(delay))
        item_id = item.pk
        transaction.on_commit(lambda: _schedule(item_id, countdown=delay))
        return ApplyResult("retry", delay)
    item.mark_failed()
    item.save(update_fields=["attempts", "last_error", "state"])
    logger.error("odoo write-back %s failed: %s", item.pk, error)
    _audit(item, "odoo.write_back_failed", error=str(error), permanent=error.permanent)
    if item.request.state == "approved":
        approvals.request_mark_apply_failed(request_id=item.request_id, error=str(error))
    elif item.action == OutboxItem.Action.REJECT:
        approvals.request_write_back_failed(request_id=item.request_id, error=str(error))
    return ApplyResult("failed")


def _audit(item: OutboxItem, action: str, **details) -> None:
    audit_record(
        action=action,
        actor=None,
        obj=item.request,
        site=item.request.site,
        after={"attempt": item.attempts, **details},
        context={"outbox_item": item.pk, "odoo_record": f"{item.odoo_model},{item.odoo_id}"},
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter, capped (attempt 1 waits up to the base)."""
    base = settings.ODOO_PUSH_BACKOFF_SECONDS
    ceiling = min(settings.ODOO_PUSH_BACKOFF_MAX_SECONDS, base * 2 ** (attempt - 1))
    return random.uniform(base / 2, ceiling)  # noqa: S311 - jitter, not security


def outbox_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of pending rows whose time has come (the beat job's safety net for lost tasks)."""
    now = now or timezone.now()
    return list(
        OutboxItem.objects.filter(state=OutboxState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def _note(item: OutboxItem) -> str:
    from approvals.notifications import request_link

    request = item.request
    decisions = request.decisions.filter(round=request.round).select_related(
        "actor", "on_behalf_of"
    )
    who = "; ".join(str(decision) for decision in decisions) or "policy"
    verb = "approved" if item.action == OutboxItem.Action.APPROVE else "rejected"
    return (
        f"Tollgate {request.reference}: {verb}. Decided by: {who}. "
        f"Policy: {request.policy_version}. {request_link(request)}"
    )


def _default_client():
    from portal.integrations.odoo.client import get_client

    return get_client()


def _schedule(item_id: int, *, countdown: float) -> None:
    """Hand the row to a worker. The row is committed and keeps its due time, so a broker that
    cannot be reached must not fail the decision (it would answer 500 for a decision taken):
    beat's outbox drain enqueues the row once the broker is back."""
    from portal.celery import broker_outage_logged
    from portal.integrations.odoo.tasks import apply_outbox_item

    with broker_outage_logged(f"odoo write-back {item_id} (left for the outbox drain)"):
        apply_outbox_item.apply_async(args=[item_id], countdown=countdown)
