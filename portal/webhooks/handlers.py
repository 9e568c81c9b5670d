"""Outbound webhook events, published when approvals and exception cases tell what happened.

Every handler runs before commit: the event and its deliveries are rows written in the
transaction of the change, so a subscriber hears of a committed change exactly once and never
of a rolled-back one.
"""

from approvals import events as approval_events
from exceptions import events as case_events
from portal.core.events import BEFORE_COMMIT, subscribe
from portal.webhooks import events as payloads
from portal.webhooks.outbound import publish


def register() -> None:
    """Subscribe the webhook handlers (from WebhooksConfig.ready)."""
    for event_type, handler in (
        (approval_events.RequestInReview, approval_requested),
        (approval_events.RequestDecided, approval_decided),
        (approval_events.RequestApplied, approval_applied),
        (approval_events.RequestApplyFailed, approval_apply_failed),
        (approval_events.StepBreached, step_breached),
        (case_events.CaseOpened, case_opened),
        (case_events.CaseClosed, case_closed),
        (case_events.CaseBreached, case_breached),
    ):
        subscribe(event_type, handler, phase=BEFORE_COMMIT)


def approval_requested(event: approval_events.RequestInReview) -> None:
    request = event.request
    publish("approval.requested", data=payloads.approval_requested(request), site=request.site)


def approval_decided(event: approval_events.RequestDecided) -> None:
    request = event.request
    # Described only if someone subscribes: describing it reads every decision of the round.
    publish("approval.decided", data=lambda: payloads.approval_decided(request), site=request.site)


def approval_applied(event: approval_events.RequestApplied) -> None:
    request = event.request
    publish("approval.applied", data=payloads.approval_applied(request), site=request.site)


def approval_apply_failed(event: approval_events.RequestApplyFailed) -> None:
    request = event.request
    publish(
        "approval.apply_failed", data=payloads.approval_apply_failed(request), site=request.site
    )


def step_breached(event: approval_events.StepBreached) -> None:
    request = event.request
    data = payloads.sla_breached(request, event.step, action=event.action)
    publish("sla.breached", data=data, site=request.site)


def case_opened(event: case_events.CaseOpened) -> None:
    publish("exception.opened", data=payloads.case_core(event.case), site=event.case.site)


def case_closed(event: case_events.CaseClosed) -> None:
    publish("exception.resolved", data=payloads.case_closed(event.case), site=event.case.site)


def case_breached(event: case_events.CaseBreached) -> None:
    publish("sla.breached", data=payloads.case_core(event.case), site=event.case.site)
