"""Approval requests, the versioned policy matrix that routes them, and the record of decisions.

Rows here are never deleted: a policy edit publishes a new version, a rejected request is
resubmitted as a new revision, a step or a decision is history once written. States move only
through the transitions of each model, called from approvals.services.

One module per part: `currency` (amounts and exchange rates), `policy` (the matrix),
`requests` (requests and their documents), `steps`, `delegations`, `decisions` and
`preferences`; callers import every name from `approvals.models`.
"""

from approvals.models.currency import MONEY, CurrencyRate
from approvals.models.decisions import Decision, Outcome
from approvals.models.delegations import Delegation
from approvals.models.policy import (
    ApprovalPolicy,
    HeldAt,
    OnBreach,
    PolicyRule,
    PolicyTier,
    PolicyVersion,
)
from approvals.models.preferences import NotificationPreference
from approvals.models.requests import (
    DRIFT_STATES,
    OPEN_STATES,
    ApprovalRequest,
    Attachment,
    RequestKind,
    RequestState,
    RiskFlag,
    S,
    attachment_path,
)
from approvals.models.steps import UNFINISHED_STEP_STATES, ApprovalStep, StepQuerySet, StepState

# The name migration 0007 gives the attachments' upload path.
_attachment_path = attachment_path

__all__ = [
    "DRIFT_STATES",
    "MONEY",
    "OPEN_STATES",
    "UNFINISHED_STEP_STATES",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalStep",
    "Attachment",
    "CurrencyRate",
    "Decision",
    "Delegation",
    "HeldAt",
    "NotificationPreference",
    "OnBreach",
    "Outcome",
    "PolicyRule",
    "PolicyTier",
    "PolicyVersion",
    "RequestKind",
    "RequestState",
    "RiskFlag",
    "S",
    "StepQuerySet",
    "StepState",
    "attachment_path",
]
