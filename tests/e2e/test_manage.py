"""A site manager hands their approvals to a colleague and takes them back; an administrator
asks who would approve a request."""

import json

from approvals.models import ApprovalPolicy, Delegation, NotificationPreference


def test_site_manager_delegates_and_revokes(demo, page_for, screenshot):
    users = demo.users
    manager = users["site.manager"]
    page = page_for(manager)
    page.get_by_role("link", name="Delegations").click()
    page.wait_for_url("**/manage/delegations/")

    assert "Times are Europe/Amsterdam (CET)" in page.locator("main").inner_text()
    form = page.locator("#new-delegation")
    people = form.locator("select[data-people]")
    # Typing narrows the list to the people the rule allows whose name matches; Enter picks
    # the only one left.
    search = form.get_by_label("Find a person")
    search.fill("ilse")
    assert people.locator("option:not([hidden])").all_inner_texts() == [
        "Ilse Bakker — site manager, Rotterdam Port Warehouse"
    ]
    search.press("Enter")
    form.get_by_label("From", exact=True).fill("2026-01-01")
    form.get_by_label("Until", exact=True).fill("2099-12-31")
    form.get_by_label("Note").fill("Holiday cover")
    form.get_by_role("button", name="Delegate", exact=True).click()
    page.wait_for_load_state()
    assert "Your approvals go to Ilse Bakker" in page.locator("main").inner_text()
    given = page.locator("#given")
    assert "Ilse Bakker" in given.inner_text() and "in force" in given.inner_text()
    assert "Thu 1 Jan 2026 to Thu 31 Dec 2099" in given.inner_text()
    screenshot(page, "delegations")
    delegation = Delegation.objects.get(delegator=manager)
    assert delegation.revoked_at is None
    assert delegation.delegate.username == "sm.rotterdam"

    given.get_by_role("button", name="Revoke delegation to Ilse Bakker").click()
    page.wait_for_load_state()
    assert "revoked" in page.locator("#given").inner_text()
    delegation.refresh_from_db()
    assert delegation.revoked_at is not None


def test_administrator_previews_who_would_approve(demo, page_for, screenshot):
    page = page_for(demo.users["admin"])
    page.get_by_role("link", name="Policies").click()
    page.wait_for_url("**/manage/policies/")
    page.get_by_role("link", name="Who would approve this?").click()
    page.get_by_label("Kind").select_option("purchase")
    page.get_by_label("Site").select_option(label="AMS Amsterdam Distribution Centre")
    page.get_by_label("Amount", exact=True).fill("12000")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_role("button", name="Show the route").click()
    route = page.locator("#preview")
    assert "Stage 1" in route.inner_text() and "site.manager" in route.inner_text()
    screenshot(page, "policy-preview")


def test_site_manager_chooses_a_daily_digest(demo, page_for, screenshot):
    manager = demo.users["site.manager"]
    page = page_for(manager)
    page.get_by_role("link", name="Preferences").click()
    page.wait_for_url("**/manage/preferences/")
    page.get_by_label("One daily digest of what waits for me").check()
    page.get_by_label("Remind me when a decision nears its due time").uncheck()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "preferences are saved" in page.locator("main").inner_text()
    assert page.get_by_label("One daily digest of what waits for me").is_checked()
    screenshot(page, "preferences")
    preference = NotificationPreference.objects.get(user=manager)
    assert (preference.new_steps, preference.reminders) == ("digest", False)


def test_administrator_sees_lint_errors_and_nothing_is_published(demo, page_for, screenshot):
    policy = ApprovalPolicy.objects.get(region__isnull=True, site__isnull=True)
    versions = policy.versions.count()
    page = page_for(demo.users["admin"])
    page.goto(f"/manage/policies/{policy.pk}/")
    page.get_by_role("link", name="Publish a new version").click()
    editor = page.get_by_label("Rules and tiers (JSON)")
    spec = json.loads(editor.input_value())
    spec["rules"][0]["tiers"][0]["quorum"] = 9  # no site has nine site managers
    editor.fill(json.dumps(spec, indent=2))
    page.get_by_role("button", name="Publish").click()
    errors = page.locator("#lint-errors")
    assert "nothing was changed" in errors.inner_text()
    assert "Rule 'Routine purchases', tier 1" in errors.inner_text()
    assert "it needs 9" in errors.inner_text()
    screenshot(page, "policy-publish-lint", full_page=False)
    assert policy.versions.count() == versions


def test_on_a_phone_typing_narrows_the_people_in_the_native_picker(demo, page_for, screenshot):
    from tests.e2e.conftest import PHONE

    page = page_for(demo.users["site.manager"], viewport=PHONE)
    page.goto("/manage/delegations/")
    form = page.locator("#new-delegation")
    people = form.locator("select[data-people]")
    assert people.get_attribute("size") is None  # the phone's own picker, not a tall list

    form.get_by_label("Find a person").fill("wout")
    search_left = people.locator("option[value]:not([value='']):not([hidden])")
    assert search_left.all_inner_texts() == ["Lotte Wouters — site manager, Antwerp Cross-Dock"]
    form.get_by_label("Find a person").press("Enter")
    assert people.input_value() == str(demo.users["sm.antwerp"].pk)
    assert "1 person" in form.inner_text()
    # Only Benelux colleagues are offered; the Manchester outsider never is.
    form.get_by_label("Find a person").fill("")
    offered = people.locator("option[value]:not([value=''])").all_inner_texts()
    assert len(offered) == 10  # everyone with a role in Benelux but the manager
    outsider = demo.users["outsider"].get_full_name()
    assert not any(o.startswith(outsider) for o in offered)
    screenshot(page, "delegations-phone")
