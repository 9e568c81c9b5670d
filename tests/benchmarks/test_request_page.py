"""One request at 10k, 100k and 1M requests over HTTP: its page and its API detail.

For each reader of the inbox benchmark the request is the first of their own inbox (soonest
due, then lowest id: the same one on every run over the same dataset), so the page is the one
they open to decide it, with its decision form. Both are fetched through gunicorn with a real
sign-in (the page with the session cookie, the API with a read-only token) and compared with a
trivial signed-in page on the same server. Target: p95 ≤ the trivial page's p95 + 15 ms, the
inbox page's own target. The page must show the request's reference and offer its approval;
the API must answer the same request.
"""

import json
import os

import pytest
from django.contrib.auth import get_user_model

from approvals.selectors import inbox_for
from tests.benchmarks import dataset, pages
from tests.benchmarks.harness import use_database
from tests.benchmarks.test_inbox import READERS, SCALES

HTTP_RUNS = int(os.environ.get("BENCH_REQUEST_HTTP_RUNS", "30"))


def _to_decide(user):
    """The first request of `user`'s inbox: one they may decide now."""
    page = inbox_for(user, limit=1)
    assert page.requests, f"{user.username} has nothing to decide in this dataset"
    return page.requests[0]


@pytest.mark.parametrize("scale", SCALES)
def test_request_page_over_http(scale, results, collected_static):
    data = dataset.ensure(scale)
    with use_database(data.database):
        users = {
            reader: get_user_model().objects.get(username=data.users_by_reach[reader])
            for reader in READERS
        }
        chosen = {reader: _to_decide(users[reader]) for reader in READERS}
        with pages.serve(data.database, collected_static) as base:
            section = f"request page {scale} HTTP"
            for reader in READERS:
                request = chosen[reader]
                browser = pages.sign_in(base, users[reader].username)
                trivial = pages.trivial(browser, runs=HTTP_RUNS)

                def offers_approval(body, request=request):
                    assert request.reference.encode() in body
                    assert f'action="/approvals/{request.pk}/approve/"'.encode() in body

                def answers_request(body, request=request):
                    found = json.loads(body)
                    assert (found["id"], found["reference"]) == (request.pk, request.reference)

                page = pages.timed_get(
                    browser, f"/approvals/{request.pk}/", offers_approval, runs=HTTP_RUNS
                )
                api = pages.timed_get(
                    pages.api_client(base, users[reader], "Request page benchmark"),
                    f"/api/v1/approvals/{request.pk}/",
                    answers_request,
                    runs=HTTP_RUNS,
                )
                who = f"{reader} ({request.reference})"
                results.add(section, f"{reader}: trivial page p95", trivial.p95, "ms")
                pages.record_page(results, section, f"{who}: request page p95", page, trivial)
                pages.record_page(results, section, f"{who}: API request detail p95", api, trivial)
