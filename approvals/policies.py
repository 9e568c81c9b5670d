"""Who may decide, raise, withdraw or see which approval request: the one place that answers.

Deciding is built as SQL so that the inbox, the request page and the services share one
definition. A person may decide an active tier when

* they hold the tier's role (or the role it escalated to) where the tier says, through a
  membership in force, or a delegation in force hands them the approvals of someone who does;
* segregation of duties holds: neither they nor the person they stand in for raised the request,
  approved another tier of it in this round, or already voted on this tier.

Delegations do not cascade: a delegate acts only on the delegator's own memberships.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.lookups import Exact
from django.utils import timezone

from approvals.models import (
    OPEN_STATES,
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Delegation,
    HeldAt,
    Outcome,
    RequestState,
    StepState,
)
from sites import policies as site_policies
from sites.models import Membership, Region, Site
from sites.policies import Capability
from sites.roles import Role


def _outer(name: str, depth: int):
    ref = name
    for _ in range(depth):
        ref = OuterRef(ref)
    return ref


def _holds_step_role(principal, depth: int, at: datetime) -> Exists:
    """Whether `principal` holds the step's role where the step needs it (step `depth` up)."""
    memberships = (
        Membership.objects.filter(user=principal, user__is_active=True, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .filter(Q(role=_outer("role", depth)) | Q(role=_outer("escalated_role", depth)))
        .filter(
            Q(region=_outer("request__site__region", depth))
            | Q(Exact(_outer("held_at", depth), HeldAt.SITE), site=_outer("request__site", depth))
        )
    )
    return Exists(memberships)


def _has_acted(person, depth: int) -> Q:
    """Whether `person` approved any tier of this round, or voted on this tier, as themselves
    or through a delegate (step `depth` up)."""
    as_person = Q(actor=person) | Q(on_behalf_of=person)
    approved_a_tier = Decision.objects.filter(
        as_person,
        request=_outer("request", depth),
        round=_outer("round", depth),
        outcome=Outcome.APPROVE,
    )
    voted_here = Decision.objects.filter(as_person, step=_outer("pk", depth))
    return Q(Exists(approved_a_tier)) | Q(Exists(voted_here))


def _delegations_in_force(delegate, at: datetime) -> QuerySet[Delegation]:
    return Delegation.objects.filter(
        delegate=delegate, starts_at__lte=at, ends_at__gt=at, revoked_at__isnull=True
    ).filter(delegator__is_active=True)


def _delegations_covering_step(user, at: datetime) -> QuerySet[Delegation]:
    """The user's delegations in force that reach the step one level up, and whose delegator
    may decide it."""
    delegator = OuterRef("delegator")
    return (
        _delegations_in_force(user.pk, at)
        .filter(Q(site__isnull=True) | Q(site=OuterRef("request__site")))
        .filter(Q(kind="") | Q(kind=OuterRef("request__kind")))
        .filter(Q(max_amount__isnull=True) | Q(max_amount__gte=OuterRef("request__amount_base")))
        .exclude(delegator=OuterRef("request__requester"))
        .filter(_holds_step_role(delegator, 2, at))
        .exclude(_has_acted(delegator, 2))
    )


def decidable_steps(user, *, at: datetime | None = None) -> Q:
    """A filter on ApprovalStep: the active tiers `user` may decide now, for anyone."""
    if not (user and user.is_authenticated and user.is_active):
        return Q(pk__in=[])
    at = at or timezone.now()
    return _open_to(user) & (
        Q(_holds_step_role(user.pk, 1, at)) | Q(Exists(_delegations_covering_step(user, at)))
    )


def _open_to(user) -> Q:
    """Active tiers of open requests that segregation of duties lets `user` decide."""
    return (
        Q(state=StepState.ACTIVE, request__state=RequestState.IN_REVIEW, request__site__active=True)
        & ~Q(request__requester=user.pk)
        & ~_has_acted(user.pk, 1)
    )


@dataclass(frozen=True)
class DecisionOption:
    """A tier `user` may decide now, and whom they would be deciding it for (None: themselves)."""

    step: ApprovalStep
    on_behalf_of_id: int | None
    delegation_id: int | None


def decision_options(user, request: ApprovalRequest, *, at=None) -> list[DecisionOption]:
    """The tiers of `request` that `user` may decide now (two queries)."""
    if not (user and user.is_authenticated and user.is_active):
        return []
    at = at or timezone.now()
    if not _delegations_in_force(user.pk, at).exists():
        # Most people stand in for nobody; without the delegation subqueries the query is a
        # fraction of the cost to build, which is most of the cost of a decision.
        own = ApprovalStep.objects.filter(
            _open_to(user), _holds_step_role(user.pk, 1, at), request=request.pk
        )
        return [DecisionOption(step, None, None) for step in own.order_by("position")]
    covering = _delegations_covering_step(user, at).order_by("starts_at", "pk")
    steps = (
        ApprovalStep.objects.filter(decidable_steps(user, at=at), request=request.pk)
        .annotate(
            as_self=_holds_step_role(user.pk, 1, at),
            delegation_id=Subquery(covering.values("pk")[:1]),
            delegator_id=Subquery(covering.values("delegator")[:1]),
        )
        .order_by("position")
    )
    return [
        DecisionOption(step, None, None)
        if step.as_self
        else DecisionOption(step, step.delegator_id, step.delegation_id)
        for step in steps
    ]


def why_not_decide(user, request: ApprovalRequest) -> str:
    """The reason shown where the approve and reject buttons would be."""
    if request.state != RequestState.IN_REVIEW:
        return f"This request is {request.get_state_display().lower()}."
    if request.requester_id == user.pk:
        return "You raised this request, so someone else must decide it."
    approved = Decision.objects.filter(
        Q(actor=user.pk) | Q(on_behalf_of=user.pk),
        request=request.pk,
        round=request.round,
        outcome=Outcome.APPROVE,
    )
    if approved.exists():
        return "You approved another tier of this request; a different person must decide this one."
    return "None of the open tiers of this request is yours to decide."


def why_not_delegate(user, request: ApprovalRequest) -> str | None:
    """None when `user` holds an open tier of `request` themselves, else why they may not hand
    it on (a tier held through someone else's delegation is never passed further)."""
    own = [o for o in decision_options(user, request) if o.on_behalf_of_id is None]
    return None if own else why_not_decide(user, request)


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


def visible_requests(user, *, at: datetime | None = None) -> Q:
    """A filter on ApprovalRequest: what `user` may see (anything else answers 404)."""
    if not (user and user.is_authenticated and user.is_active):
        return Q(pk__in=[])
    delegated = ApprovalStep.objects.filter(decidable_steps(user, at=at), request=OuterRef("pk"))
    return (
        site_policies.in_scope(user, Capability.VIEW, site_field="site", at=at)
        | Q(requester=user.pk)
        | Q(Exists(delegated))
    )


def available_actions(user, request: ApprovalRequest) -> dict[str, str | None]:
    """Each action on the request page, mapped to None when offered or to why it is not."""
    decide = None if decision_options(user, request) else why_not_decide(user, request)
    return {
        "approve": decide,
        "reject": decide,
        "withdraw": None
        if may_withdraw(user, request)
        else "Only the requester may withdraw, and only while nothing is final.",
        "resubmit": None
        if may_resubmit(user, request)
        else "Only a rejected request can be raised again, by its requester, once.",
    }


def may_manage_delegation(actor, delegator) -> bool:
    """People manage their own delegations; an administrator may hand on the approvals of
    someone whose every site they administer (e.g. when that person leaves)."""
    if actor is None or actor.pk == delegator.pk:
        return True
    reach = Site.objects.filter(
        Q(memberships__user=delegator) | Q(region__memberships__user=delegator)
    )
    administered = site_policies.sites_administered_by(actor)
    # Someone with no role yet cannot be delegated for: the delegation would follow them to
    # whatever sites they are given later, outside this administrator's reach.
    return (
        reach.exists() and administered.exists() and not reach.exclude(pk__in=administered).exists()
    )


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
