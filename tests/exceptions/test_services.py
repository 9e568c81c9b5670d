"""Raising exception cases: queue, deadline, evidence, and one open case per event."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from exceptions import services
from exceptions.models import CaseState, ExceptionCase, Queue, ResolutionCode
from exceptions.services import case_raise
from portal.audit.models import AuditEvent
from portal.core.errors import Conflict
from portal.webhooks.models import OutboundEvent
from tests.approvals.conftest import _working_morning, matrix, staffed

# The approvals test company and its policy, for resolutions that need an approval.
__all__ = ["_working_morning", "matrix", "staffed"]


def _raise(site, **overrides):
    values = {
        "kind": "invoice_mismatch",
        "site": site,
        "severity": "high",
        "title": "Bill BILL/2026/0042 differs from PO00042",
        "source": "odoo",
        "dedupe_key": "odoo:account.move:42:invoice_mismatch",
        "payload": {"id": 42},
        "evidence": {"difference": "120.00", "tolerance_pct": "2"},
        "amount_at_stake": Decimal("120.00"),
        "currency": "EUR",
        "odoo_model": "account.move",
        "odoo_id": 42,
    }
    return case_raise(**(values | overrides))


def test_invoice_mismatch_lands_in_the_finance_queue_with_a_deadline(site_a1):
    before = timezone.now()
    case, created = _raise(site_a1)

    assert created
    assert (case.queue, case.state) == (Queue.FINANCE, CaseState.NEW)
    assert before + timedelta(hours=24) <= case.due_at <= timezone.now() + timedelta(hours=24)
    assert AuditEvent.objects.filter(action="case.opened", object_id=str(case.pk)).exists()


def test_the_same_event_seen_again_joins_the_open_case(site_a1):
    first, _ = _raise(site_a1)
    again, created = _raise(
        site_a1, evidence={"difference": "150.00"}, amount_at_stake=150, payload={"id": 43}
    )

    assert not created
    assert again.pk == first.pk
    assert ExceptionCase.objects.count() == 1
    again.refresh_from_db()
    assert again.occurrences == 2
    # The newer figure wins, what it does not mention is kept, and the payload stays the first.
    assert again.evidence == {"difference": "150.00", "tolerance_pct": "2"}
    assert again.payload == {"id": 42}


# --- working a case -------------------------------------------------------------------------


@pytest.fixture
def invoice_case(site_a1):
    case, _ = _raise(site_a1)
    return case


def test_finance_resolves_an_invoice_case_with_a_code_and_a_note(invoice_case, finance):
    services.case_assign(actor=finance, case_id=invoice_case.pk, owner=finance)
    services.case_start(actor=finance, case_id=invoice_case.pk)

    case = services.case_resolve(
        actor=finance,
        case_id=invoice_case.pk,
        code="credit_note_requested",
        note="Supplier agreed to credit 120.00",
    )

    assert (case.state, case.resolution_code) == (CaseState.RESOLVED, "credit_note_requested")
    actions = list(
        AuditEvent.objects.filter(
            object_id=str(case.pk), object_type="exceptions.exceptioncase"
        ).values_list("action", flat=True)
    )
    assert actions == ["case.opened", "case.assigned", "case.started", "case.resolved"]


@pytest.mark.parametrize(
    ("code", "note", "field"),
    [("made_up", "Done", "code"), ("bill_corrected", "  ", "note")],
)
def test_resolving_needs_a_code_of_the_kind_and_a_note(invoice_case, finance, code, note, field):
    with pytest.raises(ValidationError) as refused:
        services.case_resolve(actor=finance, case_id=invoice_case.pk, code=code, note=note)

    assert field in refused.value.message_dict
    invoice_case.refresh_from_db()
    assert invoice_case.state == CaseState.NEW


def test_a_site_manager_does_not_work_the_finance_queue(invoice_case, site_manager):
    with pytest.raises(PermissionDenied, match="Finance queue"):
        services.case_dismiss(actor=site_manager, case_id=invoice_case.pk, reason="Not mine")


def test_an_outsider_gets_404_for_a_case_at_another_site(invoice_case, outsider):
    with pytest.raises(Http404):
        services.case_resolve(
            actor=outsider, case_id=invoice_case.pk, code="bill_corrected", note="x"
        )


def test_a_case_is_given_only_to_someone_who_works_its_queue(invoice_case, finance, site_manager):
    with pytest.raises(ValidationError, match="does not work the Finance queue"):
        services.case_assign(actor=finance, case_id=invoice_case.pk, owner=site_manager)


def test_dismissing_needs_a_reason_and_reopening_works_within_the_window(
    invoice_case, finance, settings
):
    with pytest.raises(ValidationError):
        services.case_dismiss(actor=finance, case_id=invoice_case.pk, reason="")
    services.case_dismiss(actor=finance, case_id=invoice_case.pk, reason="Duplicate bill")

    reopened = services.case_reopen(actor=finance, case_id=invoice_case.pk, reason="It was not")
    assert reopened.state == CaseState.ASSIGNED

    services.case_dismiss(actor=finance, case_id=invoice_case.pk, reason="Really a duplicate")
    settings.CASE_REOPEN_WINDOW_DAYS = 0
    with (
        time_machine.travel(timezone.now() + timedelta(days=1)),
        pytest.raises(PermissionDenied, match="within 0 days"),
    ):
        services.case_reopen(actor=finance, case_id=invoice_case.pk, reason="Again")


def test_a_closed_case_cannot_be_worked(invoice_case, finance):
    services.case_dismiss(actor=finance, case_id=invoice_case.pk, reason="Duplicate bill")

    with pytest.raises(Conflict, match="already dismissed"):
        services.case_resolve(
            actor=finance, case_id=invoice_case.pk, code="bill_corrected", note="x"
        )


# --- resolutions that need an approval --------------------------------------------------------


@pytest.fixture
def costly_case(site_a1, matrix):
    case, _ = _raise(site_a1, amount_at_stake=Decimal("800"), dedupe_key="odoo:account.move:9")
    return case


def test_writing_off_a_large_difference_waits_for_an_approval(costly_case, finance, site_manager):
    from approvals import services as approvals

    waiting = services.case_resolve(
        actor=finance, case_id=costly_case.pk, code="difference_written_off", note="Not worth it"
    )

    assert waiting.state == CaseState.NEW
    request = waiting.linked_request
    assert (request.kind, request.state, request.amount) == ("write_off", "in_review", 800)
    with pytest.raises(Conflict, match=f"waits for {request.reference}"):
        services.case_resolve(
            actor=finance, case_id=costly_case.pk, code="bill_corrected", note="Changed my mind"
        )

    approvals.request_approve(actor=site_manager, request_id=request.pk)

    costly_case.refresh_from_db()
    assert (costly_case.state, costly_case.resolution_code) == (
        CaseState.RESOLVED,
        "difference_written_off",
    )


def test_a_refused_write_off_hands_the_case_back(costly_case, finance, site_manager):
    from approvals import services as approvals

    waiting = services.case_resolve(
        actor=finance, case_id=costly_case.pk, code="difference_written_off", note="Not worth it"
    )
    approvals.request_reject(
        actor=site_manager, request_id=waiting.linked_request.pk, reason="Claim it back"
    )

    costly_case.refresh_from_db()
    assert costly_case.state == CaseState.NEW
    assert costly_case.pending_resolution == ""
    assert AuditEvent.objects.filter(action="case.resolution_refused").exists()
    resolved = services.case_resolve(
        actor=finance, case_id=costly_case.pk, code="credit_note_requested", note="Claimed"
    )
    assert resolved.state == CaseState.RESOLVED


def test_an_approved_write_off_tells_subscribers_the_case_is_resolved(
    costly_case, finance, site_manager, subscriber
):
    from approvals import services as approvals

    waiting = services.case_resolve(
        actor=finance, case_id=costly_case.pk, code="difference_written_off", note="Not worth it"
    )
    assert not OutboundEvent.objects.filter(type="exception.resolved").exists()

    approvals.request_approve(actor=site_manager, request_id=waiting.linked_request.pk)

    event = OutboundEvent.objects.get(type="exception.resolved")
    assert (event.data["id"], event.data["outcome"], event.data["resolution_code"]) == (
        costly_case.pk,
        "resolved",
        "difference_written_off",
    )


# --- a repeat sighting that raises the stakes -------------------------------------------------


def test_a_more_severe_sighting_raises_the_case_and_brings_its_due_time_forward(site_a1):
    detected = timezone.now() - timedelta(hours=2)
    first, _ = _raise(site_a1, severity="medium", at=detected)
    assert first.due_at == detected + timedelta(hours=72)

    again, created = _raise(site_a1, severity="critical", amount_at_stake=Decimal("900"))

    assert not created
    again.refresh_from_db()
    assert (again.severity, again.amount_at_stake) == ("critical", Decimal("900.00"))
    assert again.due_at == detected + timedelta(hours=4)
    assert again.remind_at == detected + timedelta(hours=3)
    seen = AuditEvent.objects.get(action="case.seen_again")
    assert (seen.before["severity"], seen.after["severity"]) == ("medium", "critical")
    assert (seen.before["amount_at_stake"], seen.after["amount_at_stake"]) == ("120.00", "900")


def test_a_milder_or_smaller_sighting_never_lowers_the_case(site_a1):
    first, _ = _raise(site_a1, severity="high")

    _raise(site_a1, severity="low", amount_at_stake=Decimal("5"))
    _raise(site_a1, severity="medium", amount_at_stake=None, currency="")

    case = ExceptionCase.objects.get(pk=first.pk)
    assert (case.severity, case.amount_at_stake, case.due_at) == (
        "high",
        Decimal("120.00"),
        first.due_at,
    )
    assert case.occurrences == 3


def test_an_amount_in_another_currency_is_not_compared(site_a1):
    first, _ = _raise(site_a1)

    _raise(site_a1, amount_at_stake=Decimal("99999"), currency="GBP")

    case = ExceptionCase.objects.get(pk=first.pk)
    assert (case.amount_at_stake, case.currency) == (Decimal("120.00"), "EUR")


def test_a_sighting_gives_an_amount_to_a_case_that_had_none(site_a1):
    first, _ = _raise(site_a1, amount_at_stake=None, currency="")

    _raise(site_a1, amount_at_stake=Decimal("40"), currency="EUR")

    case = ExceptionCase.objects.get(pk=first.pk)
    assert (case.amount_at_stake, case.currency) == (Decimal("40.00"), "EUR")


def test_a_case_waiting_for_its_write_off_cannot_be_dismissed(costly_case, finance):
    waiting = services.case_resolve(
        actor=finance, case_id=costly_case.pk, code="difference_written_off", note="Not worth it"
    )

    with pytest.raises(Conflict, match=f"waits for {waiting.linked_request.reference}"):
        services.case_dismiss(actor=finance, case_id=costly_case.pk, reason="Never mind")

    costly_case.refresh_from_db()
    assert costly_case.state == CaseState.NEW
    assert costly_case.linked_request.state == "in_review"


def test_a_fast_path_write_off_reads_awaits_approval_then_resolved(
    site_a1, matrix, finance, settings
):
    settings.CASE_RESOLUTION_APPROVAL_THRESHOLD = 50
    case, _ = _raise(site_a1, amount_at_stake=Decimal("80"), dedupe_key="odoo:account.move:8")

    resolved = services.case_resolve(
        actor=finance, case_id=case.pk, code="difference_written_off", note="Small"
    )

    assert (resolved.state, resolved.linked_request.state) == (CaseState.RESOLVED, "approved")
    trail = AuditEvent.objects.filter(object_id=str(case.pk), action__startswith="case.")
    assert list(trail.order_by("pk").values_list("action", flat=True)) == [
        "case.opened",
        "case.resolution_awaits_approval",
        "case.resolved",
    ]


def test_a_case_is_not_reopened_while_the_same_event_has_a_newer_open_case(invoice_case, finance):
    services.case_resolve(
        actor=finance, case_id=invoice_case.pk, code="bill_corrected", note="Corrected"
    )
    newer, created = _raise(invoice_case.site)
    assert created

    with pytest.raises(Conflict, match=f"{newer.reference} is open for the same event"):
        services.case_reopen(actor=finance, case_id=invoice_case.pk, reason="Not fixed after all")

    invoice_case.refresh_from_db()
    assert invoice_case.state == CaseState.RESOLVED
    assert ExceptionCase.objects.filter(state__in=["new", "assigned", "in_progress"]).count() == 1


def test_a_withdrawn_write_off_hands_the_case_back(costly_case, finance):
    from approvals import services as approvals

    waiting = services.case_resolve(
        actor=finance, case_id=costly_case.pk, code="difference_written_off", note="Not worth it"
    )
    approvals.request_withdraw(actor=finance, request_id=waiting.linked_request.pk)

    costly_case.refresh_from_db()
    assert (costly_case.state, costly_case.pending_resolution) == (CaseState.NEW, "")
    assert AuditEvent.objects.filter(
        action="case.resolution_refused", object_id=str(costly_case.pk)
    ).exists()


# --- resolution codes as administered -----------------------------------------------------------


def test_a_withdrawn_built_in_code_is_refused_and_an_added_one_accepted(invoice_case, finance):
    services.resolution_code_save(
        actor=None,
        code=ResolutionCode(
            kind="invoice_mismatch", code="bill_corrected", label="-", active=False
        ),
    )
    services.resolution_code_save(
        actor=None,
        code=ResolutionCode(kind="invoice_mismatch", code="netted_on_next_bill", label="Netted"),
    )

    with pytest.raises(ValidationError) as refused:
        services.case_resolve(
            actor=finance, case_id=invoice_case.pk, code="bill_corrected", note="x"
        )
    assert "netted_on_next_bill" in refused.value.message_dict["code"][0]
    assert "bill_corrected" not in refused.value.message_dict["code"][0]

    closed = services.case_resolve(
        actor=finance, case_id=invoice_case.pk, code="netted_on_next_bill", note="Next bill"
    )
    assert closed.resolution_code == "netted_on_next_bill"


def test_only_a_superuser_changes_resolution_codes(finance):
    with pytest.raises(PermissionDenied):
        services.resolution_code_save(
            actor=finance,
            code=ResolutionCode(kind="invoice_mismatch", code="waived", label="Waived"),
        )
    assert not ResolutionCode.objects.exists()
