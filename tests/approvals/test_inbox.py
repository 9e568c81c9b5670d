"""The inbox: what a person (or whoever they stand in for) can decide now, soonest due first."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals import services
from approvals.authority import Authority
from approvals.selectors import InboxFilters, inbox_for
from approvals.specs import RuleSpec, VersionSpec
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request, tier
from tests.conftest import persona
from tests.factories import grant

D = Decimal


@pytest.fixture
def clock(_working_morning):
    return _working_morning


def _delegate(delegator, delegate, **narrowing):
    now = timezone.now()
    return services.delegation_create(
        actor=delegator,
        delegator=delegator,
        delegate=delegate,
        starts_at=now,
        ends_at=now + timedelta(days=14),
        **narrowing,
    )


def _ids(page) -> list[int]:
    return [request.pk for request in page.requests]


# --- a fixed number of queries -------------------------------------------------------------


@pytest.fixture
def busy(matrix, site_a1, site_a2, site_b1, region_a, region_b, site_manager, staffed):
    """A deputy holding roles at every site and region, standing in for three managers."""
    deputy = persona("deputy", Role.SITE_MANAGER, site=site_a1)
    for site in (site_a2, site_b1):
        grant(deputy, Role.SITE_MANAGER, site=site)
    for region in (region_a, region_b):
        grant(deputy, Role.REGIONAL_MANAGER, region=region)
        grant(deputy, Role.FINANCE, region=region)
    for delegator in (site_manager, staffed["site_manager_a2"], staffed["regional_manager_b"]):
        _delegate(delegator, deputy)
    return deputy


@pytest.fixture
def crowded(matrix, requester, site_a1, site_a2, site_b1, staffed):
    """Sixty requests in review at three sites, half of them with two tiers."""
    requester_a2 = persona("requester.a2", Role.REQUESTER, site=site_a2)
    raisers = [(requester, site_a1)] * 30 + [(requester_a2, site_a2)] * 15
    raisers += [(staffed["requester_b"], site_b1)] * 15
    return [
        raise_request(person, site, amount="6000" if n % 2 else "1000", title=f"Order {n}")
        for n, (person, site) in enumerate(raisers)
    ]


@pytest.mark.parametrize("limit", [5, 50])
def test_inbox_is_four_queries_whatever_the_page_size_and_reach(
    crowded, site_manager, busy, limit, django_assert_num_queries
):
    # The person's authority (their roles in force and the delegations to them), the
    # soonest-due requests at the sites where they decide anything, and the rows of those that
    # are theirs to decide.
    with django_assert_num_queries(4):
        own = inbox_for(site_manager, limit=limit)
        [(r.site.code, r.requester.username) for r in own.requests]
    authority = Authority.of(busy)
    with django_assert_num_queries(2):
        wide = inbox_for(authority, limit=limit)
        [(r.site.code, r.requester.username) for r in wide.requests]

    assert busy.memberships.count() == 7
    assert len(own.requests) == min(limit, 30)
    assert len(wide.requests) == limit
    assert {r.site.code for r in wide.requests} >= {"A1"}


def test_following_pages_and_filters_are_two_queries_given_the_authority(
    crowded, busy, site_a2, django_assert_num_queries
):
    authority = Authority.of(busy)
    first = inbox_for(authority, limit=10)

    with django_assert_num_queries(2):
        second = inbox_for(
            authority,
            after=first.next_cursor,
            limit=10,
            filters=InboxFilters(site_id=site_a2.pk, kind="purchase", text="order", overdue=False),
        )

    assert second.requests
    assert all(r.site_id == site_a2.pk for r in second.requests)


def _reference_page(user, filters=None, after=None, limit=50) -> list[int]:
    """The inbox as one plain query: every waiting request tested in due order."""
    from django.db.models import Exists, OuterRef

    from approvals.models import ApprovalRequest, ApprovalStep, RequestState
    from approvals.selectors import _after, inbox_filtered

    steps = ApprovalStep.objects.filter(Authority.of(user).steps(), request=OuterRef("pk"))
    query = ApprovalRequest.objects.filter(Exists(steps), state=RequestState.IN_REVIEW)
    query = _after(inbox_filtered(query, filters or InboxFilters(), timezone.now()), after)
    return list(query.order_by("due_at", "pk").values_list("pk", flat=True)[:limit])


@pytest.mark.parametrize("batches", [1, 2, 4])
def test_pages_match_the_plain_permission_filter_when_most_candidates_are_not_theirs(
    crowded,
    regional_manager,
    site_manager,
    busy,
    batches,
    monkeypatch,
    django_assert_max_num_queries,
):
    # The regional manager decides only the second tier of the larger requests, so most of the
    # soonest-due requests at their sites are someone else's: the inbox reads further batches,
    # and with a single batch allowed it finishes with the plain query.
    from approvals import selectors

    monkeypatch.setattr(selectors, "INBOX_BATCHES", batches)
    for request in crowded[1:30:2]:
        services.request_approve(actor=site_manager, request_id=request.pk)
    for person in (regional_manager, busy, site_manager):
        cursor, walked = None, []
        while True:
            expected = _reference_page(person, after=cursor, limit=4)
            # Two a batch, the authority's two, and the last resort.
            with django_assert_max_num_queries(3 + 2 * batches):
                page = inbox_for(person, after=cursor, limit=4)
            assert _ids(page) == expected
            walked += expected
            cursor = page.next_cursor
            if cursor is None:
                break
        assert walked == _reference_page(person, limit=1000)
    assert _reference_page(regional_manager, limit=1000)


@pytest.mark.parametrize(("cap", "batches"), [(3, 1), (3, 3), (100, 3)])
@pytest.mark.parametrize(
    "filters", [InboxFilters(), InboxFilters(kind="purchase", min_amount=D("5000"))]
)
def test_the_head_is_the_first_page_with_its_counts(
    crowded,
    regional_manager,
    site_manager,
    busy,
    filters,
    cap,
    batches,
    monkeypatch,
    django_assert_max_num_queries,
):
    # Most of the soonest due requests at the regional manager's sites are someone else's, so
    # their head reads further batches, or with one batch allowed finishes with the plain
    # query; with a cap of 100 every batch runs out of requests.
    from approvals import selectors
    from approvals.models import ApprovalRequest

    monkeypatch.setattr(selectors, "COUNT_CAP", cap)
    monkeypatch.setattr(selectors, "INBOX_BATCHES", batches)
    for request in crowded[1:30:2]:
        services.request_approve(actor=site_manager, request_id=request.pk)
    late = crowded[0]
    late.due_at = timezone.now() - timedelta(hours=1)
    late.save(update_fields=["due_at"])
    totals = []
    for person in (regional_manager, busy, site_manager):
        authority = Authority.of(person)
        # Every request theirs to decide, by the plain one-query filter, counted up to the cap.
        every = _reference_page(person, filters, limit=1000)
        overdue = ApprovalRequest.objects.filter(pk__in=every, due_at__lt=authority.at).count()
        counts = {
            "total": min(len(every), cap),
            "overdue": min(overdue, cap),
            "more": len(every) > cap,
            "more_overdue": overdue > cap,
        }
        totals.append(len(every))
        for limit in (4, 50):
            page = inbox_for(authority, filters=filters, limit=limit)
            # A query a batch, at most the last resort, and the rows.
            with django_assert_max_num_queries(batches + 2):
                head = selectors.inbox_head(authority, filters, limit=limit)
                [(r.site.code, r.title, r.amount) for r in head.requests]

            assert _ids(head) == _ids(page)
            assert head.next_cursor == page.next_cursor
            assert head.counts == selectors.inbox_count(authority, filters) == counts
    assert any(totals)


# --- filters --------------------------------------------------------------------------------


@pytest.fixture
def mixed(matrix, requester, site_a1, site_a2, staffed, clock):
    """Requests of several kinds, sites and amounts; the first four are overdue by +25 h."""
    requester_a2 = persona("requester.a2", Role.REQUESTER, site=site_a2)
    made = {
        "pallets": raise_request(
            requester, site_a1, amount="1000", title="Pallets for dock 3", counterparty="Acme"
        ),
        "transfer": raise_request(
            requester, site_a1, kind="transfer", amount="100", title="Move cider to A2"
        ),
        "display": raise_request(
            requester_a2, site_a2, amount="3000", title="Chilled display", counterparty="Globex"
        ),
        "override": raise_request(
            requester_a2, site_a2, kind="price_override", amount="40", title="Price match"
        ),
    }
    clock.shift(timedelta(hours=20))
    made["batteries"] = raise_request(
        requester, site_a1, amount="2000", title="Forklift", reason="Battery swap before winter"
    )
    clock.move_to(WORKING_MORNING + timedelta(hours=25))
    return made


@pytest.fixture
def both_sites(site_a1, site_a2):
    manager = persona("sm.both", Role.SITE_MANAGER, site=site_a1)
    grant(manager, Role.SITE_MANAGER, site=site_a2)
    return manager


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (InboxFilters(), ["pallets", "transfer", "display", "override", "batteries"]),
        (InboxFilters(kind="transfer"), ["transfer"]),
        (InboxFilters(min_amount=D("1000"), max_amount=D("2000")), ["pallets", "batteries"]),
        (InboxFilters(min_amount=D("2500")), ["display"]),
        (InboxFilters(overdue=True), ["pallets", "transfer", "display", "override"]),
        (InboxFilters(text="globex"), ["display"]),
        (InboxFilters(text=" BATTERY "), ["batteries"]),
        (InboxFilters(text="dock"), ["pallets"]),
        (InboxFilters(text="nothing like it"), []),
        (InboxFilters(kind="purchase", overdue=True), ["pallets", "display"]),
    ],
)
def test_inbox_filters(mixed, both_sites, filters, expected):
    page = inbox_for(both_sites, filters=filters)

    assert _ids(page) == [mixed[name].pk for name in expected]


def test_inbox_filters_by_site(mixed, both_sites, site_a1, site_a2):
    at_a2 = inbox_for(both_sites, filters=InboxFilters(site_id=site_a2.pk))
    overdue_at_a1 = inbox_for(both_sites, filters=InboxFilters(site_id=site_a1.pk, overdue=True))

    assert _ids(at_a2) == [mixed["display"].pk, mixed["override"].pk]
    assert _ids(overdue_at_a1) == [mixed["pallets"].pk, mixed["transfer"].pk]


# --- keyset pagination ----------------------------------------------------------------------


def test_walking_every_page_returns_each_request_once_soonest_due_first(
    matrix, requester, site_a1, site_manager, clock
):
    # Purchases get 48 hours and transfers 4 here, so later requests are often due sooner,
    # and three transfers opened at the same instant share a due time.
    policy = services.policy_create(actor=None, name="A1 speeds", site=site_a1)
    rules = (
        RuleSpec(name="Purchases", kinds=("purchase",), tiers=(tier(Role.SITE_MANAGER, sla="48"),)),
        RuleSpec(name="Transfers", kinds=("transfer",), tiers=(tier(Role.SITE_MANAGER, sla="4"),)),
    )
    services.policy_publish(actor=None, policy=policy, spec=VersionSpec(rules=rules))
    raised = []
    for n in range(6):
        raised.append(raise_request(requester, site_a1, amount=str(1000 + n)))
        clock.shift(timedelta(minutes=3))
    clock.move_to(timezone.now(), tick=False)
    raised += [raise_request(requester, site_a1, kind="transfer", amount="10") for _ in range(3)]
    clock.move_to(timezone.now() + timedelta(minutes=1), tick=True)
    for _ in range(5):
        raised.append(raise_request(requester, site_a1, kind="transfer", amount="20"))
        clock.shift(timedelta(minutes=2))

    pages, cursor = [], None
    while True:
        page = inbox_for(site_manager, after=cursor, limit=4)
        pages.append(page.requests)
        cursor = page.next_cursor
        if cursor is None:
            break

    walked = [request for page in pages for request in page]
    assert [len(page) for page in pages] == [4, 4, 4, 2]
    assert len({r.pk for r in walked}) == len(walked) == len(raised)
    assert {r.pk for r in walked} == {r.pk for r in raised}
    assert [(r.due_at, r.pk) for r in walked] == sorted((r.due_at, r.pk) for r in walked)
    assert walked[0].kind == "transfer" and walked[-1].kind == "purchase"
    tied = [r for r in walked if r.due_at == walked[0].due_at]
    assert [r.pk for r in tied] == sorted(r.pk for r in raised[6:9])


def test_exact_page_leaves_no_empty_page_behind(matrix, requester, site_a1, site_manager):
    for n in range(4):
        raise_request(requester, site_a1, amount=str(1000 + n))

    page = inbox_for(site_manager, limit=4)

    assert len(page.requests) == 4
    assert page.next_cursor is None


# --- who sees what --------------------------------------------------------------------------


def test_delegate_sees_what_their_delegator_can_decide(
    matrix, requester, site_a1, site_a2, site_manager, colleague, staffed
):
    requester_a2 = persona("requester.a2", Role.REQUESTER, site=site_a2)
    purchase = raise_request(requester, site_a1, amount="1000")
    transfer = raise_request(requester, site_a1, kind="transfer", amount="100")
    raise_request(requester_a2, site_a2, amount="1000")
    assert inbox_for(colleague).requests == []

    _delegate(site_manager, colleague)

    assert _ids(inbox_for(colleague)) == _ids(inbox_for(site_manager)) == [purchase.pk, transfer.pk]
    services.request_approve(actor=site_manager, request_id=purchase.pk)
    assert _ids(inbox_for(colleague)) == [transfer.pk]


def test_narrowed_delegation_shows_only_what_it_covers(
    matrix, requester, site_a1, site_manager, colleague
):
    raise_request(requester, site_a1, amount="1000")
    transfer = raise_request(requester, site_a1, kind="transfer", amount="100")

    _delegate(site_manager, colleague, kind="transfer")

    assert _ids(inbox_for(colleague)) == [transfer.pk]


def test_requesters_never_see_their_own_requests(
    matrix, requester, site_a1, site_manager, colleague
):
    other_manager = persona("sm.a1.second", Role.SITE_MANAGER, site=site_a1)
    own = raise_request(site_manager, site_a1, amount="1000")
    _delegate(other_manager, site_manager)
    _delegate(site_manager, colleague)

    assert inbox_for(site_manager).requests == []
    assert inbox_for(other_manager).requests == [own]
    # Standing in for the requester does not let a delegate decide the requester's own request.
    assert inbox_for(colleague).requests == []
    assert inbox_for(requester).requests == []


def test_who_approved_the_first_tier_does_not_get_the_second(
    matrix, requester, site_a1, regional_manager
):
    dual = persona("dual", Role.SITE_MANAGER, site=site_a1)
    grant(dual, Role.REGIONAL_MANAGER, region=site_a1.region)
    target = raise_request(requester, site_a1, amount="6000")
    assert inbox_for(dual).requests == [target]
    assert inbox_for(regional_manager).requests == []

    services.request_approve(actor=dual, request_id=target.pk)

    assert inbox_for(dual).requests == []
    assert inbox_for(regional_manager).requests == [target]


def test_a_delegate_who_approved_the_first_tier_does_not_get_the_second_for_someone_else(
    matrix, requester, site_a1, site_manager, regional_manager
):
    target = raise_request(requester, site_a1, amount="6000")
    _delegate(regional_manager, site_manager)

    services.request_approve(actor=site_manager, request_id=target.pk)

    assert inbox_for(site_manager).requests == []
    assert inbox_for(regional_manager).requests == [target]
