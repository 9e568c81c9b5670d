"""The one function every service calls to put an event in the audit ledger.

Callers pass what happened in business terms. It must run inside the caller's transaction, so
that an event exists exactly when its change does. On PostgreSQL the event is inserted unsealed
and takes no lock; the sequencer (portal.audit.sequencer) numbers and hashes it into the chain
once the transaction has committed, so writers never wait for each other on the ledger. On
SQLite, which lets one writer in at a time anyway, or with AUDIT_SEAL_INLINE, events are sealed
as they are inserted.

A service whose change takes many statements may record inside `appended_at_end()`: its events
are inserted together as that block ends (one statement instead of one per event; with inline
sealing, the chain is then locked only for that insert and the commit).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from portal.audit import chain, sequencer
from portal.audit import context as audit_context
from portal.audit.models import AuditEvent

# The events recorded inside `appended_at_end()` on this thread (and so this connection).
_held_back = threading.local()


def audit_record(**fields: Any) -> AuditEvent:
    """Append the event `audit_event(**fields)` builds; `actor` None means Tollgate itself
    (a sweep, a sync, a rule).

    Name the `site` the change concerns, or for a change at region scope the `region`, so that
    the event reaches the auditors of exactly that scope.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    event = audit_event(**fields)
    held_back = getattr(_held_back, "events", None)
    if held_back is None:
        _append([event])
    else:
        held_back.append(event)
    return event


def audit_event(
    *,
    action: str,
    actor,
    obj,
    site=None,
    on_behalf_of=None,
    policy_version=None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    comment: str = "",
    context: dict[str, Any] | None = None,
    reference: str | None = None,
    region=None,
) -> AuditEvent:
    """The event `audit_record` appends, built but not stored (for `insert_with_event`)."""
    return AuditEvent(
        action=action,
        actor=actor,
        actor_label=actor.get_username() if actor is not None else "tollgate",
        on_behalf_of=on_behalf_of,
        object_type=obj._meta.label_lower,
        object_id="" if obj.pk is None else str(obj.pk),
        object_reference=(reference or _reference(obj, site))[:200],
        site=site,
        policy_version_label=str(policy_version) if policy_version is not None else "",
        before=chain.normalise(before),
        after=chain.normalise(after),
        comment=comment,
        context=chain.normalise(
            {**audit_context.current(), **_scope(site, region), **(context or {})}
        ),
    )


def appends_in_one_statement() -> bool:
    """Whether `insert_with_event` may be used: where events arrive unsealed (PostgreSQL
    without AUDIT_SEAL_INLINE). Elsewhere record in the change's transaction as usual."""
    return not sequencer.inline()


def insert_with_event(insert_sql: str, params: list, event: AuditEvent) -> int | None:
    """Run `insert_sql`, an INSERT of one row `… RETURNING id` that may insert none (`ON
    CONFLICT DO NOTHING`), and append `event` for the row it inserted, in one statement: both
    are stored or neither, whether or not a transaction is open. The event's `object_id` is
    that row's id. Returns the id; None, with nothing stored, if no row was inserted.

    For a change that is one INSERT and its event (an accepted webhook): a transaction's BEGIN,
    second statement and COMMIT cost such a request more than the inserts themselves. Only where
    `appends_in_one_statement()`.
    """
    event_sql, event_params = sequencer.arrival_select(event, object_id="inserted.id::text")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH inserted AS ({insert_sql}) {event_sql} FROM inserted RETURNING id, object_id",
            [*params, *event_params],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    event.pk, event.object_id = row
    event._state.adding, event._state.db = False, connection.alias
    sequencer.arrived()
    return int(row[1])


@contextmanager
def appended_at_end() -> Iterator[None]:
    """Hold back the events recorded inside, and append them, in order, as the block ends.

    Enter it inside the transaction of the change, around code that does not swallow an error
    of a savepoint it rolls back: an event recorded in such a savepoint would still be appended.
    An error leaving the block drops the events with the transaction they belonged to. Events
    recorded inside have no id until the block ends (nor, until sealed, a sequence or hash).
    Nested blocks append
    with the outermost one.
    """
    if getattr(_held_back, "events", None) is not None:
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("appended_at_end must run inside the transaction of the change")
    _held_back.events = []
    try:
        yield
        events = _held_back.events
    finally:
        _held_back.events = None
    if events:
        _append(events)


def _scope(site, region) -> dict:
    region = site.region if site is not None else region
    return {"region": region.code} if region is not None else {}


def _reference(obj, site) -> str:
    where = f" @ {site.region.code}/{site.code}" if site is not None else ""
    return f"{obj}{where}"


def _append(events: list[AuditEvent]) -> None:
    if sequencer.inline():
        sequencer.seal_inline(events)
    else:
        sequencer.arrive(events)


VERIFIED = "audit.verified"


def ledger_verify(*, actor=None) -> dict:
    """Recompute the whole chain and compare it with the checkpoints written outside the
    database; record the verdict as an `audit.verified` event and return it.

    Reads in constant memory, so it belongs in a worker for a large ledger (`audit.verify`).
    """
    from django.db import transaction

    from portal.audit.verify import check_checkpoints, verify_chain

    verdict = verify_chain()
    rewritten = check_checkpoints(verdict) if verdict.intact else ""
    outcome = {
        "intact": verdict.intact and not rewritten,
        "checked": verdict.checked,
        "head_sequence": verdict.head_sequence,
        "head_hash": verdict.head_hash,
        "broken_at": verdict.broken_at,
        "reason": verdict.reason or rewritten,
    }
    with transaction.atomic():
        audit_record(
            action=VERIFIED,
            actor=actor,
            obj=actor,
            reference="audit ledger verification",
            after=outcome,
        )
    return outcome
