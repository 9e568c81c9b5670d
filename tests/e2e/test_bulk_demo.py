"""The regional manager clears the routine work the fresh demo leaves waiting, in one go, in a
real browser."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, WIDE

COMMENT = "Routine replenishment within budget; approved together."


def test_regional_manager_bulk_approves_the_demos_routine_requests(
    demo_with_history, page_for, screenshot, console_errors
):
    manager = demo_with_history.users["regional.manager"]

    # At phone width the page reads without sideways scrolling.
    phone = page_for(manager, viewport=PHONE)
    phone.goto("/approvals/bulk/")
    expect(phone.locator("#bulk-form")).to_be_visible()
    screenshot(phone, "bulk-approval-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page = page_for(manager, viewport=WIDE)
    page.goto("/approvals/bulk/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bulk approval")
    # The largest group of routine requests ("Purchase order · Routine purchases (5)").
    groups = page.get_by_role("navigation", name="Groups of routine requests").get_by_role("link")
    groups_text = groups.all_inner_texts()
    sizes = [int(re.search(r"\((\d+) requests?\)$", text)[1]) for text in groups_text]
    groups.nth(sizes.index(max(sizes))).click()
    form = page.locator("#bulk-form")
    boxes = form.locator("input[name=requests]")
    expect(boxes).to_have_count(max(sizes))
    count = boxes.count()
    labels = form.locator("tbody label")
    items = {}
    for index in range(count):
        reference, title = labels.nth(index).inner_text().split(" ", 1)
        items[reference] = title.strip()
    assert all(re.fullmatch(r"AR-\d+", reference) for reference in items), items

    for index in range(count):
        boxes.nth(index).check()
    form.get_by_label("Comment for every approval").fill(COMMENT)
    screenshot(page, "bulk-approval")
    form.get_by_role("button", name="Approve selected").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"{count} approved")
    outcomes = page.locator("#bulk-outcomes li")
    expect(outcomes).to_have_count(count)
    for reference, title in items.items():
        outcome = outcomes.filter(has=page.get_by_role("link", name=reference, exact=True))
        expect(outcome).to_have_text(f"{reference} {title} — Approved.")

    # The requests list shows each of them approved, decided by the regional manager.
    page.goto("/approvals/?tab=decided")
    listing = page.locator("#requests-list")
    for reference in items:
        row = listing.locator("tbody tr").filter(
            has=page.get_by_role("link", name=reference, exact=True)
        )
        expect(row).to_have_count(1)
        expect(row.locator(".state")).to_have_text("Approved")
        expect(row.locator("[data-label=Decided]")).to_contain_text("Approved by Rosa Martens")
    assert not [error for error in console_errors if "Content Security Policy" in error]
    # The story needs a group of at least five: one comment is then worth it.
    assert count >= 5, f"the largest group of routine requests holds {count}: {groups_text}"
