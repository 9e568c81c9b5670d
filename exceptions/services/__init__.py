"""Every write to exception cases.

Working a case follows the approvals pattern: one transaction, the case row locked, the policy
checked, the django-fsm transition, the audit event.

Raising follows the approvals pattern: one transaction, the open case for the same event at the
same site locked if there is one, the audit event written with the change. A second sighting of
an open case updates its evidence and counts an occurrence; it never opens a second case, and
the partial unique index on (`site`, `dedupe_key`) holds that even for two sightings racing each
other. The same key at another site is another event: it opens (or joins) that site's case.

The modules by responsibility: `raising`, `working` (assigning to reopening), `sla_sweep`,
`configuration` (queue rules, deadlines, resolution codes), and `common` (what they share).
Callers import from here.
"""

from exceptions.services.configuration import (
    case_deadline_delete,
    case_deadline_save,
    queue_rule_delete,
    queue_rule_save,
    resolution_code_delete,
    resolution_code_save,
)
from exceptions.services.raising import case_raise
from exceptions.services.sla_sweep import CaseSweepResult, case_sla_sweep
from exceptions.services.working import (
    AssignOutcome,
    case_assign,
    case_assign_many,
    case_dismiss,
    case_linked_request_decided,
    case_reopen,
    case_resolve,
    case_start,
)

__all__ = [
    "AssignOutcome",
    "CaseSweepResult",
    "case_assign",
    "case_assign_many",
    "case_deadline_delete",
    "case_deadline_save",
    "case_dismiss",
    "case_linked_request_decided",
    "case_raise",
    "case_reopen",
    "case_resolve",
    "case_sla_sweep",
    "case_start",
    "queue_rule_delete",
    "queue_rule_save",
    "resolution_code_delete",
    "resolution_code_save",
]
