"""The rule of who may decide which tier, as it was stated before approvals.authority: kept here
as the reference that the authority is checked against.

Copied unchanged from approvals/policies.py (commit 259fb86), with one amendment, marked below:
a delegation covers a step only at sites where the delegate may themself view (holds some role,
through the site or its region, by a membership in force). Deliberately a second statement of
the rule, written the old way, so that a slip in the new one shows as a difference.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.lookups import Exact
from django.utils import timezone

from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Delegation,
    HeldAt,
    Outcome,
    RequestState,
    StepState,
)
from sites.models import Membership


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


def _views_site(person, depth: int, at: datetime) -> Exists:
    """AMENDMENT: whether `person` holds any role at the step's site (step `depth` up), through
    the site or its region, by a membership in force."""
    memberships = (
        Membership.objects.filter(user=person, user__is_active=True, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .filter(
            Q(region=_outer("request__site__region", depth))
            | Q(site=_outer("request__site", depth))
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
        # AMENDMENT (the one change from 259fb86): a delegation covers a step only at sites
        # where the delegate may themself view.
        .filter(_views_site(user.pk, 2, at))
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


def audience(step: ApprovalStep, *, at: datetime) -> list:
    """Everyone who may decide `step` at `at`, by username: the definition, one person at a
    time, segregation of duties included."""
    people = get_user_model().objects.order_by("username")
    return [
        person
        for person in people
        if ApprovalStep.objects.filter(decidable_steps(person, at=at), pk=step.pk).exists()
    ]
