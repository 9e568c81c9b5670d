"""The one function every service calls to put an event in the audit ledger.

Callers pass what happened in business terms; the ledger decides how it is stored. It must be
called inside the caller's transaction, so that an event exists exactly when its change does.
"""

from typing import Any

from django.db import connection

from portal.audit.models import AuditEvent


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
) -> AuditEvent:
    """Append one event; `actor` None means Tollgate itself (a sweep, a sync, a rule)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor.get_username() if actor is not None else "tollgate",
        on_behalf_of=on_behalf_of,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_label=str(obj)[:200],
        site=site,
        policy_version_label=str(policy_version) if policy_version is not None else "",
        before=before,
        after=after,
        comment=comment,
        context=context or {},
    )
