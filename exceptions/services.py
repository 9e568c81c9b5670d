"""Every write to exception cases.

Working a case follows the approvals pattern: one transaction, the case row locked, the policy
checked, the django-fsm transition, the audit event.

Raising follows the approvals pattern: one transaction, the open case for the same event locked
if there is one, the audit event written with the change. A second sighting of an open case
updates its evidence and counts an occurrence; it never opens a second case, and the
partial unique index on `dedupe_key` holds that even for two sightings racing each other.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django_fsm import can_proceed

from approvals.errors import Conflict
from exceptions import policies
from exceptions.models import (
    OPEN_CASE_STATES,
    CaseKind,
    CaseState,
    ExceptionCase,
    Queue,
    Severity,
)
from exceptions.rules import NEEDS_APPROVAL, RESOLUTION_CODES
from portal.audit.services import audit_record

# Where a case lands and how long it may stay open, until the queue-rule configuration of the
# exceptions issue (#5) replaces these defaults.
DEFAULT_QUEUE = {
    CaseKind.SHIPMENT_DELAY: Queue.WAREHOUSE,
    CaseKind.DELIVERY_FAILED: Queue.CUSTOMER_SERVICE,
    CaseKind.RECEIPT_DISCREPANCY: Queue.WAREHOUSE,
    CaseKind.ASN_CONFLICT: Queue.PROCUREMENT,
    CaseKind.INVOICE_MISMATCH: Queue.FINANCE,
    CaseKind.RESERVATION_FAILURE: Queue.WAREHOUSE,
    CaseKind.PRICE_VARIANCE: Queue.FINANCE,
    CaseKind.RETURN_DAMAGE: Queue.CUSTOMER_SERVICE,
}
HOURS_BY_SEVERITY = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 24,
    Severity.MEDIUM: 72,
    Severity.LOW: 168,
}


def case_raise(
    *,
    kind: str,
    site,
    severity: str,
    title: str,
    source: str,
    dedupe_key: str,
    payload: dict,
    evidence: dict,
    amount_at_stake: Decimal | None = None,
    currency: str = "",
    odoo_model: str = "",
    odoo_id: int | None = None,
    at: datetime | None = None,
) -> tuple[ExceptionCase, bool]:
    """Open a case for an event, or add the sighting to its open case; returns (case, created)."""
    fields = {
        "kind": kind,
        "site": site,
        "severity": severity,
        "title": title,
        "source": source,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "evidence": evidence,
        "amount_at_stake": amount_at_stake,
        "currency": currency,
        "odoo_model": odoo_model,
        "odoo_id": odoo_id,
    }
    at = at or timezone.now()
    try:
        with transaction.atomic():
            return _raise(fields, at)
    except IntegrityError:
        # Another sighting of the same event opened the case a moment ago: join it.
        with transaction.atomic():
            return _raise(fields, at)


def _raise(fields: dict, at: datetime) -> tuple[ExceptionCase, bool]:
    existing = (
        ExceptionCase.objects.select_for_update()
        .filter(dedupe_key=fields["dedupe_key"], state__in=OPEN_CASE_STATES)
        .first()
    )
    if existing is not None:
        return _seen_again(existing, fields, at), False
    case = ExceptionCase(
        **fields,
        queue=DEFAULT_QUEUE[fields["kind"]],
        detected_at=at,
        last_seen_at=at,
        due_at=at + timedelta(hours=HOURS_BY_SEVERITY[fields["severity"]]),
    )
    case.full_clean(exclude=["state"])
    case.save()
    audit_record(
        action="case.opened",
        actor=None,
        obj=case,
        site=case.site,
        after={"kind": case.kind, "severity": case.severity, "queue": case.queue},
        context={"source": case.source},
    )
    return case, True


def _seen_again(case: ExceptionCase, values: dict, at: datetime) -> ExceptionCase:
    before = {"occurrences": case.occurrences, "evidence": case.evidence}
    case.occurrences += 1
    case.last_seen_at = at
    case.evidence = values["evidence"]
    case.payload = values["payload"]
    case.amount_at_stake = values["amount_at_stake"]
    case.save(
        update_fields=["occurrences", "last_seen_at", "evidence", "payload", "amount_at_stake"]
    )
    audit_record(
        action="case.seen_again",
        actor=None,
        obj=case,
        site=case.site,
        before=before,
        after={"occurrences": case.occurrences, "evidence": case.evidence},
        context={"source": values["source"]},
    )
    return case


# --- working a case ---------------------------------------------------------------------------


def case_assign(*, actor, case_id: int, owner) -> ExceptionCase:
    """Give the case to `owner`, who must work its queue at its site; locks the case."""
    with transaction.atomic():
        case = _workable(actor, case_id)
        if not policies.may_work(owner, case):
            raise ValidationError(
                {
                    "owner": f"{owner.get_username()} does not work the {case.get_queue_display()} "
                    f"queue at {case.site.code}."
                }
            )
        before = _state(case)
        case.assign()
        case.owner = owner
        case.save()
        _audit(case, actor, "case.assigned", before)
    return case


def case_start(*, actor, case_id: int) -> ExceptionCase:
    """The owner starts work on the case; locks the case."""
    with transaction.atomic():
        case = _workable(actor, case_id)
        if case.owner_id != actor.pk:
            raise PermissionDenied("Only the case's owner starts work on it.")
        before = _state(case)
        _transition(case, case.start)
        case.save()
        _audit(case, actor, "case.started", before)
    return case


def case_resolve(*, actor, case_id: int, code: str, note: str) -> ExceptionCase:
    """Close the case with a resolution code its kind allows and a note; locks the case."""
    with transaction.atomic():
        case = _workable(actor, case_id)
        codes = RESOLUTION_CODES[case.kind]
        errors = {}
        if code not in codes:
            errors["code"] = f"Use one of {', '.join(codes)} for a {case.get_kind_display()}."
        if not note.strip():
            errors["note"] = "Say what was done."
        if errors:
            raise ValidationError(errors)
        if case.linked_request_id and case.linked_request.state in ("submitted", "in_review"):
            raise Conflict(f"{case.reference} waits for {case.linked_request.reference}.")
        before = _state(case)
        if _needs_approval(case, code):
            _ask_for_approval(case, actor, code, note)
            _audit(case, actor, "case.resolution_awaits_approval", before, comment=note)
            case.refresh_from_db()
            return case
        _transition(case, case.resolve)
        case.resolution_code, case.resolution_note = code, note
        case.save()
        _audit(case, actor, "case.resolved", before, comment=note)
    return case


def _needs_approval(case: ExceptionCase, code: str) -> bool:
    from approvals.routing import to_base

    if (case.kind, code) not in NEEDS_APPROVAL or not case.amount_at_stake:
        return False
    amount = to_base(case.amount_at_stake, case.currency or case.site.currency)
    return amount >= settings.CASE_RESOLUTION_APPROVAL_THRESHOLD


def _ask_for_approval(case: ExceptionCase, actor, code: str, note: str) -> None:
    from approvals import services as approvals

    kind, category = NEEDS_APPROVAL[(case.kind, code)]
    request = approvals.request_create(
        requester=actor,
        kind=kind,
        site=case.site,
        title=f"{case.reference}: {RESOLUTION_CODES[case.kind][code]}",
        reason=note,
        amount=case.amount_at_stake,
        currency=case.currency or case.site.currency,
        category=category,
        details={"exception_case": case.reference},
        by_system=True,
    )
    case.linked_request, case.pending_resolution, case.resolution_note = request, code, note
    case.save(update_fields=["linked_request", "pending_resolution", "resolution_note"])
    approvals.request_submit(actor=None, request_id=request.pk)


def case_linked_request_decided(*, request) -> ExceptionCase | None:
    """The approval a resolution waited for is final: resolve the case, or hand it back."""
    case = (
        ExceptionCase.objects.select_for_update(of=("self",))
        .filter(linked_request=request.pk, state__in=OPEN_CASE_STATES)
        .first()
    )
    if case is None or not case.pending_resolution:
        return None
    before = _state(case)
    if request.state == "approved":
        _transition(case, case.resolve)
        case.resolution_code = case.pending_resolution
        action = "case.resolved"
    else:
        action = "case.resolution_refused"
    case.pending_resolution = ""
    case.save()
    _audit(case, None, action, before, comment=f"{request.reference} {request.get_state_display()}")
    return case


def case_dismiss(*, actor, case_id: int, reason: str) -> ExceptionCase:
    """Close the case as not needing action; a reason is required. Locks the case."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the case needs no action."})
    with transaction.atomic():
        case = _workable(actor, case_id)
        before = _state(case)
        _transition(case, case.dismiss)
        case.resolution_note = reason
        case.save()
        _audit(case, actor, "case.dismissed", before, comment=reason)
    return case


def case_reopen(*, actor, case_id: int, reason: str) -> ExceptionCase:
    """Open a closed case again within the configured window; locks the case."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the case is reopened."})
    with transaction.atomic():
        case = _locked(actor, case_id)
        window = settings.CASE_REOPEN_WINDOW_DAYS
        if case.state not in (CaseState.RESOLVED, CaseState.DISMISSED):
            raise Conflict(f"{case.reference} is {case.get_state_display().lower()}, not closed.")
        if not policies.may_reopen(actor, case, window_days=window):
            raise PermissionDenied(
                f"Only workers of its queue may reopen a case, within {window} days of closing."
            )
        before = _state(case)
        case.reopen()
        case.owner = case.owner or actor
        case.resolution_code = ""
        case.save()
        _audit(case, actor, "case.reopened", before, comment=reason)
    return case


def _locked(actor, case_id: int) -> ExceptionCase:
    case = (
        ExceptionCase.objects.select_for_update(of=("self",))
        .select_related("site__region")
        .filter(policies.visible_cases(actor), pk=case_id)
        .first()
    )
    if case is None:
        raise Http404("No such exception case.")
    return case


def _workable(actor, case_id: int) -> ExceptionCase:
    case = _locked(actor, case_id)
    if case.state not in OPEN_CASE_STATES:
        raise Conflict(f"{case.reference} is already {case.get_state_display().lower()}.")
    if not policies.may_work(actor, case):
        raise PermissionDenied(
            f"You do not work the {case.get_queue_display()} queue at {case.site.code}."
        )
    return case


def _transition(case: ExceptionCase, method) -> None:
    if not can_proceed(method):
        raise Conflict(
            f"{case.reference} is {case.get_state_display().lower()}; that step does not apply."
        )
    method()


def _state(case: ExceptionCase) -> dict:
    return {"state": case.state, "owner": case.owner.get_username() if case.owner else None}


def _audit(case: ExceptionCase, actor, action: str, before: dict, *, comment: str = "") -> None:
    audit_record(
        action=action,
        actor=actor,
        obj=case,
        site=case.site,
        before=before,
        after=_state(case) | {"resolution_code": case.resolution_code or None},
        comment=comment,
    )
