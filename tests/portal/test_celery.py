"""A real Celery worker on the configured broker (Redis in CI, the embedded one locally)."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from portal.tasks import ping

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_queue():
    queue = f"test-{uuid.uuid4().hex[:12]}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=BASE_DIR,
    )
    yield queue
    worker.terminate()
    worker.wait(timeout=30)


@pytest.mark.slow
def test_worker_consumes_a_task_from_the_broker_and_answers(worker_queue):
    result = ping.apply_async(queue=worker_queue)

    assert result.get(timeout=60) == "pong"
