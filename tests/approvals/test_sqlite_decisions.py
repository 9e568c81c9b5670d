"""`make run` keeps its data in SQLite while the suite runs on PostgreSQL: a two-tier request is
raised and decided through the services on a real SQLite database in a process of its own, so
that SQL written for one database cannot break deciding on the other unseen."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from decimal import Decimal

from django.contrib.auth import get_user_model

from approvals import services
from approvals.models import HeldAt, RequestState
from approvals.specs import RuleSpec, TierSpec, VersionSpec
from sites.roles import Role
from sites.services import membership_grant, region_create, site_create

region = region_create(actor=None, code="SQ", name="SQLite region")
site = site_create(
    actor=None, code="SQ1", name="SQLite site", region=region,
    time_zone="Europe/Amsterdam", currency="EUR", odoo_company_id=1,
)
people = get_user_model().objects


def person(username, role, **scope):
    user = people.create(username=username)
    membership_grant(actor=None, user=user, role=role, **scope)
    return user


requester = person("sq.requester", Role.REQUESTER, site=site)
manager = person("sq.manager", Role.SITE_MANAGER, site=site)
regional = person("sq.regional", Role.REGIONAL_MANAGER, region=region)
policy = services.policy_create(actor=None, name="SQLite policy", site=site)
tiers = (
    TierSpec(
        role=Role.SITE_MANAGER, sla_hours=Decimal(24), held_at=HeldAt.SITE,
        escalation_role=Role.REGIONAL_MANAGER,
    ),
    TierSpec(
        role=Role.REGIONAL_MANAGER, sla_hours=Decimal(24), held_at=HeldAt.REGION,
        escalation_role=Role.FINANCE,
    ),
)
rule = RuleSpec(name="Every purchase", kinds=("purchase",), tiers=tiers)
services.policy_publish(actor=None, policy=policy, spec=VersionSpec(rules=(rule,)))
request = services.request_raise(
    requester=requester, kind="purchase", site=site, title="Pallets", reason="Stock is low",
    amount=Decimal("1250.00"), currency="EUR", category="Packaging",
    counterparty="Benchmark Supplies", details={"counterparty_since": "2019-01-01"},
)
assert request.state == RequestState.IN_REVIEW, request.state
services.request_approve(actor=manager, request_id=request.pk)
services.request_approve(actor=regional, request_id=request.pk)
request.refresh_from_db()
print("final state:", request.state)
"""


@pytest.mark.slow
def test_a_request_is_decided_on_sqlite(tmp_path):
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tollgate.sqlite3'}",
        # Tasks queue in a folder of the test's own, never in the checkout's var/.
        "TOLLGATE_VAR_DIR": str(tmp_path / "var"),
        "CELERY_BROKER_URL": "filesystem://localhost/",
    }

    def manage(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *arguments],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )

    migrated = manage("migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    decided = manage("shell", "-c", SCRIPT)

    assert decided.returncode == 0, decided.stderr[-3000:]
    assert "final state: approved" in decided.stdout
