"""The requests list and the new-request page at 10k, 100k and 1M requests over HTTP.

For the readers of the inbox benchmark (reach of 1 site, a ten-site region, all 200 sites),
the first page of each tab of `/approvals/` — waiting for me, raised by me, decided by me, all
in my scope — and the page that starts a new request, `/approvals/new/`, are fetched through
gunicorn with a real sign-in, and compared with a trivial signed-in page on the same server, as
the inbox page is. Target: p95 ≤ the trivial page's p95 + 15 ms, the inbox page's own target.
Each list page is checked to show the first row that `approvals.listing` finds for that person
and tab; the new-request page to offer every kind of request. "Decided by me" is also fetched for
one of the people who decide most (`dataset.HEAVY_DECIDER`), whose tab holds thousands of
requests, against the same target.
"""

import os
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from approvals import listing
from approvals.kinds import KINDS
from tests.benchmarks import dataset, pages
from tests.benchmarks.harness import use_database
from tests.benchmarks.test_inbox import READERS, SCALES

HTTP_RUNS = int(os.environ.get("BENCH_LIST_HTTP_RUNS", "30"))
UTC = ZoneInfo("UTC")


def _first_reference(user, tab: str) -> str:
    filters = listing.ListFilters(tab=tab, sort=listing.TAB_SORTS[tab])
    page = listing.requests_page(user, filters, limit=listing.PAGE_SIZE, zone=UTC)
    return page.rows[0].request.reference if page.rows else ""


def _offers_every_kind(body: bytes) -> None:
    missing = [kind for kind in KINDS if f'href="/approvals/new/{kind}/"'.encode() not in body]
    assert not missing, f"the new-request page does not offer {missing}"


@pytest.mark.parametrize("scale", SCALES)
def test_requests_list_over_http(scale, results, collected_static):
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
        heavy = get_user_model().objects.get(username=dataset.HEAVY_DECIDER)
        heavy_first = _first_reference(heavy, "decided")
        with pages.serve(data.database, collected_static) as base:
            section = f"requests list {scale} HTTP"
            for reader in READERS:
                browser = pages.sign_in(base, users[reader].username)
                trivial = pages.trivial(browser, runs=HTTP_RUNS)
                results.add(section, f"{reader}: trivial page p95", trivial.p95, "ms")
                for tab, label in listing.TABS.items():

                    def shows_first(body, expected=first[reader, tab]):
                        assert expected.encode() in body

                    page = pages.timed_get(
                        browser, f"/approvals/?tab={tab}", shows_first, runs=HTTP_RUNS
                    )
                    metric = f"{reader}: {label.lower()} p95"
                    pages.record_page(results, section, metric, page, trivial)
                new = pages.timed_get(
                    browser, "/approvals/new/", _offers_every_kind, runs=HTTP_RUNS
                )
                pages.record_page(results, section, f"{reader}: new request page p95", new, trivial)
            browser = pages.sign_in(base, heavy.username)
            trivial = pages.trivial(browser, runs=HTTP_RUNS)
            results.add(section, "heavy decider: trivial page p95", trivial.p95, "ms")

            def shows_heavy_first(body, expected=heavy_first):
                assert expected and expected.encode() in body

            page = pages.timed_get(
                browser, "/approvals/?tab=decided", shows_heavy_first, runs=HTTP_RUNS
            )
            metric = "heavy decider: decided by me p95"
            pages.record_page(results, section, metric, page, trivial)
