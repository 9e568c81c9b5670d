"""Fault injection and call counting: how tests make the sandbox misbehave like a real Odoo.

Faults (set by command-line flags, by `POST /sandbox/faults`, or on `server.faults`):

- `latency_ms`: every RPC request waits this long before it is served.
- `error_rate`: the fraction of object calls (JSON-RPC `object` service and JSON-2) answered
  by a proxy-style transient failure instead of being run: HTTP `error_status` when set, else
  502 and 504 in turn. The call is not run.
- `timeout_rate`: the fraction of RPC requests that hang for `hang_seconds`, then either are
  answered normally (`timeout_mode: "answer"`) or have their connection closed without a
  reply (`timeout_mode: "drop"`).
- `access_error_models`: models whose every call fails with `odoo.exceptions.AccessError`.
- `seed`: seeds the random draws, so a run of faults can be repeated.
- `restart` (an action, not a setting): the server drops in-flight connections, refuses new
  ones for `restart_seconds`, then serves again from the same database file.

Counts: every object call that reaches the server is counted per (model, method), including
calls that a fault then fails, so a test can see how often a client retried.
"""

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, fields

TIMEOUT_MODES = ("answer", "drop")
TRANSIENT_STATUSES = (502, 504)


@dataclass
class FaultSettings:
    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int | None = None
    timeout_rate: float = 0.0
    hang_seconds: float = 5.0
    timeout_mode: str = "answer"
    access_error_models: list[str] = field(default_factory=list)
    restart_seconds: float = 2.0
    seed: int | None = None


class Faults:
    """The live fault settings of one server; safe to change from any thread."""

    def __init__(self, **settings):
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()  # noqa: S311 - fault draws, not secrets
        self._transient_turn = 0
        self.update(**settings)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._settings, name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            self.update(**{name: value})

    def update(self, **settings) -> None:
        """Change some settings; unknown names or bad values raise ValueError."""
        known = {f.name for f in fields(FaultSettings)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"Unknown fault settings: {sorted(unknown)}")
        with self._lock:
            merged = FaultSettings(**{**asdict(self._settings), **settings})
            _validate(merged)
            self._settings = merged
            if "seed" in settings:
                self._random.seed(merged.seed)
                self._transient_turn = 0

    def reset(self) -> None:
        with self._lock:
            self._settings = FaultSettings()
            self._transient_turn = 0

    def as_dict(self) -> dict:
        with self._lock:
            return asdict(self._settings)

    def draw_error(self) -> int | None:
        """The HTTP status of a transient failure for this object call, or None."""
        with self._lock:
            if self._settings.error_rate <= 0 or self._random.random() >= self._settings.error_rate:
                return None
            if self._settings.error_status:
                return self._settings.error_status
            status = TRANSIENT_STATUSES[self._transient_turn % len(TRANSIENT_STATUSES)]
            self._transient_turn += 1
            return status

    def draw_timeout(self) -> bool:
        with self._lock:
            rate = self._settings.timeout_rate
            return rate > 0 and self._random.random() < rate


def _validate(settings: FaultSettings) -> None:
    for name in ("error_rate", "timeout_rate"):
        value = getattr(settings, name)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number between 0 and 1")
    for name in ("latency_ms", "hang_seconds", "restart_seconds"):
        value = getattr(settings, name)
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number of at least 0")
    if settings.timeout_mode not in TIMEOUT_MODES:
        raise ValueError(f"timeout_mode must be one of {TIMEOUT_MODES}")
    if settings.error_status is not None and not 400 <= int(settings.error_status) <= 599:
        raise ValueError("error_status must be an HTTP error status (400-599)")
    if not isinstance(settings.access_error_models, list):
        raise ValueError("access_error_models must be a list of model names")


class CallStats:
    """How many object calls reached the server, per (model, method)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter = Counter()

    def record(self, model: str, method: str) -> None:
        with self._lock:
            self._counts[(model, method)] += 1

    def count(self, model: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (m, meth), n in self._counts.items()
                if model in (None, m) and method in (None, meth)
            )

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def as_dict(self) -> dict:
        """`{"total": n, "calls": {model: {method: n}}}`."""
        with self._lock:
            calls: dict[str, dict[str, int]] = {}
            for (model, method), n in sorted(self._counts.items()):
                calls.setdefault(model, {})[method] = n
            return {"total": sum(self._counts.values()), "calls": calls}
