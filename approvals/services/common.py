"""What the approval services share: the locked request, its routing selector, its audit events."""

from django.core.exceptions import ValidationError
from django.http import Http404

from approvals import routing
from approvals.advice import LABELS as advice_labels
from approvals.authority import Authority
from approvals.models import ApprovalRequest, Decision
from portal.audit.services import audit_record


def authority_of(actor, authority: Authority | None) -> Authority:
    """The authority passed in by the web request, or one built for `actor` now."""
    if authority is None or authority.user_id != actor.pk:
        return Authority.of(actor)
    return authority


def locked(request_id: int, *, skip_locked: bool = False) -> ApprovalRequest | None:
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


def route_selector(request: ApprovalRequest) -> routing.Selector:
    return routing.Selector(
        kind=request.kind,
        amount_base=request.amount_base,
        category=request.category,
        customer_class=request.customer_class,
        flags=frozenset(flag["code"] for flag in request.risk_flags),
    )


def summary(request: ApprovalRequest) -> dict:
    return {
        "kind": request.kind,
        "state": request.state,
        "amount": request.amount,
        "currency": request.currency,
        "site": request.site.code,
        "title": request.title,
    }


def audit_transition(request, actor, action: str, previous: str, *, decision=None, comment=""):
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


def audit_decision(request, actor, decision: Decision, advice: str = "") -> None:
    # The recommendation on the decider's screen, so the ledger shows whether it was followed.
    if advice and advice not in advice_labels:
        raise ValidationError({"advice": "Unknown recommendation; nothing was changed."})
    audit_record(
        action=f"decision.{decision.outcome}",
        actor=actor,
        obj=request,
        site=request.site,
        on_behalf_of=decision.on_behalf_of,
        policy_version=request.policy_version,
        after={"tier": decision.step.position if decision.step else None},
        comment=decision.comment,
        context={"advice_shown": advice} if advice else None,
    )
