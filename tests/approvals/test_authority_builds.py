"""A web request builds the person's authority once, and what it costs does not grow with them.

The inbox page and an approval each load the authority exactly once (counted at the loader),
and each runs the same number of queries whether the person holds one role or many, stands in
for one person or for several, and has three requests waiting or fifteen. (Someone who stands
in for nobody skips the inbox's "on behalf of" lookup, so their page costs two queries fewer.)
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import authority, services
from approvals.models import Decision
from sites.roles import Role
from tests.approvals.conftest import raise_request
from tests.conftest import persona
from tests.factories import grant


@pytest.fixture
def builds(monkeypatch):
    """The user ids the authority was loaded for, in order."""
    loaded = []
    real = authority._load

    def counting(user, at):
        loaded.append(user.pk)
        return real(user, at)

    monkeypatch.setattr(authority, "_load", counting)
    return loaded


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured)


def _stand_in(person, site_a1, names):
    """`person` stands in for one more site manager of A1 per name."""
    now = timezone.now()
    for name in names:
        absent = persona(name, Role.SITE_MANAGER, site=site_a1)
        services.delegation_create(
            actor=absent,
            delegator=absent,
            delegate=person,
            starts_at=now,
            ends_at=now + timedelta(days=3),
        )


def _widen(person, site_a1, site_a2, site_b1, region_b, requester, count: int):
    """More of everything the authority reads: roles, people the person stands in for, and
    requests waiting for them."""
    grant(person, Role.FINANCE, site=site_a2)
    grant(person, Role.REQUESTER, site=site_b1)
    grant(person, Role.AUDITOR, region=region_b)
    _stand_in(person, site_a1, ["absent1", "absent2", "absent3"])
    return [raise_request(requester, site_a1, amount="1000") for _ in range(count)]


def test_the_inbox_page_builds_the_authority_once_at_a_constant_cost(
    client, matrix, requester, site_manager, site_a1, site_a2, site_b1, region_b, builds
):
    waiting = [raise_request(requester, site_a1, amount="1000") for _ in range(3)]
    client.force_login(site_manager)
    url = reverse("inbox:home")
    alone = _queries(lambda: client.get(url))
    _stand_in(site_manager, site_a1, ["absent0"])
    builds.clear()

    narrow = _queries(lambda: client.get(url))
    assert builds == [site_manager.pk]

    waiting += _widen(site_manager, site_a1, site_a2, site_b1, region_b, requester, count=12)
    builds.clear()
    response = None

    def page():
        nonlocal response
        response = client.get(url)

    wide = _queries(page)

    assert response.status_code == 200
    assert builds == [site_manager.pk]
    assert wide == narrow
    assert alone <= narrow
    assert all(request.reference.encode() in response.content for request in waiting)


def test_an_approval_builds_the_authority_once_at_a_constant_cost(
    client, matrix, requester, site_manager, site_a1, site_a2, site_b1, region_b, builds
):
    first, second = (raise_request(requester, site_a1, amount="1000") for _ in range(2))
    client.force_login(site_manager)

    def approve(target):
        def post():
            response = client.post(reverse("approvals:approve", args=[target.pk]), {})
            assert response.status_code in (302, 303), response.status_code

        return post

    narrow = _queries(approve(first))
    assert builds == [site_manager.pk]

    _widen(site_manager, site_a1, site_a2, site_b1, region_b, requester, count=12)
    builds.clear()
    wide = _queries(approve(second))

    assert builds == [site_manager.pk]
    assert wide == narrow
    assert Decision.objects.filter(actor=site_manager, request__in=[first, second]).count() == 2
