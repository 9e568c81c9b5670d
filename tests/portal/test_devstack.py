"""`make run` after its install step: the whole stack on the embedded defaults, then Ctrl-C."""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from portal import devstack
from sites import demo

BASE_DIR = Path(__file__).resolve().parents[2]
EXTERNAL = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SECRET_KEY",
    "ODOO_URL",
    # The test run's own settings; the stack must bring its own.
    "DEBUG",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "STATIC_ROOT",
    "EMAIL_BACKEND",
    "EMAIL_FILE_PATH",
    "TOLLGATE_BASE_URL",
    "PORT",
    "ODOO_PORT",
)


def clean_environment(var_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in EXTERNAL}
    env.update(TOLLGATE_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_using(var_dir: Path) -> list[int]:
    """Pids whose environment names this run's var folder: every process the stack started."""
    marker = f"TOLLGATE_VAR_DIR={var_dir}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture
def stack(tmp_path):
    env = clean_environment(tmp_path)
    port = free_port()
    log = (tmp_path / "stack.log").open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portal.devstack",
            "--port",
            str(port),
            "--odoo-port",
            str(free_port()),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # Before its banner the stack migrates, seeds, collects static files, pulls the sandbox and
    # takes a checkpoint; on two shared cores that can take a few minutes.
    deadline = time.monotonic() + 300
    while "Tollgate is running" not in (tmp_path / "stack.log").read_text():
        assert process.poll() is None, (tmp_path / "stack.log").read_text()
        assert time.monotonic() < deadline, "the stack did not come up in time"
        time.sleep(0.5)
    yield {
        "url": f"http://127.0.0.1:{port}",
        "port": port,
        "process": process,
        "env": env,
        "var": tmp_path,
    }
    if process.poll() is None:
        process.kill()
    for pid in processes_using(tmp_path):
        os.kill(pid, signal.SIGKILL)


def signed_in_opener(base_url: str, username: str, landed: list | None = None):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base_url}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"username": username, "password": demo.PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    with opener.open(f"{base_url}/accounts/login/", data=body) as response:
        if landed is not None:
            landed.append(response.url)
    return opener


def sign_in(base_url: str, username: str) -> str:
    landed: list[str] = []
    signed_in_opener(base_url, username, landed)
    return landed[0]


@pytest.mark.slow
def test_make_run_serves_every_persona_and_stops_everything_on_ctrl_c(stack):
    assert "Odoo: http://127.0.0.1:" in (stack["var"] / "stack.log").read_text()
    base_url = stack["url"]
    for probe in ("/healthz", "/readyz"):
        with urllib.request.urlopen(base_url + probe) as response:
            assert response.status == 200

    for persona in demo.PERSONAS:
        assert sign_in(base_url, persona.username) == f"{base_url}/", persona.username

    ping = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from portal.tasks import ping; "
            "from approvals.models import ApprovalRequest as R; "
            "print(ping.delay().get(timeout=60), R.objects.filter(odoo_id__isnull=False).count())",
        ],
        cwd=BASE_DIR,
        # A helper process on the same database and broker (DEBUG reads the checkout's key).
        env={**stack["env"], "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert ping.returncode == 0, ping.stderr
    answer, from_odoo = ping.stdout.split()
    assert answer == "pong", ping.stderr
    # The sandbox was started and read before the banner: its requests are already there.
    assert int(from_odoo) > 100

    # Served as deployed: Tollgate's own 404, hashed CSS through WhiteNoise, no debug page.
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base_url + "/no-such-page/")
    body = missing.value.read().decode()
    assert missing.value.code == 404 and "Back to your inbox" in body and "URLconf" not in body
    stylesheet = re.search(r'href="(/static/css/tollgate\.[0-9a-f]+\.css)"', body).group(1)
    with urllib.request.urlopen(base_url + stylesheet) as response:
        assert response.status == 200 and b".card" in response.read()
    # E-mail went to one file per message, its links lead to this server; the log stayed
    # readable (no message was printed) and the auditor finds a checkpoint already taken.
    letters = list((stack["var"] / "mail").glob("*.eml"))
    assert letters and f"http://127.0.0.1:{stack['port']}/" in letters[0].read_text()
    assert "Content-Transfer-Encoding" not in (stack["var"] / "stack.log").read_text()
    opener = signed_in_opener(base_url, "auditor")
    assert (
        "No checkpoint has been taken yet" not in opener.open(f"{base_url}/audit/").read().decode()
    )

    stack["process"].send_signal(signal.SIGINT)
    assert stack["process"].wait(timeout=30) == 0
    assert processes_using(stack["var"]) == []


def run_make(*variables: str) -> str:
    env = {key: value for key, value in os.environ.items() if key not in EXTERNAL}
    return subprocess.run(
        ["make", "--dry-run", "--always-make", "run", *variables],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_run_hands_its_ports_to_the_stack():
    assert "portal.devstack --port 8000 --odoo-port 8069" in run_make()
    assert "portal.devstack --port 8300 --odoo-port 8369" in run_make("PORT=8300", "ODOO_PORT=8369")


def test_the_ports_reach_every_process_and_the_links_in_e_mails(monkeypatch, tmp_path):
    monkeypatch.setenv("TOLLGATE_VAR_DIR", str(tmp_path))

    environment = devstack.demo_environment("127.0.0.1", 8300)

    assert environment["TOLLGATE_BASE_URL"] == "http://127.0.0.1:8300"
    assert devstack._processes("127.0.0.1", 8300)["web"][-1] == "127.0.0.1:8300"
    assert devstack._sandbox(8369)[-4:-2] == ["--port", "8369"]


def test_the_demo_runs_with_debug_off_and_a_key_kept_for_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("TOLLGATE_VAR_DIR", str(tmp_path))

    first = devstack.demo_environment("127.0.0.1", 8000)
    again = devstack.demo_environment("127.0.0.1", 8000)

    assert first["DEBUG"] == "false"
    assert len(first["SECRET_KEY"]) >= 50 and first["SECRET_KEY"] == again["SECRET_KEY"]
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o077 == 0
    assert first["EMAIL_BACKEND"] == "portal.mailbox.OneFilePerMessageBackend"
    assert first["EMAIL_FILE_PATH"] == str(tmp_path / "mail")


def test_under_the_demo_settings_a_missing_page_is_tollgates_own(tmp_path):
    """The settings `make run` gives its processes, in a process of their own."""
    env = clean_environment(tmp_path)
    env.update(devstack.demo_environment("127.0.0.1", 8300) | {"DEBUG": "false"})
    script = (
        "import django; django.setup(); from django.conf import settings;"
        "from django.core.management import call_command;"
        "from django.test import Client;"
        "call_command('collectstatic', interactive=False, verbosity=0);"
        "r = Client(SERVER_NAME='127.0.0.1').get('/no-such-page/');"
        "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.TOLLGATE_BASE_URL,"
        " r.status_code); print(r.content.decode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    facts, page = result.stdout.split("\n", 1)
    assert facts == "False False http://127.0.0.1:8300 404"
    assert "Back to your inbox" in page and "URLconf" not in page and "Page not found" not in page
