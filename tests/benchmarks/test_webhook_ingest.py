"""Webhook ingest: signed carrier events per second from 16 concurrent clients over loopback.

A real gunicorn (2 workers × 4 threads, gthread, production settings) serves the benchmark
WSGI module over the benchmark database. 16 client threads, each with one keep-alive
connection, POST Standard Webhooks-signed `shipment.delayed` events of the demo `carrier`
source to `/api/v1/webhooks/carrier/`; 30 % of the deliveries repeat an id sent before (a
sender's retry). Each new event is verified, stored once with its audit event, and its
processing enqueued on a real Redis broker that no worker reads (purged afterwards), so the
figure is acceptance only, not the exception cases that processing raises.

Floor: the same 16 clients POSTing the same bodies to a trivial Django view on the same server
(`/bench/trivial-post/`, through the same middleware). Target: ingest ≥ 50 % of the trivial
view's rate. Asserted: every new id answered 202 exactly once, every repeat 200 "duplicate",
and exactly one stored delivery per new id.

Also reported: how long each accepted delivery's audit event waited for its seal, sealed by
the server processes' own sealer threads alone (no beat job runs here), against the ledger's
targets (p99 ≤ 2 s, max ≤ AUDIT_MAX_SEAL_SECONDS).
"""

import http.client
import json
import random
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from standardwebhooks import Webhook

from portal.audit.models import AuditEvent
from portal.webhooks import demo
from portal.webhooks.models import InboundDelivery
from sites.models import Region, Site
from sites.services import region_create, site_create
from tests.benchmarks.harness import BENCH_BROKER_URL, celery_broker, gunicorn, percentile
from tests.benchmarks.trivial_urls import TRIVIAL_POST_PATH

CLIENTS = 16
PER_CLIENT = 150
DUPLICATE_SHARE = 0.3
ROUNDS = 3
WORKERS, THREADS = 2, 4
INGEST_PATH = "/api/v1/webhooks/carrier/"
SITE = "ZB1"


@pytest.fixture(scope="module")
def carrier(bench_db) -> Webhook:
    """The demo carrier source (created as seed_demo does) and a site its events name."""
    if not Site.objects.filter(code=SITE).exists():
        region = Region.objects.filter(code="ZBENCH").first() or region_create(
            actor=None, code="ZBENCH", name="Benchmark region"
        )
        site_create(
            actor=None,
            code=SITE,
            name="Benchmark site",
            region=region,
            time_zone="Europe/Amsterdam",
            currency="EUR",
            odoo_company_id=1,
        )
    demo.seed()
    return Webhook(demo.secret_for("carrier"))


@pytest.fixture(scope="module")
def server(bench_db):
    env = {"CELERY_BROKER_URL": BENCH_BROKER_URL}
    with (
        celery_broker(),
        gunicorn(
            bench_db,
            workers=WORKERS,
            threads=THREADS,
            app="tests.benchmarks.trivial_wsgi:application",
            env=env,
        ) as base,
    ):
        yield base


def deliveries(signer: Webhook, count: int) -> list[tuple[str, bytes, dict]]:
    """(id, body, headers) for `count` sends: 70 % new events, 30 % repeats of them, shuffled."""
    now = datetime.now(UTC)
    unique = count - round(count * DUPLICATE_SHARE)
    sends = []
    for n in range(unique):
        webhook_id = f"msg_bench_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "type": "shipment.delayed",
                "tracking_number": f"1ZBENCH{n:08d}",
                "picking_ref": f"{SITE}/OUT/{n:05d}",
                "site": SITE,
                "status": "held_at_depot",
                "event_time": now.isoformat(),
                "new_eta": (now + timedelta(days=2)).isoformat(),
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(webhook_id, now, body.decode()),
        }
        sends.append((webhook_id, body, headers))
    sends += random.choices(sends, k=count - unique)  # noqa: S311 - not a secret
    random.shuffle(sends)
    return sends


def blast(base: str, path: str, sends: list) -> tuple[float, list[tuple[str, int, bytes]]]:
    """POST every send from CLIENTS threads at once; (wall seconds, (id, status, body) each)."""
    host, port = base.removeprefix("http://").split(":")
    shares = [sends[c::CLIENTS] for c in range(CLIENTS)]
    answers: list[list] = [[] for _ in shares]
    start = threading.Barrier(CLIENTS + 1)

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.connect()
            start.wait(timeout=60)
            for webhook_id, body, headers in shares[index]:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                answers[index].append((webhook_id, response.status, response.read()))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait(timeout=60)
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.perf_counter() - began
    assert not any(thread.is_alive() for thread in threads), "a client never finished"
    flat = [answer for share in answers for answer in share]
    assert len(flat) == len(sends), f"{len(sends) - len(flat)} sends got no answer"
    return elapsed, flat


def check_deduplicated(answers: list[tuple[str, int, bytes]]) -> int:
    """Exactly one 202 and one stored delivery per id, 200 "duplicate" for every repeat."""
    unique = {webhook_id for webhook_id, _, _ in answers}
    accepted = [webhook_id for webhook_id, status, _ in answers if status == 202]
    others = [(status, body) for _, status, body in answers if status != 202]
    assert sorted(accepted) == sorted(unique), "a new event was not accepted exactly once"
    assert all(status == 200 and b"duplicate" in body for status, body in others), others[:3]
    stored = InboundDelivery.objects.filter(source__name="carrier", webhook_id__in=unique)
    assert stored.count() == len(unique)
    return len(unique)


def seal_delays(since, stored: int) -> tuple[list[float], int]:
    """Seconds from arrival to seal of the deliveries' events recorded since `since`, sorted,
    once every one is sealed or AUDIT_MAX_SEAL_SECONDS have passed; and how many are not."""
    events = AuditEvent.objects.filter(at__gte=since, action__startswith="webhook.")
    deadline = time.monotonic() + settings.AUDIT_MAX_SEAL_SECONDS
    while events.filter(sequence__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = events.filter(sequence__isnull=False).values_list("at", "sealed_at")
    delays = sorted((sealed - at).total_seconds() for at, sealed in rows)
    assert len(delays) + events.filter(sequence__isnull=True).count() == stored
    return delays, stored - len(delays)


def test_webhook_ingest_rate(carrier, server, results):
    count = CLIENTS * PER_CLIENT
    ingest, floor, new_events = [], [], []
    since, stored = timezone.now(), 0
    for _ in range(ROUNDS):
        sends = deliveries(carrier, count)
        seconds, answers = blast(server, INGEST_PATH, sends)
        unique = check_deduplicated(answers)
        stored += unique
        ingest.append(count / seconds)
        new_events.append(unique / seconds)
        seconds, answers = blast(server, TRIVIAL_POST_PATH, sends)
        assert {status for _, status, _ in answers} == {202}
        floor.append(count / seconds)

    rate, floor_rate = statistics.median(ingest), statistics.median(floor)
    setup = f"{CLIENTS} clients, gunicorn {WORKERS} workers × {THREADS} threads"
    results.add(
        "Webhook ingest",
        "deliveries/s answered (70 % new, 30 % repeats)",
        rate,
        "/s",
        floor=floor_rate,
        floor_label="trivial POST view, same server and clients",
        target="≥ 50 % of floor",
        ok=rate >= 0.5 * floor_rate,
        note=f"{setup}; median of {ROUNDS} rounds of {count}",
    )
    results.add(
        "Webhook ingest",
        "new events verified, stored and enqueued/s",
        statistics.median(new_events),
        "/s",
        note=f"{setup}; duplicates answered 200 and not stored again",
    )
    delays, unsealed = seal_delays(since, stored)
    p99, worst = percentile(delays, 99), delays[-1]
    results.add(
        "Webhook ingest",
        "seal delay of the deliveries' audit events, p99",
        p99,
        "s",
        target="≤ 2 s",
        ok=p99 <= 2 and not unsealed,
        note=f"max {worst:.2f} s; {len(delays)} events; sealed by the server's sealer threads "
        f"alone; {unsealed} still unsealed after {settings.AUDIT_MAX_SEAL_SECONDS} s",
    )
    results.add(
        "Webhook ingest",
        "seal delay of the deliveries' audit events, max",
        worst,
        "s",
        target=f"≤ {settings.AUDIT_MAX_SEAL_SECONDS} s",
        ok=worst <= settings.AUDIT_MAX_SEAL_SECONDS and not unsealed,
    )
