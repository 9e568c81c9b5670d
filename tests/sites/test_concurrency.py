"""Grants racing site changes, on a real database with real transactions."""

import threading
from functools import partial

import pytest
from django.db import connection

from sites import services
from sites.models import Membership, SiteUserObjectPermission
from sites.policies import Capability, sites_where
from sites.roles import Role
from tests.factories import RegionFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs row locks between connections; SQLite serialises every writer anyway",
)


def run_together(*actions) -> None:
    barrier = threading.Barrier(len(actions))
    errors = []

    def run(action):
        try:
            barrier.wait()
            action()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_region_grants_racing_site_moves_and_creations_end_consistent():
    region_a, region_b = RegionFactory(code="RA"), RegionFactory(code="RB")
    for round_ in range(12):
        moving = SiteFactory(code=f"M{round_}", region=region_a)
        user = UserFactory(username=f"manager{round_}")
        run_together(
            partial(
                services.membership_grant,
                actor=None,
                user=user,
                role=Role.REGIONAL_MANAGER,
                region=region_a,
            ),
            partial(services.site_update, actor=None, site=moving, region=region_b),
            partial(SiteFactory, code=f"N{round_}", region=region_a),
        )

        in_region_a = set(region_a.sites.values_list("code", flat=True))
        reach = set(sites_where(user, Capability.VIEW).values_list("code", flat=True))
        assert reach == in_region_a
        membership = Membership.objects.get(user=user)
        rows = SiteUserObjectPermission.objects.filter(membership=membership)
        assert set(rows.values_list("content_object__code", flat=True)) == in_region_a
