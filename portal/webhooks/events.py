"""What outbound events carry: small, JSON-safe, and no personal data beyond usernames.

Every approval event has the same core (`approval_core`), and every exception event its own
(`case_core`), so a receiver can handle each with one parser; `approval.decided` adds who
decided, and `sla.breached` which tier ran late.
Money is a decimal string with its currency; times are ISO 8601 in UTC.
"""

from datetime import UTC

from django.utils import timezone


def approval_core(request) -> dict:
    """The fields every approval event shares."""
    return {
        "id": request.pk,
        "reference": request.reference,
        "kind": request.kind,
        "title": request.title,
        "state": request.state,
        "site": request.site.code,
        "amount": str(request.amount),
        "currency": request.currency,
        "policy_version": str(request.policy_version) if request.policy_version_id else None,
        "odoo": {"model": request.odoo_model or None, "id": request.odoo_id},
        "requester": request.requester.get_username(),
        "round": request.round,
    }


def approval_requested(request) -> dict:
    """A request's tiers are open for decision: submitted, or back in review after a change."""
    return approval_core(request) | {"due_at": _iso(request.due_at)}


def approval_decided(request) -> dict:
    """The final outcome, with every decision of the deciding round."""
    decisions = list(
        request.decisions.filter(round=request.round).select_related(
            "actor", "on_behalf_of", "step"
        )
    )
    return approval_core(request) | {
        "outcome": request.state,
        "fast_path": any(decision.outcome == "auto_approve" for decision in decisions),
        "decided_at": _iso(request.decided_at or timezone.now()),
        "deciders": [
            {
                "username": decision.actor.get_username() if decision.actor else None,
                "on_behalf_of": (
                    decision.on_behalf_of.get_username() if decision.on_behalf_of else None
                ),
                "outcome": decision.outcome,
                "tier": decision.step.position if decision.step else None,
                "at": _iso(decision.at),
            }
            for decision in decisions
        ],
    }


def approval_applied(request) -> dict:
    """Odoo now reflects the decision."""
    return approval_core(request) | {"applied_at": _iso(request.applied_at or timezone.now())}


def approval_apply_failed(request) -> dict:
    """Odoo refused the decision for good; an administrator can retry."""
    return approval_core(request) | {"error": request.apply_error[:500]}


def sla_breached(request, step, *, action: str) -> dict:
    """A tier passed its SLA; `action` says what the policy did about it."""
    return approval_core(request) | {
        "tier": step.position,
        "role": step.role,
        "sla_hours": str(step.sla_hours),
        "due_at": _iso(step.due_at),
        "action": action,
    }


def _iso(moment) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def case_core(case) -> dict:
    """The fields every exception event shares: small, JSON-safe, money as a decimal string."""
    amount = case.amount_at_stake
    return {
        "id": case.pk,
        "reference": case.reference,
        "kind": case.kind,
        "site": case.site.code,
        "severity": case.severity,
        "queue": case.queue,
        "state": case.state,
        "amount": None if amount is None else str(amount),
        "currency": (case.currency or case.site.currency) if amount is not None else None,
        "due_at": _iso(case.due_at),
    }


def case_closed(case) -> dict:
    """How a case ended: resolved (with its code) or dismissed."""
    return case_core(case) | {
        "outcome": case.state,
        "resolution_code": case.resolution_code or None,
    }
