"""A real Chromium, driven by pytest-playwright, on pytest-django's live server.

The browser is the system's Debian Chromium; none is ever downloaded. Every test here is
skipped, saying why, when that browser is not installed. People sign in through the real
sign-in form, so the session cookie, CSRF token and lockout middleware are those of production.
"""

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
import time_machine

from tests.seeded_demo import seed_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every persona built by tests/factories.py has this password; the seeded demo users have
# sites.demo.PASSWORD (their e-mail addresses end in DEMO_DOMAIN).
PASSWORD = "correct-horse-battery"
DEMO_DOMAIN = "@demo.tollgate.invalid"
DESKTOP = {"width": 1280, "height": 900}
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
README_SCREENSHOTS = ROOT / "docs" / "screenshots"

# Playwright's sync API runs an event loop in this thread, from the first browser test to the
# end of the session; Django's ORM refuses to run in a thread with an event loop unless told
# that the test knows what it does. (Subprocesses that check the deployment leave it out.)
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def pytest_collection_modifyitems(items):
    if CHROMIUM.exists():
        return
    reason = f"needs the system Chromium at {CHROMIUM}, which is not installed"
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _static_files_by_plain_name(settings):
    """Pages name static files by their plain path during browser tests.

    The live server serves /static/ from the source folders (as `runserver` does), which know
    nothing of the hashed names the manifest storage of production would put in the pages.
    """
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches the system Chromium, headless, never a downloaded one."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture
def console_errors() -> list[str]:
    """Errors the pages opened by `page_for` reported (failed loads, CSP refusals, JS errors)."""
    return []


@pytest.fixture
def page_for(browser, live_server, console_errors) -> Iterator[Callable]:
    """Sign `user` in through the sign-in form and hand back their page.

    `browser` is pytest-playwright's one Chromium for the session; each person gets a context.

    `page_for(user, viewport=PHONE)` opens a phone-sized window. Every context opened here is
    closed when the test ends. Console errors are collected in `console_errors`.
    """
    contexts = []

    def open_page(user, *, viewport=DESKTOP, password=None):
        if password is None:
            from sites.demo import PASSWORD as DEMO_PASSWORD

            password = DEMO_PASSWORD if user.email.endswith(DEMO_DOMAIN) else PASSWORD
        context = browser.new_context(viewport=viewport, base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert "/accounts/login/" not in page.url, f"{user.username} could not sign in"
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request) -> Callable:
    """Save what the page shows now.

    Always under tests/e2e/artifacts/ (ignored by git); with TOLLGATE_SCREENSHOTS=1 also as
    docs/screenshots/<name>.png, the pictures the README shows.
    """

    def take(page, name: str, *, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if os.environ.get("TOLLGATE_SCREENSHOTS") == "1":
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(README_SCREENSHOTS / f"{name}.png"), full_page=full_page)
        return path

    return take


def _next_working_morning(now: datetime) -> datetime:
    """09:00 UTC on the next Tuesday to Thursday at least a day ahead: inside every demo site's
    business hours, and in the future so that the browser keeps the cookies it is given."""
    day = (now + timedelta(days=1)).date()
    while day.weekday() not in (1, 2, 3):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


@pytest.fixture
def working_morning():
    """Run the test (server thread included) on a working morning, so no request submitted in
    it is flagged as "after hours" whenever the suite runs."""
    with time_machine.travel(_next_working_morning(datetime.now(UTC)), tick=True) as traveller:
        yield traveller


@pytest.fixture
def demo(transactional_db, working_morning):
    """The seeded demo company (sites, personas, policy) and a way to raise its requests."""
    return _demo_company(history=False)


@pytest.fixture
def demo_with_history(transactional_db, working_morning):
    """The fresh demo as `make run` opens it: the company and its ninety days of history, with
    work left waiting (about 30 to 60 s to seed on SQLite), and a way to raise more."""
    return _demo_company(history=True)


def _demo_company(*, history: bool) -> SimpleNamespace:
    from django.contrib.auth import get_user_model

    from approvals import services
    from sites.models import Site

    seed_demo(history=history)
    users = {user.username: user for user in get_user_model().objects.all()}
    counter = iter(range(1, 10_000))

    def raise_request(requester: str, site: str, amount: str, *, kind: str = "purchase", **fields):
        """Raise and submit a request as `requester` at `site`, known-vendor and unflagged."""
        number = next(counter)
        place = Site.objects.get(code=site)
        values = {
            "title": f"PO{number:05d} from Vendor {number}",
            "reason": "Replenishment for next week's orders",
            "currency": place.currency,
            "counterparty": f"Vendor {number}",
            "counterparty_ref": f"res.partner,{1000 + number}",
            "details": {"counterparty_since": "2019-01-01"},
        } | fields
        request = services.request_create(
            requester=users[requester], kind=kind, site=place, amount=Decimal(amount), **values
        )
        return services.request_submit(actor=users[requester], request_id=request.pk)

    return SimpleNamespace(users=users, raise_request=raise_request)
