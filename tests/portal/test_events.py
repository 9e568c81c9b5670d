"""Events inside the process: before-commit handlers share the change's fate, on-commit ones
see only committed changes."""

from dataclasses import dataclass

import pytest
from django.db import transaction

from approvals.events import RequestDecided
from exceptions.handlers import linked_request_final
from portal.core import events
from portal.integrations.odoo.handlers import write_back_decision
from portal.webhooks.handlers import approval_decided


@dataclass(frozen=True)
class Happened:
    what: str


@pytest.fixture
def heard():
    heard = []

    def now(event):
        heard.append(("before", event.what))

    def later(event):
        heard.append(("after", event.what))

    events.subscribe(Happened, now, phase=events.BEFORE_COMMIT)
    events.subscribe(Happened, later, phase=events.ON_COMMIT)
    events.subscribe(Happened, now, phase=events.BEFORE_COMMIT)  # a second ready() changes nothing
    yield heard
    events.unsubscribe(Happened, now)
    events.unsubscribe(Happened, later)


def test_before_commit_handlers_run_in_the_transaction_and_on_commit_ones_after(
    db, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.emit(Happened("approved"))
        assert heard == [("before", "approved")]

    assert heard == [("before", "approved"), ("after", "approved")]


def test_a_rolled_back_change_is_never_told_after_commit(
    db, heard, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        events.emit(Happened("rejected"))
        raise RuntimeError("the change fails")

    assert heard == [("before", "rejected")]
    assert callbacks == []


def test_an_event_emitted_outside_a_transaction_is_refused(heard):
    with pytest.raises(RuntimeError, match="outside a transaction"):
        events.emit(Happened("lost"))
    assert heard == []


def test_a_decision_is_heard_by_cases_then_odoo_then_webhooks_before_commit():
    assert events.handlers_of(RequestDecided) == [
        (events.BEFORE_COMMIT, linked_request_final),
        (events.BEFORE_COMMIT, write_back_decision),
        (events.BEFORE_COMMIT, approval_decided),
    ]
