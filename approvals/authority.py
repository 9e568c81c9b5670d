"""Who may decide which approval tier: stated here once, and nowhere else.

A person may decide an active tier of a request in review when

* they hold a deciding role the tier names (its role, or the role it escalated to) where the tier
  says: at the request's site (a membership on the site or on its region) or, for a tier held at
  region, through a membership on the site's region; or a delegation in force hands them the
  approvals of someone who does;
* segregation of duties holds: neither they nor the person they stand in for raised the request,
  approved another tier of it in this round, or already voted on this tier.

Delegations do not cascade (a delegate acts only on the delegator's own memberships), and they
are judged when used: a delegation covers a tier only at a site where the delegate may themself
view, so a delegator who later gains a role elsewhere does not carry the delegate along.

`Authority.of(person)` loads, in two queries, everything these rules need about that person:
their roles in force site by site (guardian's grant rows, region roles already expanded to the
sites they cover), the delegations in force to them and their delegators' roles. From it come a
flat filter on steps for the inbox and counts (`steps`), the options on one request worked out
in Python (`options`), and the sites worth looking at (`deciding_site_ids`). The reverse
question, who may decide one tier, is `audience`. A web request builds one authority and passes
it on (`authority_for`).
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import reduce
from operator import or_

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, OuterRef, Q
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
from portal.core.periods import delegation_in_force
from sites import policies as site_policies
from sites.roles import DECIDING_ROLES

NOTHING = Q(pk__in=[])


@dataclass(frozen=True)
class DecisionOption:
    """A tier someone may decide now, and whom they would be deciding it for (None: themselves)."""

    step: ApprovalStep
    on_behalf_of_id: int | None
    delegation_id: int | None


@dataclass
class Reach:
    """One person's deciding roles in force at open sites: role -> site ids, split by whether a
    region membership covers the site (any tier) or only a site membership (tiers held at site)."""

    regional: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    local: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def add(self, role: str, site_id: int, *, through_region: bool) -> None:
        (self.regional if through_region else self.local)[role].add(site_id)

    def holds(self, step, site_id: int) -> bool:
        """Whether this reach holds `step`'s role (or the role it escalated to) where needed."""
        for role in {step.role, step.escalated_role} - {""}:
            if site_id in self.regional.get(role, ()):
                return True
            if step.held_at == HeldAt.SITE and site_id in self.local.get(role, ()):
                return True
        return False

    def site_ids(self) -> set[int]:
        return set().union(*self.regional.values(), *self.local.values())

    def within(self, allowed: set[int]) -> "Reach":
        narrowed = Reach()
        for source, target in ((self.regional, narrowed.regional), (self.local, narrowed.local)):
            for role, sites in source.items():
                if sites & allowed:
                    target[role] = sites & allowed
        return narrowed

    def step_filter(self) -> Q:
        """A filter on ApprovalStep over its own columns: tiers this reach holds."""
        branches = []
        for role in sorted(set(self.regional) | set(self.local)):
            names = Q(role=role) | Q(escalated_role=role)
            where = Q()
            if self.regional.get(role):
                where |= Q(site__in=sorted(self.regional[role]))
            if self.local.get(role):
                where |= Q(held_at=HeldAt.SITE, site__in=sorted(self.local[role]))
            branches.append(names & where)
        return reduce(or_, branches) if branches else NOTHING


@dataclass(frozen=True)
class Cover:
    """A delegation in force to the person, as far as deciding needs it."""

    pk: int
    delegator_id: int
    site_id: int | None
    kind: str
    max_amount: Decimal | None
    starts_at: datetime

    def reaches(self, request) -> bool:
        amount = request.amount_base
        return (
            (self.site_id is None or self.site_id == request.site_id)
            and (not self.kind or self.kind == request.kind)
            and (self.max_amount is None or (amount is not None and amount <= self.max_amount))
            and self.delegator_id != request.requester_id
        )


class Authority:
    """What one person may decide at one moment; build it with `Authority.of`."""

    def __init__(self, user_id, at, reach, view_site_ids, covers, delegator_reach, grants=()):
        self.user_id: int | None = user_id
        self.at: datetime = at
        self.reach: Reach = reach
        self.view_site_ids: frozenset[int] = view_site_ids
        # Oldest first, as a decision through a delegation records the first that covers it.
        self.covers: list[Cover] = covers
        # Each delegator's deciding roles, narrowed to the sites the delegate may view.
        self.delegator_reach: dict[int, Reach] = delegator_reach
        # The person's own roles in force, site by site (any role, not only deciding ones), for
        # the other questions a page asks of the same grant rows (may they audit this site, which
        # queues do they work, may they raise anywhere) without asking again.
        self.grants: tuple[site_policies.Grant, ...] = tuple(grants)

    @classmethod
    def of(cls, user, *, at: datetime | None = None) -> "Authority":
        """The authority of `user` at `at` (now by default), loaded in two queries."""
        return _load(user, at or timezone.now())

    @property
    def decides_nothing(self) -> bool:
        return not self.reach.site_ids() and not self.covers

    # -- the inbox and counts: SQL ------------------------------------------------------------

    def steps(self) -> Q:
        """A filter on ApprovalStep: the active tiers this person may decide now, for anyone."""
        if self.user_id is None or self.decides_nothing:
            return NOTHING
        held = [self.reach.step_filter()]
        for cover in self.covers:
            reach = self._reach_through(cover)
            if reach is None:
                continue
            scope = reach.step_filter() & ~Q(request__requester=cover.delegator_id)
            if cover.site_id is not None:
                scope &= Q(site=cover.site_id)
            if cover.kind:
                scope &= Q(request__kind=cover.kind)
            if cover.max_amount is not None:
                scope &= Q(request__amount_base__lte=cover.max_amount)
            held.append(scope & ~_has_acted(cover.delegator_id))
        return (
            Q(state=StepState.ACTIVE, request__state=RequestState.IN_REVIEW)
            & ~Q(request__requester=self.user_id)
            & ~_has_acted(self.user_id)
            & reduce(or_, held)
        )

    def deciding_site_ids(self) -> list[int]:
        """The open sites where this person, or someone they stand in for, holds a deciding
        role: only requests there can be theirs to decide."""
        sites = self.reach.site_ids()
        for cover in self.covers:
            reach = self._reach_through(cover)
            if reach is not None:
                sites |= reach.site_ids()
        return sorted(sites)

    def visible(self) -> Q:
        """A filter on ApprovalRequest: what this person may open. Deciding never widens it,
        since a delegation covers only sites where the delegate may view."""
        if self.user_id is None:
            return NOTHING
        return Q(site__in=sorted(self.view_site_ids)) | Q(requester=self.user_id)

    def may_view(self, request: ApprovalRequest) -> bool:
        """`visible`, for one request already in hand (no query)."""
        return self.user_id is not None and (
            request.site_id in self.view_site_ids or request.requester_id == self.user_id
        )

    # -- one request: Python ------------------------------------------------------------------

    def options(self, request: ApprovalRequest) -> list[DecisionOption]:
        """The tiers of `request` this person may decide now, in order (one query)."""
        if self.user_id is None or self.decides_nothing:
            return []
        if request.state != RequestState.IN_REVIEW or request.requester_id == self.user_id:
            return []
        return self.options_among(request, *_active_steps_and_votes(request.pk))

    def options_among(self, request: ApprovalRequest, steps, votes) -> list[DecisionOption]:
        """`options`, from the request's steps and votes already read (see `votes_of`): no
        query, for a page that reads them anyway."""
        if self.user_id is None or self.decides_nothing:
            return []
        if request.state != RequestState.IN_REVIEW or request.requester_id == self.user_id:
            return []
        active = sorted(
            (step for step in steps if step.state == StepState.ACTIVE), key=lambda s: s.position
        )
        found = (self._option(request, step, votes) for step in active)
        return [option for option in found if option is not None]

    def options_for(self, requests) -> dict[int, list[DecisionOption]]:
        """`options` for many requests at once (two queries, whatever their number)."""
        waiting = [r for r in requests if r.state == RequestState.IN_REVIEW]
        if self.user_id is None or self.decides_nothing or not waiting:
            return {}
        by_id = {r.pk: r for r in waiting if r.requester_id != self.user_id}
        steps = ApprovalStep.objects.filter(
            request__in=list(by_id), state=StepState.ACTIVE
        ).order_by("request_id", "position")  # by the column: no join to order by the request
        votes = _votes_on(list(by_id))
        found: dict[int, list[DecisionOption]] = {}
        for step in steps:
            option = self._option(by_id[step.request_id], step, votes.get(step.request_id, ()))
            if option is not None:
                found.setdefault(step.request_id, []).append(option)
        return found

    def _option(self, request, step, votes) -> DecisionOption | None:
        if _acted(self.user_id, step, votes):
            return None
        if self.reach.holds(step, step.site_id):
            return DecisionOption(step, None, None)
        for cover in self.covers:
            reach = self.delegator_reach.get(cover.delegator_id)
            if (
                reach is not None
                and cover.reaches(request)
                and reach.holds(step, step.site_id)
                and not _acted(cover.delegator_id, step, votes)
            ):
                return DecisionOption(step, cover.delegator_id, cover.pk)
        return None

    def _reach_through(self, cover: Cover) -> Reach | None:
        reach = self.delegator_reach.get(cover.delegator_id)
        if reach is None:
            return None
        if cover.site_id is not None:
            reach = reach.within({cover.site_id})
        return reach if reach.site_ids() else None


def _load(user, at: datetime) -> Authority:
    active = bool(user and user.is_authenticated and user.is_active)
    if not active:
        return Authority(None, at, Reach(), frozenset(), [], {})
    covers = [
        Cover(*row)
        for row in Delegation.objects.filter(
            delegation_in_force(at), delegate=user.pk, delegator__is_active=True
        )
        .order_by("starts_at", "pk")
        .values_list("pk", "delegator", "site", "kind", "max_amount", "starts_at")
    ]
    people = {user.pk} | {cover.delegator_id for cover in covers}
    reaches: dict[int, Reach] = {person: Reach() for person in people}
    own_grants = []
    for grant in site_policies.grants_in_force(people, at=at):
        if grant.user_id == user.pk:
            own_grants.append(grant)
        if grant.role in DECIDING_ROLES and grant.site_active:
            reaches[grant.user_id].add(grant.role, grant.site_id, through_region=grant.regional)
    view = frozenset(grant.site_id for grant in own_grants)
    own = reaches.pop(user.pk)
    delegators = {person: reach.within(set(view)) for person, reach in reaches.items()}
    return Authority(user.pk, at, own, view, covers, delegators, own_grants)


def authority_for(http_request) -> Authority:
    """The signed-in person's authority, built once per web request and kept on it."""
    base = getattr(http_request, "_request", http_request)  # a DRF request wraps Django's
    found = getattr(base, "_tollgate_authority", None)
    if found is None or found.user_id != _user_id(http_request.user):
        found = Authority.of(http_request.user)
        base._tollgate_authority = found
    return found


def as_authority(who, *, at: datetime | None = None) -> Authority:
    """`who` as an Authority: passed through when it is one, else built for that user."""
    if isinstance(who, Authority):
        return who
    return Authority.of(who, at=at)


def _user_id(user) -> int | None:
    return user.pk if user is not None and user.is_authenticated else None


def _has_acted(person_id: int) -> Q:
    """Whether `person_id` approved any tier of the step's round, or voted on the step, as
    themselves or through a delegate."""
    as_person = Q(actor=person_id) | Q(on_behalf_of=person_id)
    approved = Decision.objects.filter(
        as_person, request=OuterRef("request"), round=OuterRef("round"), outcome=Outcome.APPROVE
    )
    voted = Decision.objects.filter(as_person, step=OuterRef("pk"))
    return Q(Exists(approved)) | Q(Exists(voted))


@dataclass(frozen=True)
class _Vote:
    people: frozenset[int]
    step_id: int | None
    round: int
    approved: bool


def _votes_on(request_ids: list[int]) -> dict[int, list[_Vote]]:
    votes: dict[int, list[_Vote]] = defaultdict(list)
    rows = Decision.objects.filter(request__in=request_ids).values_list(
        "request", "actor", "on_behalf_of", "step", "round", "outcome"
    )
    for request_id, *vote in rows:
        votes[request_id].append(_vote(*vote))
    return votes


def _vote(actor, on_behalf_of, step_id, round_, outcome) -> _Vote:
    people = frozenset(p for p in (actor, on_behalf_of) if p is not None)
    return _Vote(people, step_id, round_, outcome == Outcome.APPROVE)


# One request's active tiers, each carrying the request's votes, in one statement written once
# (a decision runs it under the request's lock, and the ORM would compile two queries for it).
# The votes travel as a JSON array, built with each database's own JSON functions.
_ACTIVE_STEPS_WITH_VOTES = """
    SELECT step.*, (
        SELECT coalesce({aggregate}({row}(
            vote.actor_id, vote.on_behalf_of_id, vote.step_id, vote.round, vote.outcome
        )), '[]')
        FROM approvals_decision vote WHERE vote.request_id = step.request_id
    ) AS votes
    FROM approvals_approvalstep step
    WHERE step.request_id = %s AND step.state = %s
    ORDER BY step.position
"""
_JSON_FUNCTIONS = {
    "postgresql": {"aggregate": "json_agg", "row": "json_build_array"},
    "sqlite": {"aggregate": "json_group_array", "row": "json_array"},
}


def _active_steps_and_votes(request_id: int) -> tuple[list[ApprovalStep], list[_Vote]]:
    """The active tiers of one request by position, and every vote on the request (what
    `_votes_on` reads): no active tier, no votes needed."""
    sql = _ACTIVE_STEPS_WITH_VOTES.format(**_JSON_FUNCTIONS[connection.vendor])
    steps = list(ApprovalStep.objects.raw(sql, [request_id, StepState.ACTIVE]))
    if not steps:
        return [], []
    votes = steps[0].votes
    if isinstance(votes, str):  # SQLite hands JSON over as text
        votes = json.loads(votes)
    return steps, [_vote(*vote) for vote in votes]


def votes_of(decisions) -> list[_Vote]:
    """The votes `options_among` and `audience_among` need, from one request's decisions
    already read (Decision rows), so that a page reading them anyway asks nothing more."""
    return [_vote(d.actor_id, d.on_behalf_of_id, d.step_id, d.round, d.outcome) for d in decisions]


def _acted(person_id: int, step, votes) -> bool:
    return any(
        person_id in vote.people
        and (vote.step_id == step.pk or (vote.approved and vote.round == step.round))
        for vote in votes
    )


def audience(step: ApprovalStep, *, at: datetime | None = None) -> list:
    """Who may decide `step` now, segregation of duties applied: the people holding its role
    where it needs it and those standing in for them, less the requester and anyone who has
    already approved a tier of this round or voted on this one (four queries)."""
    at = at or timezone.now()
    request = step.request
    if step.state != StepState.ACTIVE or request.state != RequestState.IN_REVIEW:
        return []
    votes = _votes_on([request.pk]).get(request.pk, [])
    grants = site_policies.grants_at(step.site_id, at=at)
    people = get_user_model().objects.filter(
        pk__in=audience_among(step, request, votes, grants, at=at), is_active=True
    )
    return list(people.order_by("username"))


def audience_among(step, request, votes, grants, *, at: datetime) -> set[int]:
    """The ids of `audience(step)` (before leaving out inactive people), from what a page has
    read already: the request's votes (`votes_of`) and `grants_at(step.site_id)`. At most one
    query, for the delegations of the people holding the tier."""
    if step.state != StepState.ACTIVE or request.state != RequestState.IN_REVIEW:
        return set()
    barred = {request.requester_id} | {
        person for vote in votes for person in vote.people if _acted(person, step, votes)
    }
    roles = ({step.role, step.escalated_role} - {""}) & DECIDING_ROLES
    holders, viewers = set(), set()
    for grant in grants:
        viewers.add(grant.user_id)
        regional_enough = step.held_at == HeldAt.SITE or grant.regional
        if grant.role in roles and grant.site_active and regional_enough:
            holders.add(grant.user_id)
    principals = holders - barred
    delegates = set()
    if principals:
        # The delegations in force that could cover this request's site and kind, read whole
        # and matched here: a site has hundreds of people, a list the database need not parse.
        standing_in = viewers - barred
        covering = Delegation.objects.filter(
            Q(site__isnull=True) | Q(site=request.site_id),
            Q(kind="") | Q(kind=request.kind),
            delegation_in_force(at),
            delegator__is_active=True,
        ).values_list("delegate", "delegator", "site", "kind", "max_amount")
        for delegate, *scope in covering:
            if scope[0] not in principals or delegate not in standing_in:
                continue
            cover = Cover(0, scope[0], scope[1], scope[2], scope[3], at)
            if cover.reaches(request):
                delegates.add(delegate)
    return principals | delegates
