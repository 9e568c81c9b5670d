"""A regional manager reads the dashboards in a real browser, at desk and phone width, and
downloads a chart's numbers."""

import csv
import io
from datetime import timedelta

from django.utils import timezone

from approvals import services
from exceptions.services import case_raise, case_resolve
from portal.integrations.odoo import services as odoo
from portal.integrations.odoo.errors import OdooError
from portal.integrations.odoo.models import OutboxItem
from sites.models import Site
from tests.e2e.conftest import PHONE

DESK = {"width": 1366, "height": 900}
# Every text drawn in a chart lies inside its drawing: nothing is cut at either edge.
TEXT_OUTSIDE_ITS_CHART = """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
    const width = svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')]
        .filter(text => { const box = text.getBBox();
                          return box.x < -0.5 || box.x + box.width > width + 0.5; })
        .map(text => text.textContent);
})"""


def _case(site: str, severity: str, number: int, *, kind: str = "invoice_mismatch", at=None):
    case, _ = case_raise(
        kind=kind,
        site=Site.objects.get(code=site),
        severity=severity,
        title=f"Vendor bill {number} over its purchase order",
        source="odoo" if kind == "invoice_mismatch" else "manual",
        dedupe_key=f"e2e-dashboard-bill-{number}",
        payload={},
        evidence={},
        at=at,
    )
    return case


def _transfer(demo, amount: str):
    return demo.raise_request(
        "requester",
        "AMS",
        amount,
        kind="transfer",
        title=f"Transfer of {amount} to Rotterdam",
        category="Frozen",
        details={"counterparty_since": "2019-01-01", "destination_site": "RTM"},
    )


def _odoo_refuses():
    raise OdooError("The purchase order is locked in Odoo.", permanent=True)


def _two_weeks_earlier(demo, working_morning):
    """A transfer applied and a bill settled, then two weeks pass: inside 30 days, not 7."""
    users = demo.users
    start = timezone.now()
    transfer = _transfer(demo, "2600")
    bill = _case("AMS", "medium", 90)
    working_morning.shift(timedelta(hours=1))
    services.request_approve(actor=users["site.manager"], request_id=transfer.pk, comment="Go")
    working_morning.shift(timedelta(hours=5))
    services.request_mark_applied(request_id=transfer.pk, note="Validated in Odoo")
    case_resolve(actor=users["finance"], case_id=bill.pk, code="bill_corrected", note="Corrected")
    working_morning.move_to(start + timedelta(days=14))


def _every_chart_has_data(demo, working_morning):
    """Through the services: decisions, waiting tiers, open and closed cases, transfers applied
    in Odoo and a write-back Odoo refused, at Benelux sites, plus one London request."""
    users = demo.users
    _two_weeks_earlier(demo, working_morning)
    waiting = [demo.raise_request("requester", "AMS", amount) for amount in ("1100", "1200")]
    waiting += [demo.raise_request("requester", "AMS", amount) for amount in ("1300", "1050")]
    demo.raise_request("requester", "AMS", "300")  # fast path: approved at submission
    demo.raise_request("sm.london", "LON", "1300")  # another region: never counted here
    material = demo.raise_request("requester", "AMS", "6200")  # then waits for the region
    refused = demo.raise_request("sm.rotterdam", "RTM", "300", odoo_id=9101)  # fast path
    # Odoo refuses its write-back for good (if the first attempt has not failed it already).
    odoo.outbox_apply(
        item_id=OutboxItem.objects.get(request=refused).pk, client_factory=_odoo_refuses
    )
    transfer = _transfer(demo, "2500")
    _case("AMS", "high", 1)
    _case("RTM", "medium", 2)
    bill = _case("ANR", "medium", 3)
    late = _case("RTM", "low", 4, kind="shipment_delay")
    for hours, request in zip((2, 3, 4), waiting, strict=False):
        working_morning.shift(timedelta(hours=hours))
        services.request_approve(
            actor=users["site.manager"], request_id=request.pk, comment="Routine"
        )
    services.request_approve(actor=users["site.manager"], request_id=material.pk, comment="Yes")
    services.request_approve(actor=users["site.manager"], request_id=transfer.pk, comment="Go")
    services.request_mark_applied(request_id=transfer.pk, note="Validated in Odoo")
    case_resolve(actor=users["finance"], case_id=bill.pk, code="bill_corrected", note="Fixed")
    case_resolve(
        actor=users["regional.manager"], case_id=late.pk, code="delivered_late", note="Arrived"
    )


def test_regional_manager_reads_dashboards_and_downloads_csv(
    demo, working_morning, page_for, screenshot
):
    users = demo.users
    _every_chart_has_data(demo, working_morning)

    page = page_for(users["regional.manager"], viewport=DESK)
    page.get_by_role("link", name="Dashboards").click()
    page.wait_for_url("**/dashboards/")
    assert page.get_by_role("heading", name="Approval cycle time").is_visible()
    assert page.locator("svg.chart").count() == 10
    # Every chart has something to show for the last 30 days.
    assert page.locator("svg.chart text.chart-empty").count() == 0
    for kpi in ("Exception resolution time", "Invoice matching speed", "Transfer lead time"):
        assert page.get_by_role("img", name=kpi).is_visible()
    cycle = page.locator("#panel-cycle-time")
    assert cycle.get_by_role("img", name="Approval cycle time").is_visible()
    assert "AMS" in cycle.locator("table").inner_text()
    assert "RTM" in page.locator("#panel-exception-backlog table").inner_text()
    assert "LON" not in page.locator("main").inner_text()
    # Tiers are named by the role they wait for, in the drawing and in the table.
    tiers = page.locator("#panel-open-requests")
    assert "Tier 2 · Regional manager" in tiers.locator("table").inner_text()
    assert tiers.locator("svg title", has_text="Tier 2 · Regional manager").count() == 1
    # No label is cut: every text lies inside its drawing, and each bar's whole label is its
    # tooltip.
    assert page.evaluate(TEXT_OUTSIDE_ITS_CHART) == []
    backlog_titles = page.locator("#panel-exception-backlog svg g.chart-row > title")
    assert "Finance · AMS · under 1 day: 1" in backlog_titles.all_text_contents()
    transfers = page.locator("#panel-transfer-lead-time table")
    assert transfers.locator("tbody tr").first.inner_text().split("\t")[:2] == ["AMS", "2"]
    screenshot(page, "dashboard")

    # The period acts at once, in place, and the address keeps it.
    page.get_by_role("navigation", name="Period").get_by_role("link", name="Last 7 days").click()
    page.wait_for_url("**/dashboards/?days=7")
    transfers = page.locator("#panel-transfer-lead-time table")
    assert transfers.locator("tbody tr").first.inner_text().split("\t")[:2] == ["AMS", "1"]
    period = page.get_by_role("navigation", name="Period")
    assert period.get_by_role("link", name="Last 7 days").get_attribute("aria-current") == "true"
    assert period.get_by_role("link", name="Last 30 days").get_attribute("aria-current") is None

    cycle = page.locator("#panel-cycle-time")
    with page.expect_download() as download_info:
        cycle.get_by_role("link", name="CSV of approval cycle time").click()
    download = download_info.value
    assert download.suggested_filename.startswith("cycle-time-7d-")
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    ams = next(row for row in rows if row["Site"] == "AMS" and row["Kind"] == "Purchase order")
    # Decided after 0 (fast path), 2, 5 and 9 hours: the median lies between 2 and 5.
    assert ams["Decided"] == "4"
    assert float(ams["Median hours"]) == 3.5
    assert {row["Site"] for row in rows} <= {"AMS", "RTM", "ANR"}

    # At phone width nothing scrolls sideways and no label is cut.
    phone = page_for(users["regional.manager"], viewport=PHONE)
    phone.goto("/dashboards/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.evaluate(TEXT_OUTSIDE_ITS_CHART) == []
    screenshot(phone, "dashboard-phone")


def test_in_the_fresh_demo_every_chart_has_data_at_desk_and_phone_width(
    demo_with_history, page_for, screenshot
):
    manager = demo_with_history.users["regional.manager"]
    page = page_for(manager, viewport=DESK)
    page.goto("/dashboards/")
    panels = page.locator("section.panel")
    assert panels.count() == 10
    empty = {
        panel.get_attribute("id").removeprefix("panel-"): message.text_content()
        for panel in panels.all()
        for message in panel.locator("svg.chart text.chart-empty").all()
    }
    # Only the chart of failures may say it has nothing, and only when nothing failed.
    if "failed-write-backs" in empty and not _a_write_back_failed():
        del empty["failed-write-backs"]
    assert empty == {}
    assert page.evaluate(TEXT_OUTSIDE_ITS_CHART) == []
    screenshot(page, "dashboard-demo")

    phone = page_for(manager, viewport=PHONE)
    phone.goto("/dashboards/")
    assert phone.locator("section.panel").count() == 10
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "dashboard-demo-phone")


def _a_write_back_failed() -> bool:
    """Whether any decision of the seed failed, or is failing, to reach Odoo."""
    from approvals.models import ApprovalRequest, RequestState
    from portal.integrations.odoo.models import OutboxState

    failing = OutboxItem.objects.filter(state=OutboxState.FAILED) | OutboxItem.objects.filter(
        state=OutboxState.PENDING, attempts__gt=0
    )
    return (
        failing.exists() or ApprovalRequest.objects.filter(state=RequestState.APPLY_FAILED).exists()
    )
