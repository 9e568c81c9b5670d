"""Pages over HTTP: a signed-in browser or API client on the benchmark server, timed.

Every page benchmark serves the product through `tests.benchmarks.trivial_wsgi` (gunicorn, two
workers) and measures, per person, a trivial signed-in page on the same server first: the
floor. The target of every page is the inbox's: p95 ≤ the trivial page's p95 + 15 ms, so what
the page costs beyond signing in, the middleware and the server is at most 15 ms.
"""

from __future__ import annotations

import html
import http.client
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode, urlsplit

from tests.benchmarks import dataset
from tests.benchmarks.harness import Results, Stats, gunicorn, timed
from tests.benchmarks.trivial_urls import TRIVIAL_PATH

HTTP_MARGIN_MS = 15.0
TARGET = f"≤ floor + {HTTP_MARGIN_MS:g} ms"


class Client:
    """A signed-in browser (session cookie) or integration (API token) on one server."""

    def __init__(self, base: str, headers: dict[str, str]):
        self.netloc = urlsplit(base).netloc
        self.headers = headers

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.netloc, timeout=60)
        try:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@contextmanager
def serve(database: str, static_root: str) -> Iterator[str]:
    """The product with the trivial page beside it, over `database`; yields the base URL."""
    with gunicorn(
        database,
        app="tests.benchmarks.trivial_wsgi:application",
        env={"STATIC_ROOT": static_root},
    ) as base:
        yield base


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    jar = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
    return jar


def sign_in(base: str, username: str) -> Client:
    """Post the login form like a browser does; a client carrying the session cookie."""
    netloc = urlsplit(base).netloc
    conn = http.client.HTTPConnection(netloc, timeout=60)
    conn.request("GET", "/accounts/login/")
    response = conn.getresponse()
    form = response.read().decode()
    jar = _cookies(response)
    conn.close()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urlencode(
        {
            "username": username,
            "password": dataset.BENCH_PASSWORD,
            "csrfmiddlewaretoken": html.unescape(token),
        }
    )
    conn = http.client.HTTPConnection(netloc, timeout=60)
    conn.request(
        "POST",
        "/accounts/login/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={jar['csrftoken']}",
        },
    )
    response = conn.getresponse()
    response.read()
    jar.update(_cookies(response))
    conn.close()
    assert response.status == 302 and "sessionid" in jar, f"{username} could not sign in"
    cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
    return Client(base, {"Cookie": cookie})


def api_client(base: str, user, name: str) -> Client:
    """A client carrying a new read-only API token of `user`."""
    from portal.api import services as api_services

    _token, secret = api_services.token_create(actor=None, user=user, name=name, read_only=True)
    return Client(base, {"Authorization": f"Token {secret}"})


def timed_get(client: Client, path: str, check: Callable[[bytes], None], *, runs: int) -> Stats:
    """p95 and p50 of GET `path`; the first answer must be a 200 that passes `check`."""

    def fetch():
        status, body = client.get(path)
        assert status == 200, f"{path}: {status}"
        return body

    check(fetch())
    return timed(fetch, runs=runs, warmup=3)


def trivial(client: Client, *, runs: int) -> Stats:
    """The floor: the trivial signed-in page, for the person `client` is signed in as."""
    return timed_get(client, TRIVIAL_PATH, lambda body: None, runs=runs)


def record_page(results: Results, section: str, metric: str, page: Stats, floor: Stats) -> None:
    """A page's p95 as a target row against the trivial page's p95 from the same server."""
    results.add(
        section,
        metric,
        page.p95,
        "ms",
        floor=floor.p95,
        floor_label="trivial page",
        target=TARGET,
        ok=page.p95 <= floor.p95 + HTTP_MARGIN_MS,
        note=f"p50 {page.p50:.2f} ms; trivial p50 {floor.p50:.2f} ms",
    )
