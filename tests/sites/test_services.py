from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from sites import services
from sites.models import Membership, MembershipChange, Site, SiteUserObjectPermission
from sites.roles import Role
from tests.factories import UserFactory, grant


def test_granting_records_who_granted_and_when(site_a1):
    admin, user = UserFactory(username="boss"), UserFactory()

    membership = services.membership_grant(actor=admin, user=user, role=Role.FINANCE, site=site_a1)

    change = membership.changes.get()
    assert (change.action, change.actor, change.before) == ("granted", admin, None)
    assert change.after["role"] == "finance"
    assert membership.granted_by == admin


def test_ending_records_the_period_before_and_after(site_manager):
    admin = UserFactory(username="boss")
    membership = Membership.objects.get(user=site_manager)

    services.membership_end(actor=admin, membership=membership)

    change = membership.changes.get(action=MembershipChange.Action.ENDED)
    assert change.actor == admin
    assert change.before["valid_to"] is None
    assert change.after["valid_to"] is not None


def test_changing_the_period_is_recorded(site_manager):
    membership = Membership.objects.get(user=site_manager)
    ends = timezone.now() + timedelta(days=30)

    services.membership_set_period(
        actor=None, membership=membership, valid_from=membership.valid_from, valid_to=ends
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

    with pytest.raises(ValidationError, match="end must come after the start"):
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
        services.site_create(**{**values, field: value})

    assert not Site.objects.exists()


def test_updating_an_unknown_site_field_is_refused(site_a1):
    with pytest.raises(ValidationError, match="Unknown site fields: colour"):
        services.site_update(site=site_a1, colour="red")


def test_region_grant_writes_one_row_per_site(regional_manager, site_a1, site_a2):
    rows = SiteUserObjectPermission.objects.filter(user=regional_manager)

    assert {row.content_object_id for row in rows} == {site_a1.pk, site_a2.pk}
    assert {row.permission.codename for row in rows} == {"role_regional_manager"}


def test_ending_a_membership_that_has_not_started_is_refused(site_a1):
    membership = grant(
        UserFactory(), Role.AUDITOR, site=site_a1, valid_from=timezone.now() + timedelta(days=1)
    )

    with pytest.raises(ValidationError, match="has not started"):
        services.membership_end(actor=None, membership=membership)
