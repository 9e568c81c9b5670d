"""What a staff member who is not a superuser can change through Django's admin.

The read side (every admin page, filter, choice and autocomplete, in scope and out of it) is in
the authorization matrix (test_authz_matrix.py). These are the writes: a staff administrator of
region A who holds every Django model permission must not be able to make themself a superuser,
reach another region through a form's choices, or change what belongs to the whole company.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import CurrencyRate, Delegation
from portal.audit.models import AuditEvent
from portal.webhooks.models import WebhookSecret, WebhookSource
from sites.models import Membership
from sites.roles import Role
from tests.conftest import persona
from tests.factories import UserFactory, grant


@pytest.fixture
def staff_admin(administrator):
    """The administrator of region A, made staff and given every model permission."""
    administrator.is_staff = True
    administrator.save(update_fields=["is_staff"])
    administrator.user_permissions.set(Permission.objects.all())
    return administrator


@pytest.fixture
def staff_client(client, staff_admin):
    client.force_login(staff_admin)
    return client


def _user_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "groups": [],
        "user_permissions": [],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "initial-date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return data


def test_a_staff_administrator_cannot_make_themself_a_superuser(staff_client, staff_admin):
    group = Group.objects.create(name="Everything")
    group.permissions.set(Permission.objects.all())

    response = staff_client.post(
        reverse("admin:auth_user_change", args=[staff_admin.pk]),
        _user_form(staff_admin, first_name="Ada", groups=[group.pk]),
    )

    assert response.status_code in {200, 302, 403}
    staff_admin.refresh_from_db()
    assert not staff_admin.is_superuser
    assert not staff_admin.groups.exists()
    # The fields they may change still change: the refusal is of the privileges alone.
    assert staff_admin.first_name == "Ada" or response.status_code == 403


def test_a_staff_administrator_cannot_make_a_colleague_staff_or_superuser(
    staff_client, site_manager
):
    response = staff_client.post(
        reverse("admin:auth_user_change", args=[site_manager.pk]),
        _user_form(site_manager, first_name="Sam"),
    )

    assert response.status_code in {200, 302, 403}
    site_manager.refresh_from_db()
    assert (site_manager.is_staff, site_manager.is_superuser) == (False, False)


def test_a_staff_administrator_cannot_change_someone_reaching_beyond_their_sites(
    staff_client, site_b1, region_a
):
    # A regional manager of both regions: an administrator of region A alone must not be able
    # to change this account (its password, its address), which reaches region B.
    both = persona("rm.both", Role.REGIONAL_MANAGER, region=region_a)
    grant(both, Role.REQUESTER, site=site_b1)
    old_password = both.password

    response = staff_client.post(
        reverse("admin:auth_user_password_change", args=[both.pk]),
        {"password1": "A-new-passw0rd-here", "password2": "A-new-passw0rd-here"},
    )

    assert response.status_code in {403, 404}
    both.refresh_from_db()
    assert both.password == old_password


def test_a_staff_administrator_cannot_grant_a_role_at_another_regions_site(staff_client, site_b1):
    newcomer = UserFactory(username="newcomer")

    response = staff_client.post(
        reverse("admin:sites_membership_add"),
        {
            "user": newcomer.pk,
            "role": "requester",
            "site": site_b1.pk,
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code in {200, 403}
    assert not Membership.objects.filter(user=newcomer).exists()


def test_the_odoo_ids_of_a_site_are_for_superusers_only(staff_client, site_a1):
    before = (site_a1.odoo_company_id, site_a1.odoo_warehouse_id)

    response = staff_client.post(
        reverse("admin:sites_site_change", args=[site_a1.pk]),
        {
            "name": "Renamed",
            "region": site_a1.region_id,
            "time_zone": site_a1.time_zone,
            "currency": site_a1.currency,
            "odoo_company_id": 77,
            "odoo_warehouse_id": 4242,
            "active": "on",
            "opens_at": "08:00",
            "closes_at": "18:00",
            "business_days": ["1", "2", "3", "4", "5"],
        },
    )

    assert response.status_code in {200, 302, 403}
    site_a1.refresh_from_db()
    assert (site_a1.odoo_company_id, site_a1.odoo_warehouse_id) == before


def test_exchange_rates_and_webhook_secrets_are_for_superusers_only(staff_client):
    source = WebhookSource.objects.create(name="carrier-x")
    rates, secrets = CurrencyRate.objects.count(), WebhookSecret.objects.count()

    rate = staff_client.post(
        reverse("admin:approvals_currencyrate_add"),
        {"currency": "USD", "units_per_base": "1.10", "valid_from_0": "2026-01-01"},
    )
    secret = staff_client.post(
        reverse("admin:webhooks_webhooksecret_add"),
        {"source": source.pk, "secret": "whsec_c2VjcmV0LWZyb20tYS1zdGFmZi1hZG1pbg=="},
    )
    sources = staff_client.get(reverse("admin:webhooks_webhooksource_changelist"))

    assert (rate.status_code, secret.status_code, sources.status_code) == (403, 403, 403)
    assert (CurrencyRate.objects.count(), WebhookSecret.objects.count()) == (rates, secrets)


def test_a_superuser_still_changes_everything(client, site_a1, site_manager):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)

    rate = client.post(
        reverse("admin:approvals_currencyrate_add"),
        {
            "currency": "USD",
            "units_per_base": "1.10",
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
        },
    )
    promoted = client.post(
        reverse("admin:auth_user_change", args=[site_manager.pk]),
        _user_form(site_manager),
    )

    assert (rate.status_code, promoted.status_code) == (302, 302), promoted.content[:2000]
    assert CurrencyRate.objects.filter(currency="USD", units_per_base=Decimal("1.10")).exists()
    site_manager.refresh_from_db()
    assert site_manager.is_superuser


def test_revoking_a_delegation_one_may_not_manage_says_so_and_changes_nothing(
    staff_client, site_a1, site_b1, region_a, region_b
):
    # A regional manager of both regions delegates at site A1: the staff administrator of
    # region A sees the delegation (it is at their site) but does not administer every site of
    # the delegator, so the services refuse to revoke it; the admin says why, no error page.
    both = persona("rm.both", Role.REGIONAL_MANAGER, region=region_a)
    grant(both, Role.REGIONAL_MANAGER, region=region_b)
    colleague = persona("rm.a2", Role.REGIONAL_MANAGER, region=region_a)
    now = timezone.now()
    delegation = services.delegation_create(
        actor=both,
        delegator=both,
        delegate=colleague,
        starts_at=now,
        ends_at=now + timedelta(days=3),
        site=site_a1,
    )
    events = AuditEvent.objects.count()

    response = staff_client.post(
        reverse("admin:approvals_delegation_changelist"),
        {"action": "revoke_now", "_selected_action": [delegation.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert Delegation.objects.get(pk=delegation.pk).revoked_at is None
    assert AuditEvent.objects.count() == events
