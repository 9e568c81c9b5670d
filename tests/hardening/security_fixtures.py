"""Fixtures of the security tests: the approvals test company (its policy matrix and staff), one
request waiting for the site manager at A1, one open shipment-delay case there, and a fingerprint
of everything a refused request must leave as it was.

A test module imports what it uses, `__all__` included (the working morning is autouse).
"""

from decimal import Decimal

import pytest

from exceptions.services import case_raise
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

__all__ = ["_working_morning", "matrix", "open_case", "pending_request", "staffed"]


@pytest.fixture
def pending_request(matrix, requester, site_a1):
    """A routine purchase at A1 in review, decided by the site manager."""
    return raise_request(requester, site_a1, amount="1000")


@pytest.fixture
def open_case(site_a1):
    case, _ = case_raise(
        kind="shipment_delay",
        site=site_a1,
        severity="high",
        title="Shipment 1Z999 held at depot",
        source="webhook",
        dedupe_key="carrier:1Z999:shipment_delay",
        payload={"tracking_number": "1Z999"},
        evidence={"status": "held_at_depot"},
        amount_at_stake=Decimal("250.00"),
        currency="EUR",
    )
    return case


def fingerprint() -> dict:
    """What a refused request must leave as it was: row counts, states, the ledger's length."""
    from approvals.models import (
        ApprovalRequest,
        ApprovalStep,
        Decision,
        Delegation,
        NotificationPreference,
        PolicyVersion,
    )
    from exceptions.models import ExceptionCase
    from portal.api.models import ApiToken
    from portal.audit.models import AuditEvent
    from portal.integrations.odoo.models import OutboxItem
    from portal.webhooks.models import InboundDelivery, OutboundEvent
    from sites.models import Membership

    models = (
        ApprovalRequest,
        ApprovalStep,
        Decision,
        Delegation,
        NotificationPreference,
        PolicyVersion,
        ExceptionCase,
        ApiToken,
        AuditEvent,
        OutboxItem,
        InboundDelivery,
        OutboundEvent,
        Membership,
    )
    counts = {model.__name__: model.objects.count() for model in models}
    counts["request states"] = sorted(ApprovalRequest.objects.values_list("pk", "state"))
    counts["step states"] = sorted(ApprovalStep.objects.values_list("pk", "state"))
    counts["case states"] = sorted(ExceptionCase.objects.values_list("pk", "state", "owner_id"))
    counts["revoked tokens"] = ApiToken.objects.filter(revoked_at__isnull=False).count()
    return counts
