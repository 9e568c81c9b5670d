"""What one final approval asks the database: no read that cannot find anything, the outbox row
in one statement, the tiers and votes in one read, and still exactly one write-back."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from approvals import services
from approvals.models import ApprovalRequest, RequestState
from portal.integrations.odoo.models import OutboxItem, OutboxState
from portal.integrations.odoo.services import outbox_enqueue
from tests.approvals.conftest import raise_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def final_approval(matrix, requester, site_a1, site_manager):
    """A purchase from Odoo that one site manager's approval decides, and that approval's SQL."""
    request = raise_request(requester, site_a1, amount="1000", odoo_id=4711)
    with CaptureQueriesContext(connection) as queries:
        services.request_approve(actor=site_manager, request_id=request.pk)
    request.refresh_from_db()
    assert request.state == RequestState.APPROVED
    return request, [query["sql"] for query in queries.captured_queries]


def _touching(statements: list[str], table: str) -> list[str]:
    return [sql for sql in statements if table in sql]


def test_the_outbox_row_is_written_in_one_statement(final_approval):
    request, statements = final_approval

    outbox = _touching(statements, "odoo_outboxitem")
    assert len(outbox) == 1 and outbox[0].startswith("INSERT"), outbox
    # No savepoint of its own around it (the one the test's transaction gives the service
    # opens the statements and releases them at the end).
    at = statements.index(outbox[0])
    assert "SAVEPOINT" not in statements[at - 1] + statements[at + 1]
    row = OutboxItem.objects.get(request=request)
    assert (row.round, row.action, row.odoo_id, row.state) == (
        request.round,
        "approve",
        4711,
        OutboxState.PENDING,
    )


def test_a_write_back_enqueued_again_keeps_its_one_row(final_approval):
    request, _ = final_approval
    first = OutboxItem.objects.get(request=request)
    OutboxItem.objects.filter(pk=first.pk).update(state=OutboxState.SUPERSEDED)

    with transaction.atomic():
        again = outbox_enqueue(request=ApprovalRequest.objects.get(pk=request.pk), action="approve")

    assert again.pk == first.pk
    # The row there is handed back as it stands, not written over.
    assert again.state == OutboxState.SUPERSEDED
    assert OutboxItem.objects.filter(request=request).count() == 1


def test_approving_a_purchase_looks_for_no_linked_case(final_approval):
    _, statements = final_approval

    # Only a write-off raised for a case is ever linked to one.
    assert _touching(statements, "exceptions_exceptioncase") == []


def test_a_tier_of_quorum_one_is_decided_without_counting_its_votes(final_approval):
    _, statements = final_approval

    assert [sql for sql in statements if "COUNT(" in sql] == []


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite takes no row lock (select_for_update does nothing there): no locked read to "
    "count from",
)
def test_the_tiers_and_votes_are_read_once_under_the_lock(final_approval):
    _, statements = final_approval

    locked_at = next(n for n, sql in enumerate(statements) if "FOR UPDATE" in sql)
    reads = [sql for sql in statements[locked_at + 1 :] if sql.startswith(("SELECT", "\n"))]
    decision_reads = [sql for sql in reads if "approvals_decision" in sql]
    assert len(decision_reads) == 1, decision_reads
    assert "approvals_approvalstep" in decision_reads[0]
