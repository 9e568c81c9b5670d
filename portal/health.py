"""Liveness and readiness probes for load balancers and process managers.

They answer JSON; a failed check is named with its error's class only, so a connection string
or a host name never appears in the body. ProbeMiddleware answers them before anything else
runs: a load balancer probes by IP address over plain HTTP, which ALLOWED_HOSTS and the HTTPS
redirect would otherwise refuse.

/readyz is unauthenticated and its checks open a database query, a broker connection and an
Odoo request, so each process reuses its last answer for READYZ_CACHE_SECONDS: a flood of probes
costs the dependencies at most one round of checks per process and period. (Keep it off the
public internet all the same: see the deployment notes.)
"""

import logging
import os
import socket
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app


@never_cache
@require_GET
def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)


def _odoo() -> None:
    # Reachability only, without credentials: the version probe that OdooRPC itself sends.
    from portal.integrations.odoo.client.transport import Transport

    Transport(settings.ODOO_URL.rstrip("/"), timeout=ODOO_PROBE_TIMEOUT).server_version()


ODOO_PROBE_TIMEOUT = 2.0
READINESS_CHECKS: dict[str, Callable[[], dict | None]] = {
    "database": _database,
    "broker": _broker,
    "odoo": _odoo,
}


def _run(check: Callable[[], dict | None]) -> dict:
    """A check's verdict and time; a check may add fields, or say it is not ok, in a dict."""
    started = time.perf_counter()
    try:
        found = check() or {}
    except Exception as error:
        return {"ok": False, "error": type(error).__name__, "ms": _elapsed_ms(started)}
    return {"ok": True, **found, "ms": _elapsed_ms(started)}


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _audit_seal() -> dict:
    """Whether the sequencer keeps up: no event waits longer than AUDIT_MAX_SEAL_SECONDS."""
    from portal.audit import sequencer

    waiting = sequencer.backlog()
    found = {
        "ok": not waiting.overdue,
        "unsealed": waiting.count,
        "oldest_seconds": round(waiting.oldest_seconds, 1),
    }
    if waiting.overdue:
        found["error"] = f"audit ledger: {waiting.describe()}"
    return found


@never_cache
@require_GET
def readyz(request):
    """Every dependency Tollgate needs to serve and to do its background work is reachable.

    A sequencer that falls behind (events waiting longer than AUDIT_MAX_SEAL_SECONDS for their
    seal) makes the answer "degraded" with status 200: this node still serves correctly, and
    taking it out of the load balancer would not seal anything sooner.
    """
    seconds = getattr(settings, "READYZ_CACHE_SECONDS", 0)
    answer = _remembered() if seconds else None
    if answer is None:
        answer = _assess()
        if seconds:
            _remember(answer, seconds)
    body, status = answer
    return JsonResponse(body, status=status)


def _assess() -> tuple[dict, int]:
    results = {name: _run(check) for name, check in READINESS_CHECKS.items()}
    ready = all(result["ok"] for result in results.values())
    results["audit_seal"] = (
        _run(_audit_seal) if results.get("database", {}).get("ok", True) else _skipped()
    )
    if not ready:
        status = "unavailable"
    elif not results["audit_seal"]["ok"]:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "checks": results}, 200 if ready else 503


def _cache_key() -> str:
    # Readiness is this process's: a cache shared by replicas must not answer for another one.
    return f"readyz:{socket.gethostname()}:{os.getpid()}"


def _remembered() -> tuple[dict, int] | None:
    from django.core.cache import cache

    try:
        found = cache.get(_cache_key())
    except Exception:  # an unreachable cache must not make the probe fail; check instead
        return None
    return tuple(found) if found else None


def _remember(answer: tuple[dict, int], seconds: int) -> None:
    from django.core.cache import cache

    try:
        cache.set(_cache_key(), list(answer), timeout=seconds)
    except Exception:
        logging.getLogger(__name__).warning("readiness answer not cached", exc_info=True)


def _skipped() -> dict:
    return {"ok": False, "error": "database unavailable", "ms": 0.0}


PROBES = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        return probe(request)
