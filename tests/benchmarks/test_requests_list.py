"""The requests list at 10k, 100k and 1M requests over HTTP, each tab, against the trivial page.

For the readers of the inbox benchmark (reach of 1 site, a ten-site region, all 200 sites),
the first page of each tab of `/approvals/` — waiting for me, raised by me, decided by me, all
in my scope — is fetched through gunicorn with a real sign-in, and compared with a trivial
signed-in page on the same server, as the inbox page is. Target: p95 ≤ the trivial page's
p95 + 15 ms, the inbox page's own target. Each page is checked to show the first row that
`approvals.listing` finds for that person and tab.
"""

import os
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from approvals import listing
from tests.benchmarks import dataset
from tests.benchmarks.harness import Stats, gunicorn, timed, use_database
from tests.benchmarks.test_inbox import (  # noqa: F401 (collected_static is a fixture)
    HTTP_MARGIN_MS,
    READERS,
    SCALES,
    Client,
    _sign_in,
    collected_static,
)
from tests.benchmarks.trivial_urls import TRIVIAL_PATH

HTTP_RUNS = int(os.environ.get("BENCH_LIST_HTTP_RUNS", "30"))
UTC = ZoneInfo("UTC")


def _timed_get(client: Client, path: str, check) -> Stats:
    def fetch():
        status, body = client.get(path)
        assert status == 200, f"{path}: {status}"
        return body

    check(fetch())
    return timed(fetch, runs=HTTP_RUNS, warmup=3)


def _first_reference(user, tab: str) -> str:
    filters = listing.ListFilters(tab=tab, sort=listing.TAB_SORTS[tab])
    page = listing.requests_page(user, filters, limit=listing.PAGE_SIZE, zone=UTC)
    return page.rows[0].request.reference if page.rows else ""


@pytest.mark.parametrize("scale", SCALES)
def test_requests_list_over_http(scale, results, collected_static):  # noqa: F811
    data = dataset.ensure(scale)
    with use_database(data.database):
        users = {
            reader: get_user_model().objects.get(username=data.users_by_reach[reader])
            for reader in READERS
        }
        first = {
            (reader, tab): _first_reference(users[reader], tab)
            for reader in READERS
            for tab in listing.TABS
        }
        with gunicorn(
            data.database,
            app="tests.benchmarks.trivial_wsgi:application",
            env={"STATIC_ROOT": collected_static},
        ) as base:
            section = f"requests list {scale} HTTP"
            for reader in READERS:
                browser = _sign_in(base, users[reader].username)
                trivial = _timed_get(browser, TRIVIAL_PATH, lambda body: None)
                results.add(section, f"{reader}: trivial page p95", trivial.p95, "ms")
                for tab, label in listing.TABS.items():

                    def shows_first(body, expected=first[reader, tab]):
                        assert expected.encode() in body

                    page = _timed_get(browser, f"/approvals/?tab={tab}", shows_first)
                    results.add(
                        section,
                        f"{reader}: {label.lower()} p95",
                        page.p95,
                        "ms",
                        floor=trivial.p95,
                        floor_label="trivial page",
                        target=f"≤ floor + {HTTP_MARGIN_MS:g} ms",
                        ok=page.p95 <= trivial.p95 + HTTP_MARGIN_MS,
                        note=f"p50 {page.p50:.2f} ms; trivial p50 {trivial.p50:.2f} ms",
                    )
