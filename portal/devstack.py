"""`make run`: prepare the embedded database and run every Tollgate process in the foreground.

Migrates, seeds the demo company, starts the Odoo sandbox (unless ODOO_URL names a real Odoo)
and pulls its records once, takes a first audit checkpoint, then starts the web server, a
Celery worker and Celery beat, waits until the web server answers, and prints the address and
the demo logins. Ctrl-C (or SIGTERM) stops every process it started; if one of them dies, the
others are stopped too.

The demo runs as a deployment does, with DEBUG off: Tollgate's own error pages, hashed static
files served by WhiteNoise, a secret key generated once for this checkout. Only what a plain-HTTP
run on one's own machine needs differs (see `demo_environment`), and e-mail is written to files
that superusers read at /outbox/ instead of being sent.
"""

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 10


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "portal", *args]


def _sandbox(port: int) -> list[str]:
    return _manage("odoo_sandbox", "--port", str(port), "--seed", "demo")


def var_dir() -> Path:
    return Path(os.environ.get("TOLLGATE_VAR_DIR") or BASE_DIR / "var")


def _local_secret_key(folder: Path) -> str:
    """A random key made once per checkout and kept in var/, shared by every demo process."""
    path = folder / "dev-secret-key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def demo_environment(host: str, port: int) -> dict[str, str]:
    """The settings of the demo; a variable already set in the environment wins over these."""
    folder = var_dir()
    return {
        "DEBUG": "false",
        "SECRET_KEY": _local_secret_key(folder),
        "ALLOWED_HOSTS": ",".join(dict.fromkeys([host, "127.0.0.1", "localhost"])),
        # Links in e-mails lead to this very server, whatever port it was given.
        "TOLLGATE_BASE_URL": f"http://{host}:{port}",
        "EMAIL_BACKEND": "portal.mailbox.OneFilePerMessageBackend",
        "EMAIL_FILE_PATH": str(folder / "mail"),
        "STATIC_ROOT": str(folder / "static"),
        # Plain HTTP on one's own machine: no redirect to HTTPS, no HSTS, and cookies that travel
        # without TLS. A real deployment keeps the production defaults of all four.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        # Links in e-mails use plain HTTP too (allowed anyway for 127.0.0.1 and localhost).
        "TOLLGATE_BASE_URL_ALLOW_HTTP": "true",
        # Hourly instead of daily, so the auditor's page always shows a recent checkpoint.
        "AUDIT_CHECKPOINT_SECONDS": "3600",
    }


def _processes(host: str, port: int) -> dict[str, list[str]]:
    return {
        "web": _manage("runserver", "--noreload", f"{host}:{port}"),
        "worker": _celery("worker", "--loglevel=INFO", "--concurrency=2", "-n", "tollgate@%h"),
        "beat": _celery("beat", "--loglevel=INFO"),
    }


def _wait_until_serving(
    url: str, children: dict[str, subprocess.Popen], timeout: float, *, data: bytes | None = None
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            request = urllib.request.Request(  # noqa: S310 - our own URL
                url, data=data, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def _start_odoo_sandbox(port: int, children: dict, timeout: float) -> bool:
    """Start the sandbox, point every later process at it, and pull its records once."""
    children["odoo"] = subprocess.Popen(_sandbox(port), start_new_session=True)
    os.environ["ODOO_URL"] = f"http://127.0.0.1:{port}"
    # The sandbox's published demo key (a production Odoo's key is never defaulted).
    os.environ.setdefault("ODOO_API_KEY", "admin")
    probe = f"{os.environ['ODOO_URL']}/web/webclient/version_info"
    if not _wait_until_serving(probe, children, timeout, data=b"{}"):
        return False
    # The first pull runs now, so the demo opens with Odoo's requests and cases in place; the
    # beat job keeps them in step from here on.
    subprocess.run(_manage("sync_odoo"), check=False, stdout=subprocess.DEVNULL)
    return True


def _stop(children: dict[str, subprocess.Popen]) -> None:
    # The leaders shut down their own children (Celery's warm shutdown drains its pool); the
    # group is killed only if a leader has not finished within the grace period.
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    for child in children.values():
        # Reap anything a leader left behind in its group (a pool process, say).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def _take_checkpoint() -> None:
    """Write the ledger's head down now; beat takes the next ones on its schedule."""
    script = "from portal.audit.tasks import checkpoint; checkpoint()"
    subprocess.run(_manage("shell", "--no-imports", "-c", script), check=False)


def _banner(base_url: str) -> str:
    from sites.demo import login_table

    odoo = os.environ.get("ODOO_URL", "")
    mode = (
        "DEBUG on"
        if os.environ.get("DEBUG", "").lower() in {"1", "true", "yes", "on"}
        else (
            "DEBUG off, as deployed; plain HTTP on this machine, so no HTTPS redirect and cookies "
            "without the secure flag"
        )
    )
    mail = ""
    if os.environ.get("EMAIL_BACKEND") == "portal.mailbox.OneFilePerMessageBackend":
        mail = (
            f"E-mail: written to {os.environ['EMAIL_FILE_PATH']}, one file per message; "
            f"admin reads them at {base_url}/outbox/\n"
        )
    return (
        f"\nTollgate is running at {base_url}/  (admin: {base_url}/admin/)\n"
        f"Settings: {mode}\n"
        f"Odoo: {odoo}  (the sandbox: database tollgate-demo, login admin, API key admin,"
        " a demo secret)\n"
        f"{mail}{login_table()}\nPress Ctrl-C to stop every process.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--odoo-port", type=int, default=8069, help="for the Odoo sandbox")
    parser.add_argument("--ready-timeout", type=float, default=120)
    options = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    for name, value in demo_environment(options.host, options.port).items():
        os.environ.setdefault(name, value)
    subprocess.run(_manage("migrate", "--noinput"), check=True)
    # The demo users' password is published, which seed_demo refuses with DEBUG off unless told.
    subprocess.run(_manage("seed_demo", "--force"), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(_manage("collectstatic", "--noinput", "--verbosity", "0"), check=True)

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    # Each child leads its own process group, so a terminal Ctrl-C reaches only us and a
    # stuck child can be killed together with whatever it forked.
    children: dict[str, subprocess.Popen] = {}
    base_url = f"http://{options.host}:{options.port}"
    try:
        # With ODOO_URL set, Tollgate talks to that Odoo; otherwise to its own sandbox.
        if "ODOO_URL" not in os.environ and not _start_odoo_sandbox(
            options.odoo_port, children, options.ready_timeout
        ):
            print("The Odoo sandbox did not come up; stopping.", file=sys.stderr)
            return 1
        _take_checkpoint()
        for name, command in _processes(options.host, options.port).items():
            children[name] = subprocess.Popen(command, start_new_session=True)
        if not _wait_until_serving(f"{base_url}/healthz", children, options.ready_timeout):
            print("Tollgate did not come up; stopping.", file=sys.stderr)
            return 1
        sys.stdout.write(_banner(base_url))
        sys.stdout.flush()
        while not stopping:
            dead = [name for name, child in children.items() if child.poll() is not None]
            if dead:
                print(
                    f"{', '.join(dead)} stopped unexpectedly; stopping the rest.", file=sys.stderr
                )
                return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop(children)


if __name__ == "__main__":
    sys.exit(main())
