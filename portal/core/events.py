"""What happened, told inside the process to the apps that care, so that apps tell instead of
calling each other.

A service that changes state emits a typed event (a frozen dataclass the emitting app defines in
its own `events.py`) inside its transaction. Each interested app subscribes its handlers in its
`AppConfig.ready()`, in one of two phases:

- `BEFORE_COMMIT` handlers run at once, inside the emitting transaction: what they write (an
  Odoo outbox row, outbound webhook deliveries, a linked case) commits or rolls back with the
  change, so it happens exactly once.
- `ON_COMMIT` handlers run once the transaction has committed (`transaction.on_commit`), for
  what must not happen for a change that is rolled back and need not be part of it.

Handlers of one event run in the order they were subscribed, which is the order of
INSTALLED_APPS. An error in a before-commit handler rolls the whole change back.
"""

from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum
from functools import partial

from django.db import transaction


class Phase(StrEnum):
    BEFORE_COMMIT = "before_commit"
    ON_COMMIT = "on_commit"


BEFORE_COMMIT, ON_COMMIT = Phase.BEFORE_COMMIT, Phase.ON_COMMIT

_handlers: dict[type, list[tuple[Phase, Callable]]] = defaultdict(list)


def subscribe(event_type: type, handler: Callable, *, phase: Phase) -> None:
    """Call `handler(event)` for every `event_type` emitted, in `phase`. Subscribing the same
    handler twice (a second `ready()`) keeps one subscription."""
    entry = (Phase(phase), handler)
    if entry not in _handlers[event_type]:
        _handlers[event_type].append(entry)


def unsubscribe(event_type: type, handler: Callable) -> None:
    """Stop calling `handler` for `event_type`."""
    _handlers[event_type] = [entry for entry in _handlers[event_type] if entry[1] != handler]


def handlers_of(event_type: type) -> list[tuple[Phase, Callable]]:
    """The subscriptions to `event_type`, in the order they run."""
    return list(_handlers[event_type])


def emit(event) -> None:
    """Tell every subscriber of `type(event)`; call inside the transaction of the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{type(event).__name__} was emitted outside a transaction.")
    for phase, handler in _handlers[type(event)]:
        if phase is Phase.BEFORE_COMMIT:
            handler(event)
        else:
            transaction.on_commit(partial(handler, event))
