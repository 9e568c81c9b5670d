"""A regional manager reads the dashboards in a real browser and downloads a chart's numbers."""

import csv
import io
from datetime import timedelta

from approvals import services
from exceptions.services import case_raise
from sites.models import Site


def _case(site: str, severity: str, number: int) -> None:
    case_raise(
        kind="invoice_mismatch",
        site=Site.objects.get(code=site),
        severity=severity,
        title=f"Vendor bill {number} over its purchase order",
        source="manual",
        dedupe_key=f"e2e-dashboard-bill-{number}",
        payload={},
        evidence={},
    )


def test_regional_manager_reads_dashboards_and_downloads_csv(
    demo, working_morning, page_for, screenshot
):
    users = demo.users
    waiting = [demo.raise_request("requester", "AMS", amount) for amount in ("1100", "1200")]
    waiting += [demo.raise_request("requester", "AMS", amount) for amount in ("1300", "1050")]
    demo.raise_request("requester", "AMS", "300")  # fast path: approved at submission
    demo.raise_request("sm.london", "LON", "1300")  # another region: never counted here
    _case("AMS", "high", 1)
    _case("RTM", "medium", 2)
    for hours, request in zip((2, 3, 4), waiting, strict=False):
        working_morning.shift(timedelta(hours=hours))
        services.request_approve(
            actor=users["site.manager"], request_id=request.pk, comment="Routine"
        )

    page = page_for(users["regional.manager"])
    page.get_by_role("link", name="Dashboards").click()
    page.wait_for_url("**/dashboards/")
    assert page.get_by_role("heading", name="Approval cycle time").is_visible()
    assert page.locator("svg.chart").count() == 7
    cycle = page.locator("#panel-cycle-time")
    assert cycle.get_by_role("img", name="Approval cycle time").is_visible()
    assert "AMS" in cycle.locator("table").inner_text()
    assert "RTM" in page.locator("#panel-exception-backlog table").inner_text()
    assert "LON" not in page.locator("main").inner_text()

    page.get_by_label("Period").select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/dashboards/?days=7")
    screenshot(page, "dashboard")

    with page.expect_download() as download_info:
        cycle.get_by_role("link", name="CSV of approval cycle time").click()
    download = download_info.value
    assert download.suggested_filename.startswith("cycle-time-7d-")
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    ams = next(row for row in rows if row["Site"] == "AMS" and row["Kind"] == "purchase")
    # Decided after 0 (fast path), 2, 5 and 9 hours: the median lies between 2 and 5.
    assert ams["Decided"] == "4"
    assert float(ams["Median hours"]) == 3.5
    assert {row["Site"] for row in rows} <= {"AMS", "RTM", "ANR"}
