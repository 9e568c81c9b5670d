"""Notifications while the broker is down: kept in the outbox, each e-mail arrives exactly once.

The processes are real (gunicorn, a Celery worker on a Redis of the test's own, which keeps
nothing on disk), and the worker writes every e-mail to a folder of its own, one file per
message, so the test counts what arrived. Decisions are taken through the web server while
Redis is stopped; after it is started again, beat's outbox drain is run by hand (from the test
and, as a second beat would, from another process) and late copies of the send tasks are
enqueued while the first ones run; every e-mail still arrives once.
`make soak` makes ten times as many decisions.
"""

import email
import email.policy
from collections import Counter
from decimal import Decimal
from pathlib import Path

from approvals import services as approvals
from approvals.models import RequestState
from portal.mailbox import BACKEND as ONE_FILE_PER_MESSAGE
from portal.notify import tasks as notify_tasks
from portal.notify.models import MailState, OutboxMail, Topic
from sites.models import Site
from tests.hardening import load, stack
from tests.hardening.fullstack import (
    _working_morning,
    full_stack,
    odoo_sandbox_factory,
    odoo_sandbox_template,
    running_stack,
    soak,
    token_for,
)
from tests.integrations.odoo.push_support import WORKDAY, user

# Fixtures of the running stack, imported above.
__all__ = ["_working_morning", "odoo_sandbox_factory", "odoo_sandbox_template"]
__all__ += ["running_stack", "soak"]


def submitted(count: int) -> list:
    """`count` requests of Amsterdam that its site manager alone decides, in review."""
    place = Site.objects.get(code="AMS")
    requests = []
    for n in range(count):
        request = approvals.request_create(
            requester=user("requester"),
            kind="purchase",
            site=place,
            title=f"Pallet wrap, lot {n}",
            reason="Raised for the notification outbox test.",
            amount=Decimal("1200.00"),
            currency=place.currency,
            counterparty="Demo vendor",
            by_system=True,
        )
        requests.append(approvals.request_submit(actor=None, request_id=request.pk, at=WORKDAY))
    assert {r.state for r in requests} == {RequestState.IN_REVIEW}
    return requests


def arrived(folder: Path) -> Counter:
    """(subject, recipient) of every e-mail written to `folder`, with how often each came."""
    mails = Counter()
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for recipient in message.get_all("To", []):
            mails[(str(message["Subject"]), str(recipient))] += 1
    return mails


def nothing_pending() -> bool:
    return not OutboxMail.objects.filter(state=MailState.PENDING).exists()


@full_stack
def test_notifications_made_while_the_broker_is_down_arrive_exactly_once_after_it_returns(
    running_stack, soak, tmp_path
):
    count = 30 if soak else 3
    mail = tmp_path / "mail"
    tollgate = running_stack(EMAIL_BACKEND=ONE_FILE_PER_MESSAGE, EMAIL_FILE_PATH=str(mail))
    requests = submitted(count)  # their "decision needed" mails go out while the broker is up
    stack.wait_for(
        lambda: nothing_pending() and sum(arrived(mail).values()) >= count,
        timeout=60,
        what="the submissions' notifications",
    )
    before = arrived(mail)
    token = token_for("site.manager")
    requester = user("requester")

    tollgate.redis.stop()  # it keeps nothing on disk: whatever was queued is gone
    stack.wait_for(lambda: not tollgate.ready()["broker"], timeout=10, what="the broker down")
    answers = [
        load.perform(
            tollgate.web.url,
            {
                "method": "POST",
                "path": f"/api/v1/approvals/{request.pk}/approve/",
                "token": token,
                "json": {"comment": "Within budget."},
            },
        )
        for request in requests
    ]
    assert [a["status"] for a in answers] == [200] * count, answers
    # Each decision committed its notification; none could be handed to a worker.
    waiting = OutboxMail.objects.filter(topic=Topic.REQUEST, object_id__in=[r.pk for r in requests])
    assert Counter(waiting.values_list("state", "attempts")) == {(MailState.PENDING, 0): count}
    assert arrived(mail) == before

    tollgate.redis.start()
    stack.wait_for(lambda: tollgate.ready()["broker"], timeout=30, what="the broker back")
    # Beat's drain; then a second beat in another process, and two late copies of the tasks
    # (as a broker redelivers them) arriving while the first ones run.
    assert notify_tasks.drain_outbox() == count
    ids = list(waiting.values_list("pk", flat=True))
    notify_tasks.send_outbox.delay(ids)
    stack.celery_call(tollgate.env, "notify.drain_outbox")
    notify_tasks.send_outbox.delay(ids)
    stack.wait_for(nothing_pending, timeout=120, what="the outbox to drain after the outage")

    expected = {
        (f"[Tollgate] {request.reference} approved", requester.email): 1 for request in requests
    }
    assert arrived(mail) - before == expected
    assert Counter(waiting.values_list("state", "attempts", "mails_sent")) == {
        (MailState.SENT, 1, 1): count
    }
    # Later drains, as beat keeps running them, find nothing left to send.
    assert notify_tasks.drain_outbox() == 0
    assert arrived(mail) - before == expected
