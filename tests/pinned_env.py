"""The suite runs on its own configuration, whatever the shell that starts it has set.

Loaded with `-p` (see pyproject's addopts), so it runs before pytest-env writes the suite's test
values and before pytest-django imports the settings: it removes from the environment every
variable Tollgate reads, found in the source itself, so that a variable added later is covered
without a list to keep up to date. A shell with production's DEBUG, webhook secrets, Odoo URL
or mail server therefore changes no outcome; tests that need a value set it themselves
(pyproject's `env`, `settings`, `monkeypatch`).

Only the infrastructure the suite is pointed at is kept: the database (DATABASE_URL), and the
broker the tests that start real processes share (CELERY_BROKER_URL, CELERY_RESULT_BACKEND).
Every other test runs its tasks in-process and never connects to a broker.
"""

import os
import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
SOURCES = ("portal", "approvals", "exceptions", "sites")
KEPT = frozenset({"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"})

# env_str("NAME"...), env_bool(...), os.environ.get("NAME"), os.environ["NAME"], os.getenv(...)
_NAMED = re.compile(
    r"""(?:\benv_[a-z]+\(|environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)
# os.environ.get(f"WEBHOOK_SECRET_{source.upper()}"): every variable with that prefix.
_PREFIXED = re.compile(
    r"""(?:\benv_[a-z]+\(|environ\.get\(|environ\[|getenv\()\s*f["']([A-Z][A-Z0-9_]*)\{"""
)


def read_by_tollgate() -> tuple[set[str], set[str]]:
    """(names, prefixes) of the environment variables Tollgate's code reads."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for source in SOURCES:
        for path in (BASE_DIR / source).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            names.update(_NAMED.findall(text))
            prefixes.update(_PREFIXED.findall(text))
    return names, prefixes


def scrubbed(environ) -> list[str]:
    """The variables of `environ` the suite removes."""
    names, prefixes = read_by_tollgate()
    return sorted(
        name
        for name in environ
        if name not in KEPT and (name in names or name.startswith(tuple(prefixes)))
    )


def scrub(environ=os.environ) -> list[str]:
    removed = scrubbed(environ)
    for name in removed:
        del environ[name]
    return removed


SCRUBBED = scrub()
