"""Deciding a tier: approving, rejecting, and the review of sampled fast-path approvals."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from approvals import policies
from approvals.authority import Authority
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Outcome,
    RequestState,
    StepState,
)
from approvals.services.common import audit_decision, audit_transition, authority_of, locked
from approvals.services.review import (
    activate_stage,
    after_final_decision,
    close_open_steps,
    complete_step,
    refresh_due,
)
from portal.audit.services import appended_at_end, audit_record
from portal.core.errors import Conflict
from portal.core.textlimits import COMMENT_MAX, refuse_overlong

S = RequestState


def request_approve(
    *,
    actor,
    request_id: int,
    step_id: int | None = None,
    comment: str = "",
    authority: Authority | None = None,
    advice: str = "",
) -> Decision:
    """`actor` approves one tier (for themselves or for whom they stand in); locks the request,
    and the audit ledger only for the appends at the end. Pass the `authority` already built
    for this web request, if there is one, and the `advice` label the approver was shown."""
    refuse_overlong(COMMENT_MAX, comment=comment)
    # Read before the transaction: who may decide does not need the request's lock.
    authority = authority_of(actor, authority)
    with transaction.atomic(), appended_at_end():
        request, option = _decidable(actor, request_id, step_id, authority)
        step = option.step
        if step.comment_required and not comment.strip():
            raise ValidationError({"comment": "This tier needs a comment with the approval."})
        decision = _record_vote(request, option, actor, Outcome.APPROVE, comment)
        audit_decision(request, actor, decision, advice)
        # The vote just recorded is an approval of this step: a quorum of one needs no count.
        if step.quorum <= 1 or _approvals_of(step) >= step.quorum:
            complete_step(step, ApprovalStep.approve)
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
    advice: str = "",
) -> Decision:
    """`actor` rejects the request at one tier; a reason is required. Locks the request, and
    the audit ledger only for the appends at the end."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why the request is rejected."})
    refuse_overlong(COMMENT_MAX, reason=reason)
    authority = authority_of(actor, authority)
    with transaction.atomic(), appended_at_end():
        request, option = _decidable(actor, request_id, step_id, authority)
        decision = _record_vote(request, option, actor, Outcome.REJECT, reason)
        audit_decision(request, actor, decision, advice)
        complete_step(option.step, ApprovalStep.reject)
        close_open_steps(request)
        request.reject()
        request.save()
        audit_transition(request, actor, "request.rejected", S.IN_REVIEW, decision=decision)
        after_final_decision(request)
        return decision


def _decidable(actor, request_id: int, step_id: int | None, authority: Authority | None):
    authority = authority_of(actor, authority)
    request = locked(request_id)
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


def _approvals_of(step: ApprovalStep) -> int:
    return step.decisions.filter(outcome=Outcome.APPROVE).count()


def _advance(request: ApprovalRequest, actor, decision: Decision) -> None:
    # The round's unfinished tiers in one read: any still active, else the next stage waiting.
    unfinished = (
        request.steps.filter(round=request.round, state__in=(StepState.ACTIVE, StepState.WAITING))
        .values_list("state", "stage")
        .order_by()
    )
    states = list(unfinished)
    if any(state == StepState.ACTIVE for state, _ in states):
        refresh_due(request)
        return
    if states:
        activate_stage(request, min(stage for _, stage in states), timezone.now())
        return
    request.approve()
    request.save()
    audit_transition(request, actor, "request.approved", S.IN_REVIEW, decision=decision)
    after_final_decision(request)


def fast_path_review_complete(*, actor, request_id: int, comment: str) -> ApprovalRequest:
    """Finance records that a sampled fast-path approval was looked at after the event."""
    with transaction.atomic():
        request = locked(request_id)
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
