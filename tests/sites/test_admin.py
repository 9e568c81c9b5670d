import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from sites.models import Membership, MembershipChange, Site, SiteUserObjectPermission
from sites.policies import Capability, may
from tests.factories import UserFactory


@pytest.fixture
def admin_client(client, db):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.admin = admin
    return client


def test_admin_grants_a_region_role_and_the_grant_is_recorded(admin_client, region_a, site_a1):
    user = UserFactory(username="newcomer")

    response = admin_client.post(
        reverse("admin:sites_membership_add"),
        {
            "user": user.pk,
            "role": "regional_manager",
            "region": region_a.pk,
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
            "note": "joined Benelux",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content
    membership = Membership.objects.get(user=user)
    assert membership.granted_by == admin_client.admin
    assert membership.changes.get().actor == admin_client.admin
    assert may(user, Capability.DECIDE, site_a1)


def test_admin_form_refuses_a_membership_without_scope_and_writes_nothing(admin_client, db):
    user = UserFactory(username="newcomer")

    response = admin_client.post(
        reverse("admin:sites_membership_add"),
        {
            "user": user.pk,
            "role": "finance",
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "exactly one site or one region" in response.text
    assert not Membership.objects.exists()


def test_admin_ends_memberships_now_instead_of_deleting(admin_client, site_manager, site_a1):
    membership = Membership.objects.get(user=site_manager)
    changelist = reverse("admin:sites_membership_changelist")

    admin_client.post(changelist, {"action": "end_now", "_selected_action": [membership.pk]})

    assert not may(site_manager, Capability.VIEW, site_a1)
    assert MembershipChange.objects.filter(membership=membership, action="ended").exists()
    delete = admin_client.get(reverse("admin:sites_membership_delete", args=[membership.pk]))
    assert delete.status_code == 403


def test_site_added_in_the_admin_is_covered_by_region_roles(
    admin_client, regional_manager, region_a
):
    response = admin_client.post(
        reverse("admin:sites_site_add"),
        {
            "code": "A9",
            "name": "New warehouse",
            "region": region_a.pk,
            "time_zone": "Europe/Amsterdam",
            "currency": "EUR",
            "odoo_company_id": 1,
            "active": "on",
            "opens_at": "07:00",
            "closes_at": "17:00",
            # Ticked weekdays, in any order: the site keeps them as ISO digits.
            "business_days": ["6", "1", "2", "3", "4", "5"],
        },
    )

    assert response.status_code == 302, response.content
    site = Site.objects.get(code="A9")
    assert SiteUserObjectPermission.objects.filter(content_object=site).exists()
    assert may(regional_manager, Capability.DECIDE, site)
    assert (site.opens_at.hour, site.closes_at.hour, site.business_days) == (7, 17, "123456")
    listed = admin_client.get(reverse("admin:sites_site_changelist")).text
    assert "Mon–Sat 07:00–17:00" in listed and "ISO" not in listed
    form = admin_client.get(reverse("admin:sites_site_change", args=[site.pk])).text
    ticked = re.findall(r'name="business_days" value="(\d)"[^>]*checked', form)
    assert ticked == ["1", "2", "3", "4", "5", "6"]


def test_admin_edits_a_note_and_the_change_is_recorded(admin_client, site_manager):
    membership = Membership.objects.get(user=site_manager)

    response = admin_client.post(
        reverse("admin:sites_membership_change", args=[membership.pk]),
        {
            "valid_from_0": membership.valid_from.strftime("%Y-%m-%d"),
            "valid_from_1": membership.valid_from.strftime("%H:%M:%S"),
            "note": "covers the night shift",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content
    membership.refresh_from_db()
    assert membership.note == "covers the night shift"
    assert membership.changes.filter(action="changed").get().actor == admin_client.admin


def test_staff_administrator_sees_only_the_sites_they_administer(client, administrator, site_b1):
    administrator.is_staff = True
    administrator.save()
    administrator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_site", "view_membership"])
    )
    client.force_login(administrator)

    page = client.get(reverse("admin:sites_site_changelist")).text

    assert "Site A1" in page and "Site A2" in page
    assert "Site B1" not in page
    other = client.get(reverse("admin:sites_site_change", args=[site_b1.pk]))
    # Outside the administered sites looks absent: 404, not the admin's redirect naming the id.
    assert other.status_code == 404


def test_ending_memberships_in_the_admin_says_how_many_in_words(admin_client, site_manager):
    membership = Membership.objects.get(user=site_manager)
    changelist = reverse("admin:sites_membership_changelist")

    response = admin_client.post(
        changelist, {"action": "end_now", "_selected_action": [membership.pk]}, follow=True
    )

    assert "Ended 1 membership; 0 had already ended." in response.text
    assert "(s)" not in response.text
