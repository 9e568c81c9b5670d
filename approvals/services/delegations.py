"""Delegations: handing one's approvals to someone else for a period."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import policies, selectors
from approvals.authority import Authority
from approvals.models import ApprovalRequest, Delegation, HeldAt, RequestState
from approvals.services.common import authority_of
from portal.audit.services import audit_record
from portal.core.errors import Conflict
from sites.roles import Role


class NotAColleague(ValidationError):
    """The name given for the delegate is no one who holds a role at the request's site: an
    error on `delegate` to a form, which the API answers as a name that finds nothing (404)."""


def delegation_create(
    *,
    actor,
    delegator,
    delegate,
    starts_at: datetime,
    ends_at: datetime,
    site=None,
    kind: str = "",
    max_amount: Decimal | None = None,
    note: str = "",
) -> Delegation:
    """Hand `delegator`'s approvals to `delegate` for a period, optionally narrowed.

    An administrator handing someone's approvals on may not hand them to themself: another
    administrator or a superuser must, as for a deciding role (sites.services).
    """
    if not policies.may_manage_delegation(actor, delegator):
        raise PermissionDenied("You may manage only your own delegations.")
    refusal = why_not_hand_over(actor, delegator, delegate)
    if refusal:
        raise PermissionDenied(refusal)
    delegation_check(
        delegator=delegator, delegate=delegate, starts_at=starts_at, ends_at=ends_at, site=site
    )
    with transaction.atomic():
        delegation = Delegation(
            delegator=delegator,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            site=site,
            kind=kind,
            max_amount=max_amount,
            note=note,
            created_by=actor,
        )
        delegation.full_clean()
        delegation.save()
        audit_record(
            action="delegation.created",
            actor=actor,
            obj=delegation,
            site=site,
            on_behalf_of=delegator if actor and actor.pk != delegator.pk else None,
            after=_delegation_summary(delegation)
            | {"created_by": actor.get_username() if actor is not None else None},
        )
    return delegation


def why_not_hand_over(actor, delegator, delegate) -> str | None:
    """Why `actor` may not hand `delegator`'s approvals to `delegate`, or None: no one hands
    someone else's approvals to themself (the admin's form shows it too)."""
    if actor is not None and actor.pk == delegate.pk and actor.pk != delegator.pk:
        return (
            "You may not hand someone's approvals to yourself: another administrator or a "
            "superuser must."
        )
    return None


def delegation_check(*, delegator, delegate, starts_at: datetime, ends_at: datetime, site=None):
    """Raise the ValidationError `delegation_create` would raise for these people and dates.

    The admin's form calls it too, so that a refusal is shown on the form there as well.
    """
    if delegate.pk == delegator.pk:
        raise ValidationError({"delegate": "Delegate to someone else."})
    if not delegate.is_active:
        raise ValidationError({"delegate": f"{delegate.get_username()} is deactivated."})
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "A delegation must end after it starts."})
    refusal = policies.why_not_delegate_to(delegator, delegate, site)
    if refusal:
        raise ValidationError({"delegate": refusal})


def delegation_revoke(*, actor, delegation_id: int) -> Delegation:
    """End a delegation now; decisions already taken under it stay as they are."""
    with transaction.atomic():
        delegation = Delegation.objects.select_for_update().get(pk=delegation_id)
        if not policies.may_manage_delegation(actor, delegation.delegator):
            raise PermissionDenied("You may manage only your own delegations.")
        if delegation.revoked_at is not None:
            return delegation
        delegation.revoked_at = timezone.now()
        delegation.save(update_fields=["revoked_at"])
        audit_record(
            action="delegation.revoked",
            actor=actor,
            obj=delegation,
            site=delegation.site,
            before=_delegation_summary(delegation),
        )
    return delegation


def request_delegate(
    *,
    actor,
    request_id: int,
    delegate: str | None,
    ends_at: datetime | None,
    note: str = "",
    authority: Authority | None = None,
) -> Delegation:
    """Hand `actor`'s own approvals of requests like this one to a colleague at its site.

    Refuses before it reads the colleague or the day: a request no longer in review is a
    Conflict, a person without a tier of their own is told why not (PermissionDenied). A name
    that is no colleague at the site raises NotAColleague, before anything is written. Takes no
    lock on the request: the delegation is the person's, narrowed to the request's site, kind and
    amount, and outlives it.
    """
    request = ApprovalRequest.objects.select_related("site").get(pk=request_id)
    if request.state != RequestState.IN_REVIEW:
        raise Conflict(
            f"{request.reference} is {request.get_state_display().lower()}; "
            "there is nothing to hand on."
        )
    refusal = policies.why_not_delegate(authority_of(actor, authority), request)
    if refusal:
        raise PermissionDenied(refusal)
    colleague = None
    if delegate:
        colleagues = selectors.role_holders(list(Role), HeldAt.SITE, request.site)
        colleague = colleagues.filter(username=delegate).first()
    if colleague is None:
        raise NotAColleague(
            {"delegate": [f"No colleague of that name holds a role at {request.site.code}."]}
        )
    if ends_at is None:
        raise ValidationError({"ends_at": ["Say until when."]})
    return delegation_create(
        actor=actor,
        delegator=actor,
        delegate=colleague,
        starts_at=timezone.now(),
        ends_at=ends_at,
        site=request.site,
        kind=request.kind,
        max_amount=request.amount_base,
        note=note or f"For {request.reference}",
    )


def delegation_hand_over(*, actor, delegators, delegate, until: datetime, note: str = ""):
    """An administrator hands the approvals of several people (e.g. leavers) to one person."""
    now = timezone.now()
    with transaction.atomic():
        return [
            delegation_create(
                actor=actor,
                delegator=delegator,
                delegate=delegate,
                starts_at=now,
                ends_at=until,
                note=note or "Handed over by an administrator",
            )
            for delegator in delegators
        ]


def _delegation_summary(delegation: Delegation) -> dict:
    return {
        "delegator": delegation.delegator.get_username(),
        "delegate": delegation.delegate.get_username(),
        "starts_at": delegation.starts_at,
        "ends_at": delegation.ends_at,
        "site": delegation.site.code if delegation.site else None,
        "kind": delegation.kind or None,
        "max_amount": delegation.max_amount,
    }
