from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from sites import policies, services
from sites.models import Membership, MembershipChange, Site, SiteUserObjectPermission
from sites.policies import Capability
from sites.roles import Role
from tests.factories import UserFactory, grant


def grant_as(actor, user, role, **scope):
    return services.membership_grant(actor=actor, user=user, role=role, **scope)


def test_granting_records_who_granted_and_when(administrator, site_a1):
    admin, user = administrator, UserFactory()

    membership = services.membership_grant(actor=admin, user=user, role=Role.FINANCE, site=site_a1)

    change = membership.changes.get()
    assert (change.action, change.actor, change.before) == ("granted", admin, None)
    assert change.after["role"] == "finance"
    assert membership.granted_by == admin


def test_ending_records_the_period_before_and_after(administrator, site_manager):
    admin = administrator
    membership = Membership.objects.get(user=site_manager)

    services.membership_end(actor=admin, membership=membership)

    change = membership.changes.get(action=MembershipChange.Action.ENDED)
    assert change.actor == admin
    assert change.before["valid_to"] is None
    assert change.after["valid_to"] is not None


def test_changing_the_period_is_recorded(site_manager):
    membership = Membership.objects.get(user=site_manager)
    ends = timezone.now() + timedelta(days=30)

    services.membership_update(
        actor=None,
        membership=membership,
        valid_from=membership.valid_from,
        valid_to=ends,
        note=membership.note,
    )

    assert membership.changes.filter(action="changed").count() == 1
    membership.refresh_from_db()
    assert membership.valid_to == ends


def test_membership_at_a_site_and_a_region_at_once_is_refused(site_a1, region_a):
    user = UserFactory()

    with pytest.raises(ValidationError, match="exactly one site or one region"):
        grant(user, Role.FINANCE, site=site_a1, region=region_a)

    assert not Membership.objects.filter(user=user).exists()
    assert not SiteUserObjectPermission.objects.filter(user=user).exists()


def test_membership_without_a_scope_is_refused(db):
    with pytest.raises(ValidationError, match="exactly one site or one region"):
        grant(UserFactory(), Role.FINANCE)


def test_membership_ending_before_it_starts_is_refused(site_a1):
    user = UserFactory()
    now = timezone.now()

    with pytest.raises(ValidationError, match="end must not come before the start"):
        grant(user, Role.AUDITOR, site=site_a1, valid_from=now, valid_to=now - timedelta(days=1))

    assert not MembershipChange.objects.exists()


def test_unknown_role_is_refused(site_a1):
    with pytest.raises(ValidationError, match="role"):
        grant(UserFactory(), "emperor", site=site_a1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Olympus", "IANA time zone"),
        ("currency", "eur", "ISO 4217"),
        ("code", "a b", "capital letters"),
    ],
)
def test_site_with_a_bad_value_is_refused_and_not_written(region_a, field, value, message):
    values = {
        "code": "ZZ",
        "name": "Nowhere",
        "region": region_a,
        "time_zone": "UTC",
        "currency": "EUR",
        "odoo_company_id": 1,
    }

    with pytest.raises(ValidationError, match=message):
        services.site_create(actor=None, **{**values, field: value})

    assert not Site.objects.exists()


def test_region_grant_writes_one_row_per_site(regional_manager, site_a1, site_a2):
    rows = SiteUserObjectPermission.objects.filter(user=regional_manager)

    assert {row.content_object_id for row in rows} == {site_a1.pk, site_a2.pk}
    assert {row.permission.codename for row in rows} == {"role_regional_manager"}


def test_ending_a_membership_that_has_not_started_cancels_it(site_a1):
    starts = timezone.now() + timedelta(days=1)
    user = UserFactory()
    membership = grant(user, Role.AUDITOR, site=site_a1, valid_from=starts)

    assert services.membership_end(actor=None, membership=membership) is True

    membership.refresh_from_db()
    assert membership.valid_to == membership.valid_from == starts
    with time_machine.travel(starts + timedelta(hours=1)):
        assert not policies.may(user, Capability.AUDIT, site_a1)


def test_ending_an_ended_membership_changes_nothing(site_manager):
    membership = Membership.objects.get(user=site_manager)
    services.membership_end(actor=None, membership=membership)

    assert services.membership_end(actor=None, membership=membership) is False
    assert membership.changes.filter(action="ended").count() == 1


def test_changing_the_note_is_recorded_and_an_unchanged_save_is_not(site_manager):
    membership = Membership.objects.get(user=site_manager)
    period = {"valid_from": membership.valid_from, "valid_to": membership.valid_to}

    services.membership_update(actor=None, membership=membership, note="cover", **period)
    services.membership_update(actor=None, membership=membership, note="cover", **period)

    changes = membership.changes.filter(action="changed")
    assert [(c.before["note"], c.after["note"]) for c in changes] == [("", "cover")]


def test_site_manager_may_not_grant_roles(site_manager, site_a1):
    with pytest.raises(PermissionDenied):
        grant_as(site_manager, UserFactory(), Role.FINANCE, site=site_a1)

    assert not Membership.objects.filter(role=Role.FINANCE).exists()


def test_region_administrator_grants_in_the_region_but_not_outside(
    administrator, site_a1, region_a, site_b1
):
    grant_as(administrator, UserFactory(username="new.buyer"), Role.REQUESTER, site=site_a1)
    grant_as(administrator, UserFactory(username="new.rm"), Role.REGIONAL_MANAGER, region=region_a)

    with pytest.raises(PermissionDenied, match="site B1"):
        grant_as(administrator, UserFactory(), Role.REQUESTER, site=site_b1)
    assert Membership.objects.filter(granted_by=administrator).count() == 2


def test_only_a_superuser_adds_a_site_for_it_names_an_odoo_company(
    administrator, region_a, region_b, site_b1
):
    values = {"name": "New", "time_zone": "UTC", "currency": "EUR", "odoo_company_id": 1}
    root = UserFactory(username="root", is_superuser=True)

    with pytest.raises(PermissionDenied, match="superuser"):
        services.site_create(actor=administrator, code="A7", region=region_a, **values)
    services.site_create(actor=root, code="A8", region=region_a, **values)

    assert not Site.objects.filter(code="A7").exists()
    assert Site.objects.filter(code="A8", region=region_a).exists()


def test_only_a_superuser_changes_a_sites_odoo_company_or_warehouse(administrator, site_a1):
    before = (site_a1.odoo_company_id, site_a1.odoo_warehouse_id)

    with pytest.raises(PermissionDenied, match="Odoo"):
        services.site_update(actor=administrator, site=site_a1, odoo_warehouse_id=4242)
    with pytest.raises(PermissionDenied, match="Odoo"):
        services.site_update(actor=administrator, site=site_a1, odoo_company_id=77)
    services.site_update(actor=administrator, site=site_a1, name="Renamed")

    site_a1.refresh_from_db()
    assert (site_a1.odoo_company_id, site_a1.odoo_warehouse_id) == before
    assert site_a1.name == "Renamed"


def test_moving_a_site_needs_the_target_region_administered(administrator, site_a1, region_b):
    with pytest.raises(PermissionDenied, match="target region"):
        services.site_update(actor=administrator, site=site_a1, region=region_b)

    site_a1.refresh_from_db()
    assert site_a1.region.code == "RA"
