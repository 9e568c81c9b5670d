"""Every write to exception cases.

Working a case follows the approvals pattern: one transaction, the case row locked, the policy
checked, the django-fsm transition, the audit event.

Raising follows the approvals pattern: one transaction, the open case for the same event at the
same site locked if there is one, the audit event written with the change. A second sighting of
an open case updates its evidence and counts an occurrence; it never opens a second case, and
the partial unique index on (`site`, `dedupe_key`) holds that even for two sightings racing each
other. The same key at another site is another event: it opens (or joins) that site's case.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from exceptions import notifications, policies, routing
from exceptions.events import CaseBreached, CaseClosed, CaseOpened
from exceptions.models import (
    OPEN_CASE_STATES,
    SEVERITY_RANK,
    CaseDeadline,
    CaseState,
    ExceptionCase,
    QueueRule,
    ResolutionCode,
)
from exceptions.rules import NEEDS_APPROVAL, resolution_codes
from portal.audit.services import audit_record
from portal.core.errors import Conflict
from portal.core.events import emit
from portal.core.textlimits import COMMENT_MAX, refuse_overlong


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
        .filter(site=fields["site"], dedupe_key=fields["dedupe_key"], state__in=OPEN_CASE_STATES)
        .first()
    )
    if existing is not None:
        return _seen_again(existing, fields, at), False
    queue = routing.queue_for(kind=fields["kind"], severity=fields["severity"], site=fields["site"])
    due = routing.due(severity=fields["severity"], queue=queue, site=fields["site"], since=at)
    case = ExceptionCase(
        **fields,
        queue=queue,
        detected_at=at,
        last_seen_at=at,
        due_at=due.due_at,
        remind_at=due.remind_at,
        escalation_role=due.escalation_role,
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
    emit(CaseOpened(case))
    return case, True


def _seen_again(case: ExceptionCase, values: dict, at: datetime) -> ExceptionCase:
    before = _stakes(case) | {"occurrences": case.occurrences, "evidence": case.evidence}
    case.occurrences += 1
    case.last_seen_at = at
    # The payload stays the one that opened the case, verbatim; the evidence takes what the
    # new sighting knows on top of what earlier ones (perhaps another source) established.
    case.evidence = {**case.evidence, **values["evidence"]}
    # The Odoo record may be learnt from the second source (a carrier report came first).
    if not case.odoo_model and values["odoo_model"]:
        case.odoo_model, case.odoo_id = values["odoo_model"], values["odoo_id"]
    _raise_stakes(case, values)
    case.save()
    audit_record(
        action="case.seen_again",
        actor=None,
        obj=case,
        site=case.site,
        before=before,
        after=_stakes(case) | {"occurrences": case.occurrences, "evidence": case.evidence},
        context={"source": values["source"]},
    )
    return case


def _raise_stakes(case: ExceptionCase, values: dict) -> None:
    """A more severe sighting, or one with more money at stake, lifts the case; never lowers it.

    A higher severity brings the due time forward (counted from detection); the queue stays, as
    its owner may already be working the case. Amounts in another currency than the case's are
    not compared.
    """
    if SEVERITY_RANK[values["severity"]] > SEVERITY_RANK[case.severity]:
        case.severity = values["severity"]
        _set_due(case, case.detected_at)
    amount, currency = values["amount_at_stake"], values["currency"] or case.site.currency
    if amount is None:
        return
    if case.amount_at_stake is None:
        case.amount_at_stake, case.currency = amount, values["currency"]
    elif currency == (case.currency or case.site.currency) and amount > case.amount_at_stake:
        case.amount_at_stake = amount


def _stakes(case: ExceptionCase) -> dict:
    return {
        "severity": case.severity,
        "amount_at_stake": case.amount_at_stake,
        "currency": case.currency,
        "due_at": case.due_at,
    }


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
    _set_due(case, since)
    case.reminded_at = case.escalated_at = None


def _set_due(case: ExceptionCase, since: datetime) -> None:
    due = routing.due(severity=case.severity, queue=case.queue, site=case.site, since=since)
    case.due_at, case.remind_at = due.due_at, due.remind_at
    case.escalation_role = due.escalation_role


# --- the SLA sweep ----------------------------------------------------------------------------


@dataclass
class CaseSweepResult:
    reminded: int = 0
    escalated: int = 0


def case_sla_sweep(*, now: datetime | None = None) -> CaseSweepResult:
    """Remind the people of open cases nearing their due time, and escalate overdue ones.

    Each case is handled in its own transaction with its row locked and already-locked rows
    skipped, and each reminder or escalation is marked on the case, so two sweeps running at
    once (or one running twice) never act twice.
    """
    now = now or timezone.now()
    result = CaseSweepResult()
    unescalated = ExceptionCase.objects.filter(
        state__in=OPEN_CASE_STATES, escalated_at__isnull=True
    ).order_by()
    # Overdue cases first: a case the sweep finds already overdue is escalated, not reminded.
    for case_id in unescalated.filter(due_at__lte=now).values_list("pk", flat=True):
        _sweep_breach(case_id, now, result)
    reminders = unescalated.filter(remind_at__lte=now, reminded_at__isnull=True)
    for case_id in reminders.values_list("pk", flat=True):
        _sweep_reminder(case_id, now, result)
    return result


def _swept(case_id: int) -> ExceptionCase | None:
    return (
        ExceptionCase.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("site__region")
        .filter(pk=case_id, state__in=OPEN_CASE_STATES, escalated_at__isnull=True)
        .first()
    )


def _sweep_breach(case_id: int, now: datetime, result: CaseSweepResult) -> None:
    with transaction.atomic():
        case = _swept(case_id)
        if case is None or case.due_at is None or case.due_at > now:
            return
        case.escalated_at = now
        case.save(update_fields=["escalated_at"])
        audit_record(
            action="case.escalated",
            actor=None,
            obj=case,
            site=case.site,
            before={"escalated_at": None},
            after={"due_at": case.due_at, "escalation_role": case.escalation_role},
        )
        notifications.case_escalated(case.pk)
        emit(CaseBreached(case))
        result.escalated += 1


def _sweep_reminder(case_id: int, now: datetime, result: CaseSweepResult) -> None:
    with transaction.atomic():
        case = _swept(case_id)
        if case is None or case.reminded_at is not None or not case.remind_at:
            return
        if case.remind_at > now:
            return
        case.reminded_at = now
        case.save(update_fields=["reminded_at"])
        audit_record(
            action="case.reminded",
            actor=None,
            obj=case,
            site=case.site,
            before={"reminded_at": None},
            after={"due_at": case.due_at, "owner": _owner(case)},
        )
        notifications.case_reminder(case.pk)
        result.reminded += 1


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
    return {"state": case.state, "owner": _owner(case)}


def _owner(case: ExceptionCase) -> str | None:
    return case.owner.get_username() if case.owner else None


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


# --- queue rules and deadlines ----------------------------------------------------------------


def queue_rule_save(*, actor, rule: QueueRule) -> QueueRule:
    """Add or change a queue rule; cases already raised keep their queue."""
    return _config_save(actor, rule, "queue_rule")


def queue_rule_delete(*, actor, rule_id: int) -> None:
    """Remove a queue rule; locks it."""
    _config_delete(actor, QueueRule, rule_id, "queue_rule")


def case_deadline_save(*, actor, deadline: CaseDeadline) -> CaseDeadline:
    """Add or change how long cases of a severity may stay open; open cases keep their due time."""
    return _config_save(actor, deadline, "case_deadline")


def case_deadline_delete(*, actor, deadline_id: int) -> None:
    """Remove a deadline row (the fixed default applies again); locks it."""
    _config_delete(actor, CaseDeadline, deadline_id, "case_deadline")


def resolution_code_save(*, actor, code: ResolutionCode) -> ResolutionCode:
    """Add, relabel or withdraw a resolution code of a kind; closed cases keep their code."""
    return _config_save(actor, code, "resolution_code")


def resolution_code_delete(*, actor, code_id: int) -> None:
    """Remove a resolution code row (a built-in code it changed applies again); locks it."""
    _config_delete(actor, ResolutionCode, code_id, "resolution_code")


def _config_save(actor, row, name: str):
    if not policies.may_configure(actor):
        raise PermissionDenied("Only a superuser changes queue rules and deadlines.")
    with transaction.atomic():
        before = None
        if row.pk is not None:
            before = _config(type(row).objects.select_for_update().get(pk=row.pk))
        row.full_clean()
        row.save()
        audit_record(
            action=f"{name}.{'changed' if before else 'created'}",
            actor=actor,
            obj=row,
            site=getattr(row, "site", None),
            region=getattr(row, "region", None),
            before=before,
            after=_config(row),
        )
    return row


def _config_delete(actor, model, pk: int, name: str) -> None:
    if not policies.may_configure(actor):
        raise PermissionDenied("Only a superuser changes queue rules and deadlines.")
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        audit_record(
            action=f"{name}.deleted",
            actor=actor,
            obj=row,
            site=getattr(row, "site", None),
            region=getattr(row, "region", None),
            before=_config(row),
        )
        row.delete()


def _config(row) -> dict:
    return {
        field.attname: getattr(row, field.attname)
        for field in row._meta.concrete_fields
        if not field.primary_key
    }
