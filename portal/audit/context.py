"""Where an event came from: the request or task in which it was recorded.

A middleware (for web requests) and a Celery signal (for tasks) set the context for the
duration of their work; `audit_record` adds it to every event. It lives in a context
variable, so concurrent requests and threads never see each other's.
"""

import uuid
from contextlib import contextmanager
from contextvars import ContextVar

from celery.signals import task_postrun, task_prerun

from portal.client_ip import client_ip

_current: ContextVar[dict | None] = ContextVar("audit_context", default=None)
_USER_AGENT_LIMIT = 300


def current() -> dict:
    """The context of the work in progress ({} outside a request or task)."""
    return dict(_current.get() or {})


@contextmanager
def bound(**values):
    """Add `values` to the context for the duration of the block."""
    token = _current.set({**current(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _current.reset(token)


class RequestContextMiddleware:
    """Record the client address, user agent and a correlation id of each web request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        with bound(
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:_USER_AGENT_LIMIT],
            correlation_id=correlation,
            path=request.path[:200],
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = correlation
        return response


_task_tokens: dict[str, object] = {}


@task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs):
    _task_tokens[task_id] = _current.set({"task": task.name, "task_id": task_id})


@task_postrun.connect
def _task_finished(task_id=None, **kwargs):
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:  # reset from another context (eager task in a thread): clear it
            _current.set(None)
