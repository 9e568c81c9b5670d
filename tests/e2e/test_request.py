"""The request page in a real browser: refusals, 404, 409, withdrawal and bulk approval."""

from playwright.sync_api import expect

from approvals import services
from approvals.models import ApprovalRequest, RequestState


def _state(request) -> str:
    return ApprovalRequest.objects.get(pk=request.pk).state


def test_reject_without_a_reason_shows_the_message(demo, page_for):
    request = demo.raise_request("requester", "AMS", "1500")
    page = page_for(demo.users["site.manager"])
    page.goto(f"/approvals/{request.pk}/")

    page.get_by_role("button", name="Reject", exact=True).click()

    expect(page.locator("#reject-form")).to_contain_text("Say why the request is rejected.")
    assert _state(request) == RequestState.IN_REVIEW


def test_a_stale_decision_shows_the_409_page(demo, page_for, screenshot, console_errors):
    request = demo.raise_request("requester", "AMS", "1500")
    page = page_for(demo.users["site.manager"])
    page.goto(f"/approvals/{request.pk}/")
    # While the page is open, the requester withdraws the request.
    services.request_withdraw(actor=demo.users["requester"], request_id=request.pk)

    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator("#conflict")).to_contain_text("Someone else got there first")
    expect(page.locator("#current-state")).to_have_text("Withdrawn")
    screenshot(page, "conflict-409")
    assert not [error for error in console_errors if "Content Security Policy" in error]


def test_site_manager_opening_another_regions_request_gets_the_404_page(demo, page_for):
    request = demo.raise_request("requester", "AMS", "1500")
    page = page_for(demo.users["outsider"])

    response = page.goto(f"/approvals/{request.pk}/")

    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator("body")).not_to_contain_text(request.title)


def test_requester_withdraws(demo, page_for):
    request = demo.raise_request("requester", "AMS", "1500")
    page = page_for(demo.users["requester"])
    page.goto(f"/approvals/{request.pk}/")
    expect(page.locator("#why-not-decide")).to_contain_text("You raised this request")

    page.get_by_label("Why withdraw? (optional)").fill("Ordered through the framework deal")
    page.get_by_role("button", name="Withdraw request").click()

    expect(page.locator("#request-state")).to_have_text("Withdrawn")
    assert _state(request) == RequestState.WITHDRAWN


def test_bulk_approval_of_five_routine_items(demo, page_for, screenshot, console_errors):
    # Two requesters, so that no one's requests add up to a threshold (split detection).
    raisers = ["requester", "requester", "regional.manager", "regional.manager", "requester"]
    routine = [demo.raise_request(who, "AMS", str(1100 + 100 * i)) for i, who in enumerate(raisers)]
    material = demo.raise_request("regional.manager", "AMS", "7000", title="PO09999 racking")
    assert all(not r.risk_flags for r in routine)
    page = page_for(demo.users["site.manager"])
    page.get_by_role("link", name="Bulk-approve routine items").click()

    expect(page.locator("#one-by-one")).to_contain_text("PO09999 racking")
    for request in routine:
        page.locator(f"#bulk-{request.pk}").check()
    expect(page.locator("[data-bulk-selected]")).to_contain_text("5 requests, €6,500.00")
    screenshot(page, "bulk-approval-five")
    page.get_by_label("Comment for every approval").fill("Weekly replenishment")
    page.get_by_role("button", name="Approve selected").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("5 approved")
    expect(page.locator("#bulk-outcomes li.ok")).to_have_count(5)
    assert all(_state(r) != RequestState.IN_REVIEW for r in routine)
    assert _state(material) == RequestState.IN_REVIEW
    assert console_errors == []
