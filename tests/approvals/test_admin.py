"""The approvals admin shows everything and changes nothing behind the services' back."""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, Delegation
from portal.audit.models import AuditEvent
from tests.approvals.conftest import raise_request


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-1")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "name",
    [
        "approvalpolicy",
        "policyversion",
        "policytier",
        "approvalrequest",
        "delegation",
        "currencyrate",
    ],
)
def test_every_approvals_admin_list_opens(superuser_client, matrix, requester, site_a1, name):
    raise_request(requester, site_a1, amount="1000")

    response = superuser_client.get(reverse(f"admin:approvals_{name}_changelist"))

    assert response.status_code == 200


def test_requests_cannot_be_edited_or_deleted_in_the_admin(
    superuser_client, matrix, requester, site_a1
):
    request = raise_request(requester, site_a1, amount="1000")

    page = superuser_client.get(
        reverse("admin:approvals_approvalrequest_change", args=[request.pk])
    )
    delete = superuser_client.post(
        reverse("admin:approvals_approvalrequest_delete", args=[request.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert delete.status_code == 403
    assert ApprovalRequest.objects.filter(pk=request.pk).exists()


def test_delegation_added_in_the_admin_goes_through_the_service(
    superuser_client, matrix, site_manager, colleague
):
    start = timezone.now()
    response = superuser_client.post(
        reverse("admin:approvals_delegation_add"),
        {
            "delegator": site_manager.pk,
            "delegate": colleague.pk,
            "starts_at_0": start.strftime("%Y-%m-%d"),
            "starts_at_1": start.strftime("%H:%M:%S"),
            "ends_at_0": (start + timedelta(days=3)).strftime("%Y-%m-%d"),
            "ends_at_1": start.strftime("%H:%M:%S"),
            "kind": "",
            "note": "Holiday",
        },
    )

    assert response.status_code == 302, response.content
    delegation = Delegation.objects.get()
    assert delegation.created_by.username == "root"


def _admin_delegation(delegator, delegate, site=None) -> dict:
    start = timezone.now()
    return {
        "delegator": delegator.pk,
        "delegate": delegate.pk,
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": start.strftime("%H:%M:%S"),
        "ends_at_0": (start + timedelta(days=3)).strftime("%Y-%m-%d"),
        "ends_at_1": start.strftime("%H:%M:%S"),
        "site": site.pk if site else "",
        "kind": "",
        "note": "Holiday",
    }


@pytest.mark.parametrize(
    ("at_site", "reason"),
    [(False, "holds no role in Region A"), (True, "holds no role at A1")],
)
def test_admin_refuses_a_delegate_from_another_region_and_writes_nothing(
    superuser_client, matrix, site_manager, site_a1, outsider, at_site, reason
):
    form = _admin_delegation(site_manager, outsider, site_a1 if at_site else None)

    response = superuser_client.post(reverse("admin:approvals_delegation_add"), form)

    assert response.status_code == 200
    assert reason in html.unescape(response.text)
    assert not Delegation.objects.exists()
    assert not AuditEvent.objects.filter(action="delegation.created").exists()


def test_admin_shows_a_backwards_period_on_the_form(
    superuser_client, matrix, site_manager, colleague
):
    form = _admin_delegation(site_manager, colleague)
    form["ends_at_0"], form["starts_at_0"] = form["starts_at_0"], form["ends_at_0"]

    response = superuser_client.post(reverse("admin:approvals_delegation_add"), form)

    assert response.status_code == 200
    assert "A delegation must end after it starts." in response.text
    assert not Delegation.objects.exists()
