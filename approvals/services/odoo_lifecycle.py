"""What happens to a request when its Odoo record changes or a write-back ends."""

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from approvals import policies, routing
from approvals.events import (
    RequestApplied,
    RequestApplyFailed,
    RequestApplyRetried,
    RequestReturnedToReview,
)
from approvals.models import ApprovalRequest, RequestState
from approvals.services.common import audit_transition, locked, route_selector
from approvals.services.review import close_open_steps, open_review
from portal.audit.services import audit_record
from portal.core.events import emit

S = RequestState


@dataclass(frozen=True)
class OdooChange:
    amount: Decimal
    currency: str
    lines: list
    snapshot: dict


def request_odoo_changed(*, request_id: int, change: OdooChange) -> bool:
    """The linked Odoo record changed; send the request back to review if it changed materially.

    Returns whether it went back. Locks the request.
    """
    with transaction.atomic():
        request = locked(request_id)
        material = _material_changes(request, change)
        request.odoo_snapshot = change.snapshot
        if not material or request.state not in (S.IN_REVIEW, S.APPROVED, S.APPLY_FAILED):
            request.save(update_fields=["odoo_snapshot"])
            return False
        request.drift = [*request.drift, {"at": timezone.now(), "changes": material}]
        request.amount, request.currency = change.amount, change.currency
        request.amount_base = routing.to_base(change.amount, change.currency)
        close_open_steps(request)
        emit(RequestReturnedToReview(request))
        chosen = routing.route(request.policy_version, route_selector(request))
        request.rule = chosen.rule
        open_review(request, chosen, timezone.now())
        audit_record(
            action="request.drifted",
            actor=None,
            obj=request,
            site=request.site,
            policy_version=request.policy_version,
            after={"changes": material},
        )
    return True


def _material_changes(request: ApprovalRequest, change: OdooChange) -> list[dict]:
    found = []
    tolerance = request.policy_version.drift_tolerance_pct if request.policy_version else 0
    if change.currency != request.currency:
        found.append({"field": "currency", "before": request.currency, "after": change.currency})
    elif _moved_beyond(request.amount, change.amount, tolerance):
        found.append({"field": "amount", "before": request.amount, "after": change.amount})
    before_lines = request.odoo_snapshot.get("lines")
    if before_lines is not None and before_lines != change.lines:
        found.append({"field": "lines", "before": before_lines, "after": change.lines})
    return found


def _moved_beyond(before: Decimal, after: Decimal, tolerance_pct: Decimal) -> bool:
    if not before:
        return bool(after)
    return abs(after - before) * 100 / before > tolerance_pct


def request_mark_applied(*, request_id: int, note: str = "") -> ApprovalRequest:
    """Odoo now reflects the decision; locks the request."""
    with transaction.atomic():
        request = locked(request_id)
        previous = request.state
        request.mark_applied()
        request.save()
        audit_transition(request, None, "request.applied", previous, comment=note)
        emit(RequestApplied(request))
    return request


def request_mark_apply_failed(*, request_id: int, error: str) -> ApprovalRequest:
    """Odoo refused or could not be reached for good: make it a visible, retryable item."""
    with transaction.atomic():
        request = locked(request_id)
        request.mark_apply_failed()
        request.apply_error = error
        request.save()
        audit_transition(request, None, "request.apply_failed", S.APPROVED, comment=error)
        emit(RequestApplyFailed(request))
    return request


def request_retry_apply(*, actor, request_id: int) -> ApprovalRequest:
    """An administrator sends a failed Odoo update again; locks the request."""
    with transaction.atomic():
        request = locked(request_id)
        if not policies.may_retry_apply(actor, request):
            raise PermissionDenied("Only an administrator of the site may retry a failed update.")
        previous = request.state
        if previous == S.APPLY_FAILED:
            request.retry_apply()
        else:
            request.apply_error = ""  # a rejection that Odoo did not record: it stays rejected
        request.save()
        emit(RequestApplyRetried(request))
        audit_transition(request, actor, "request.apply_retried", previous)
    return request


def request_write_back_failed(*, request_id: int, error: str) -> ApprovalRequest:
    """A rejection could not be recorded in Odoo: it stands, and the error shows on it."""
    with transaction.atomic():
        request = locked(request_id)
        request.apply_error = error
        request.save(update_fields=["apply_error"])
        audit_record(
            action="request.write_back_failed",
            actor=None,
            obj=request,
            site=request.site,
            policy_version=request.policy_version,
            comment=error,
        )
    return request
