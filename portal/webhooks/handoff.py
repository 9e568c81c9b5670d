"""Accepted deliveries handed to the workers: many per task, sent beside the requests.

One Celery task per delivery cost an accepted delivery more CPU than all its other work
outside the database (the message, a Redis client and the publish: about half a millisecond).
Now a delivery's id is only noted here once its transaction has committed; one thread per
process waits LINGER seconds for more to arrive and sends everything noted as one
`webhooks.process_deliveries` task per MAX_BATCH ids. Under load one publish carries many
deliveries; at rest a delivery reaches the broker LINGER later than it did.

Nothing depends on this for correctness: a delivery is stored before its id is noted, and the
stranded-delivery sweep enqueues every accepted delivery that no task processed (a process
that died with ids noted, a broker that was down). With tasks run eagerly, as in tests, the
ids are sent at once in the caller's thread.
"""

import atexit
import logging
import os
import threading
import time

from celery import current_app

logger = logging.getLogger(__name__)

LINGER = 0.02
MAX_BATCH = 50

_lock = threading.Lock()
_noted: list[int] = []
_wake = threading.Event()
_thread: threading.Thread | None = None


def note(delivery_id: int) -> None:
    """Have `delivery_id` processed: sent to the broker with others within LINGER seconds."""
    if current_app.conf.task_always_eager:
        _send([delivery_id])
        return
    global _thread
    with _lock:
        _noted.append(delivery_id)
        if _thread is None:
            _thread = threading.Thread(target=_run, name="webhook-handoff", daemon=True)
            _thread.start()
    _wake.set()


def flush() -> None:
    """Send everything noted so far, now, in the caller's thread (at exit, and in tests)."""
    for batch in _take():
        _send(batch)


def _run() -> None:
    while True:
        _wake.wait()
        time.sleep(LINGER)
        flush()


def _take() -> list[list[int]]:
    with _lock:
        taken = _noted[:]
        _noted.clear()
        _wake.clear()
    return [taken[start : start + MAX_BATCH] for start in range(0, len(taken), MAX_BATCH)]


def _send(delivery_ids: list[int]) -> None:
    from portal.webhooks.tasks import process_deliveries

    try:
        process_deliveries.delay(delivery_ids)
    except Exception:
        # Stored and accepted, so nothing is lost: the stranded-delivery sweep sends them.
        logger.exception("%d accepted webhook deliveries not enqueued", len(delivery_ids))


def _forget_in_child() -> None:
    # A forked child has the parent's noted ids (the parent sends them), but not its thread,
    # and a lock some other thread of the parent held stays held in the child.
    global _lock, _wake, _thread
    _lock, _wake, _thread = threading.Lock(), threading.Event(), None
    _noted.clear()


atexit.register(flush)
os.register_at_fork(after_in_child=_forget_in_child)
