"""approvals.authority agrees with the reference rule (tests/approvals/oracle.py) on random small
companies: the same tiers for everyone, the same options with the same delegation chosen, and the
same audience for every active tier.

Each example builds its company inside a savepoint that is rolled back afterwards: one or two
regions of a few sites (one may be closed), a handful of people (one may be deactivated) with
roles in force, ended or yet to start, delegations of every shape, and requests in review whose
tiers already carry votes. Memberships go through the real service so that the grant rows exist
as in production; tiers, votes and delegations are written as rows, because the rule must hold
for shapes the services would not make (a delegate outside the region, a delegator who raised
the request).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from approvals import authority
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Delegation,
    HeldAt,
    OnBreach,
    Outcome,
    PolicyRule,
    PolicyTier,
    PolicyVersion,
    RequestState,
    StepState,
)
from sites.roles import Role
from tests.approvals import oracle
from tests.factories import RegionFactory, SiteFactory, grant

User = get_user_model()
D = Decimal
AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NAMES = ("olga", "bram", "kees", "anna", "ties", "mila", "ezra")
SM, RM, FI = "site_manager", "regional_manager", "finance"
DECIDING = (SM, RM, FI)
# Weighted towards what can decide and what is in force, so that most examples have someone to
# decide; the first value of each choice is the one a falsifying example shrinks to.
ROLES = DECIDING * 3 + ("requester", "auditor", "admin")
KINDS = ("purchase", "write_off")
# Days from AT. Boundaries included: a period starting exactly at AT is in force, one ending
# at AT is not.
STARTS = (-30, -30, -30, 0, 1)
ENDS = (None, None, None, None, -1, 0, 10)
PERIODS = {
    "in force": (-5, 5),
    "starts now": (0, 1),
    "future": (1, 5),
    "ended": (-10, -1),
    "ends now": (-5, 0),
}
REVOKED = (None,) * 6 + (-1, 1)

ORACLE = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


class Grant(NamedTuple):
    person: int
    role: str
    site: int | None  # index into the sites, or None for the region below
    region: int
    starts: int
    ends: int | None


class Hand(NamedTuple):
    """A delegation, by indexes into the people and sites."""

    delegator: int
    delegate: int
    period: str
    site: int | None
    kind: str
    up_to: int | None
    revoked: int | None


class Tier(NamedTuple):
    state: str
    role: str
    held_at: str
    escalated: str


class Vote(NamedTuple):
    tier: int  # index into the request's tiers; the earlier round's tier comes last
    voter: int
    approve: bool
    on_behalf_of: int | None


class Req(NamedTuple):
    site: int
    requester: int
    kind: str
    amount: int
    round: int
    in_review: bool
    tiers: tuple[Tier, ...]
    earlier_round: bool
    votes: tuple[Vote, ...]


class World(NamedTuple):
    sites: tuple[int, ...]  # each site's region
    closed_site: int | None
    people: tuple[str, ...]
    deactivated: int | None
    grants: tuple[Grant, ...]
    hands: tuple[Hand, ...]
    requests: tuple[Req, ...]


def _tuples(strategy, max_size):
    return st.lists(strategy, max_size=max_size).map(tuple)


@st.composite
def worlds(draw) -> World:
    regions = draw(st.integers(1, 2))
    sites = sum(((region,) * draw(st.integers(1, 3)) for region in range(regions)), ())
    # Most companies have every site open and everyone active; None is what a failure shrinks to.
    closed = draw(st.sampled_from((None, None, None, *range(len(sites)))))
    people = tuple(draw(st.permutations(NAMES))[: draw(st.integers(3, 7))])
    person, site = st.integers(0, len(people) - 1), st.integers(0, len(sites) - 1)
    deactivated = draw(st.sampled_from((None, None, None, *range(len(people)))))
    grant_ = st.builds(
        Grant,
        person=person,
        role=st.sampled_from(ROLES),
        site=st.none() | site,
        region=st.integers(0, regions - 1),
        starts=st.sampled_from(STARTS),
        ends=st.sampled_from(ENDS),
    )
    tier = st.builds(
        Tier,
        state=st.sampled_from(("active", "active", "active", "waiting", "approved")),
        role=st.sampled_from(DECIDING),
        held_at=st.sampled_from(("site", "region")),
        escalated=st.sampled_from(("", "", *DECIDING)),
    )
    vote = st.builds(
        Vote,
        tier=st.integers(0, 3),
        voter=person,
        approve=st.booleans(),
        on_behalf_of=st.none() | person,
    )
    request = st.builds(
        Req,
        site=site,
        requester=person,
        kind=st.sampled_from(KINDS),
        amount=st.sampled_from((100, 1000, 10000)),
        round=st.integers(1, 2),
        in_review=st.sampled_from((True, True, True, False)),
        tiers=st.lists(tier, min_size=1, max_size=3).map(tuple),
        earlier_round=st.booleans(),
        votes=_tuples(vote, 3),
    )
    requests = draw(st.lists(request, min_size=1, max_size=3).map(tuple))
    grants = draw(_tuples(grant_, 2 * len(people)))
    held_by: dict[int, list[Req]] = {}
    # Random roles seldom meet a tier, so most tiers also get someone holding their role where
    # they need it: otherwise few examples would have anything to decide, or to hand on.
    for r in requests:
        for t in r.tiers:
            if draw(st.sampled_from((True, True, False))):
                at_site = t.held_at == "site" and draw(st.booleans())
                where = {"site": r.site if at_site else None, "region": sites[r.site]}
                holder = draw(person)
                held_by.setdefault(holder, []).append(r)
                grants += (Grant(holder, t.role, **where, starts=-30, ends=None),)
    # Delegators are mostly people who hold some tier's role, or little is handed on.
    deciders = sorted(held_by) or [0]
    hand = st.builds(
        Hand,
        delegator=st.sampled_from(deciders) | person,
        delegate=st.integers(1, len(people) - 1),  # how far along the people from the delegator
        period=st.sampled_from(["in force"] * 4 + list(PERIODS)),
        site=st.sampled_from((None, None, *range(len(sites)))),
        kind=st.sampled_from(("", "", *KINDS)),
        up_to=st.sampled_from((None, None, 500, 5000)),
        revoked=st.sampled_from(REVOKED),
    ).map(lambda hand: hand._replace(delegate=(hand.delegator + hand.delegate) % len(people)))
    hands = draw(st.lists(hand, min_size=1, max_size=4).map(tuple))
    # Most delegates may view the site of a request their delegator decides (any role, often
    # one that decides nothing); the rest stand in for someone at a site they cannot see.
    for h in hands:
        if draw(st.sampled_from((True, True, False))):
            r = draw(st.sampled_from(held_by.get(h.delegator, requests)))
            at_site = draw(st.booleans())
            where = {"site": r.site if at_site else None, "region": sites[r.site]}
            role = draw(st.sampled_from(("requester", "auditor", "admin") * 2 + DECIDING))
            grants += (Grant(h.delegate, role, **where, starts=-30, ends=None),)
    return World(
        sites=sites,
        closed_site=closed,
        people=people,
        deactivated=deactivated,
        grants=grants,
        hands=hands,
        requests=requests,
    )


@pytest.fixture
def tier_source(db):
    """A published tier for the steps to point at; the rule reads the step's own copy."""
    policy = ApprovalPolicy.objects.create(name="Oracle")
    version = PolicyVersion.objects.create(policy=policy, number=1)
    rule = PolicyRule.objects.create(version=version, position=1, name="Everything")
    tier = PolicyTier.objects.create(
        rule=rule, position=1, stage=1, role=Role.SITE_MANAGER, sla_hours=D("24")
    )
    return version, rule, tier


def _days(days: int | None) -> datetime | None:
    return None if days is None else AT + days * DAY


def _build(world: World, tier_source):
    regions = [RegionFactory() for _ in range(max(world.sites) + 1)]
    sites = [
        SiteFactory(region=regions[region], active=index != world.closed_site)
        for index, region in enumerate(world.sites)
    ]
    people = [
        User.objects.create(username=name, is_active=index != world.deactivated)
        for index, name in enumerate(world.people)
    ]
    for g in world.grants:
        where = {"site": sites[g.site]} if g.site is not None else {"region": regions[g.region]}
        ends = _days(g.ends)
        grant(
            people[g.person],
            g.role,
            valid_from=_days(g.starts),
            valid_to=None if ends is not None and ends < _days(g.starts) else ends,
            **where,
        )
    for h in world.hands:
        starts, ends = PERIODS[h.period]
        Delegation.objects.create(
            delegator=people[h.delegator],
            delegate=people[h.delegate],
            starts_at=_days(starts),
            ends_at=_days(ends),
            site=None if h.site is None else sites[h.site],
            kind=h.kind,
            max_amount=None if h.up_to is None else D(h.up_to),
            revoked_at=_days(h.revoked),
        )
    requests = [_request(spec, sites, people, tier_source) for spec in world.requests]
    return people, requests


def _request(spec: Req, sites, people, tier_source) -> ApprovalRequest:
    version, rule, tier = tier_source
    request = ApprovalRequest.objects.create(
        kind=spec.kind,
        state=RequestState.IN_REVIEW if spec.in_review else RequestState.APPROVED,
        site=sites[spec.site],
        requester=people[spec.requester],
        title="Oracle",
        reason="Oracle",
        amount=D(spec.amount),
        currency="EUR",
        amount_base=D(spec.amount),
        round=spec.round,
        policy_version=version,
        rule=rule,
    )
    steps = [
        _step(request, tier, spec.round, position, t)
        for position, t in enumerate(spec.tiers, start=1)
    ]
    if spec.round == 2 and spec.earlier_round:
        steps.append(_step(request, tier, 1, 1, Tier(StepState.CLOSED, SM, HeldAt.SITE, "")))
    voted, approved = set(), set()
    for vote in spec.votes:
        step, voter = steps[vote.tier % len(steps)], people[vote.voter]
        # The database allows one vote per person per tier and one approval per round.
        if (step.pk, voter.pk) in voted or (vote.approve and (step.round, voter.pk) in approved):
            continue
        voted.add((step.pk, voter.pk))
        if vote.approve:
            approved.add((step.round, voter.pk))
        Decision.objects.create(
            request=request,
            step=step,
            outcome=Outcome.APPROVE if vote.approve else Outcome.REJECT,
            actor=voter,
            on_behalf_of=None if vote.on_behalf_of is None else people[vote.on_behalf_of],
            round=step.round,
            policy_version=version,
        )
    return request


def _step(request, tier, round_, position, t: Tier) -> ApprovalStep:
    return ApprovalStep.objects.create(
        request=request,
        site=request.site,
        tier=tier,
        round=round_,
        position=position,
        stage=position,
        state=t.state,
        role=t.role,
        held_at=t.held_at,
        escalated_role=t.escalated,
        quorum=1,
        sla_hours=D("24"),
        on_breach=OnBreach.ESCALATE,
    )


def _step_ids(condition) -> set[int]:
    return set(ApprovalStep.objects.filter(condition).values_list("pk", flat=True))


def _agrees(people, requests):
    steps_of = {request.pk: set(request.steps.values_list("pk", flat=True)) for request in requests}
    decides = {person.pk: _step_ids(oracle.decidable_steps(person, at=AT)) for person in people}
    for person in people:
        who = person.username
        theirs = authority.Authority.of(person, at=AT)
        assert _step_ids(theirs.steps()) == decides[person.pk], who
        # The many-request read (the inbox) and the one-request read (a decision) agree.
        many = theirs.options_for(requests)
        for request in requests:
            got = [(o.step.pk, o.on_behalf_of_id, o.delegation_id) for o in theirs.options(request)]
            assert [
                (o.step.pk, o.on_behalf_of_id, o.delegation_id) for o in many.get(request.pk, [])
            ] == got, (who, request.pk)
            # The reference's options are a subset of its tiers: none where it decides none.
            want = (
                [
                    (o.step.pk, o.on_behalf_of_id, o.delegation_id)
                    for o in oracle.decision_options(person, request, at=AT)
                ]
                if decides[person.pk] & steps_of[request.pk]
                else []
            )
            assert got == want, (who, request.pk)
            # The same options from the tiers and votes a page has read already.
            among = theirs.options_among(
                request,
                list(request.steps.order_by("position", "pk")),
                authority.votes_of(request.decisions.all()),
            )
            assert sorted((o.step.pk, o.on_behalf_of_id, o.delegation_id) for o in among) == sorted(
                got
            ), (who, request.pk)
            assert [o.step.position for o in among] == [
                o.step.position for o in theirs.options(request)
            ]
            if any(on_behalf_of for _, on_behalf_of, _ in want):
                event("someone decides through a delegation")
    # Everyone in the database is among `people`: oracle.audience, from the sets already read.
    by_name = sorted(people, key=lambda person: person.username)
    for step in ApprovalStep.objects.filter(state=StepState.ACTIVE).select_related("request"):
        got = [person.username for person in authority.audience(step, at=AT)]
        want = [person.username for person in by_name if step.pk in decides[person.pk]]
        assert got == want, step.pk
        event(f"an active tier with {len(want)} people to decide it")


@pytest.mark.django_db
@ORACLE
@given(world=worlds())
def test_authority_agrees_with_the_reference_rule(tier_source, world):
    # Hypothesis prints each field of a failing company on its own line.
    note("\n".join(f"{field}={value!r}" for field, value in world._asdict().items()))
    with transaction.atomic():
        try:
            _agrees(*_build(world, tier_source))
        finally:
            transaction.set_rollback(True)


def test_nobody_signed_in_decides_what_a_site_manager_decides(tier_source):
    site = SiteFactory(region=RegionFactory())
    requester = User.objects.create(username="olga")
    manager = User.objects.create(username="bram")
    grant(manager, Role.SITE_MANAGER, site=site, valid_from=AT - DAY)
    version, rule, tier = tier_source
    request = ApprovalRequest.objects.create(
        kind="purchase",
        state=RequestState.IN_REVIEW,
        site=site,
        requester=requester,
        title="Oracle",
        reason="Oracle",
        amount=D("1"),
        currency="EUR",
        amount_base=D("1"),
        policy_version=version,
        rule=rule,
    )
    step = ApprovalStep.objects.create(
        request=request,
        site=site,
        tier=tier,
        position=1,
        stage=1,
        state=StepState.ACTIVE,
        role=Role.SITE_MANAGER,
        held_at=HeldAt.SITE,
        quorum=1,
        sla_hours=D("24"),
        on_breach=OnBreach.ESCALATE,
    )

    nobody = authority.Authority.of(AnonymousUser(), at=AT)
    assert _step_ids(nobody.steps()) == set()
    assert nobody.options(request) == []
    assert _step_ids(authority.Authority.of(manager, at=AT).steps()) == {step.pk}
    assert [person.username for person in authority.audience(step, at=AT)] == ["bram"]
