"""A request's tiers: opening them for review, activating each stage, closing them."""

import hashlib
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Min
from django.utils import timezone

from approvals import notifications, routing, sla
from approvals.events import RequestDecided, RequestInReview
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Outcome,
    PolicyVersion,
    RequestState,
    StepState,
)
from approvals.services.common import audit_transition, route_selector
from portal.core.events import emit

S = RequestState


def fast_path(request: ApprovalRequest, chosen: routing.Route, at: datetime) -> None:
    request.auto_approve()
    request.sampled_for_review = sampled(request, chosen.version)
    request.last_decided_at = at
    request.save()
    Decision.objects.create(
        request=request,
        outcome=Outcome.AUTO_APPROVE,
        actor=None,
        round=request.round,
        policy_version=chosen.version,
        evidence=chosen.evidence(route_selector(request)),
        at=at,
    )
    audit_transition(request, None, "request.auto_approved", S.SUBMITTED)
    after_final_decision(request)


def sampled(request: ApprovalRequest, version: PolicyVersion) -> bool:
    # Deterministic, so that anyone can recompute which approvals were picked and why.
    digest = hashlib.sha256(f"{version.pk}:{request.pk}".encode()).digest()
    fraction = Decimal(int.from_bytes(digest[:4], "big")) / Decimal(2**32)
    return fraction < version.fast_path_sample_rate


def open_review(request: ApprovalRequest, chosen: routing.Route, at: datetime) -> None:
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
    activate_stage(request, first_stage, at)
    audit_transition(request, None, "request.in_review", previous)
    emit(RequestInReview(request))


def activate_stage(request: ApprovalRequest, stage: int, at: datetime) -> None:
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
    refresh_due(request)
    if steps:
        notifications.step_activated([step.pk for step in steps])


def refresh_due(request: ApprovalRequest) -> None:
    active = request.steps.filter(round=request.round, state=StepState.ACTIVE)
    request.due_at = active.aggregate(due=Min("due_at"))["due"]
    request.save()


def complete_step(step: ApprovalStep, finish) -> None:
    """`finish` is one of the step's transitions (`ApprovalStep.approve`, ...)."""
    finish(step)
    step.save(update_fields=["state", "completed_at"])


def close_open_steps(request: ApprovalRequest) -> None:
    request.steps.filter(round=request.round).close_unfinished(at=timezone.now())


def after_final_decision(request: ApprovalRequest) -> None:
    # Its handlers write the Odoo outbox row and the webhook deliveries in this transaction: no
    # decision without them.
    emit(RequestDecided(request))
    notifications.request_decided(request.pk)
