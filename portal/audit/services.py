"""The one function every service calls to put an event in the audit ledger.

Callers pass what happened in business terms; the ledger seals it into the chain. It must run
inside the caller's transaction, so that an event exists exactly when its change does. Appends
are serialised (a transaction-scoped advisory lock on PostgreSQL; SQLite lets one writer in at a
time anyway), so every event's `prev_hash` is the hash of the event numbered just before it.

The lock is held until the transaction ends, so every statement a change runs after its first
append keeps all other writers waiting. A service whose change takes many statements records
inside `appended_at_end()`: its events are sealed and inserted together as that block ends, and
the ledger is locked only for that insert and the commit.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from portal.audit import chain
from portal.audit import context as audit_context
from portal.audit.models import AuditEvent

# pg_advisory_xact_lock key: "TGAUDIT" as a number, so that nothing else picks it by chance.
_LEDGER_LOCK = 0x5447415544495400
# The events recorded inside `appended_at_end()` on this thread (and so this connection).
_held_back = threading.local()


def audit_record(
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
    """Append one event; `actor` None means Tollgate itself (a sweep, a sync, a rule).

    Name the `site` the change concerns, or for a change at region scope the `region`, so that
    the event reaches the auditors of exactly that scope.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    event = AuditEvent(
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
    held_back = getattr(_held_back, "events", None)
    if held_back is None:
        _append([event])
    else:
        held_back.append(event)
    return event


@contextmanager
def appended_at_end() -> Iterator[None]:
    """Hold back the events recorded inside, and append them, in order, as the block ends.

    Enter it inside the transaction of the change, around code that does not swallow an error
    of a savepoint it rolls back: an event recorded in such a savepoint would still be appended.
    An error leaving the block drops the events with the transaction they belonged to. Events
    recorded inside have no sequence, hash or id until the block ends. Nested blocks append
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
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK])
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    sequence, previous = head or (0, chain.GENESIS)
    for event in events:
        sequence += 1
        event.sequence, event.prev_hash = sequence, previous
        event.hash = previous = chain.seal(chain.payload(event))
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        AuditEvent.objects.bulk_create(events)


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
