"""What a person may do with approval requests: raise, withdraw, resubmit, see, decide.

Who may decide is stated once, in approvals.authority; the functions here ask it. Every function
that needs it takes either a user or the Authority already built for this web request.
"""

from django.db.models import Q

from approvals.authority import Authority, DecisionOption, as_authority
from approvals.models import (
    OPEN_STATES,
    ApprovalRequest,
    Decision,
    Outcome,
    RequestState,
)
from sites import policies as site_policies
from sites.models import Region, Site
from sites.policies import Capability
from sites.roles import Role

__all__ = ["Authority", "DecisionOption"]


def decision_options(who, request: ApprovalRequest) -> list[DecisionOption]:
    """The tiers of `request` that `who` (a user or an Authority) may decide now."""
    return as_authority(who).options(request)


def why_not_decide(who, request: ApprovalRequest) -> str:
    """The reason shown where the approve and reject buttons would be (`who`: a user or an
    Authority)."""
    person = who.user_id if isinstance(who, Authority) else who.pk
    if request.state != RequestState.IN_REVIEW:
        return f"This request is {request.get_state_display().lower()}."
    if request.requester_id == person:
        return "You raised this request, so someone else must decide it."
    approved = Decision.objects.filter(
        Q(actor=person) | Q(on_behalf_of=person),
        request=request.pk,
        round=request.round,
        outcome=Outcome.APPROVE,
    )
    if approved.exists():
        return "You approved another tier of this request; a different person must decide this one."
    return "None of the open tiers of this request is yours to decide."


def why_not_delegate(who, request: ApprovalRequest, *, options=None) -> str | None:
    """None when `who` holds an open tier of `request` themselves, else why they may not hand
    it on (a tier held through someone else's delegation is never passed further)."""
    if options is None:
        options = decision_options(who, request)
    if any(option.on_behalf_of_id is None for option in options):
        return None
    if options:
        return (
            "You decide this request on behalf of someone else; what you hold through their "
            "delegation cannot be handed on."
        )
    return why_not_decide(who, request)


def is_requester(user, request: ApprovalRequest) -> bool:
    """Whether `user` raised `request`: only they may change, withdraw or document it."""
    return bool(user and user.pk == request.requester_id)


def may_withdraw(user, request: ApprovalRequest) -> bool:
    """The requester may withdraw while nothing is final."""
    return is_requester(user, request) and request.state in OPEN_STATES


def may_resubmit(user, request: ApprovalRequest) -> bool:
    """The requester may raise a rejected request again, once, as its next revision."""
    return bool(
        user
        and user.pk == request.requester_id
        and request.state == RequestState.REJECTED
        and not ApprovalRequest.objects.filter(revision_of=request.pk).exists()
    )


def may_raise(user, site) -> bool:
    """Whether `user` may raise a request at `site`."""
    return site_policies.may(user, Capability.RAISE_REQUEST, site)


def raising_sites(user):
    """The sites where `user` may raise requests, as a lazy queryset (one query)."""
    return site_policies.sites_where(user, Capability.RAISE_REQUEST)


def may_edit_draft(user, request: ApprovalRequest) -> bool:
    """The requester may change a draft until it is submitted."""
    return is_requester(user, request) and request.state == RequestState.DRAFT


def may_attach(user, request: ApprovalRequest) -> bool:
    """The requester may add documents while nothing is final."""
    return is_requester(user, request) and request.state in OPEN_STATES


def may_retry_apply(user, request: ApprovalRequest) -> bool:
    """Administrators of the site may send a failed Odoo update again."""
    rejected_unrecorded = request.state == RequestState.REJECTED and bool(request.apply_error)
    failed = request.state == RequestState.APPLY_FAILED or rejected_unrecorded
    return failed and site_policies.may(user, Capability.ADMINISTER, request.site)


def may_review_fast_path(user, request: ApprovalRequest) -> bool:
    """Finance at the site reviews fast-path approvals sampled for post-event review."""
    return request.sampled_for_review and site_policies.holds_role(user, Role.FINANCE, request.site)


def available_actions(
    user, request: ApprovalRequest, *, options: list[DecisionOption] | None = None
) -> dict[str, str | None]:
    """Each action on the request, mapped to None when offered or to why it is not.

    The request page and the API detail both show exactly this. `options` are the caller's
    `decision_options(user, request)` when it has them already, so they are not asked twice.
    """
    if options is None:
        options = decision_options(user, request)
    decide = None if options else why_not_decide(user, request)
    return {
        "approve": decide,
        "reject": decide,
        "withdraw": None
        if may_withdraw(user, request)
        else "Only the requester may withdraw, and only while nothing is final.",
        "resubmit": None
        if may_resubmit(user, request)
        else "Only a rejected request can be raised again, by its requester, once.",
        "delegate": why_not_delegate(user, request, options=options),
    }


def may_manage_delegation(actor, delegator) -> bool:
    """People manage their own delegations; an administrator may hand on the approvals of
    someone whose every site they administer (e.g. when that person leaves)."""
    if actor is None or actor.pk == delegator.pk:
        return True
    return site_policies.may_administer_person(actor, delegator)


def why_not_delegate_to(delegator, delegate, site: Site | None = None) -> str | None:
    """None when `delegate` works wherever `delegator`'s approvals would be handed over; else
    why not, in a sentence (two or three queries).

    A delegate sees the requests they decide, so someone from elsewhere would see another
    region's requests through the delegation alone. With a site, the delegate must hold a role
    in force there; without one, in every region where the delegator decides.
    """
    name = delegate.get_full_name() or delegate.get_username()
    if site is not None:
        if site_policies.may(delegate, Capability.VIEW, site):
            return None
        return f"{name} holds no role at {site.code}, so they cannot take over approvals there."
    deciding = site_policies.sites_where(delegator, Capability.DECIDE)
    regions = set(deciding.values_list("region", flat=True))
    if not regions:
        who = delegator.get_full_name() or delegator.get_username()
        return f"{who} decides no approvals at any open site, so there is nothing to hand over."
    reach = site_policies.sites_where(delegate, Capability.VIEW).values_list("region", flat=True)
    missing = Region.objects.filter(pk__in=regions - set(reach)).order_by("name")
    if not missing:
        return None
    where = ", ".join(region.name for region in missing)
    instead = "choose someone who works there"
    if len(missing) < len(regions):
        instead += ", or hand over only the approvals of a site where they work"
    return f"{name} holds no role in {where}, where these approvals are decided: {instead}."
