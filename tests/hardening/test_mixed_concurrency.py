"""Approvals, rejections, withdrawals, webhook events, Odoo syncs and exports, all at once.

Tollgate runs as in production: gunicorn with several worker processes, a Celery worker on
Redis, the Odoo sandbox, PostgreSQL. A fixed script of operations, shuffled with a fixed seed,
is played by threads of this process and by client processes of their own, while `sync_odoo`
runs in further processes. Afterwards nothing answered 5xx, each request has exactly one
outcome (the one operation that won it), the ledger verifies, the outbox is drained, and Odoo
holds exactly what Tollgate says it applied: one write per decision.
"""

import json
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import time_machine
from django.core.management import call_command

from approvals.models import ApprovalRequest, Decision, Outcome, RequestState
from exceptions.models import ExceptionCase
from portal.integrations.odoo import sync
from portal.integrations.odoo.models import OutboxItem, OutboxState
from portal.webhooks import demo as webhook_demo
from portal.webhooks.models import DeliveryStatus, InboundDelivery
from tests.hardening import load, stack
from tests.hardening.fullstack import (
    FULL_STACK,
    _working_morning,
    odoo_sandbox_factory,
    odoo_sandbox_template,
    running_stack,
    soak,
    token_for,
)
from tests.integrations.odoo.push_support import (
    WORKDAY,
    new_purchase_orders,
    notes_by_record,
    odoo_admin,
)
from tests.webhooks.conftest import carrier_event

# Fixtures of the running stack, imported above.
__all__ = ["_working_morning", "odoo_sandbox_factory", "odoo_sandbox_template"]
__all__ += ["running_stack", "soak"]
pytestmark = list(FULL_STACK)
PO = "purchase.order"
# What the Odoo order of each outcome looks like once the outbox is drained.
ODOO_STATE = {"approve": "purchase", "withdraw": "to approve"}


@dataclass(frozen=True)
class Size:
    requests: int
    events: int
    duplicates: int
    exports: int
    client_processes: int
    threads: int
    syncs: int


SHORT = Size(
    requests=12, events=12, duplicates=4, exports=2, client_processes=2, threads=4, syncs=2
)
SOAK = Size(
    requests=120, events=200, duplicates=60, exports=8, client_processes=4, threads=8, syncs=4
)


BODIES = {
    "approve": {"comment": "Within budget."},
    "reject": {"reason": "Not this quarter."},
    "withdraw": {"reason": "Ordered elsewhere."},
}
# The site manager's tier is worked first, then finance's risk review. An operation on a tier
# that is not open yet, or by someone who already approved the other tier, is refused with 403
# and changes nothing; those refusals are counted apart from lost races (409).
FIRST_WAVE = {
    "always": [("approve", "site.manager")],
    "extras": [
        ("approve", "site.manager"),
        ("approve", "finance"),
        ("reject", "site.manager"),
        ("withdraw", "owner"),
    ],
}
SECOND_WAVE = {
    "always": [("approve", "finance")],
    "extras": [("approve", "finance"), ("reject", "finance"), ("withdraw", "owner")],
}
NOT_YET_OR_NOT_AGAIN = (
    "None of the open tiers of this request is yours to decide.",
    "You approved another tier of this request; a different person must decide this one.",
)


def decision_ops(requests, tokens, rng, wave) -> list[dict]:
    """One wave of competing operations on every request: whichever way they interleave, after
    both waves the request is in one final state."""
    ops = []
    for request in requests:
        extras = rng.sample(wave["extras"], k=rng.randint(0, 2))
        for verb, who in wave["always"] + extras:
            ops.append(
                {
                    "method": "POST",
                    "path": f"/api/v1/approvals/{request.pk}/{verb}/",
                    "token": tokens[who],
                    "json": BODIES[verb],
                    "tag": ["decision", request.pk, verb, who],
                }
            )
    return ops


def webhook_ops(size: Size, rng) -> list[dict]:
    """Carrier delay reports for distinct shipments, plus resends of some of them."""
    secret = webhook_demo.demo_secret("carrier")
    events = []
    for number in range(size.events):
        body = carrier_event(
            tracking_number=f"1ZHARDEN{number:08d}",
            picking_ref=f"AMS/OUT/{number:05d}",
            site="AMS",
        )
        events.append(
            {
                "method": "POST",
                "path": "/api/v1/webhooks/carrier/",
                "body": body.decode(),
                "sign": {"secret": secret, "id": f"msg_hardening_{number}"},
                "tag": ["webhook", number],
            }
        )
    return events + [rng.choice(events) for _ in range(size.duplicates)]


def export_ops(size: Size, token: str) -> list[dict]:
    return [
        {
            "method": "GET",
            "path": f"/api/v1/audit/export/?format={'csv' if n % 2 else 'jsonl'}",
            "token": token,
            "tag": ["export", n],
        }
        for n in range(size.exports)
    ]


def client_process(base_url: str, ops: list[dict], threads: int, results) -> subprocess.Popen:
    """A client of its own playing `ops`; its results are written to the file `results`."""
    with results.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.load"],
            cwd=stack.BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=output,
            text=True,
        )
    process.stdin.write(json.dumps({"base_url": base_url, "ops": ops, "threads": threads}))
    process.stdin.close()
    return process


def play_everywhere(base_url: str, ops: list[dict], size: Size, folder) -> list[dict]:
    """Share `ops` between this process and `size.client_processes` others, all at once."""
    folder.mkdir()
    shares = [ops[n :: size.client_processes + 1] for n in range(size.client_processes + 1)]
    outputs = [folder / f"client-{n}.json" for n in range(1, len(shares))]
    clients = [
        client_process(base_url, share, size.threads, path)
        for share, path in zip(shares[1:], outputs, strict=True)
    ]
    results = load.play(base_url, shares[0], size.threads)
    for client, path in zip(clients, outputs, strict=True):
        assert client.wait(timeout=900) == 0
        results += json.loads(path.read_text())
    return results


def outbox_drained() -> bool:
    return not OutboxItem.objects.filter(state=OutboxState.PENDING).exists()


def test_mixed_operations_from_threads_and_processes_leave_one_outcome_each_applied_once(
    running_stack, soak, tmp_path
):
    size = SOAK if soak else SHORT
    started = time.monotonic()
    tollgate = running_stack(web_workers=2, web_threads=4, workers=1, concurrency=2)
    odoo = odoo_admin(tollgate.sandbox)
    # The same buyer's three orders earlier that morning: with them, every order of the test
    # crosses a threshold together with its predecessors (threshold splitting, by Odoo author).
    new_purchase_orders(odoo, 3, unit_price=1500.0)
    orders = new_purchase_orders(odoo, size.requests, unit_price=1500.0)
    with time_machine.travel(WORKDAY, tick=True):
        # Requests are raised the way Odoo's orders reach Tollgate, on a working morning.
        sync.sync_all(models=[PO])
    requests = list(ApprovalRequest.objects.filter(odoo_model=PO, odoo_id__in=orders))
    assert len(requests) == size.requests
    # A site manager's tier and, as together they cross a threshold, finance's risk review.
    assert {(r.state, r.steps.count()) for r in requests} == {(RequestState.IN_REVIEW, 2)}
    # The demo's own small orders were approved by policy on the way in; let them land first.
    stack.wait_for(outbox_drained, timeout=90, what="the demo company's write-backs")
    tollgate.odoo.stats.reset()

    rng = random.Random(20260310)  # noqa: S311 - a repeatable script, not a secret
    tokens = {name: token_for(name) for name in ("site.manager", "finance", "auditor")}
    # Orders raised by Odoo's admin belong to Tollgate's user of that login, who may withdraw.
    (owner,) = {request.requester.username for request in requests}
    tokens["owner"] = token_for(owner)
    others = webhook_ops(size, rng) + export_ops(size, tokens["auditor"])
    waves = [
        decision_ops(requests, tokens, rng, FIRST_WAVE) + others[: len(others) // 2],
        decision_ops(requests, tokens, rng, SECOND_WAVE) + others[len(others) // 2 :],
    ]
    prepared = time.monotonic() - started

    started = time.monotonic()
    syncs = [stack.manage(tollgate.env, "sync_odoo", "--model", PO) for _ in range(size.syncs)]
    results = []
    for number, ops in enumerate(waves):
        rng.shuffle(ops)
        results += play_everywhere(tollgate.web.url, ops, size, tmp_path / f"wave-{number}")
    for run in syncs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    played = time.monotonic() - started
    stack.wait_for(outbox_drained, timeout=120, what="the outbox to drain")
    stack.wait_for(
        lambda: not InboundDelivery.objects.filter(status=DeliveryStatus.ACCEPTED).exists(),
        timeout=120,
        what="every accepted webhook event to be processed",
    )
    drained = time.monotonic() - started - played

    statuses = Counter(result["status"] for result in results)
    print(
        f"\nmixed load ({'soak' if soak else 'short'}): {len(results)} operations by "
        f"{size.client_processes} processes and this one, {size.threads} threads each, in two "
        f"waves, "
        f"{size.syncs} syncs; prepared {prepared:.1f} s, played {played:.1f} s, drained "
        f"{drained:.1f} s; statuses {dict(sorted(statuses.items()))}"
    )
    assert len(results) == sum(len(ops) for ops in waves)
    assert not [r for r in results if r["status"] >= 500 or r["status"] == 0], statuses
    refused = [r for r in results if r["status"] == 403]
    assert all(json.loads(r["detail"])["detail"] in NOT_YET_OR_NOT_AGAIN for r in refused)

    # Decisions: every request reached one final state, and each answer agrees with it.
    answers = defaultdict(Counter)
    for result in results:
        if result["tag"][0] == "decision":
            _, request_id, verb, _ = result["tag"]
            answers[request_id][(verb, result["status"])] += 1
    assert len(answers) == size.requests
    assert {status for seen in answers.values() for _, status in seen} <= {200, 403, 409}
    states = dict(ApprovalRequest.objects.filter(pk__in=answers).values_list("pk", "state"))
    recorded = Counter(
        Decision.objects.filter(request__in=answers).values_list("request_id", "outcome")
    )
    won = {}
    for request_id, seen in answers.items():
        state = states[request_id]
        wins = {verb: seen[(verb, 200)] for verb in ("approve", "reject", "withdraw")}
        assert recorded[(request_id, Outcome.APPROVE)] == wins["approve"], (state, seen)
        assert recorded[(request_id, Outcome.REJECT)] == wins["reject"], (state, seen)
        if state == RequestState.APPLIED:
            assert wins == {"approve": 2, "reject": 0, "withdraw": 0}, seen
            won[request_id] = "approve"
        elif state == RequestState.REJECTED:
            assert wins["reject"] == 1 and wins["withdraw"] == 0 and wins["approve"] < 2, seen
            won[request_id] = "reject"
        else:
            assert state == RequestState.WITHDRAWN, (state, seen)
            assert wins["withdraw"] == 1 and wins["reject"] == 0 and wins["approve"] < 2, seen
            won[request_id] = "withdraw"
    steps = Decision.objects.filter(request__in=answers).values_list("step", "actor")
    assert len(steps) == len(set(steps)), "a person decided one tier twice"

    # Webhooks: each distinct event stored and processed once, whatever the resends.
    webhooks = [r["status"] for r in results if r["tag"][0] == "webhook"]
    assert set(webhooks) <= {200, 202} and webhooks.count(202) == size.events
    deliveries = InboundDelivery.objects.filter(webhook_id__startswith="msg_hardening_")
    assert Counter(deliveries.values_list("status", flat=True)) == {
        DeliveryStatus.PROCESSED: size.events
    }
    assert ExceptionCase.objects.filter(pk__in=deliveries.values("case")).count() == size.events
    assert {r["status"] for r in results if r["tag"][0] == "export"} == {200}

    call_command("verify_audit")  # exits non-zero (SystemExit) if the chain is broken

    # Odoo holds what Tollgate applied: one write per decision, nothing for a withdrawal.
    items = OutboxItem.objects.filter(request__in=won)
    assert Counter(items.values_list("request_id", "action", "state")) == {
        (pk, verb, OutboxState.APPLIED): 1 for pk, verb in won.items() if verb != "withdraw"
    }
    order_of = {r.pk: r.odoo_id for r in requests}
    cancelled = set(items.filter(cancel_in_odoo=True).values_list("request_id", flat=True))
    in_odoo = {row["id"]: row["state"] for row in odoo.execute_kw(PO, "read", [orders, ["state"]])}
    expected = {
        order_of[pk]: ODOO_STATE.get(verb) or ("cancel" if pk in cancelled else "to approve")
        for pk, verb in won.items()
    }
    assert in_odoo == expected
    notes = notes_by_record(odoo, PO, orders)
    assert notes == {order_of[pk]: int(verb != "withdraw") for pk, verb in won.items()}
    verbs = Counter(won.values())
    assert tollgate.odoo.stats.count(PO, "button_approve") == verbs["approve"]
    assert tollgate.odoo.stats.count(PO, "button_cancel") == len(cancelled)
    assert tollgate.odoo.stats.count(PO, "message_post") == verbs["approve"] + verbs["reject"]
