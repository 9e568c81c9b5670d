"""Queue rules and deadlines are edited in the admin, through the services; cases are read-only."""

import pytest
from django.urls import reverse

from exceptions.models import ExceptionCase, QueueRule
from exceptions.services import case_raise, case_resolve
from portal.audit.models import AuditEvent


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-1")


@pytest.fixture
def superuser_client(client, root):
    client.force_login(root)
    return client


@pytest.mark.parametrize("name", ["queuerule", "casedeadline", "resolutioncode", "exceptioncase"])
def test_every_exceptions_admin_list_opens(superuser_client, site_a1, name):
    case_raise(
        kind="asn_conflict",
        site=site_a1,
        severity="low",
        title="ASN differs",
        source="manual",
        dedupe_key="asn-1",
        payload={},
        evidence={},
    )

    response = superuser_client.get(reverse(f"admin:exceptions_{name}_changelist"))

    assert response.status_code == 200


def test_a_queue_rule_added_in_the_admin_is_audited_with_its_author(
    superuser_client, root, site_a1
):
    response = superuser_client.post(
        reverse("admin:exceptions_queuerule_add"),
        {"kind": "shipment_delay", "min_severity": "high", "site": site_a1.pk, "queue": "finance"},
    )

    assert response.status_code == 302
    rule = QueueRule.objects.get()
    event = AuditEvent.objects.get(action="queue_rule.created")
    assert (event.actor, event.site, event.object_id) == (root, site_a1, str(rule.pk))


def test_a_rule_for_both_a_site_and_a_region_is_refused_in_the_form(superuser_client, site_a1):
    response = superuser_client.post(
        reverse("admin:exceptions_queuerule_add"),
        {"site": site_a1.pk, "region": site_a1.region.pk, "queue": "finance"},
    )

    assert response.status_code == 200
    assert b"not both" in response.content
    assert not QueueRule.objects.exists()


def test_staff_without_superuser_rights_cannot_change_queue_rules(client, django_user_model):
    staff = django_user_model.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("admin:exceptions_queuerule_add"))

    assert response.status_code == 403


def test_cases_cannot_be_changed_or_deleted_in_the_admin(superuser_client, site_a1):
    case, _ = case_raise(
        kind="asn_conflict",
        site=site_a1,
        severity="low",
        title="ASN differs",
        source="manual",
        dedupe_key="asn-1",
        payload={},
        evidence={},
    )

    page = superuser_client.get(reverse("admin:exceptions_exceptioncase_change", args=[case.pk]))
    delete = superuser_client.post(
        reverse("admin:exceptions_exceptioncase_delete", args=[case.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert delete.status_code == 403
    assert ExceptionCase.objects.filter(pk=case.pk).exists()


def test_a_resolution_code_added_in_the_admin_can_close_a_case_and_is_audited(
    superuser_client, root, site_a1, finance
):
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="medium",
        title="Bill differs",
        source="odoo",
        dedupe_key="bill-7",
        payload={},
        evidence={},
    )

    response = superuser_client.post(
        reverse("admin:exceptions_resolutioncode_add"),
        {
            "kind": "invoice_mismatch",
            "code": "disputed_on_portal",
            "label": "Disputed on the supplier portal",
            "active": "on",
        },
    )

    assert response.status_code == 302
    assert AuditEvent.objects.get(action="resolution_code.created").actor == root
    closed = case_resolve(
        actor=finance, case_id=case.pk, code="disputed_on_portal", note="Supplier agreed"
    )
    assert (closed.state, closed.resolution_code) == ("resolved", "disputed_on_portal")
