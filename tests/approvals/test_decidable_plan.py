"""Whether a candidate is the person's to decide is tested candidate by candidate.

The inbox's head and the list's "waiting for me" read batches of a few hundred candidates, each
with whether the person may decide it. PostgreSQL may answer that test with one hashed pass over
every active tier the person may decide, which at a million requests costs several times the
index lookups of the batch itself; these tests hold the plan to a lookup per candidate.
"""

from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import listing
from approvals.authority import Authority
from approvals.models import ApprovalRequest, ApprovalStep
from approvals.selectors import COUNT_CAP, inbox_head
from tests.approvals.conftest import raise_request

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the plan asked about is PostgreSQL's"
)

# More than a batch: the inbox head reads 2 × (COUNT_CAP + 1) candidates at once.
WAITING = 2 * (COUNT_CAP + 1) + 40


@pytest.fixture
def queue(matrix, requester, site_a1):
    """WAITING requests in review at one site, each with its first tier active: copies of one
    request raised the portal's way, written in bulk so that the test stays quick."""
    model = raise_request(requester, site_a1, amount="6000")
    steps = list(model.steps.all())
    copies = []
    for _ in range(WAITING - 1):
        copy = ApprovalRequest.objects.get(pk=model.pk)
        copy.pk = None
        copies.append(copy)
    made = ApprovalRequest.objects.bulk_create(copies)
    ApprovalStep.objects.bulk_create(
        ApprovalStep(**{**_fields(step), "request_id": request.pk})
        for request in made
        for step in steps
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE approvals_approvalrequest")
        cursor.execute("ANALYZE approvals_approvalstep")
    return [model, *made]


def _fields(step: ApprovalStep) -> dict:
    return {
        field.attname: getattr(step, field.attname)
        for field in ApprovalStep._meta.concrete_fields
        if not field.primary_key
    }


def _plans(read) -> list[str]:
    """What the queries of `read` that test candidates put out, as their plans (EXPLAIN
    VERBOSE) say: the test of each candidate reads "(SubPlan n)" there, or "(hashed SubPlan n)"
    when it is one pass over every tier. (The tests inside it, of the person's own votes, may
    be hashed: on a small table that is the cheaper plan.)"""
    with CaptureQueriesContext(connection) as seen:
        read()
    plans = []
    with connection.cursor() as cursor:
        for query in seen.captured_queries:
            if "EXISTS" not in query["sql"] or "approvals_approvalstep" not in query["sql"]:
                continue
            cursor.execute("EXPLAIN (VERBOSE) " + query["sql"])
            lines = [row[0].strip() for row in cursor.fetchall()]
            plans.append(next(line for line in lines if line.startswith("Output:")))
    return plans


def test_the_inbox_head_tests_each_candidate_by_an_index_lookup(queue, site_manager):
    deciding = Authority.of(site_manager)

    head = inbox_head(deciding, limit=25)
    plans = _plans(lambda: inbox_head(deciding, limit=25))

    assert head.counts["more"] and len(head.requests) == 25
    assert plans, "the head tests its candidates"
    for plan in plans:
        assert "hashed SubPlan" not in plan, plan


def test_waiting_for_me_tests_each_candidate_by_an_index_lookup(queue, site_manager):
    filters = listing.ListFilters(tab="waiting", sort="due")

    def read():
        return listing.requests_page(
            site_manager, filters, limit=COUNT_CAP + 1, zone=ZoneInfo("UTC")
        )

    page = read()
    plans = _plans(read)

    assert len(page.rows) == COUNT_CAP + 1
    assert plans, "the list tests its candidates"
    for plan in plans:
        assert "hashed SubPlan" not in plan, plan
