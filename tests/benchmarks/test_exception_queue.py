"""The exception queue page for finance at 10k, 100k and 1M requests over HTTP.

The datasets hold a fifth as many exception cases as requests (200,000 at 1M) over every site
and queue, in every state. Finance (roles at the five regions of 50 sites) opens
`/exceptions/`: the queues they work, by priority, with the per-queue summary. It is fetched
through gunicorn with a real sign-in and compared with a trivial signed-in page on the same
server. Target: p95 ≤ the trivial page's p95 + 15 ms, the inbox page's own target. The page
must list the case `exceptions.selectors` ranks first for finance.
"""

import os

import pytest
from django.contrib.auth import get_user_model

from exceptions import selectors
from tests.benchmarks import dataset, pages
from tests.benchmarks.harness import use_database
from tests.benchmarks.test_inbox import SCALES

READER = "finance"
HTTP_RUNS = int(os.environ.get("BENCH_QUEUE_HTTP_RUNS", "30"))


@pytest.mark.parametrize("scale", SCALES)
def test_exception_queue_over_http(scale, results, collected_static):
    data = dataset.ensure(scale)
    with use_database(data.database):
        user = get_user_model().objects.get(username=data.users_by_reach[READER])
        worked = selectors.queue_page(user, selectors.QueueFilters(worked_only=True), limit=1)
        assert worked.items, f"{READER} has no open case in the queues they work"
        first = worked.items[0].case
        with pages.serve(data.database, collected_static) as base:
            section = f"exception queue {scale} HTTP"
            browser = pages.sign_in(base, user.username)
            trivial = pages.trivial(browser, runs=HTTP_RUNS)

            def lists_first(body):
                assert f'href="/exceptions/{first.pk}/"'.encode() in body

            page = pages.timed_get(browser, "/exceptions/", lists_first, runs=HTTP_RUNS)
            results.add(section, "exception cases in the dataset", data.cases, "cases")
            open_cases = f"{READER}: open cases in the queues they work"
            results.add(section, open_cases, worked.total, "cases")
            results.add(section, f"{READER}: trivial page p95", trivial.p95, "ms")
            metric = f"{READER}: exception queue page p95"
            pages.record_page(results, section, metric, page, trivial)
