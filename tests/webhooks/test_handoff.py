"""Accepted deliveries reach the broker in batches, each exactly once, even if a send fails."""

import threading
import time

import pytest
from celery import current_app

from portal.webhooks import handoff, tasks


@pytest.fixture
def broker(monkeypatch):
    """Tasks sent for real (not run in place), to a broker that records each batch."""
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.process_deliveries, "delay", sent.append)
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    yield sent
    current_app.conf.task_always_eager = eager


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the handoff never sent what was noted"
        time.sleep(0.01)


def test_ids_noted_by_many_threads_are_sent_once_each_in_few_tasks(broker):
    ids = list(range(1, 401))

    def note_share(share):
        for delivery_id in share:
            handoff.note(delivery_id)

    threads = [threading.Thread(target=note_share, args=(ids[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: sum(map(len, broker)) >= len(ids))

    assert sorted(i for batch in broker for i in batch) == ids
    assert all(len(batch) <= handoff.MAX_BATCH for batch in broker)
    assert len(broker) < len(ids) / 4


def test_a_send_that_fails_is_logged_and_the_next_ids_are_still_sent(monkeypatch, broker, caplog):
    def broker_down_once(delivery_ids):
        monkeypatch.setattr(tasks.process_deliveries, "delay", broker.append)
        raise OSError("Connection refused")

    monkeypatch.setattr(tasks.process_deliveries, "delay", broker_down_once)
    handoff.note(1)
    wait_for(lambda: "not enqueued" in caplog.text)

    handoff.note(2)
    wait_for(lambda: broker)

    assert broker == [[2]]
    assert "1 accepted webhook deliveries not enqueued" in caplog.text


def test_what_is_noted_is_sent_by_flush_without_waiting_for_the_thread(monkeypatch, broker):
    monkeypatch.setattr(handoff, "LINGER", 60)  # the thread would wait a minute
    handoff.note(1)
    handoff.note(2)

    handoff.flush()

    assert broker == [[1, 2]]


def test_with_tasks_run_in_place_the_id_is_sent_at_once(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.process_deliveries, "delay", sent.append)
    assert current_app.conf.task_always_eager  # as the suite runs tasks

    handoff.note(7)

    assert sent == [[7]]
