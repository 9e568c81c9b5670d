"""The exception queues and the case page, through Django's test client."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from exceptions import services
from exceptions.models import CaseState, ExceptionCase
from portal.audit.models import AuditEvent
from tests.approvals import conftest as approval_fixtures

# The staffed company and its policy matrix, for resolutions that need an approval.
_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed

QUEUES = reverse("exceptions:queues")


def _case(site, key, *, kind="invoice_mismatch", severity="medium", amount=None):
    case, _ = services.case_raise(
        kind=kind,
        site=site,
        severity=severity,
        title=f"Case {key}",
        source="odoo",
        dedupe_key=f"queue-test:{key}",
        payload={"bill": f"BILL/{key}", "difference": "12.50"},
        evidence={"bill_total": "112.50", "order_total": "100.00"},
        amount_at_stake=Decimal(amount) if amount else None,
        currency="EUR" if amount else "",
    )
    return case


def _detail(case):
    return reverse("exceptions:detail", args=[case.pk])


def _reload(case):
    return ExceptionCase.objects.get(pk=case.pk)


@pytest.fixture
def invoice(site_a1):
    return _case(site_a1, "inv-1", amount="12.50")


def test_queues_show_counts_aging_and_priority_with_the_reason(client, site_a1, finance):
    small = _case(site_a1, "small", severity="low")
    big = _case(site_a1, "big", severity="critical", amount="9000")
    client.force_login(finance)

    page = client.get(QUEUES).text

    assert 'id="queue-summary"' in page
    assert "Finance" in page and "under 1 day" in page
    assert page.index(big.reference) < page.index(small.reference)
    assert "Critical severity · €9,000.00 at stake" in page


def test_queue_filters_narrow_the_list(client, site_a1, finance):
    invoice = _case(site_a1, "inv", kind="invoice_mismatch")
    delay = _case(site_a1, "late", kind="shipment_delay")
    client.force_login(finance)

    finance_only = client.get(QUEUES, {"queue": "finance"}).text
    partial = client.get(
        QUEUES, {"queue": "warehouse", "show": "all"}, headers={"HX-Request": "true"}
    ).text

    assert invoice.reference in finance_only and delay.reference not in finance_only
    assert delay.reference in partial and "<html" not in partial


def test_case_page_shows_evidence_payload_and_actions(client, invoice, finance):
    client.force_login(finance)

    page = client.get(_detail(invoice)).text

    assert "Billed" in page and "€112.50" in page
    assert "BILL/inv-1" in page
    assert 'id="assign-me-form"' in page and 'id="resolve-form"' in page
    assert "Credit note requested from the supplier" in page


def test_outsider_gets_404_for_a_case_and_its_actions(client, invoice, outsider):
    client.force_login(outsider)

    assert client.get(_detail(invoice)).status_code == 404
    response = client.post(reverse("exceptions:assign", args=[invoice.pk]), {"to": "me"})
    assert response.status_code == 404
    assert _reload(invoice).owner is None


def test_auditor_sees_the_case_but_is_told_why_they_cannot_work_it(client, invoice, auditor):
    client.force_login(auditor)

    page = client.get(_detail(invoice)).text

    assert 'id="resolve-form"' not in page
    assert "Only people who work the Finance queue at A1." in page


def test_finance_assigns_to_self_starts_and_resolves(client, invoice, finance):
    client.force_login(finance)

    client.post(reverse("exceptions:assign", args=[invoice.pk]), {"to": "me"})
    client.post(reverse("exceptions:start", args=[invoice.pk]))
    response = client.post(
        reverse("exceptions:resolve", args=[invoice.pk]),
        {"code": "credit_note_requested", "note": "Supplier agreed to credit 12.50"},
    )

    case = _reload(invoice)
    assert response.status_code == 302
    assert (case.state, case.owner, case.resolution_code) == (
        CaseState.RESOLVED,
        finance,
        "credit_note_requested",
    )
    actions = list(
        AuditEvent.objects.filter(object_id=str(case.pk), action__startswith="case.")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["case.assigned", "case.started", "case.resolved"]


def test_assign_to_someone_who_does_not_work_the_queue_is_refused(
    client, invoice, finance, site_manager
):
    client.force_login(finance)

    response = client.post(
        reverse("exceptions:assign", args=[invoice.pk]), {"owner": site_manager.pk}
    )

    assert response.status_code == 400
    assert "That person does not work this queue at this site." in response.text
    assert _reload(invoice).owner is None


def test_resolve_without_code_or_note_shows_messages_and_changes_nothing(client, invoice, finance):
    client.force_login(finance)

    response = client.post(
        reverse("exceptions:resolve", args=[invoice.pk]), {"code": "", "note": " "}
    )

    assert response.status_code == 400
    assert "Choose a resolution." in response.text
    assert "Say what was done." in response.text
    assert _reload(invoice).state == CaseState.NEW


def test_dismiss_needs_a_reason_then_reopen_within_the_window(client, invoice, finance):
    client.force_login(finance)

    refused = client.post(reverse("exceptions:dismiss", args=[invoice.pk]), {"reason": ""})
    assert refused.status_code == 400
    assert "Say why the case needs no action." in refused.text
    client.post(reverse("exceptions:dismiss", args=[invoice.pk]), {"reason": "Duplicate bill"})
    assert _reload(invoice).state == CaseState.DISMISSED
    page = client.get(_detail(invoice)).text
    assert 'id="reopen-form"' in page and 'id="resolve-form"' not in page

    client.post(reverse("exceptions:reopen", args=[invoice.pk]), {"reason": "Not a duplicate"})

    assert _reload(invoice).state == CaseState.ASSIGNED


def test_acting_on_a_case_someone_else_closed_is_409(client, invoice, finance, region_a):
    from sites.roles import Role
    from tests.conftest import persona

    colleague = persona("finance.two", Role.FINANCE, region=region_a)
    client.force_login(finance)
    client.get(_detail(invoice))
    services.case_dismiss(actor=colleague, case_id=invoice.pk, reason="Handled by phone")

    response = client.post(
        reverse("exceptions:resolve", args=[invoice.pk]),
        {"code": "bill_corrected", "note": "Corrected"},
    )

    assert response.status_code == 409
    assert "Someone else got there first" in response.text
    assert "Dismissed" in response.text


def test_case_forms_are_csrf_protected(invoice, finance):
    client = Client(enforce_csrf_checks=True)
    client.force_login(finance)

    response = client.post(reverse("exceptions:assign", args=[invoice.pk]), {"to": "me"})

    assert response.status_code == 403
    assert _reload(invoice).owner is None


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_queue_and_case_pages_render_with_a_constant_number_of_queries(client, site_a1, finance):
    client.force_login(finance)
    first = _case(site_a1, "const-0", amount="10")
    services.case_assign(actor=finance, case_id=first.pk, owner=finance)
    queue_few = _queries(client, QUEUES)
    case_few = _queries(client, _detail(first))
    for i in range(1, 12):
        case = _case(site_a1, f"const-{i}", amount=str(10 + i))
        services.case_assign(actor=finance, case_id=case.pk, owner=finance)
    services.case_start(actor=finance, case_id=first.pk)

    assert _queries(client, QUEUES) == queue_few
    assert _queries(client, _detail(first)) == case_few


def test_a_write_off_resolution_waits_for_its_approval_and_links_it(
    client, matrix, site_a1, finance
):
    case = _case(site_a1, "big-diff", amount="900")
    client.force_login(finance)

    response = client.post(
        reverse("exceptions:resolve", args=[case.pk]),
        {"code": "difference_written_off", "note": "Supplier will not credit it"},
        follow=True,
    )

    case = _reload(case)
    assert case.state != CaseState.RESOLVED and case.linked_request is not None
    reference = case.linked_request.reference
    assert f"waits for {reference}" in response.text
    assert 'id="linked-request"' in response.text
    assert f"It waits for the decision on {reference}." in response.text
    assert 'id="resolve-form"' not in response.text


def test_the_resolve_form_offers_the_codes_as_administered(client, invoice, finance, admin_user):
    from exceptions.models import ResolutionCode

    services.resolution_code_save(
        actor=admin_user,
        code=ResolutionCode(kind="invoice_mismatch", code="vendor_rebate", label="Vendor rebate"),
    )
    services.resolution_code_save(
        actor=admin_user,
        code=ResolutionCode(
            kind="invoice_mismatch", code="credit_note_requested", label="x", active=False
        ),
    )
    client.force_login(finance)

    page = client.get(_detail(invoice)).content.decode()

    assert 'value="vendor_rebate"' in page and "Vendor rebate" in page
    assert 'value="credit_note_requested"' not in page
    client.post(reverse("exceptions:assign", args=[invoice.pk]), {"to": "me"})
    client.post(
        reverse("exceptions:resolve", args=[invoice.pk]),
        {"code": "vendor_rebate", "note": "Rebate on the next invoice"},
    )
    assert "Vendor rebate" in client.get(_detail(invoice)).content.decode()


def test_the_queue_rows_escape_what_a_case_says(client, site_a1, finance):
    services.case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="high",
        title='<script>alert("x")</script> & <b>bold</b>',
        source="odoo",
        dedupe_key="queue-test:escape",
        payload={},
        evidence={},
    )
    client.force_login(finance)

    page = client.get(QUEUES).text

    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>bold</b>" not in page


def test_a_filtered_queue_counts_only_the_cases_it_keeps(client, site_a1, finance):
    for i in range(3):
        _case(site_a1, f"bill-{i}", kind="invoice_mismatch")
    _case(site_a1, "late-0", kind="shipment_delay")
    client.force_login(finance)

    everything = client.get(QUEUES, {"show": "all"}).text
    bills = client.get(QUEUES, {"show": "all", "queue": "finance"}).text

    assert "(4 of 4)" in everything
    assert "(3 of 3)" in bills
