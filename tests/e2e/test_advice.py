"""An approver sees how similar requests went, and Tollgate's recommendation, on a request page
of the fresh demo; the decision keeps the recommendation that was on screen."""

from playwright.sync_api import expect

from approvals.models import RequestState
from portal.audit.models import AuditEvent
from tests.e2e.conftest import PHONE, WIDE


def test_site_manager_sees_similar_requests_and_the_recommendation(
    demo_with_history, page_for, screenshot, console_errors
):
    request = demo_with_history.raise_request("requester", "AMS", "1480")
    manager = demo_with_history.users["site.manager"]

    page = page_for(manager, viewport=WIDE)
    page.goto(f"/approvals/{request.pk}/")

    advice = page.locator("#advice")
    expect(advice.get_by_role("heading", level=2)).to_have_text(
        "Similar requests and a recommendation"
    )
    expect(page.locator("#recommendation")).to_contain_text("Routine")
    expect(page.locator("#recommendation")).to_contain_text("confidence")
    expect(advice).to_contain_text("purchase order requests at AMS")
    expect(page.locator("#similar")).to_contain_text("Decided by people")
    # The last decisions are told with the people's names and their comments.
    expect(page.locator("#similar-last li")).to_have_count(3)
    expect(page.locator("#similar-last")).to_contain_text("Sander de Vries")
    expect(page.locator("#advice-note")).to_contain_text("routine")
    screenshot(page, "request-advice")

    phone = page_for(manager, viewport=PHONE)
    phone.goto(f"/approvals/{request.pk}/")
    expect(phone.locator("#recommendation")).to_be_visible()
    screenshot(phone, "request-advice-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator("#request-state")).to_have_text("Approved")
    request.refresh_from_db()
    assert request.state == RequestState.APPROVED
    event = AuditEvent.objects.get(action="decision.approve", object_id=str(request.pk))
    assert event.context["advice_shown"] == "routine"
    assert not console_errors
