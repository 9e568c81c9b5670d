"""Every write to approval requests, their steps and decisions, delegations and policies.

Each state change follows one pattern: open a transaction, lock the request row
(`select_for_update`), check approvals.policies, run the django-fsm transition, save, append the
audit event, tell other apps what happened (approvals.events), and send e-mails only once the
transaction has committed. Because every change to a request starts by locking its row, two
people deciding the same tier at once are served one after the other, and the second is told,
with `Conflict`, what the first did.

The modules by responsibility: `requests` (raising to withdrawing), `attachments`, `review` (a
request's tiers), `decisions`, `odoo_lifecycle` (drift and write-back outcomes), `sla_sweep`,
`delegations`, `policy_admin`, `currency`, and `common` (what they share). Callers import from
here.
"""

from approvals.services.attachments import attachment_add
from approvals.services.currency import currency_rate_add
from approvals.services.decisions import (
    fast_path_review_complete,
    request_approve,
    request_reject,
)
from approvals.services.delegations import (
    NotAColleague,
    delegation_check,
    delegation_create,
    delegation_hand_over,
    delegation_revoke,
    request_delegate,
    why_not_hand_over,
)
from approvals.services.odoo_lifecycle import (
    OdooChange,
    request_mark_applied,
    request_mark_apply_failed,
    request_odoo_changed,
    request_retry_apply,
    request_write_back_failed,
)
from approvals.services.policy_admin import policy_create, policy_publish, policy_retire
from approvals.services.requests import (
    request_create,
    request_raise,
    request_resubmit,
    request_submit,
    request_update_draft,
    request_withdraw,
)
from approvals.services.sla_sweep import SweepResult, sla_sweep

__all__ = [
    "NotAColleague",
    "OdooChange",
    "SweepResult",
    "attachment_add",
    "currency_rate_add",
    "delegation_check",
    "delegation_create",
    "delegation_hand_over",
    "delegation_revoke",
    "fast_path_review_complete",
    "policy_create",
    "policy_publish",
    "policy_retire",
    "request_approve",
    "request_create",
    "request_delegate",
    "request_mark_applied",
    "request_mark_apply_failed",
    "request_odoo_changed",
    "request_raise",
    "request_reject",
    "request_resubmit",
    "request_retry_apply",
    "request_submit",
    "request_update_draft",
    "request_withdraw",
    "request_write_back_failed",
    "sla_sweep",
    "why_not_hand_over",
]
