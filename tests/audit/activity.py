"""A ledger with something in it, written by the real services, for the export and trail tests.

Import the fixtures into a test module (`from tests.audit.activity import *`-style, by name).
Requests are raised and decided in both regions; a delegation is used for one decision.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services
from sites.roles import Role
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed
from tests.conftest import persona
from tests.factories import grant

__all__ = [
    "_working_morning",
    "activity",
    "company_auditor",
    "matrix",
    "staffed",
]


@pytest.fixture
def company_auditor(region_a, region_b, site_a1, site_a2, site_b1):
    """An auditor whose reach is every site of the company."""
    user = persona("chief.auditor", Role.AUDITOR, region=region_a)
    grant(user, Role.AUDITOR, region=region_b)
    return user


@pytest.fixture
def activity(matrix, requester, site_manager, regional_manager, site_a1, site_a2, site_b1, staffed):
    """Requests in region A (one approved through a delegate, one rejected) and in region B."""
    now = timezone.now()
    delegate = persona("deputy", Role.REQUESTER, site=site_a1)
    delegation = services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=delegate,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=7),
        site=site_a1,
        note="Holiday cover",
    )
    approved = raise_request(requester, site_a1, amount="1200")
    services.request_approve(actor=delegate, request_id=approved.pk, comment="Within budget")
    rejected = raise_request(requester, site_a1, amount="900", title='Café chairs, "red"')
    services.request_reject(
        actor=site_manager, request_id=rejected.pk, reason="Not this quarter,\r\nsee me"
    )
    in_a2 = raise_request(regional_manager, site_a2, amount="700")
    in_b1 = raise_request(staffed["requester_b"], site_b1, amount="800")
    return {
        "approved": approved,
        "rejected": rejected,
        "in_a2": in_a2,
        "in_b1": in_b1,
        "delegation": delegation,
        "delegate": delegate,
    }
