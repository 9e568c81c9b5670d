"""The printable decision trail of a request or a case, for auditors in scope."""

from django.contrib.auth.models import User
from django.urls import reverse

from exceptions.services import case_raise
from portal.audit.models import AuditEvent
from tests.audit.activity import _working_morning, activity, company_auditor, matrix, staffed

__all__ = ["_working_morning", "activity", "company_auditor", "matrix", "staffed"]


def trail_url(object_type: str, object_id) -> str:
    return reverse("audit:trail", args=[object_type, object_id])


def _number(request) -> str:
    return str(request).split()[0]  # "AR-000042"


def test_auditor_reads_a_requests_decisions_delegation_and_comments(client, activity, auditor):
    client.force_login(auditor)

    page = client.get(trail_url("request", activity["approved"].pk))

    assert page.status_code == 200
    text = page.text
    site_manager = User.objects.get(username="site.manager").get_full_name()
    for sentence in ("Delegation given by", "Raised by", "Approved by", "Approved at every tier"):
        assert sentence in text
    assert f"on behalf of {site_manager}" in text
    for code in ("delegation.created", "request.created", "decision.approve", "request.approved"):
        assert code not in text
    assert "Within budget" in text
    assert "Decision trail" in text and _number(activity["approved"]) in text


def test_trail_times_are_in_the_sites_own_time_zone(client, activity, auditor):
    client.force_login(auditor)

    text = client.get(trail_url("request", activity["approved"].pk)).text

    assert "10 Mar 2026 10:00" in text and "CET" in text  # 09:00 UTC in Amsterdam


def test_every_event_on_the_trail_shows_its_ledger_hash(client, activity, auditor):
    client.force_login(auditor)
    events = AuditEvent.objects.filter(object_id=str(activity["rejected"].pk), site__code="A1")

    text = client.get(trail_url("request", activity["rejected"].pk)).text

    assert events.count() == 5
    assert all(event.hash in text for event in events)
    assert "Not this quarter,<br>see me" in text


def test_an_exception_cases_trail_is_printable_too(client, site_a1, auditor):
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="high",
        title="Bill BILL/2026/0042 differs from PO00042",
        source="odoo",
        dedupe_key="odoo:account.move:42:invoice_mismatch",
        payload={"id": 42},
        evidence={"difference": "12.40"},
    )
    client.force_login(auditor)

    page = client.get(trail_url("case", case.pk))

    assert page.status_code == 200
    assert "Case opened" in page.text and "invoice mismatch" in page.text
    assert "case.opened" not in page.text and "invoice_mismatch" not in page.text


def test_outsider_gets_404_for_a_trail_in_region_a(client, activity, outsider):
    client.force_login(outsider)

    page = client.get(trail_url("request", activity["approved"].pk))

    assert page.status_code == 404


def test_regional_auditor_gets_404_for_region_b(client, activity, auditor):
    client.force_login(auditor)

    out_of_scope = client.get(trail_url("request", activity["in_b1"].pk))
    missing = client.get(trail_url("request", 999999))

    assert out_of_scope.status_code == missing.status_code == 404
    assert "nothing you can see" in out_of_scope.text and "nothing you can see" in missing.text
    assert _number(activity["in_b1"]) not in out_of_scope.text


def test_the_trail_needs_a_signed_in_user(client, activity):
    page = client.get(trail_url("request", activity["approved"].pk))

    assert page.status_code == 302
    assert page.url.startswith(reverse("login"))
