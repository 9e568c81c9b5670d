"""Start-up configuration: production defaults pass `check --deploy`, bad values stop start-up."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "tollgate.example.com",
    "DATABASE_URL": "postgres://tollgate@db.example.com:5432/tollgate",
    "CELERY_BROKER_URL": "redis://cache.example.com:6379/0",
    "ODOO_API_KEY": "not-a-real-key",
}


# Set by the test run itself (pyproject's pytest env, the browser tests' event loop), never by a
# deployment: the checked process must not inherit them.
TEST_RUNNER_ONLY = {"SECURE_SSL_REDIRECT", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in PRODUCTION and key not in TEST_RUNNER_ONLY
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "SECRET_KEY is too weak"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is empty"),
        ({"DEBUG": "maybe"}, "DEBUG must be one of true/false"),
        ({"DATABASE_URL": "mysql://db/tollgate"}, "DATABASE_URL must be a URL with one of"),
        ({"CELERY_BROKER_URL": "kafka://broker"}, "CELERY_BROKER_URL must be a URL with one of"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT must be at least 1"),
        ({"SESSION_COOKIE_AGE": "a day"}, "SESSION_COOKIE_AGE must be a whole number"),
    ],
)
def test_bad_configuration_stops_start_up_with_a_clear_message(override, message):
    result = manage("check", **{**PRODUCTION, **override})

    assert result.returncode != 0
    assert message in result.stderr


def test_secret_key_never_appears_in_the_error():
    weak = "weak-secret-value"

    result = manage("check", **{**PRODUCTION, "SECRET_KEY": weak})

    assert weak not in result.stderr + result.stdout


def _default_storage(**env: str) -> str:
    code = (
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, "
        "getattr(s, 'bucket_name', ''), getattr(s, 'endpoint_url', '') or '', "
        "str(getattr(s, 'location', '')))"
    )
    result = manage("shell", "-c", code, **(PRODUCTION | env))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_attachments_go_to_a_folder_under_var_by_default():
    found = _default_storage(TOLLGATE_VAR_DIR="/srv/tollgate-var")

    assert found == "FileSystemStorage   /srv/tollgate-var/media"


def test_attachments_go_to_an_s3_compatible_store_named_by_the_environment():
    found = _default_storage(
        AWS_STORAGE_BUCKET_NAME="tollgate-files",
        AWS_S3_ENDPOINT_URL="https://minio.example.com",
        AWS_LOCATION="attachments-root",
    )

    assert found == "S3Storage tollgate-files https://minio.example.com attachments-root"


def test_s3_storage_without_a_bucket_stops_start_up():
    result = manage("check", **PRODUCTION, TOLLGATE_STORAGE="s3")

    assert result.returncode != 0
    assert "TOLLGATE_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME" in result.stderr
