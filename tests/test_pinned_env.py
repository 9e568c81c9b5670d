"""The suite pins its own environment (tests/pinned_env.py): a production-like shell changes no
outcome. Shown by running part of the suite from such a shell."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pinned_env

BASE_DIR = Path(__file__).resolve().parents[1]

# What a shell on a production machine, or a developer's, may well have set.
HOSTILE = {
    "DEBUG": "true",
    "SECRET_KEY": "a-production-secret-key-that-the-suite-must-not-use-0123456789",
    "WEBHOOK_SECRET_CARRIER": "whsec_cHJvZHVjdGlvbi1jYXJyaWVy",
    "WEBHOOK_SECRET_ODOO": "whsec_cHJvZHVjdGlvbi1vZG9v",
    "WEBHOOK_SECRET_N8N": "whsec_cHJvZHVjdGlvbi1uOG4=",
    "ODOO_URL": "https://odoo.example.invalid",
    "ODOO_API_KEY": "production-key",
    "SECURE_SSL_REDIRECT": "true",
    "ALLOWED_HOSTS": "tollgate.example.com",
    "API_RATE_LIMIT": "1/minute",
    "LOGIN_FAILURE_LIMIT": "1",
    "AUDIT_SEAL_INLINE": "true",
    "AUDIT_CHECKPOINT_SINK": "/nonexistent/checkpoints.jsonl",
    "METRICS_TOKEN": "production-metrics-token-production-metrics-token",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "192.0.2.1",
    "TOLLGATE_BASE_URL": "https://tollgate.example.com",
    "CACHE_URL": "redis://192.0.2.1:6379/0",
    # Kept (the infrastructure the suite is pointed at), yet no test outside the real-process
    # ones reaches it.
    "CELERY_BROKER_URL": "redis://192.0.2.1:6379/9",
    "CELERY_RESULT_BACKEND": "redis://192.0.2.1:6379/9",
}

# Tests whose outcome depended on the shell: webhook signatures, the HTTPS redirect, the
# readiness probe's broker, e-mail links, settings read at start-up.
SUBSET = [
    "tests/webhooks/test_admin.py",
    "tests/webhooks/test_inbound.py",
    "tests/portal/test_health.py",
    "tests/portal/test_email_links.py",
    "tests/portal/test_settings.py",
]


def test_every_variable_tollgate_reads_is_removed_and_the_infrastructure_kept():
    names, prefixes = pinned_env.read_by_tollgate()
    assert {"DEBUG", "SECRET_KEY", "ODOO_URL", "AUDIT_SEAL_INLINE", "CACHE_URL"} <= names
    assert "WEBHOOK_SECRET_" in prefixes

    removed = pinned_env.scrubbed({**HOSTILE, "PATH": "/usr/bin", "DATABASE_URL": "x"})

    assert set(removed) == set(HOSTILE) - pinned_env.KEPT
    assert "PATH" not in removed and "DATABASE_URL" not in removed


def test_this_run_has_only_the_values_the_suite_sets_itself(pytestconfig):
    # pyproject's `env`: "D:NAME=value" lines, written after the shell's values were removed.
    own = {line.split(":", 1)[-1].split("=", 1)[0] for line in pytestconfig.getini("env")}
    assert own and set(pinned_env.scrubbed(os.environ)) <= own


@pytest.mark.slow
def test_part_of_the_suite_run_from_a_production_like_shell_passes(tmp_path):
    env = {**os.environ, **HOSTILE}
    env.pop("DATABASE_URL", None)  # the embedded database: no test database to share
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q"),
            *("-m", "not slow", "--basetemp", str(tmp_path / "run"), *SUBSET),
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
