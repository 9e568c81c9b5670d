"""A requester revises a rejected request in a real browser and raises it again; the rejected
one keeps its history and points to its next revision."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from approvals import services
from approvals.models import ApprovalRequest, RequestState
from tests.e2e.conftest import WIDE

REASON = "The quote is too high; ask Noord Foods for a second one."


def test_requester_revises_a_rejected_request_and_the_first_keeps_its_rejection(
    demo, page_for, screenshot, console_errors
):
    first = demo.raise_request(
        "requester",
        "AMS",
        "1840",
        title="Cold-room shelving for aisle 7",
        counterparty="Noord Foods",
    )
    services.request_reject(actor=demo.users["site.manager"], request_id=first.pk, reason=REASON)
    page = page_for(demo.users["requester"], viewport=WIDE)

    page.goto(f"/approvals/{first.pk}/")
    expect(page.locator("#request-state")).to_have_text("Rejected")
    page.get_by_role("link", name="Revise and resubmit").click()
    expect(page).to_have_url(re.compile(rf"/approvals/{first.pk}/revise/$"))
    page.get_by_label("Amount", exact=True).fill("1390.00")
    page.get_by_label("Justification").fill("Second quote from Noord Foods, 450 euros lower.")
    page.get_by_role("button", name="Submit the revision").click()

    second = ApprovalRequest.objects.exclude(pk=first.pk).get(revision_of=first)
    expect(page).to_have_url(re.compile(rf"/approvals/{second.pk}/$"))
    assert (second.amount, second.state) == (Decimal("1390.00"), RequestState.IN_REVIEW)
    expect(page.locator("#request-state")).to_have_text("In review")
    expect(page.locator("#revision-of")).to_have_text(
        f"Revision 2 of {first.reference}, which was rejected."
    )
    expect(page.locator(".reason")).to_have_text("Second quote from Noord Foods, 450 euros lower.")
    expect(page.locator(".summary-line .amount")).to_have_text("€1,390.00")
    screenshot(page, "revised-request")

    # The rejected request is kept as it was, with the reason, and leads to its revision.
    page.locator("#revision-of").get_by_role("link", name=first.reference).click()
    expect(page).to_have_url(re.compile(rf"/approvals/{first.pk}/$"))
    expect(page.locator("#request-state")).to_have_text("Rejected")
    expect(page.locator(".summary-line .amount")).to_have_text("€1,840.00")
    expect(page.locator("#policy-path")).to_contain_text("Rejected by Sander de Vries")
    expect(page.locator("#policy-path")).to_contain_text(REASON)
    expect(page.locator("#revised-as")).to_have_text(f"Raised again as {second.reference}.")
    expect(page.get_by_role("link", name="Revise and resubmit")).to_have_count(0)
    page.locator("#revised-as").get_by_role("link", name=second.reference).click()
    expect(page).to_have_url(re.compile(rf"/approvals/{second.pk}/$"))
    assert not [error for error in console_errors if "Content Security Policy" in error]
