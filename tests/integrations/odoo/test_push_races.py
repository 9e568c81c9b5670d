"""A write-back and an Odoo change to the same request at the same moment."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from approvals import services
from approvals.models import ApprovalRequest, RequestState
from portal.integrations.odoo import services as odoo
from portal.integrations.odoo.models import OutboxItem, OutboxState
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed

# Fixtures shared with the approvals tests: the staffed company, its policy, a working morning.
__all__ = ["_working_morning", "matrix", "staffed"]

ON_POSTGRES = connection.vendor == "postgresql"


class SlowOdoo:
    """An Odoo that approves the order but takes its time answering the first read."""

    def __init__(self, entered: threading.Event, release: threading.Event):
        self.entered, self.release = entered, release

    def read(self, model, ids, fields, **kwargs):
        self.entered.set()
        self.release.wait(10)
        return [{"id": ids[0], "state": "purchase"}]

    def search(self, *args, **kwargs):
        return []

    def message_post(self, *args, **kwargs):
        return 77

    def call(self, *args, **kwargs):
        return None


@pytest.mark.skipif(not ON_POSTGRES, reason="needs row locks between connections")
@pytest.mark.django_db(transaction=True)
def test_odoo_changing_a_request_while_it_is_written_back_waits_and_loses_nothing(
    matrix, requester, site_a1, site_manager, monkeypatch
):
    # The write-back is run by hand below, not by the task its decision enqueues.
    monkeypatch.setattr(odoo, "_schedule", lambda item_id, countdown: None)
    request = raise_request(
        requester, site_a1, amount="1000", odoo_id=42, odoo_snapshot={"lines": [1]}
    )
    services.request_approve(actor=site_manager, request_id=request.pk)
    item = OutboxItem.objects.get(request=request)
    entered, release, results = threading.Event(), threading.Event(), {}

    def run(name, work):
        try:
            results[name] = work()
        except Exception as error:  # recorded and asserted below
            results[name] = error
        finally:
            connection.close()

    push = threading.Thread(
        target=run,
        args=(
            "push",
            lambda: odoo.outbox_apply(
                item_id=item.pk, client_factory=lambda: SlowOdoo(entered, release)
            ),
        ),
    )
    change = services.OdooChange(
        amount=Decimal("5000"), currency="EUR", lines=[1], snapshot={"lines": [1]}
    )
    drift = threading.Thread(
        target=run,
        args=("drift", lambda: services.request_odoo_changed(request_id=request.pk, change=change)),
    )
    push.start()
    assert entered.wait(10)
    drift.start()
    time.sleep(0.5)
    release.set()
    push.join(30)
    drift.join(30)

    assert results["push"].status == "applied", results
    assert results["drift"] is False, results
    request = ApprovalRequest.objects.get(pk=request.pk)
    assert request.state == RequestState.APPLIED
    assert OutboxItem.objects.get(pk=item.pk).state == OutboxState.APPLIED
