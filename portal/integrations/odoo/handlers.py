"""The Odoo write-back, kept in step with approval requests as they tell what happened.

Every handler runs before commit: the outbox row is part of the decision's transaction, so a
committed decision always has its row and a rolled-back one never has.
"""

from approvals.events import RequestApplyRetried, RequestDecided, RequestReturnedToReview
from portal.core.events import BEFORE_COMMIT, subscribe
from portal.integrations.odoo import services

# A final decision Odoo is told of; an expired request leaves the Odoo record as it is.
WRITE_BACK = {"approved": "approve", "rejected": "reject"}


def register() -> None:
    """Subscribe the write-back handlers (from OdooConfig.ready)."""
    subscribe(RequestDecided, write_back_decision, phase=BEFORE_COMMIT)
    subscribe(RequestReturnedToReview, drop_write_backs, phase=BEFORE_COMMIT)
    subscribe(RequestApplyRetried, retry_write_back, phase=BEFORE_COMMIT)


def write_back_decision(event: RequestDecided) -> None:
    action = WRITE_BACK.get(event.request.state)
    if action is not None:
        services.outbox_enqueue(request=event.request, action=action)


def drop_write_backs(event: RequestReturnedToReview) -> None:
    services.outbox_supersede(request=event.request)


def retry_write_back(event: RequestApplyRetried) -> None:
    services.outbox_retry(request=event.request)
