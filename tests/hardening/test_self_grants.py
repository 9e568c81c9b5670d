"""No one gives themself decision rights: an administrator may neither grant themself a deciding
role nor hand someone's approvals to themself. Another administrator or a superuser must, and
the ledger names who did.

Every way a grant or a delegation is made ends in sites.services.membership_grant /
membership_update or approvals.services.delegation_create (the admin, the delegations page, the
API's delegate action, the administrators' hand-over, the demo seed); the refusals are checked
at the services and through the admin, the one place where an administrator chooses the person.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from approvals import services as approval_services
from approvals.models import Delegation
from portal.audit.models import AuditEvent
from sites import services as site_services
from sites.models import Membership
from sites.policies import Capability, may
from sites.roles import DECIDING_ROLES, Role
from tests.conftest import persona
from tests.factories import UserFactory


@pytest.fixture
def second_administrator(region_a, site_a1, site_a2):
    return persona("second.admin", Role.ADMIN, region=region_a)


def _rows():
    return (
        Membership.objects.count(),
        Delegation.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("role", sorted(DECIDING_ROLES))
def test_an_administrator_cannot_grant_themself_a_deciding_role(
    administrator, site_a1, region_a, role
):
    before = _rows()

    with pytest.raises(PermissionDenied, match="yourself"):
        site_services.membership_grant(
            actor=administrator, user=administrator, role=role, site=site_a1
        )
    with pytest.raises(PermissionDenied, match="yourself"):
        site_services.membership_grant(
            actor=administrator, user=administrator, role=role, region=region_a
        )

    assert _rows() == before
    assert not may(administrator, Capability.DECIDE, site_a1)


def test_a_superuser_cannot_grant_themself_a_deciding_role_either(site_a1):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)

    with pytest.raises(PermissionDenied, match="yourself"):
        site_services.membership_grant(
            actor=root, user=root, role=Role.REGIONAL_MANAGER, site=site_a1
        )

    assert not Membership.objects.filter(user=root).exists()


def test_another_administrator_grants_it_and_the_ledger_names_the_grantor(
    administrator, second_administrator, site_a1
):
    membership = site_services.membership_grant(
        actor=second_administrator, user=administrator, role=Role.SITE_MANAGER, site=site_a1
    )

    assert may(administrator, Capability.DECIDE, site_a1)
    event = AuditEvent.objects.get(action="membership.granted", object_id=str(membership.pk))
    assert event.actor == second_administrator
    assert event.after["granted_by"] == "second.admin"
    assert event.after["user"] == "administrator"


def test_a_role_that_decides_nothing_may_still_be_taken_by_oneself(administrator, site_a1):
    membership = site_services.membership_grant(
        actor=administrator, user=administrator, role=Role.AUDITOR, site=site_a1
    )

    assert membership.granted_by == administrator


def test_an_administrator_cannot_reopen_their_own_ended_deciding_role(
    administrator, second_administrator, site_a1
):
    now = timezone.now()
    membership = site_services.membership_grant(
        actor=second_administrator,
        user=administrator,
        role=Role.SITE_MANAGER,
        site=site_a1,
        valid_from=now - timedelta(days=30),
        valid_to=now - timedelta(days=1),
    )
    before = _rows()

    with pytest.raises(PermissionDenied, match="yourself"):
        site_services.membership_update(
            actor=administrator,
            membership=membership,
            valid_from=membership.valid_from,
            valid_to=None,
            note="back again",
        )
    with pytest.raises(PermissionDenied, match="yourself"):
        site_services.membership_update(
            actor=administrator,
            membership=membership,
            valid_from=now - timedelta(days=60),
            valid_to=membership.valid_to,
            note="",
        )

    assert _rows() == before
    membership.refresh_from_db()
    assert membership.valid_to == now - timedelta(days=1)
    # Shortening it, or ending it, stays possible: that takes rights away.
    site_services.membership_update(
        actor=administrator,
        membership=membership,
        valid_from=membership.valid_from,
        valid_to=now - timedelta(days=2),
        note="ended earlier",
    )


def test_an_administrator_cannot_hand_a_managers_approvals_to_themself(
    administrator, site_manager, site_a1
):
    now = timezone.now()
    before = _rows()

    with pytest.raises(PermissionDenied, match="yourself"):
        approval_services.delegation_create(
            actor=administrator,
            delegator=site_manager,
            delegate=administrator,
            starts_at=now,
            ends_at=now + timedelta(days=5),
            site=site_a1,
        )
    with pytest.raises(PermissionDenied, match="yourself"):
        approval_services.delegation_hand_over(
            actor=administrator,
            delegators=[site_manager],
            delegate=administrator,
            until=now + timedelta(days=5),
        )

    assert _rows() == before


def test_another_administrator_hands_them_over_and_the_ledger_names_who_did(
    administrator, second_administrator, site_manager, site_a1
):
    now = timezone.now()

    delegation = approval_services.delegation_create(
        actor=second_administrator,
        delegator=site_manager,
        delegate=administrator,
        starts_at=now,
        ends_at=now + timedelta(days=5),
        site=site_a1,
    )

    event = AuditEvent.objects.get(action="delegation.created", object_id=str(delegation.pk))
    assert (event.actor, event.on_behalf_of) == (second_administrator, site_manager)
    assert event.after["created_by"] == "second.admin"
    assert delegation.created_by == second_administrator


@pytest.fixture
def staff_client(client, administrator):
    administrator.is_staff = True
    administrator.save(update_fields=["is_staff"])
    administrator.user_permissions.set(Permission.objects.all())
    client.force_login(administrator)
    return client


def test_the_admin_refuses_a_self_grant_and_a_self_delegation(
    staff_client, administrator, site_manager, site_a1
):
    before = _rows()

    granted = staff_client.post(
        reverse("admin:sites_membership_add"),
        {
            "user": administrator.pk,
            "role": "finance",
            "site": site_a1.pk,
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
        },
    )
    now = timezone.now()
    delegated = staff_client.post(
        reverse("admin:approvals_delegation_add"),
        {
            "delegator": site_manager.pk,
            "delegate": administrator.pk,
            "starts_at_0": now.strftime("%Y-%m-%d"),
            "starts_at_1": now.strftime("%H:%M:%S"),
            "ends_at_0": (now + timedelta(days=5)).strftime("%Y-%m-%d"),
            "ends_at_1": "23:00:00",
            "site": site_a1.pk,
        },
    )

    assert granted.status_code == 200
    assert "grant yourself the finance role" in granted.content.decode()
    # The delegation form says why, next to the delegate.
    assert delegated.status_code == 200
    assert "approvals to yourself" in delegated.content.decode()
    assert _rows() == before
    assert not may(administrator, Capability.DECIDE, site_a1)
