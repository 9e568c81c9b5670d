"""Working a case: assigning, starting, resolving (through an approval when the resolution
needs one), dismissing and reopening, each on the case row locked."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from exceptions import policies
from exceptions.events import CaseClosed
from exceptions.models import OPEN_CASE_STATES, CaseState, ExceptionCase
from exceptions.rules import NEEDS_APPROVAL, resolution_codes
from exceptions.services.common import owner_name, set_due
from portal.audit.services import audit_record
from portal.core.errors import Conflict
from portal.core.events import emit
from portal.core.textlimits import COMMENT_MAX, refuse_overlong


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


@dataclass(frozen=True)
class AssignOutcome:
    case_id: int
    reference: str
    title: str
    ok: bool
    message: str


def case_assign_many(*, actor, case_ids: list[int], assignee) -> list[AssignOutcome]:
    """Give each case to `assignee` through `case_assign`, one case and one lock at a time.

    Each case is checked on its own: one the actor may not work, or the assignee does not
    work, is refused and left as it was, and the others are assigned all the same.
    """
    visible = ExceptionCase.objects.filter(policies.visible_cases(actor), pk__in=case_ids)
    known = {case.pk: case for case in visible.only("pk", "title")}
    name = assignee.get_full_name() or assignee.get_username()
    outcomes = []
    for case_id in dict.fromkeys(case_ids):
        case = known.get(case_id)
        if case is None:
            outcomes.append(AssignOutcome(case_id, f"#{case_id}", "", False, "No such case."))
            continue
        try:
            case_assign(actor=actor, case_id=case_id, owner=assignee)
        except (PermissionDenied, Conflict) as error:
            message = str(error)
        except ValidationError as error:
            message = " ".join(error.messages)
        except ConcurrentTransition:
            message = f"{case.reference} changed while you were working on it."
        else:
            message = f"Assigned to {name}."
            outcomes.append(AssignOutcome(case_id, case.reference, case.title, True, message))
            continue
        outcomes.append(AssignOutcome(case_id, case.reference, case.title, False, message))
    return outcomes


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
    refuse_overlong(COMMENT_MAX, note=note)
    with transaction.atomic():
        case = _workable(actor, case_id)
        codes = resolution_codes(case.kind)
        errors = {}
        if code not in codes:
            errors["code"] = f"Use one of {', '.join(codes)} for a {case.get_kind_display()}."
        if not note.strip():
            errors["note"] = "Say what was done."
        if errors:
            raise ValidationError(errors)
        _refuse_while_waiting(case)
        before = _state(case)
        if _needs_approval(case, code):
            _ask_for_approval(case, actor, code, note, before)
            case.refresh_from_db()
            return case
        _transition(case, case.resolve)
        case.resolution_code, case.resolution_note = code, note
        case.save()
        _audit(case, actor, "case.resolved", before, comment=note)
        emit(CaseClosed(case))
    return case


def _needs_approval(case: ExceptionCase, code: str) -> bool:
    from approvals.routing import to_base

    if (case.kind, code) not in NEEDS_APPROVAL or not case.amount_at_stake:
        return False
    amount = to_base(case.amount_at_stake, case.currency or case.site.currency)
    return amount >= settings.CASE_RESOLUTION_APPROVAL_THRESHOLD


def _refuse_while_waiting(case: ExceptionCase) -> None:
    # Closing a case whose resolution is still being decided would leave the request deciding
    # nothing; the case waits for the outcome (an approver rejects, the requester withdraws).
    if case.linked_request_id and case.linked_request.state in ("submitted", "in_review"):
        raise Conflict(f"{case.reference} waits for {case.linked_request.reference}.")


def _ask_for_approval(case: ExceptionCase, actor, code: str, note: str, before: dict) -> None:
    from approvals import services as approvals

    kind, category = NEEDS_APPROVAL[(case.kind, code)]
    request = approvals.request_create(
        requester=actor,
        kind=kind,
        site=case.site,
        title=f"{case.reference}: {resolution_codes(case.kind)[code]}"[:200],
        reason=note,
        amount=case.amount_at_stake,
        currency=case.currency or case.site.currency,
        category=category,
        details={"exception_case": case.reference},
        by_system=True,
    )
    case.linked_request, case.pending_resolution, case.resolution_note = request, code, note
    case.save(update_fields=["linked_request", "pending_resolution", "resolution_note"])
    # Audited before submitting: a fast-path approval resolves the case within the submit, and
    # the trail must read "awaits approval" then "resolved", not the other way round.
    _audit(case, actor, "case.resolution_awaits_approval", before, comment=note)
    approvals.request_submit(actor=None, request_id=request.pk)


# A case waits only for a request `_ask_for_approval` raised for it, of a kind NEEDS_APPROVAL
# names: a decision on any other kind has no case to move on, and is not looked up.
LINKED_KINDS = frozenset(kind for kind, _ in NEEDS_APPROVAL.values())


def case_linked_request_decided(*, request) -> ExceptionCase | None:
    """The approval a resolution waited for is final: resolve the case, or hand it back."""
    if request.kind not in LINKED_KINDS:
        return None
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
    if case.state == CaseState.RESOLVED:
        emit(CaseClosed(case))
    return case


def case_dismiss(*, actor, case_id: int, reason: str) -> ExceptionCase:
    """Close the case as not needing action; a reason is required. Locks the case."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the case needs no action."})
    refuse_overlong(COMMENT_MAX, reason=reason)
    with transaction.atomic():
        case = _workable(actor, case_id)
        _refuse_while_waiting(case)
        before = _state(case)
        _transition(case, case.dismiss)
        case.resolution_note = reason
        case.save()
        _audit(case, actor, "case.dismissed", before, comment=reason)
        emit(CaseClosed(case))
    return case


def case_reopen(*, actor, case_id: int, reason: str) -> ExceptionCase:
    """Open a closed case again within the configured window; locks the case."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the case is reopened."})
    refuse_overlong(COMMENT_MAX, reason=reason)
    with transaction.atomic():
        case = _locked(actor, case_id)
        window = settings.CASE_REOPEN_WINDOW_DAYS
        if case.state not in (CaseState.RESOLVED, CaseState.DISMISSED):
            raise Conflict(f"{case.reference} is {case.get_state_display().lower()}, not closed.")
        if not policies.may_reopen(actor, case, window_days=window):
            raise PermissionDenied(
                f"Only workers of its queue may reopen a case, within {window} days of closing."
            )
        _refuse_if_reraised(case)
        before = _state(case)
        case.reopen()
        case.owner = case.owner or actor
        case.resolution_code = ""
        _fresh_deadline(case, timezone.now())
        try:
            with transaction.atomic():
                case.save()
        except IntegrityError:
            # A sighting opened a new case for the event between the check and the save.
            _refuse_if_reraised(case)
            raise
        _audit(case, actor, "case.reopened", before, comment=reason)
    return case


def _refuse_if_reraised(case: ExceptionCase) -> None:
    # The same event seen after the case closed opened a new case; only one may be open.
    newer = ExceptionCase.objects.filter(
        site=case.site_id, dedupe_key=case.dedupe_key, state__in=OPEN_CASE_STATES
    ).first()
    if newer is not None:
        raise Conflict(
            f"{newer.reference} is open for the same event; work that case instead of "
            f"reopening {case.reference}."
        )


def _fresh_deadline(case: ExceptionCase, since: datetime) -> None:
    # A reopened case starts a new SLA: its old deadline and reminders belong to the first life.
    set_due(case, since)
    case.reminded_at = case.escalated_at = None


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
    return {"state": case.state, "owner": owner_name(case)}


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
