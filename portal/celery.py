"""The Celery application: configured from Django settings (CELERY_*), tasks found per app."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from kombu.exceptions import OperationalError as BrokerUnreachable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# portal.tasks is not an app's tasks module, so autodiscovery would not find it.
app = Celery("tollgate", include=["portal.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Only the beat holding the beat lock sends periodic tasks; a second one waits (portal.beat).
app.conf.beat_scheduler = "portal.beat:SingleBeatScheduler"


@contextmanager
def broker_outage_logged(what: str) -> Iterator[None]:
    """Enqueue inside this block after a change has committed: a broker that cannot be reached
    is logged (naming `what` was not sent) instead of turning a change already made into a 500.
    Whatever must not be lost keeps its own record for a sweep to send later (the Odoo outbox,
    the notification outbox, inbound deliveries), so only the fast path is lost here."""
    try:
        yield
    except BrokerUnreachable as error:
        logging.getLogger("portal.celery").warning(
            "%s not enqueued (broker unreachable): %s", what, error
        )
