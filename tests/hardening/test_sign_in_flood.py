"""A script of failed sign-ins cannot grow the ledger, and what it typed is never kept in clear.

Failures are summed per (account or "unknown", client address) and window in the cache: the
ledger gets one summary event per such triple, the per-attempt detail goes to an ordinary table
that is purged after its retention period.
"""

import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from portal.audit.models import AuditEvent

PASSWORD = "correct-horse-battery"
ATTACKER = "203.0.113.66"
OTHER_ATTACKER = "198.51.100.23"
WINDOW = 600


@pytest.fixture(autouse=True)
def _pinned(settings):
    # Each test states its own cache, window and lockout limit, whatever the shell has.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "sign-in-flood",
        }
    }
    settings.SIGN_IN_FAILURE_WINDOW_SECONDS = WINDOW
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXY_COUNT = 0


@pytest.fixture
def start():
    # The start of a window, so that a script of a few seconds stays inside it.
    now = timezone.now().timestamp()
    opening = (now // WINDOW + 1) * WINDOW
    with time_machine.travel(opening + 1, tick=False) as traveller:
        yield traveller


def typed_names(count: int) -> list[str]:
    # What a script types: things that look like passwords, never an account's name.
    return [f"Hunter2-secret-{n}!" for n in range(count)]


def sign_in(username: str, address: str, path: str = "/accounts/login/"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": "guess"})


def summaries(action: str = "auth.sign_in_failed"):
    return list(AuditEvent.objects.filter(action=action))


def everything_stored() -> str:
    from portal.audit.models import SignInFailure

    rows = [*AuditEvent.objects.values(), *SignInFailure.objects.values()]
    return json.dumps(rows, default=str)


def test_rotating_usernames_add_one_summary_per_address_and_window(db, start):
    names = typed_names(40)
    for name in names[:20]:
        sign_in(name, ATTACKER)
    for name in names[20:30]:
        sign_in(name, ATTACKER, "/admin/login/")
    for name in names[30:]:
        sign_in(name, OTHER_ATTACKER)

    events = summaries()
    assert len(events) == 2, f"{len(events)} ledger events for 40 failed sign-ins"
    keys = sorted((event.object_id, event.context["client_ip"]) for event in events)
    assert keys == sorted([("", ATTACKER), ("", OTHER_ATTACKER)]), keys
    # The next window opens a new summary, which carries the count of the one before.
    start.shift(WINDOW)
    sign_in("one-more-guess", ATTACKER)
    later = [e for e in summaries() if e.context["client_ip"] == ATTACKER]
    assert len(later) == 2
    assert max(later, key=lambda e: e.pk).context["previous_window_failures"] == 30


def test_no_typed_unknown_username_is_kept_in_clear(db, start):
    names = typed_names(12)
    for name in names:
        sign_in(name, ATTACKER)
    sign_in(names[0], ATTACKER, "/admin/login/")

    from portal.audit.models import SignInFailure

    stored = everything_stored()
    assert not [name for name in names if name in stored]
    assert SignInFailure.objects.count() == 13
    digests = set(SignInFailure.objects.values_list("username_digest", flat=True))
    # A keyed hash: the same text gives the same digest, so repeated guesses can be matched.
    assert len(digests) == 12
    assert all(len(digest) == 64 for digest in digests)
    from axes.models import AccessAttempt

    attempts = json.dumps(list(AccessAttempt.objects.values()), default=str)
    assert not [name for name in names if name in attempts]


def test_a_known_account_under_attack_gets_one_summary_and_one_lockout_per_window(
    db, requester, start
):
    answers = [sign_in("requester", ATTACKER).status_code for _ in range(10)]
    answers.append(sign_in("requester", ATTACKER, "/admin/login/").status_code)

    assert answers[:2] == [200, 200] and set(answers[2:]) == {429}
    failed = summaries()
    locked = summaries("auth.locked_out")
    assert (len(failed), len(locked)) == (1, 1), (len(failed), len(locked))
    assert [(e.object_id, e.context["client_ip"]) for e in failed] == [
        (str(requester.pk), ATTACKER)
    ]
    assert [(e.object_id, e.context["client_ip"]) for e in locked] == [
        (str(requester.pk), ATTACKER)
    ]

    from portal.audit.models import SignInFailure

    detail = SignInFailure.objects.filter(account=requester)
    assert detail.count() == 11
    assert detail.filter(locked_out=True).count() >= 8
    assert set(detail.values_list("username_digest", flat=True)) == {""}


def test_the_detail_is_purged_after_its_retention(db, start, settings):
    from portal.audit.models import SignInFailure

    settings.SIGN_IN_FAILURE_RETENTION_DAYS = 30
    sign_in("old-guess", ATTACKER)
    start.shift(timedelta(days=31))
    sign_in("new-guess", ATTACKER)

    call_command("purge_sign_in_failures")

    assert SignInFailure.objects.count() == 1
    assert summaries(), "the ledger keeps its summaries"


def test_beat_purges_the_detail_daily(db, start, settings):
    from portal.audit.models import SignInFailure
    from portal.tasks import purge_sign_in_failures

    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "accounts.purge_sign_in_failures"
    ]
    assert len(entries) == 1 and entries[0]["schedule"] <= 86400
    settings.SIGN_IN_FAILURE_RETENTION_DAYS = 1
    sign_in("old-guess", ATTACKER)
    start.shift(timedelta(days=2))

    assert purge_sign_in_failures.name == entries[0]["task"]
    assert purge_sign_in_failures.delay().get() == 1
    assert not SignInFailure.objects.exists()
