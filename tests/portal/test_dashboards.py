"""The dashboards: numbers scoped to the viewer's sites, correct percentiles, CSV downloads."""

import csv
import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from approvals import services
from exceptions.models import Severity
from exceptions.services import case_raise
from sites.roles import Role
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed
from tests.conftest import persona
from tests.factories import UserFactory

__all__ = ["_working_morning", "matrix", "staffed"]

pytestmark = pytest.mark.django_db


def decided_after(requester, approver, site, hours: float, *, amount="600"):
    """A request submitted now and approved `hours` later, through the real services."""
    start = timezone.now()
    request = raise_request(requester, site, amount=amount)
    with time_machine.travel(start + timedelta(hours=hours), tick=False):
        services.request_approve(actor=approver, request_id=request.pk, comment="ok")
    return request


def login(client, user):
    client.viewer = user
    client.force_login(user)


def get(client, url, params=None, *, days_later=2):
    """Look at the dashboards a few days on, once every decision made in a test is past."""
    with time_machine.travel(timezone.now() + timedelta(days=days_later), tick=False):
        login(client, client.viewer)  # a session lasts a working day
        return client.get(url, params or {})


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.fixture
def decided_at_both_sites(matrix, requester, site_manager, staffed, site_a1, site_a2):
    """Four decisions at A1 (1, 2, 3, 10 hours), one at A2, one fast-path approval at A1."""
    raise_request(requester, site_a1, amount="100")  # fast path: approved at submission
    requester_a2 = staffed["site_manager_a2"]  # raises at A2 (site managers may raise)
    for hours in (1, 2, 3, 10):
        decided_after(requester, site_manager, site_a1, hours)
    decided_after(requester_a2, _a2_approver(site_a2), site_a2, 5)


def _a2_approver(site_a2):
    return persona("sm.a2.second", Role.SITE_MANAGER, site=site_a2)


def test_cycle_time_median_and_p90_are_continuous_percentiles(
    client, decided_at_both_sites, regional_manager
):
    login(client, regional_manager)
    rows = csv_rows(get(client, reverse("dashboards:csv", args=["cycle-time"])))
    a1 = next(row for row in rows if row["Site"] == "A1" and row["Kind"] == "Purchase order")
    # Durations 0 (fast path), 1, 2, 3, 10 hours: the median is the middle one; p90 sits at
    # rank 1 + 0.9 * 4 = 4.6, between 3 and 10 hours: 3 + 0.6 * 7 = 7.2.
    assert a1["Decided"] == "5"
    assert float(a1["Median hours"]) == pytest.approx(2.0, abs=0.01)
    assert float(a1["90th percentile hours"]) == pytest.approx(7.2, abs=0.01)


def test_site_manager_sees_only_their_sites_numbers(client, decided_at_both_sites, site_manager):
    login(client, site_manager)
    for chart in ("cycle-time", "straight-through", "sla-breaches"):
        rows = csv_rows(get(client, reverse("dashboards:csv", args=[chart])))
        assert rows, chart
        assert {row["Site"] for row in rows} == {"A1"}, chart
    page = get(client, reverse("dashboards:home"))
    assert page.status_code == 200
    assert "A2 · Purchase order" not in page.content.decode()
    assert "A1 · Purchase order" in page.content.decode()


def test_regional_manager_sees_every_site_of_the_region(
    client, decided_at_both_sites, regional_manager
):
    login(client, regional_manager)
    rows = csv_rows(get(client, reverse("dashboards:csv", args=["cycle-time"])))
    assert {row["Site"] for row in rows} == {"A1", "A2"}


def test_outsider_sees_none_of_region_a(client, decided_at_both_sites, outsider):
    login(client, outsider)
    for chart in ("cycle-time", "straight-through", "sla-breaches", "open-requests"):
        assert csv_rows(get(client, reverse("dashboards:csv", args=[chart]))) == [], chart
    throughput = csv_rows(get(client, reverse("dashboards:csv", args=["throughput"])))
    assert sum(int(row["Submitted"]) + int(row["Decided"]) for row in throughput) == 0
    page = get(client, reverse("dashboards:home")).content.decode()
    assert "A1" not in page and "A2" not in page


def test_straight_through_rate_counts_fast_path_share(client, decided_at_both_sites, site_manager):
    login(client, site_manager)
    rows = csv_rows(get(client, reverse("dashboards:csv", args=["straight-through"])))
    (a1,) = rows
    assert (a1["Decided"], a1["Fast path"], a1["Straight-through %"]) == ("5", "1", "20.0")


def test_sla_breach_rate_counts_tiers_decided_late(
    client, matrix, requester, site_manager, site_a1
):
    decided_after(requester, site_manager, site_a1, 1)
    decided_after(requester, site_manager, site_a1, 30)  # the tier's SLA is 24 hours
    login(client, site_manager)
    (row,) = csv_rows(get(client, reverse("dashboards:csv", args=["sla-breaches"])))
    assert (row["Tiers"], row["Breached"], row["Breach rate %"]) == ("2", "1", "50.0")


def test_open_requests_by_tier_and_age(client, matrix, requester, site_manager, site_a1):
    raise_request(requester, site_a1, amount="1000")
    login(client, site_manager)
    (row,) = csv_rows(get(client, reverse("dashboards:csv", args=["open-requests"])))
    assert (row["Tier"], row["Waiting"], row["Open"], row["Overdue"]) == (
        "Tier 1 · Site manager",
        "1–3 days",
        "1",
        "1",
    )


def test_exception_backlog_by_queue_site_and_age(client, site_manager, site_a1, site_a2):
    for site, key in ((site_a1, "a1"), (site_a2, "a2")):
        case_raise(
            kind="invoice_mismatch",
            site=site,
            severity=Severity.HIGH,
            title=f"Bill {key}",
            source="manual",
            dedupe_key=f"bill-{key}",
            payload={},
            evidence={},
        )
    login(client, site_manager)
    (row,) = csv_rows(get(client, reverse("dashboards:csv", args=["exception-backlog"])))
    assert (row["Queue"], row["Site"], row["Open"]) == ("Finance", "A1", "1")


def test_period_filter_leaves_out_older_decisions(client, matrix, requester, site_manager, site_a1):
    decided_after(requester, site_manager, site_a1, 1)
    login(client, site_manager)
    url = reverse("dashboards:csv", args=["cycle-time"])
    assert csv_rows(get(client, url, {"days": 30}, days_later=40)) == []
    assert [row["Decided"] for row in csv_rows(get(client, url, {"days": 90}, days_later=40))] == [
        "1"
    ]
    # Anything but an offered period falls back to the default instead of failing.
    assert get(client, url, {"days": "many"}).status_code == 200


def test_throughput_counts_each_day(client, decided_at_both_sites, site_manager):
    login(client, site_manager)
    rows = csv_rows(get(client, reverse("dashboards:csv", args=["throughput"]), {"days": 7}))
    assert len(rows) == 7
    assert sum(int(row["Submitted"]) for row in rows) == 5
    assert sum(int(row["Decided"]) for row in rows) == 5


def test_page_draws_accessible_svg_with_numbers(client, decided_at_both_sites, site_manager):
    login(client, site_manager)
    page = get(client, reverse("dashboards:home"), {"days": 7}).content.decode()
    assert page.count('<svg class="chart"') == 10
    assert 'role="img"' in page and '<title id="cycle-time-title">' in page
    assert "<table" in page
    # The content security policy allows no inline script, handler or style attribute.
    assert not re.search(r"<script(?![^>]*\ssrc=)|\sstyle=|\son[a-z]+=", page)
    assert reverse("dashboards:csv", args=["throughput"]) + "?days=7" in page


def test_page_costs_the_same_queries_whatever_the_volume(
    client,
    matrix,
    requester,
    site_manager,
    site_a1,
    django_assert_max_num_queries,
):
    decided_after(requester, site_manager, site_a1, 1)
    login(client, site_manager)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        get(client, reverse("dashboards:home"))
    for hours in range(2, 8):
        decided_after(requester, site_manager, site_a1, hours)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert get(client, reverse("dashboards:home")).status_code == 200


def test_unknown_chart_is_404_and_anonymous_is_sent_to_login(client, site_manager):
    assert client.get(reverse("dashboards:home")).status_code == 302
    login(client, site_manager)
    assert client.get("/dashboards/nonsense.csv").status_code == 404


def test_page_costs_the_same_queries_whatever_the_number_of_rows(
    client, matrix, requester, site_manager, staffed, site_a1, site_a2, regional_manager
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def look():
        """The page two days on, counting only the queries of the page itself."""
        with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
            client.force_login(regional_manager)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(reverse("dashboards:home"))
        rows = sum(len(panel["table"]) for panel in response.context["panels"])
        return rows, len(queries.captured_queries)

    decided_after(requester, site_manager, site_a1, 1)
    sparse_rows, few = look()
    decided_after(staffed["site_manager_a2"], _a2_approver(site_a2), site_a2, 5)
    raise_request(requester, site_a1, amount="100")  # fast path
    for index, (site, kind) in enumerate(
        [(site_a1, "invoice_mismatch"), (site_a2, "shipment_delay"), (site_a2, "invoice_mismatch")]
    ):
        case_raise(
            kind=kind,
            site=site,
            severity=Severity.HIGH,
            title=f"Row {index}",
            source="manual",
            dedupe_key=f"rows-{index}",
            payload={},
            evidence={},
        )
    dense_rows, many = look()

    assert dense_rows >= sparse_rows + 4
    assert many == few


def test_someone_without_any_role_sees_empty_dashboards(client, decided_at_both_sites):
    login(client, UserFactory(username="newcomer"))
    assert get(client, reverse("dashboards:home")).status_code == 200
    for chart in ("cycle-time", "sla-breaches", "failed-write-backs"):
        assert csv_rows(get(client, reverse("dashboards:csv", args=[chart]))) == [], chart
    throughput = csv_rows(get(client, reverse("dashboards:csv", args=["throughput"])))
    assert {row["Submitted"] for row in throughput} | {row["Decided"] for row in throughput} == {
        "0"
    }
