"""The audit ledger's "record what happened", for the apps the ledger itself builds on.

The ledger (portal.audit) scopes its pages by site and serves its events through the API, so it
sits above sites and the API app; yet their changes (a site moved, a role granted, an API token
issued) belong in it like any other. They record here, and the ledger connects its
`audit_record` in its AppConfig.ready(). Every app above the ledger calls
`portal.audit.services.audit_record` directly; both reach the same function.
"""

from collections.abc import Callable
from typing import Any

_recorder: Callable[..., Any] | None = None


def connect(recorder: Callable[..., Any]) -> None:
    """Make `recorder` (the ledger's `audit_record`) the one that `ledger_record` calls."""
    global _recorder
    _recorder = recorder


def ledger_record(**fields: Any):
    """`portal.audit.services.audit_record(**fields)`: call inside the change's transaction."""
    if _recorder is None:
        raise RuntimeError("The audit ledger is not installed: nothing can be recorded.")
    return _recorder(**fields)
