from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sites import policies, services
from sites.models import Membership
from sites.policies import GRANTED_BY, Capability, sites_where
from sites.roles import DECIDING_ROLES, Role
from sites.selectors import site_list_for_user
from tests.factories import SiteFactory, UserFactory, grant


def codes(queryset) -> set[str]:
    return set(queryset.values_list("code", flat=True))


def test_site_role_covers_only_that_site(site_manager, site_a1, site_a2, site_b1):
    assert codes(sites_where(site_manager, Capability.DECIDE)) == {"A1"}


def test_region_role_covers_every_site_of_the_region(regional_manager, site_b1):
    assert codes(sites_where(regional_manager, Capability.DECIDE)) == {"A1", "A2"}


def test_region_role_covers_a_site_created_after_the_grant(regional_manager, region_a):
    SiteFactory(code="A3", region=region_a)

    assert codes(sites_where(regional_manager, Capability.DECIDE)) == {"A1", "A2", "A3"}


def test_site_moved_to_another_region_leaves_the_old_regions_reach(
    regional_manager, region_b, site_a2
):
    services.site_update(actor=None, site=site_a2, region=region_b)

    assert codes(sites_where(regional_manager, Capability.VIEW)) == {"A1"}


def test_site_moved_into_a_region_joins_its_reach(regional_manager, site_b1, region_a):
    services.site_update(actor=None, site=site_b1, region=region_a)

    assert codes(sites_where(regional_manager, Capability.VIEW)) == {"A1", "A2", "B1"}


def test_membership_past_its_end_grants_nothing_without_any_job(site_a1):
    user = UserFactory()
    grant(user, Role.SITE_MANAGER, site=site_a1, valid_to=timezone.now() + timedelta(hours=1))
    assert policies.may(user, Capability.DECIDE, site_a1)

    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert not sites_where(user, Capability.VIEW).exists()
        assert not policies.may(user, Capability.DECIDE, site_a1)
        assert not user.has_perm("sites.role_site_manager", site_a1)


def test_membership_ended_now_grants_nothing_from_that_moment(site_manager, site_a1):
    membership = Membership.objects.get(user=site_manager)

    services.membership_end(actor=None, membership=membership)

    assert not policies.may(site_manager, Capability.DECIDE, site_a1)


def test_membership_that_has_not_started_grants_nothing_yet(site_a1):
    user = UserFactory()
    starts = timezone.now() + timedelta(days=2)
    grant(user, Role.FINANCE, site=site_a1, valid_from=starts)

    assert not policies.may(user, Capability.DECIDE, site_a1)
    with time_machine.travel(starts + timedelta(seconds=1)):
        assert policies.may(user, Capability.DECIDE, site_a1)


def test_ending_one_of_two_overlapping_memberships_keeps_the_other(site_a1, region_a):
    user = UserFactory()
    on_site = grant(user, Role.REGIONAL_MANAGER, site=site_a1)
    grant(user, Role.REGIONAL_MANAGER, region=region_a)

    services.membership_end(actor=None, membership=on_site)

    assert user.has_perm("sites.role_regional_manager", site_a1)


def test_outsiders_site_list_holds_nothing_of_region_a(outsider, site_a1, site_a2):
    assert codes(site_list_for_user(outsider)) & {"A1", "A2"} == set()
    assert codes(site_list_for_user(outsider)) == {"B1"}


def test_user_without_any_role_has_an_empty_site_list(stranger, site_a1, site_b1):
    assert list(site_list_for_user(stranger)) == []


def test_deactivated_user_reaches_nothing(site_manager, site_a1):
    site_manager.is_active = False
    site_manager.save()

    assert not sites_where(site_manager, Capability.VIEW).exists()
    assert not site_manager.has_perm("sites.role_site_manager", site_a1)


def test_closed_site_stays_visible_to_auditors_but_takes_no_decisions(
    auditor, regional_manager, site_a2
):
    services.site_update(actor=None, site=site_a2, active=False)

    assert "A2" in codes(sites_where(auditor, Capability.AUDIT))
    assert "A2" not in codes(sites_where(regional_manager, Capability.DECIDE))


@pytest.mark.parametrize(
    ("persona", "capability", "allowed"),
    [
        ("requester", Capability.RAISE_REQUEST, True),
        ("requester", Capability.DECIDE, False),
        ("site_manager", Capability.DECIDE, True),
        ("site_manager", Capability.AUDIT, False),
        ("regional_manager", Capability.DECIDE, True),
        ("finance", Capability.WORK_EXCEPTIONS, True),
        ("finance", Capability.RAISE_REQUEST, False),
        ("auditor", Capability.AUDIT, True),
        ("auditor", Capability.DECIDE, False),
        ("auditor", Capability.RAISE_REQUEST, False),
        ("outsider", Capability.VIEW, False),
        ("stranger", Capability.VIEW, False),
    ],
)
def test_capabilities_at_site_a1(request, site_a1, persona, capability, allowed):
    user = request.getfixturevalue(persona)

    assert policies.may(user, capability, site_a1) is allowed


def test_only_deciding_roles_grant_the_decide_capability():
    assert GRANTED_BY[Capability.DECIDE] == DECIDING_ROLES
    assert set(DECIDING_ROLES) == {Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE}


def test_has_perm_answers_per_role_at_the_site(regional_manager, site_a1, site_b1):
    assert regional_manager.has_perm("sites.role_regional_manager", site_a1)
    assert not regional_manager.has_perm("sites.role_site_manager", site_a1)
    assert not regional_manager.has_perm("sites.role_regional_manager", site_b1)


@pytest.mark.parametrize(("regions", "sites_per_region"), [(1, 1), (6, 10)])
def test_scoping_is_one_query_however_many_sites_and_memberships(
    db, django_assert_num_queries, regions, sites_per_region
):
    user = UserFactory()
    for r in range(regions):
        sites = [SiteFactory(code=f"X{r}S{s}") for s in range(sites_per_region)]
        region = sites[0].region
        for site in sites[1:]:
            services.site_update(actor=None, site=site, region=region)
        grant(user, Role.REGIONAL_MANAGER, region=region)
        for site in sites:
            grant(user, Role.AUDITOR, site=site)

    with django_assert_num_queries(1):
        reach = list(site_list_for_user(user))

    assert len(reach) == regions * sites_per_region


def test_scope_nests_inside_another_query_as_one_query(
    django_assert_num_queries, regional_manager, requester, outsider, site_a1
):
    # Memberships point at a site, as approval requests and exception cases do.
    in_reach = Membership.objects.filter(
        policies.in_scope(regional_manager, Capability.DECIDE, site_field="site")
    )

    with django_assert_num_queries(1):
        rows = list(in_reach)

    assert [(m.user.username, m.site_id) for m in rows] == [("requester", site_a1.pk)]


def test_nested_scope_excludes_closed_sites_for_acting(regional_manager, requester, site_a1):
    services.site_update(actor=None, site=site_a1, active=False)

    deciding = Membership.objects.filter(
        policies.in_scope(regional_manager, Capability.DECIDE, site_field="site")
    )
    viewing = Membership.objects.filter(
        policies.in_scope(regional_manager, Capability.VIEW, site_field="site")
    )

    assert not deciding.exists()
    assert viewing.exists()


def test_nested_scope_gives_a_deactivated_user_nothing(regional_manager, requester):
    regional_manager.is_active = False
    regional_manager.save()

    rows = Membership.objects.filter(
        policies.in_scope(regional_manager, Capability.VIEW, site_field="site")
    )

    assert not rows.exists()


def test_a_grant_row_outside_its_memberships_scope_grants_nothing(regional_manager, site_b1):
    # What a grant racing a site's move could leave behind: a region-A row on a region-B site.
    membership = Membership.objects.get(user=regional_manager)
    services._write_grants([(membership, site_b1)], services._role_permissions())

    assert not policies.may(regional_manager, Capability.VIEW, site_b1)
    assert not regional_manager.has_perm("sites.role_regional_manager", site_b1)


def test_superuser_flag_grants_no_business_capability(site_a1):
    root = UserFactory(is_superuser=True, is_staff=True)

    assert not policies.may(root, Capability.DECIDE, site_a1)
    assert not sites_where(root, Capability.VIEW).exists()
    assert policies.may_administer_site(root, site_a1)


def test_granted_answers_like_may_from_grant_rows_already_read(site_a1, site_b1, region_a):
    auditor, buyer = UserFactory(), UserFactory()
    grant(auditor, Role.AUDITOR, region=region_a)
    grant(buyer, Role.REQUESTER, site=site_a1)
    for person in (auditor, buyer):
        rows = policies.grants_in_force([person.pk])
        for capability in Capability:
            for site in (site_a1, site_b1):
                expected = policies.may(person, capability, site)
                assert policies.granted(rows, capability, site.pk) == expected
            expected = sites_where(person, capability).exists()
            assert policies.granted(rows, capability) == expected


def test_people_at_a_site_are_its_grants_and_their_holders_by_username(site_a1, site_b1, region_a):
    both = UserFactory(username="both", first_name="Bo", last_name="Th")
    grant(both, Role.SITE_MANAGER, site=site_a1)
    grant(both, Role.AUDITOR, region=region_a)
    grant(UserFactory(username="another.region"), Role.FINANCE, site=site_b1)
    gone = UserFactory(username="gone")
    grant(gone, Role.REQUESTER, site=site_a1)
    gone.is_active = False
    gone.save()
    grant(UserFactory(username="able"), Role.REQUESTER, site=site_a1)

    grants, people = policies.people_at(site_a1.pk)

    assert sorted(grants, key=repr) == sorted(policies.grants_at(site_a1.pk), key=repr)
    assert [person.username for person in people] == ["able", "both"]
    assert {grant.user_id for grant in grants} == {person.pk for person in people}
    assert (people[1].pk, people[1].get_full_name()) == (both.pk, "Bo Th")
