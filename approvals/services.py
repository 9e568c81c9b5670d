"""Every write to approval requests, their steps and decisions, delegations and policies.

Each state change follows one pattern: open a transaction, lock the request row
(`select_for_update`), check approvals.policies, run the django-fsm transition, save, append the
audit event, and send e-mails only once the transaction has committed. Because every change to
a request starts by locking its row, two people deciding the same tier at once are served one
after the other, and the second is told, with `Conflict`, what the first did.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Min
from django.http import Http404
from django.utils import timezone

from approvals import kinds, notifications, policies, risk, routing, selectors, sla, uploads
from approvals.authority import Authority
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStep,
    Attachment,
    Decision,
    Delegation,
    HeldAt,
    OnBreach,
    Outcome,
    PolicyRule,
    PolicyTier,
    PolicyVersion,
    RequestState,
    StepState,
)
from approvals.specs import VersionSpec, rule_values, tier_values
from portal.audit.services import appended_at_end, audit_record
from portal.core.errors import Conflict
from portal.core.textlimits import COMMENT_MAX, JUSTIFICATION_MAX, refuse_overlong
from portal.integrations.odoo import services as odoo
from portal.webhooks import events as webhook_events
from portal.webhooks.outbound import publish
from sites import policies as site_policies
from sites.roles import Role

S = RequestState


# --- raising and submitting -----------------------------------------------------------------


def request_create(
    *,
    requester,
    kind: str,
    site,
    title: str,
    reason: str,
    amount: Decimal,
    currency: str,
    category: str = "",
    customer_class: str = "",
    counterparty: str = "",
    counterparty_ref: str = "",
    details: dict | None = None,
    odoo_model: str = "",
    odoo_id: int | None = None,
    odoo_snapshot: dict | None = None,
    odoo_author_ref: str = "",
    odoo_author: str = "",
    odoo_asked_at: datetime | None = None,
    by_system: bool = False,
    revision_of: ApprovalRequest | None = None,
) -> ApprovalRequest:
    """Record a draft request; `by_system` for requests raised from Odoo records, which say
    who made the record in Odoo and when it was made or asked for approval there."""
    refuse_overlong(JUSTIFICATION_MAX, reason=reason)
    if not by_system and not policies.may_raise(requester, site):
        raise PermissionDenied(f"You may not raise requests at {site.code}.")
    details = details or {}
    kinds.validate_request_fields(
        kind=kind,
        amount=amount,
        currency=currency,
        reason=reason,
        category=category,
        customer_class=customer_class,
        counterparty=counterparty,
        details=details,
        odoo_model=odoo_model,
    )
    with transaction.atomic():
        request = ApprovalRequest(
            kind=kind,
            site=site,
            requester=requester,
            title=title,
            reason=reason,
            amount=amount,
            currency=currency,
            category=category,
            customer_class=customer_class,
            counterparty=counterparty,
            counterparty_ref=counterparty_ref,
            details=details,
            odoo_model=odoo_model or (kinds.KINDS[kind].odoo_model if odoo_id else ""),
            odoo_id=odoo_id,
            odoo_snapshot=odoo_snapshot or {},
            odoo_author_ref=odoo_author_ref,
            odoo_author=odoo_author,
            odoo_asked_at=odoo_asked_at,
            revision_of=revision_of,
            revision=revision_of.revision + 1 if revision_of else 1,
        )
        request.full_clean(exclude=["state"])  # the state is the machine's to set
        request.save()
        audit_record(
            action="request.created",
            actor=None if by_system else requester,
            obj=request,
            site=site,
            after=_summary(request),
        )
    return request


def request_raise(*, requester, submit: bool = True, attachments=(), **fields) -> ApprovalRequest:
    """Record a request with its documents and, unless `submit` is False, route it: all of it
    happens or none of it. `attachments` are uploaded files, checked by approvals.uploads."""
    checked = [uploads.check(upload) for upload in attachments]
    with transaction.atomic():
        request = request_create(requester=requester, **fields)
        for upload in checked:
            _attach(request, requester, upload)
        if submit:
            request = request_submit(actor=requester, request_id=request.pk)
    return request


_DRAFT_FIELDS = (
    "site",
    "title",
    "reason",
    "amount",
    "currency",
    "category",
    "customer_class",
    "counterparty",
    "counterparty_ref",
    "details",
)


def request_update_draft(
    *, actor, request_id: int, submit: bool = False, attachments=(), **changes
) -> ApprovalRequest:
    """The requester changes a draft (and may submit it at once); locks the request."""
    unknown = set(changes) - set(_DRAFT_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot change on a draft: {sorted(unknown)}.")
    checked = [uploads.check(upload) for upload in attachments]
    with transaction.atomic():
        request = _locked(request_id)
        if not policies.is_requester(actor, request):
            raise PermissionDenied("Only the requester may change this draft.")
        if not policies.may_edit_draft(actor, request):
            raise Conflict(
                f"{request.reference} is already {request.get_state_display().lower()}; "
                "a submitted request can no longer be edited."
            )
        site = changes.get("site", request.site)
        if site.pk != request.site_id and not policies.may_raise(actor, site):
            raise PermissionDenied(f"You may not raise requests at {site.code}.")
        before = _summary(request)
        for name, value in changes.items():
            setattr(request, name, value)
        kinds.validate_request_fields(
            kind=request.kind,
            amount=request.amount,
            currency=request.currency,
            reason=request.reason,
            category=request.category,
            customer_class=request.customer_class,
            counterparty=request.counterparty,
            details=request.details or {},
            odoo_model=request.odoo_model,
        )
        request.full_clean(exclude=["state"])
        request.save()
        audit_record(
            action="request.edited",
            actor=actor,
            obj=request,
            site=request.site,
            before=before,
            after=_summary(request),
        )
        for upload in checked:
            _attach(request, actor, upload)
        if submit:
            request = request_submit(actor=actor, request_id=request.pk)
    return request


def attachment_add(*, actor, request_id: int, upload) -> Attachment:
    """Keep a document with a request, stored under its SHA-256 and named in the ledger.

    The content is judged by its first bytes (PDF, PNG, JPEG or WebP) and by the size limit
    ATTACHMENT_MAX_BYTES. Locks the request row.
    """
    checked = uploads.check(upload)
    with transaction.atomic():
        request = _locked(request_id)
        if not policies.may_attach(actor, request):
            raise PermissionDenied("Only the requester may add documents, while it is open.")
        return _attach(request, actor, checked)


def _attach(request: ApprovalRequest, actor, upload: uploads.CheckedUpload) -> Attachment:
    attachment = Attachment(
        request=request,
        name=upload.name,
        content_type=upload.content_type,
        size=upload.size,
        sha256=upload.sha256,
        uploaded_by=actor,
    )
    field = attachment.file
    path = field.field.generate_filename(attachment, upload.name)
    # Stored by digest: the same document given twice is one object in the store. An object
    # left by a transaction that then failed is the same bytes under the same name, so harmless.
    if not field.storage.exists(path):
        path = field.storage.save(path, ContentFile(upload.content))
    field.name = path
    attachment.save()
    audit_record(
        action="attachment.added",
        actor=actor,
        obj=request,
        site=request.site,
        after={
            "name": upload.name,
            "sha256": upload.sha256,
            "size": upload.size,
            "content_type": upload.content_type,
        },
        comment=f"{upload.name}, SHA-256 {upload.sha256}",
    )
    return attachment


def request_submit(*, actor, request_id: int, at: datetime | None = None) -> ApprovalRequest:
    """Route a draft: approve it on the fast path, or open its first tiers for decision.

    Locks the request row.
    """
    at = at or timezone.now()
    with transaction.atomic():
        request = _locked(request_id)
        if actor is not None and not policies.is_requester(actor, request):
            raise PermissionDenied("Only the requester may submit this request.")
        if request.state != S.DRAFT:
            raise Conflict(f"This request is already {request.get_state_display().lower()}.")
        request.amount_base = routing.to_base(request.amount, request.currency, at=at)
        version = routing.version_in_force(request.site, at=at)
        if version is None:
            raise ValidationError(f"No approval policy is in force at {request.site.code}.")
        request.risk_flags = risk.assess(request, version=version, at=at)
        chosen = routing.route(version, _selector(request))
        request.policy_version, request.rule = version, chosen.rule
        request.submit()
        request.submitted_at = at
        _audit_transition(request, actor, "request.submitted", S.DRAFT)
        if chosen.auto_approve:
            _fast_path(request, chosen, at)
        else:
            _open_review(request, chosen, at)
    return request


def _fast_path(request: ApprovalRequest, chosen: routing.Route, at: datetime) -> None:
    request.auto_approve()
    request.sampled_for_review = _sampled(request, chosen.version)
    request.last_decided_at = at
    request.save()
    Decision.objects.create(
        request=request,
        outcome=Outcome.AUTO_APPROVE,
        actor=None,
        round=request.round,
        policy_version=chosen.version,
        evidence=chosen.evidence(_selector(request)),
        at=at,
    )
    _audit_transition(request, None, "request.auto_approved", S.SUBMITTED)
    _after_final_decision(request)


def _sampled(request: ApprovalRequest, version: PolicyVersion) -> bool:
    # Deterministic, so that anyone can recompute which approvals were picked and why.
    digest = hashlib.sha256(f"{version.pk}:{request.pk}".encode()).digest()
    fraction = Decimal(int.from_bytes(digest[:4], "big")) / Decimal(2**32)
    return fraction < version.fast_path_sample_rate


def _open_review(request: ApprovalRequest, chosen: routing.Route, at: datetime) -> None:
    if not chosen.tiers:
        # Lint lets a rule that only ever fast-paths go without tiers; a flagged request (or a
        # drift) under it still needs people, and the policy names none.
        raise ValidationError(
            f"Rule {chosen.rule.name!r} of {chosen.version} names nobody to decide this request "
            "(it is flagged or changed, so it cannot be fast-pathed); ask an administrator to "
            "give the rule tiers."
        )
    previous = request.state
    if previous == S.SUBMITTED:
        request.start_review()
    else:
        request.return_to_review()
    request.round += 1
    steps = [
        ApprovalStep(
            request=request,
            site_id=request.site_id,
            tier=tier,
            round=request.round,
            position=position,
            stage=stage,
            role=tier.role,
            held_at=tier.held_at,
            quorum=tier.quorum,
            comment_required=tier.comment_required,
            sla_hours=tier.sla_hours,
            business_hours=tier.business_hours,
            escalation_role=tier.escalation_role,
            on_breach=tier.on_breach,
        )
        for position, (stage, tier) in enumerate(chosen.tiers, start=1)
    ]
    ApprovalStep.objects.bulk_create(steps)
    first_stage = min(step.stage for step in steps)
    _activate_stage(request, first_stage, at)
    _audit_transition(request, None, "request.in_review", previous)
    publish(
        "approval.requested", data=webhook_events.approval_requested(request), site=request.site
    )


def _activate_stage(request: ApprovalRequest, stage: int, at: datetime) -> None:
    steps = list(request.steps.filter(round=request.round, stage=stage, state=StepState.WAITING))
    for step in steps:
        step.activate(
            at=at,
            due_at=sla.deadline(
                at, step.sla_hours, site=request.site, business_hours=step.business_hours
            ),
            remind_at=sla.deadline(
                at,
                step.sla_hours * Decimal("0.75"),
                site=request.site,
                business_hours=step.business_hours,
            ),
        )
        step.save(update_fields=["state", "activated_at", "due_at", "remind_at"])
    _refresh_due(request)
    if steps:
        notifications.step_activated([step.pk for step in steps])


def _refresh_due(request: ApprovalRequest) -> None:
    active = request.steps.filter(round=request.round, state=StepState.ACTIVE)
    request.due_at = active.aggregate(due=Min("due_at"))["due"]
    request.save()


# --- deciding -------------------------------------------------------------------------------


def request_approve(
    *,
    actor,
    request_id: int,
    step_id: int | None = None,
    comment: str = "",
    authority: Authority | None = None,
) -> Decision:
    """`actor` approves one tier (for themselves or for whom they stand in); locks the request,
    and the audit ledger only for the appends at the end. Pass the `authority` already built
    for this web request, if there is one."""
    refuse_overlong(COMMENT_MAX, comment=comment)
    # Read before the transaction: who may decide does not need the request's lock.
    authority = _authority_of(actor, authority)
    with transaction.atomic(), appended_at_end():
        request, option = _decidable(actor, request_id, step_id, authority)
        step = option.step
        if step.comment_required and not comment.strip():
            raise ValidationError({"comment": "This tier needs a comment with the approval."})
        decision = _record_vote(request, option, actor, Outcome.APPROVE, comment)
        _audit_decision(request, actor, decision)
        if step.decisions.filter(outcome=Outcome.APPROVE).count() >= step.quorum:
            _complete_step(step, ApprovalStep.approve)
            _advance(request, actor, decision)  # saves the request, its decision time with it
        else:
            request.save(update_fields=["last_decided_at"])
        return decision


def request_reject(
    *,
    actor,
    request_id: int,
    step_id: int | None = None,
    reason: str,
    authority: Authority | None = None,
) -> Decision:
    """`actor` rejects the request at one tier; a reason is required. Locks the request, and
    the audit ledger only for the appends at the end."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the request is rejected."})
    refuse_overlong(COMMENT_MAX, reason=reason)
    authority = _authority_of(actor, authority)
    with transaction.atomic(), appended_at_end():
        request, option = _decidable(actor, request_id, step_id, authority)
        decision = _record_vote(request, option, actor, Outcome.REJECT, reason)
        _audit_decision(request, actor, decision)
        _complete_step(option.step, ApprovalStep.reject)
        _close_open_steps(request)
        request.reject()
        request.save()
        _audit_transition(request, actor, "request.rejected", S.IN_REVIEW, decision=decision)
        _after_final_decision(request)
        return decision


def _authority_of(actor, authority: Authority | None) -> Authority:
    """The authority passed in by the web request, or one built for `actor` now."""
    if authority is None or authority.user_id != actor.pk:
        return Authority.of(actor)
    return authority


def _decidable(actor, request_id: int, step_id: int | None, authority: Authority | None):
    authority = _authority_of(actor, authority)
    request = _locked(request_id)
    options = authority.options(request)
    # Someone outside the request's scope is told it does not exist, not that they may not.
    if not options and not authority.may_view(request):
        raise Http404("No such approval request.")
    if request.state != S.IN_REVIEW:
        raise Conflict(
            f"{request.reference} is already {request.get_state_display().lower()}; "
            "nothing was changed."
        )
    if step_id is not None:
        step = request.steps.filter(pk=step_id).first()
        if step is None:
            raise Http404("No such tier on this request.")
        if step.state != StepState.ACTIVE or step.round != request.round:
            raise Conflict(
                f"Tier {step.position} of {request.reference} is already "
                f"{step.get_state_display().lower()}; nothing was changed."
            )
        options = [option for option in options if option.step.pk == step_id]
    if not options:
        raise PermissionDenied(policies.why_not_decide(authority, request))
    return request, options[0]


def _record_vote(request, option, actor, outcome: str, comment: str) -> Decision:
    """The vote, its time set on the (locked) request, which the caller saves."""
    decision = Decision.objects.create(
        request=request,
        step=option.step,
        outcome=outcome,
        actor=actor,
        on_behalf_of_id=option.on_behalf_of_id,
        delegation_id=option.delegation_id,
        round=request.round,
        policy_version=request.policy_version,
        comment=comment,
    )
    request.last_decided_at = decision.at
    return decision


def _complete_step(step: ApprovalStep, finish) -> None:
    """`finish` is one of the step's transitions (`ApprovalStep.approve`, ...)."""
    finish(step)
    step.save(update_fields=["state", "completed_at"])


def _close_open_steps(request: ApprovalRequest) -> None:
    request.steps.filter(round=request.round).close_unfinished(at=timezone.now())


def _advance(request: ApprovalRequest, actor, decision: Decision) -> None:
    current = request.steps.filter(round=request.round)
    if current.filter(state=StepState.ACTIVE).exists():
        _refresh_due(request)
        return
    waiting = current.filter(state=StepState.WAITING).order_by("stage").first()
    if waiting is not None:
        _activate_stage(request, waiting.stage, timezone.now())
        return
    request.approve()
    request.save()
    _audit_transition(request, actor, "request.approved", S.IN_REVIEW, decision=decision)
    _after_final_decision(request)


def _after_final_decision(request: ApprovalRequest) -> None:
    # The write-back row is part of the decision's transaction: no decision without it.
    if request.state in (S.APPROVED, S.REJECTED):
        odoo.outbox_enqueue(request=request, action=_WRITE_BACK[request.state])
    _tell_waiting_case(request)
    notifications.request_decided(request.pk)
    # Described only if someone subscribes: describing it reads every decision of the round.
    publish(
        "approval.decided",
        data=lambda: webhook_events.approval_decided(request),
        site=request.site,
    )


_WRITE_BACK = {S.APPROVED: "approve", S.REJECTED: "reject"}


def _tell_waiting_case(request: ApprovalRequest) -> None:
    from exceptions.services import case_linked_request_decided

    case_linked_request_decided(request=request)


def request_withdraw(*, actor, request_id: int, reason: str = "") -> ApprovalRequest:
    """The requester takes the request back while nothing is final; locks the request."""
    refuse_overlong(COMMENT_MAX, reason=reason)
    with transaction.atomic():
        request = _locked(request_id)
        if not policies.is_requester(actor, request):
            raise PermissionDenied("Only the requester may withdraw this request.")
        if not policies.may_withdraw(actor, request):
            raise Conflict(
                f"{request.reference} is already {request.get_state_display().lower()}; "
                "it can no longer be withdrawn."
            )
        previous = request.state
        _close_open_steps(request)
        request.withdraw()
        request.save()
        _audit_transition(request, actor, "request.withdrawn", previous, comment=reason)
        # A case waiting for this write-off is handed back to its queue, not left waiting.
        _tell_waiting_case(request)
    return request


_RESUBMIT_COPIES = (
    "kind",
    "site",
    "title",
    "amount",
    "currency",
    "category",
    "customer_class",
    "counterparty",
    "counterparty_ref",
    "details",
    "odoo_model",
    "odoo_snapshot",
    "odoo_author_ref",
    "odoo_author",
)


def request_resubmit(
    *, actor, request_id: int, reason: str, submit: bool = False, attachments=(), **changes
) -> ApprovalRequest:
    """Raise a rejected request again as its next revision, a new draft (routed at once when
    `submit`), with any new documents; the old one stays as it was."""
    allowed = {"title", "amount", "currency", "category", "customer_class", "details"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"These fields cannot change on resubmission: {sorted(unknown)}.")
    checked = [uploads.check(upload) for upload in attachments]
    with transaction.atomic():
        old = _locked(request_id)
        if not policies.may_resubmit(actor, old):
            raise PermissionDenied("Only the requester may raise a rejected request again, once.")
        fields = {name: getattr(old, name) for name in _RESUBMIT_COPIES}
        fields.update(changes)
        new = request_create(
            requester=actor, reason=reason, odoo_id=old.odoo_id, revision_of=old, **fields
        )
        audit_record(
            action="request.resubmitted",
            actor=actor,
            obj=old,
            site=old.site,
            after={"next_revision": new.reference},
            comment=reason,
        )
        _carry_attachments(old, new, actor)
        for upload in checked:
            _attach(new, actor, upload)
        if submit:
            new = request_submit(actor=actor, request_id=new.pk)
    return new


def _carry_attachments(old: ApprovalRequest, new: ApprovalRequest, actor) -> None:
    """The documents of a rejected request come with its revision (the same stored objects)."""
    for kept in old.attachments.all():
        Attachment.objects.create(
            request=new,
            file=kept.file.name,
            name=kept.name,
            content_type=kept.content_type,
            size=kept.size,
            sha256=kept.sha256,
            uploaded_by=kept.uploaded_by,
            uploaded_at=kept.uploaded_at,
        )
        audit_record(
            action="attachment.added",
            actor=actor,
            obj=new,
            site=new.site,
            after={"name": kept.name, "sha256": kept.sha256, "from": old.reference},
            comment=f"{kept.name}, SHA-256 {kept.sha256}, kept from {old.reference}",
        )


# --- Odoo-side changes and write-back ---------------------------------------------------------


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
        request = _locked(request_id)
        material = _material_changes(request, change)
        request.odoo_snapshot = change.snapshot
        if not material or request.state not in (S.IN_REVIEW, S.APPROVED, S.APPLY_FAILED):
            request.save(update_fields=["odoo_snapshot"])
            return False
        request.drift = [*request.drift, {"at": timezone.now(), "changes": material}]
        request.amount, request.currency = change.amount, change.currency
        request.amount_base = routing.to_base(change.amount, change.currency)
        _close_open_steps(request)
        odoo.outbox_supersede(request=request)
        chosen = routing.route(request.policy_version, _selector(request))
        request.rule = chosen.rule
        _open_review(request, chosen, timezone.now())
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
        request = _locked(request_id)
        previous = request.state
        request.mark_applied()
        request.save()
        _audit_transition(request, None, "request.applied", previous, comment=note)
        publish(
            "approval.applied", data=webhook_events.approval_applied(request), site=request.site
        )
    return request


def request_mark_apply_failed(*, request_id: int, error: str) -> ApprovalRequest:
    """Odoo refused or could not be reached for good: make it a visible, retryable item."""
    with transaction.atomic():
        request = _locked(request_id)
        request.mark_apply_failed()
        request.apply_error = error
        request.save()
        _audit_transition(request, None, "request.apply_failed", S.APPROVED, comment=error)
        publish(
            "approval.apply_failed",
            data=webhook_events.approval_apply_failed(request),
            site=request.site,
        )
    return request


def request_retry_apply(*, actor, request_id: int) -> ApprovalRequest:
    """An administrator sends a failed Odoo update again; locks the request."""
    with transaction.atomic():
        request = _locked(request_id)
        if not policies.may_retry_apply(actor, request):
            raise PermissionDenied("Only an administrator of the site may retry a failed update.")
        previous = request.state
        if previous == S.APPLY_FAILED:
            request.retry_apply()
        else:
            request.apply_error = ""  # a rejection that Odoo did not record: it stays rejected
        request.save()
        odoo.outbox_retry(request=request)
        _audit_transition(request, actor, "request.apply_retried", previous)
    return request


def request_write_back_failed(*, request_id: int, error: str) -> ApprovalRequest:
    """A rejection could not be recorded in Odoo: it stands, and the error shows on it."""
    with transaction.atomic():
        request = _locked(request_id)
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


def fast_path_review_complete(*, actor, request_id: int, comment: str) -> ApprovalRequest:
    """Finance records that a sampled fast-path approval was looked at after the event."""
    with transaction.atomic():
        request = _locked(request_id)
        if not policies.may_review_fast_path(actor, request):
            raise PermissionDenied("Only finance at the site reviews sampled fast-path approvals.")
        if request.post_review_done_at is not None:
            raise Conflict(f"{request.reference} was already reviewed.")
        request.post_review_done_at = timezone.now()
        request.save(update_fields=["post_review_done_at"])
        audit_record(
            action="request.post_reviewed",
            actor=actor,
            obj=request,
            site=request.site,
            comment=comment,
        )
    return request


# --- SLA ------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    reminded: int = 0
    escalated: int = 0
    expired: int = 0
    rejected: int = 0


def sla_sweep(*, now: datetime | None = None) -> SweepResult:
    """Remind at 75 % of each active tier's SLA, and act on breaches at 100 %.

    Each request is handled in its own transaction with its row locked and already-locked rows
    skipped, and each reminder or breach is marked on the step, so two sweeps running at once
    (or one running twice) never act twice.
    """
    now = now or timezone.now()
    result = SweepResult()
    # Unordered, or the steps' default ordering would defeat DISTINCT.
    due = ApprovalStep.objects.filter(
        state=StepState.ACTIVE, request__state=S.IN_REVIEW, escalated_at__isnull=True
    ).order_by()
    breached = due.filter(due_at__lte=now)
    for request_id in breached.values_list("request_id", flat=True).distinct():
        _sweep_breaches(request_id, now, result)
    # Breaches go first: a tier the sweep finds already overdue is escalated, not reminded.
    reminders = due.filter(remind_at__lte=now, reminded_at__isnull=True)
    for request_id in reminders.values_list("request_id", flat=True).distinct():
        _sweep_reminders(request_id, now, result)
    return result


def _sweep_breaches(request_id: int, now: datetime, result: SweepResult) -> None:
    with transaction.atomic():
        request = _locked(request_id, skip_locked=True)
        if request is None or request.state != S.IN_REVIEW:
            return
        steps = request.steps.filter(
            round=request.round, state=StepState.ACTIVE, due_at__lte=now, escalated_at__isnull=True
        )
        for step in steps:
            step.escalated_at = now
            publish(
                "sla.breached",
                data=webhook_events.sla_breached(request, step, action=step.on_breach),
                site=request.site,
            )
            if step.on_breach == OnBreach.ESCALATE:
                step.escalated_role = step.escalation_role
                step.due_at = sla.deadline(
                    now, step.sla_hours, site=request.site, business_hours=step.business_hours
                )
                step.save(update_fields=["escalated_at", "escalated_role", "due_at"])
                audit_record(
                    action="step.escalated",
                    actor=None,
                    obj=request,
                    site=request.site,
                    policy_version=request.policy_version,
                    after={"tier": step.position, "added_role": step.escalation_role},
                )
                result.escalated += 1
                notifications.step_escalated(step.pk)
                continue
            step.save(update_fields=["escalated_at"])
            _breach_ends_request(request, step, result)
            return
        _refresh_due(request)


def _breach_ends_request(request, step, result: SweepResult) -> None:
    _complete_step(step, ApprovalStep.expire)
    _close_open_steps(request)
    comment = f"Tier {step.position} passed its SLA of {step.sla_hours} h."
    if step.on_breach == OnBreach.EXPIRE:
        request.expire()
        action, result.expired = "request.expired", result.expired + 1
    else:
        request.reject()
        decision = Decision.objects.create(
            request=request,
            step=step,
            outcome=Outcome.REJECT,
            actor=None,
            round=request.round,
            policy_version=request.policy_version,
            comment=comment,
        )
        request.last_decided_at = decision.at
        action, result.rejected = "request.rejected", result.rejected + 1
    request.save()
    _audit_transition(request, None, action, S.IN_REVIEW, comment=comment)
    _after_final_decision(request)


def _sweep_reminders(request_id: int, now: datetime, result: SweepResult) -> None:
    with transaction.atomic():
        request = _locked(request_id, skip_locked=True)
        if request is None or request.state != S.IN_REVIEW:
            return
        steps = list(
            request.steps.filter(
                round=request.round,
                state=StepState.ACTIVE,
                remind_at__lte=now,
                reminded_at__isnull=True,
                escalated_at__isnull=True,
            )
        )
        for step in steps:
            step.reminded_at = now
            step.save(update_fields=["reminded_at"])
            audit_record(
                action="step.reminded",
                actor=None,
                obj=request,
                site=request.site,
                after={"tier": step.position, "due_at": step.due_at},
            )
            result.reminded += 1
        if steps:
            notifications.step_reminder([step.pk for step in steps])


# --- delegation -------------------------------------------------------------------------------


def delegation_create(
    *,
    actor,
    delegator,
    delegate,
    starts_at: datetime,
    ends_at: datetime,
    site=None,
    kind: str = "",
    max_amount: Decimal | None = None,
    note: str = "",
) -> Delegation:
    """Hand `delegator`'s approvals to `delegate` for a period, optionally narrowed.

    An administrator handing someone's approvals on may not hand them to themself: another
    administrator or a superuser must, as for a deciding role (sites.services).
    """
    if not policies.may_manage_delegation(actor, delegator):
        raise PermissionDenied("You may manage only your own delegations.")
    refusal = why_not_hand_over(actor, delegator, delegate)
    if refusal:
        raise PermissionDenied(refusal)
    delegation_check(
        delegator=delegator, delegate=delegate, starts_at=starts_at, ends_at=ends_at, site=site
    )
    with transaction.atomic():
        delegation = Delegation(
            delegator=delegator,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            site=site,
            kind=kind,
            max_amount=max_amount,
            note=note,
            created_by=actor,
        )
        delegation.full_clean()
        delegation.save()
        audit_record(
            action="delegation.created",
            actor=actor,
            obj=delegation,
            site=site,
            on_behalf_of=delegator if actor and actor.pk != delegator.pk else None,
            after=_delegation_summary(delegation)
            | {"created_by": actor.get_username() if actor is not None else None},
        )
    return delegation


def why_not_hand_over(actor, delegator, delegate) -> str | None:
    """Why `actor` may not hand `delegator`'s approvals to `delegate`, or None: no one hands
    someone else's approvals to themself (the admin's form shows it too)."""
    if actor is not None and actor.pk == delegate.pk and actor.pk != delegator.pk:
        return (
            "You may not hand someone's approvals to yourself: another administrator or a "
            "superuser must."
        )
    return None


def delegation_check(*, delegator, delegate, starts_at: datetime, ends_at: datetime, site=None):
    """Raise the ValidationError `delegation_create` would raise for these people and dates.

    The admin's form calls it too, so that a refusal is shown on the form there as well.
    """
    if delegate.pk == delegator.pk:
        raise ValidationError({"delegate": "Delegate to someone else."})
    if not delegate.is_active:
        raise ValidationError({"delegate": f"{delegate.get_username()} is deactivated."})
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "A delegation must end after it starts."})
    refusal = policies.why_not_delegate_to(delegator, delegate, site)
    if refusal:
        raise ValidationError({"delegate": refusal})


def delegation_revoke(*, actor, delegation_id: int) -> Delegation:
    """End a delegation now; decisions already taken under it stay as they are."""
    with transaction.atomic():
        delegation = Delegation.objects.select_for_update().get(pk=delegation_id)
        if not policies.may_manage_delegation(actor, delegation.delegator):
            raise PermissionDenied("You may manage only your own delegations.")
        if delegation.revoked_at is not None:
            return delegation
        delegation.revoked_at = timezone.now()
        delegation.save(update_fields=["revoked_at"])
        audit_record(
            action="delegation.revoked",
            actor=actor,
            obj=delegation,
            site=delegation.site,
            before=_delegation_summary(delegation),
        )
    return delegation


def request_delegate(
    *,
    actor,
    request_id: int,
    delegate: str | None,
    ends_at: datetime | None,
    note: str = "",
    authority: Authority | None = None,
) -> Delegation:
    """Hand `actor`'s own approvals of requests like this one to a colleague at its site.

    Refuses before it reads the colleague or the day: a request no longer in review is a
    Conflict, a person without a tier of their own is told why not (PermissionDenied). Takes no
    lock on the request: the delegation is the person's, narrowed to the request's site, kind and
    amount, and outlives it.
    """
    request = ApprovalRequest.objects.select_related("site").get(pk=request_id)
    if request.state != RequestState.IN_REVIEW:
        raise Conflict(
            f"{request.reference} is {request.get_state_display().lower()}; "
            "there is nothing to hand on."
        )
    refusal = policies.why_not_delegate(_authority_of(actor, authority), request)
    if refusal:
        raise PermissionDenied(refusal)
    colleague = None
    if delegate:
        colleagues = selectors.role_holders(list(Role), HeldAt.SITE, request.site)
        colleague = colleagues.filter(username=delegate).first()
    if colleague is None:
        raise ValidationError(
            {"delegate": [f"No colleague of that name holds a role at {request.site.code}."]}
        )
    if ends_at is None:
        raise ValidationError({"ends_at": ["Say until when."]})
    return delegation_create(
        actor=actor,
        delegator=actor,
        delegate=colleague,
        starts_at=timezone.now(),
        ends_at=ends_at,
        site=request.site,
        kind=request.kind,
        max_amount=request.amount_base,
        note=note or f"For {request.reference}",
    )


def delegation_hand_over(*, actor, delegators, delegate, until: datetime, note: str = ""):
    """An administrator hands the approvals of several people (e.g. leavers) to one person."""
    now = timezone.now()
    with transaction.atomic():
        return [
            delegation_create(
                actor=actor,
                delegator=delegator,
                delegate=delegate,
                starts_at=now,
                ends_at=until,
                note=note or "Handed over by an administrator",
            )
            for delegator in delegators
        ]


def _delegation_summary(delegation: Delegation) -> dict:
    return {
        "delegator": delegation.delegator.get_username(),
        "delegate": delegation.delegate.get_username(),
        "starts_at": delegation.starts_at,
        "ends_at": delegation.ends_at,
        "site": delegation.site.code if delegation.site else None,
        "kind": delegation.kind or None,
        "max_amount": delegation.max_amount,
    }


# --- policies -------------------------------------------------------------------------------


def policy_create(*, actor, name: str, region=None, site=None) -> ApprovalPolicy:
    """Open a policy line for the whole company, a region or a site."""
    _check_administers_scope(actor, region=region, site=site)
    with transaction.atomic():
        policy = ApprovalPolicy(name=name, region=region, site=site)
        policy.full_clean()
        policy.save()
        audit_record(action="policy.created", actor=actor, obj=policy, site=site, region=region)
    return policy


def policy_publish(
    *, actor, policy: ApprovalPolicy, spec: VersionSpec, effective_from: datetime | None = None
) -> PolicyVersion:
    """Publish `spec` as the policy's next version, if it passes lint; locks the policy row.

    Requests already routed keep the version they were routed with.
    """
    _check_administers_scope(actor, region=policy.region, site=policy.site)
    now = timezone.now()
    effective_from = effective_from or now
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        _check_not_before_current(policy, effective_from, now)
        problems = _lint(policy, spec, effective_from)
        if problems:
            raise ValidationError(problems)
        last = policy.versions.order_by("-number").values_list("number", flat=True).first()
        version = PolicyVersion.objects.create(
            policy=policy,
            number=(last or 0) + 1,
            effective_from=effective_from,
            published_at=now,
            published_by=actor,
            note=spec.note,
            fast_path_sample_rate=spec.fast_path_sample_rate,
            drift_tolerance_pct=spec.drift_tolerance_pct,
            cancel_in_odoo_on_reject=spec.cancel_in_odoo_on_reject,
        )
        _write_rules(version, spec)
        audit_record(
            action="policy.published",
            actor=actor,
            obj=version,
            site=policy.site,
            region=policy.region,
            policy_version=version,
            after={"rules": [rule.name for rule in spec.rules], "effective_from": effective_from},
            comment=spec.note,
        )
    return version


def policy_retire(*, actor, policy: ApprovalPolicy, reason: str) -> ApprovalPolicy:
    """Stop a policy governing new requests; requests routed by it keep their version."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the policy is retired."})
    _check_administers_scope(actor, region=policy.region, site=policy.site)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        if policy.retired_at is not None:
            raise Conflict(f"{policy} was already retired.")
        policy.retired_at = timezone.now()
        policy.save(update_fields=["retired_at"])
        audit_record(
            action="policy.retired",
            actor=actor,
            obj=policy,
            site=policy.site,
            region=policy.region,
            after={"retired_at": policy.retired_at},
            comment=reason,
        )
    return policy


def _check_not_before_current(policy: ApprovalPolicy, effective_from: datetime, now) -> None:
    # The newest effective date wins, so a version dated before the one in force would never
    # govern anything; refuse it rather than publish a dead letter.
    current = (
        policy.versions.filter(effective_from__lte=now)
        .order_by("-effective_from", "-number")
        .first()
    )
    if current is not None and effective_from < current.effective_from:
        since = f"{current.effective_from:%Y-%m-%d %H:%M} UTC"
        message = f"{current} is in force since {since}; a new version cannot start before it."
        raise ValidationError({"effective_from": message})


def _lint(policy, spec, effective_from) -> list[str]:
    from approvals.lint import lint

    return lint(policy, spec, at=effective_from)


def _write_rules(version: PolicyVersion, spec: VersionSpec) -> None:
    for position, rule_spec in enumerate(spec.rules, start=1):
        rule = PolicyRule.objects.create(
            version=version, position=position, **rule_values(rule_spec)
        )
        PolicyTier.objects.bulk_create(
            PolicyTier(rule=rule, position=index, **tier_values(tier))
            for index, tier in enumerate(rule_spec.tiers, start=1)
        )


def _check_administers_scope(actor, *, region, site) -> None:
    if site is not None:
        allowed = site_policies.may_administer_site(actor, site)
    elif region is not None:
        allowed = site_policies.may_administer_region(actor, region)
    else:
        allowed = site_policies.may_create_region(actor)
    if not allowed:
        raise PermissionDenied("You do not administer this policy's scope.")


def currency_rate_add(*, actor, currency: str, units_per_base: Decimal, valid_from=None):
    """Record an exchange rate from `valid_from` on; earlier rates stay for earlier requests."""
    from approvals.models import CurrencyRate

    if not site_policies.may_create_region(actor):
        raise PermissionDenied("Only a superuser maintains exchange rates.")
    with transaction.atomic():
        rate = CurrencyRate(
            currency=currency,
            units_per_base=units_per_base,
            valid_from=valid_from or timezone.now(),
        )
        rate.full_clean()
        rate.save()
        audit_record(
            action="currency_rate.added",
            actor=actor,
            obj=rate,
            after={
                "currency": currency,
                "units_per_base": units_per_base,
                "valid_from": rate.valid_from,
            },
        )
    return rate


# --- shared ---------------------------------------------------------------------------------


def _locked(request_id: int, *, skip_locked: bool = False) -> ApprovalRequest | None:
    # Only the request row is locked; the joined site and policy version are read as they are.
    query = ApprovalRequest.objects.select_for_update(
        skip_locked=skip_locked, of=("self",)
    ).select_related("site__region", "policy_version__policy")
    if skip_locked:
        return query.filter(pk=request_id).first()
    try:
        return query.get(pk=request_id)
    except ApprovalRequest.DoesNotExist:
        raise Http404("No such approval request.") from None


def _selector(request: ApprovalRequest) -> routing.Selector:
    return routing.Selector(
        kind=request.kind,
        amount_base=request.amount_base,
        category=request.category,
        customer_class=request.customer_class,
        flags=frozenset(flag["code"] for flag in request.risk_flags),
    )


def _summary(request: ApprovalRequest) -> dict:
    return {
        "kind": request.kind,
        "state": request.state,
        "amount": request.amount,
        "currency": request.currency,
        "site": request.site.code,
        "title": request.title,
    }


def _audit_transition(request, actor, action: str, previous: str, *, decision=None, comment=""):
    audit_record(
        action=action,
        actor=actor,
        obj=request,
        site=request.site,
        on_behalf_of=decision.on_behalf_of if decision else None,
        policy_version=request.policy_version,
        before={"state": previous},
        after={"state": request.state, "round": request.round},
        comment=decision.comment if decision else comment,
    )


def _audit_decision(request, actor, decision: Decision) -> None:
    audit_record(
        action=f"decision.{decision.outcome}",
        actor=actor,
        obj=request,
        site=request.site,
        on_behalf_of=decision.on_behalf_of,
        policy_version=request.policy_version,
        after={"tier": decision.step.position if decision.step else None},
        comment=decision.comment,
    )
