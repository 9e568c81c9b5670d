"""What happens to an approval request that other apps react to (see portal.core.events).

Each event is emitted by approvals.services inside the transaction that made the change, with
the request as it now is (its row locked). Who listens: the Odoo integration (the outbox row of
a decision), exception cases (a case waiting for a write-off), outbound webhooks.
"""

from dataclasses import dataclass

from approvals.models import ApprovalRequest, ApprovalStep


@dataclass(frozen=True)
class RequestInReview:
    """Its tiers are open for decision: just submitted, or back in review after a change."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestDecided:
    """Final: approved, rejected, or expired (by a person, the policy or the SLA)."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestWithdrawn:
    """The requester took it back before anything was final."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestReturnedToReview:
    """Its Odoo record changed materially: what was decided no longer stands."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestApplied:
    """Odoo now reflects the approval."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestApplyFailed:
    """Odoo refused the approval or could not be reached for good."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestApplyRetried:
    """An administrator asked for a failed write-back to be sent again."""

    request: ApprovalRequest


@dataclass(frozen=True)
class StepBreached:
    """A tier passed its SLA; `action` is what the policy does about it (its `on_breach`)."""

    request: ApprovalRequest
    step: ApprovalStep
    action: str
