"""The fresh demo behaves like a working company: routine work goes through, people have work."""

import io
from collections import Counter

from django.contrib.auth import get_user_model
from django.core.management import call_command

from approvals import views
from approvals.models import ApprovalRequest, RequestState
from exceptions.models import ExceptionCase
from portal.audit.models import AuditEvent
from portal.inbox import dashboards
from portal.inbox.dashboard_views import CHARTS
from portal.integrations.odoo import sync
from portal.integrations.odoo.client import get_client
from portal.integrations.odoo.sandbox.seed import DEMO_DB
from portal.integrations.odoo.sandbox.seed import seed_demo as seed_sandbox
from portal.integrations.odoo.sandbox.server import SandboxServer
from tests.seeded_demo import seed_demo


def test_the_fresh_demo_behaves_like_a_working_company(db):
    # One seed (about a minute on SQLite) serves every check below; the command runs here, and
    # later tests may start from a copy of what it made (tests/seeded_demo.py).
    seed_demo(fresh=True)
    fast_path_takes_most_routine_requests()
    the_regional_managers_bulk_page_holds_routine_work()
    a_minority_of_waiting_requests_is_flagged_and_each_flag_is_explained()
    the_requester_has_requests_in_every_state()
    for username in ("regional.manager", "requester", "finance"):
        every_dashboard_chart_has_data(username)
    one_open_case_of_each_kind_and_worked_history()
    the_ledger_verifies_and_a_second_seed_adds_nothing()


def test_after_the_first_pull_from_the_odoo_sandbox_the_numbers_hold(db, settings, tmp_path):
    # As `make run` does it: the company and its history, then the sandbox, then one pull.
    seed_demo()
    path = tmp_path / "odoo.sqlite3"
    seed_sandbox(path)
    server = SandboxServer(path, version="17.0").start()
    try:
        settings.ODOO_URL, settings.ODOO_DB, settings.ODOO_VERSION = server.url, DEMO_DB, "17.0"
        settings.ODOO_LOGIN = settings.ODOO_API_KEY = "admin"
        results = sync.sync_all(get_client())
    finally:
        server.stop()
    assert all(not result.problems for result in results.values())
    assert ApprovalRequest.objects.exclude(odoo_model="").count() > 100
    fast_path_takes_most_routine_requests()
    the_regional_managers_bulk_page_holds_routine_work()
    a_minority_of_waiting_requests_is_flagged_and_each_flag_is_explained()
    waiting = ApprovalRequest.objects.filter(state=RequestState.IN_REVIEW)
    after_hours = [r for r in waiting if any(f["code"] == "after_hours" for f in r.risk_flags)]
    # Odoo's records were made in office hours: only the one purchase really asked for on a
    # Saturday evening is flagged, whatever the day and hour of this sync.
    assert [r.odoo_model for r in after_hours] == [""]
    for username in ("regional.manager", "requester", "finance"):
        every_dashboard_chart_has_data(username)
    call_command("verify_audit", stdout=io.StringIO())


def _person(username):
    return get_user_model().objects.get(username=username)


def fast_path_takes_most_routine_requests():
    rows = dashboards.straight_through(_person("regional.manager"), dashboards.period_of(30))
    decided = sum(row["decided"] for row in rows)
    fast = sum(row["fast_path"] for row in rows)
    assert decided >= 30
    assert 40 <= 100 * fast / decided <= 80, (fast, decided)


def the_regional_managers_bulk_page_holds_routine_work():
    groups, _ = views._bulk_candidates(_person("regional.manager"))
    assert sum(len(group["entries"]) for group in groups) >= 5


def a_minority_of_waiting_requests_is_flagged_and_each_flag_is_explained():
    waiting = list(ApprovalRequest.objects.filter(state=RequestState.IN_REVIEW))
    flagged = [request for request in waiting if request.risk_flags]
    assert waiting and flagged
    assert len(flagged) / len(waiting) < 0.25, [r.risk_flags for r in flagged]
    for request in flagged:
        for flag in request.risk_flags:
            assert flag["explanation"] and flag["numbers"]


def the_requester_has_requests_in_every_state():
    states = Counter(
        ApprovalRequest.objects.filter(requester__username="requester").values_list(
            "state", flat=True
        )
    )
    for state in ("draft", "in_review", "approved", "rejected", "withdrawn", "expired", "applied"):
        assert states[state] >= 1, states


def every_dashboard_chart_has_data(username):
    person, period = _person(username), dashboards.period_of(30)
    for chart in CHARTS:
        assert chart.rows(person, period), chart.slug


def one_open_case_of_each_kind_and_worked_history():
    open_kinds = set(
        ExceptionCase.objects.filter(closed_at__isnull=True).values_list("kind", flat=True)
    )
    assert open_kinds >= {
        "invoice_mismatch",
        "shipment_delay",
        "receipt_discrepancy",
        "asn_conflict",
    }
    mismatch = ExceptionCase.objects.get(dedupe_key="demo:open:invoice_mismatch")
    assert any(line["billed_price"] != line["order_price"] for line in mismatch.evidence["lines"])
    assert ExceptionCase.objects.filter(state="resolved").count() >= 10


def the_ledger_verifies_and_a_second_seed_adds_nothing():
    call_command("verify_audit", stdout=io.StringIO())  # exits non-zero if broken
    before = (
        ApprovalRequest.objects.count(),
        ExceptionCase.objects.count(),
        AuditEvent.objects.count(),
    )
    call_command("seed_demo", force=True, stdout=io.StringIO())
    after = (
        ApprovalRequest.objects.count(),
        ExceptionCase.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before
