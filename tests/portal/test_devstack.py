"""`make run` after its install step: the whole stack on the embedded defaults, then Ctrl-C."""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from sites import demo

BASE_DIR = Path(__file__).resolve().parents[2]
EXTERNAL = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SECRET_KEY",
    "ODOO_URL",
)


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
    env = {key: value for key, value in os.environ.items() if key not in EXTERNAL}
    env.update(TOLLGATE_VAR_DIR=str(tmp_path), DEBUG="true", PYTHONUNBUFFERED="1")
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
    deadline = time.monotonic() + 150
    while "Tollgate is running" not in (tmp_path / "stack.log").read_text():
        assert process.poll() is None, (tmp_path / "stack.log").read_text()
        assert time.monotonic() < deadline, "the stack did not come up in time"
        time.sleep(0.5)
    yield {"url": f"http://127.0.0.1:{port}", "process": process, "env": env, "var": tmp_path}
    if process.poll() is None:
        process.kill()
    for pid in processes_using(tmp_path):
        os.kill(pid, signal.SIGKILL)


def sign_in(base_url: str, username: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base_url}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"username": username, "password": demo.PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    with opener.open(f"{base_url}/accounts/login/", data=body) as response:
        return response.url


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
        env={**stack["env"], "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert ping.returncode == 0, ping.stderr
    answer, from_odoo = ping.stdout.split()
    assert answer == "pong", ping.stderr
    # The sandbox was started and read before the banner: its requests are already there.
    assert int(from_odoo) > 100

    stack["process"].send_signal(signal.SIGINT)
    assert stack["process"].wait(timeout=30) == 0
    assert processes_using(stack["var"]) == []
