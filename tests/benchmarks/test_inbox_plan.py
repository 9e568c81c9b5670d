"""The inbox query on 100,000 requests: its PostgreSQL plan uses the indexes, and how long it takes.

Run with `make bench` (or `.venv/bin/pytest tests/benchmarks -s`) against PostgreSQL; the plan and
the median time of several runs are printed.
"""

import random
import re
import statistics
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Outcome,
    PolicyTier,
    RequestState,
    StepState,
)
from approvals.selectors import InboxFilters, inbox_for
from approvals.specs import RuleSpec, TierSpec, VersionSpec
from sites.models import Site
from sites.roles import Role
from tests.factories import RegionFactory, SiteFactory, UserFactory, grant

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the plan and timings that matter are PostgreSQL's; SQLite plans differ",
    ),
    pytest.mark.django_db,
]

REQUESTS = 100_000
IN_REVIEW_SHARE = 0.15
REGIONS, SITES_PER_REGION = 4, 10
RUNS = 9
BATCH = 5_000
INDEX_USE = re.compile(
    r"(Index Scan|Index Only Scan|Bitmap Index Scan)( Backward)? (using|on) "
    r"(request_inbox|request_site_state|step_request_state|step_sla|\w*approvalstep\w*)"
)
FINAL_STATES = [RequestState.APPROVED, RequestState.APPLIED, RequestState.REJECTED]


def _company():
    """40 sites in 4 regions, each staffed, and a two-tier policy: site manager, then region."""
    regions = [RegionFactory(code=f"BR{r}") for r in range(REGIONS)]
    sites = [
        SiteFactory(code=f"B{r}{s:02}", region=region)
        for r, region in enumerate(regions)
        for s in range(SITES_PER_REGION)
    ]
    managers = {}
    for site in sites:
        managers[site.pk] = UserFactory(username=f"bench.sm.{site.code}")
        grant(managers[site.pk], Role.SITE_MANAGER, site=site)
    regionals = {}
    for region in regions:
        regionals[region.pk] = UserFactory(username=f"bench.rm.{region.code}")
        grant(regionals[region.pk], Role.REGIONAL_MANAGER, region=region)
    requesters = {}
    for region in regions:
        requesters[region.pk] = UserFactory(username=f"bench.rq.{region.code}")
        grant(requesters[region.pk], Role.REQUESTER, region=region)
    policy = services.policy_create(actor=None, name="Bench framework")
    tiers = (
        TierSpec(role=Role.SITE_MANAGER, sla_hours=Decimal(24), escalation_role="regional_manager"),
        TierSpec(
            role=Role.REGIONAL_MANAGER,
            stage=2,
            held_at="region",
            sla_hours=Decimal(48),
            escalation_role="finance",
            on_breach="expire",
        ),
    )
    version = services.policy_publish(
        actor=None,
        policy=policy,
        spec=VersionSpec(rules=(RuleSpec(name="Everything", tiers=tiers),)),
    )
    return sites, managers, regionals, requesters, version


def _step(request, tier, state, at, *, activated=True) -> ApprovalStep:
    hours = tier.sla_hours
    return ApprovalStep(
        request=request,
        tier=tier,
        round=1,
        position=tier.position,
        stage=tier.stage,
        state=state,
        role=tier.role,
        held_at=tier.held_at,
        quorum=tier.quorum,
        sla_hours=hours,
        escalation_role=tier.escalation_role,
        on_breach=tier.on_breach,
        activated_at=at if activated else None,
        remind_at=at + timedelta(hours=float(hours) * 0.75) if activated else None,
        due_at=at + timedelta(hours=float(hours)) if activated else None,
    )


def _bulk_load(sites, managers, requesters, version) -> int:
    """Write the requests, their steps and first-tier approvals straight into the tables.

    This bypasses the services only for volume: routing, locking and auditing 100,000 requests
    one by one would take an hour and measures nothing the inbox depends on. Rows look like what
    the services write: every request is routed, final requests have approved steps, and a
    request in review has either its site tier active, or its site tier approved (with the site
    manager's decision) and its regional tier active.
    """
    rule = version.rules.get()
    first, second = PolicyTier.objects.filter(rule=rule).order_by("position")
    now = timezone.now()
    draw = random.Random(2026)  # noqa: S311 -- the same made-up company on every run
    in_review = 0
    for start in range(0, REQUESTS, BATCH):
        requests = []
        for n in range(start, min(start + BATCH, REQUESTS)):
            site = sites[n % len(sites)]
            reviewing = draw.random() < IN_REVIEW_SHARE
            # Spread activations over the last three days, so some tiers are overdue.
            at = now - timedelta(minutes=draw.randrange(3 * 24 * 60))
            amount = Decimal(draw.randrange(100, 20_000))
            requests.append(
                ApprovalRequest(
                    kind="purchase",
                    state=RequestState.IN_REVIEW if reviewing else draw.choice(FINAL_STATES),
                    site=site,
                    requester=requesters[site.region_id],
                    title=f"Bench order {n}",
                    reason="Volume for the inbox benchmark",
                    amount=amount,
                    currency="EUR",
                    amount_base=amount,
                    counterparty=f"Vendor {n % 500}",
                    policy_version=version,
                    rule=rule,
                    round=1,
                    created_at=at,
                    submitted_at=at,
                    decided_at=None if reviewing else at + timedelta(hours=3),
                    due_at=at + timedelta(hours=24) if reviewing else None,
                )
            )
        ApprovalRequest.objects.bulk_create(requests)
        steps, decisions = [], []
        for request in requests:
            at = request.submitted_at
            if request.state != RequestState.IN_REVIEW:
                steps += [
                    _step(request, first, StepState.APPROVED, at),
                    _step(request, second, StepState.APPROVED, at),
                ]
                continue
            in_review += 1
            if draw.random() < 0.5:
                steps += [
                    _step(request, first, StepState.ACTIVE, at),
                    _step(request, second, StepState.WAITING, at, activated=False),
                ]
                continue
            done = _step(request, first, StepState.APPROVED, at)
            steps += [done, _step(request, second, StepState.ACTIVE, at)]
            decisions.append((request, done))
        ApprovalStep.objects.bulk_create(steps)
        Decision.objects.bulk_create(
            Decision(
                request=request,
                step=step,
                outcome=Outcome.APPROVE,
                actor=managers[request.site_id],
                round=1,
                policy_version=version,
                at=request.submitted_at,
            )
            for request, step in decisions
        )
    return in_review


def _analyze() -> None:
    tables = [
        "approvals_approvalrequest",
        "approvals_approvalstep",
        "approvals_decision",
        "approvals_delegation",
        "sites_membership",
        "sites_site",
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def _inbox_sql(user, **options) -> str:
    with CaptureQueriesContext(connection) as captured:
        inbox_for(user, **options)
    [query] = captured.captured_queries
    return query["sql"]


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _median_ms(user, *, jit: bool = True, **options) -> float:
    # The planner's cost for the correlated scope checks passes jit_above_cost, and compiling
    # then takes longer than running; timing both shows what turning JIT off would save.
    with connection.cursor() as cursor:
        cursor.execute(f"SET jit = {'on' if jit else 'off'}")
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        inbox_for(user, **options)
        timings.append((time.perf_counter() - started) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("RESET jit")
    return statistics.median(timings)


def test_inbox_plan_uses_indexes_on_a_hundred_thousand_requests():
    sites, managers, regionals, requesters, version = _company()
    started = time.perf_counter()
    in_review = _bulk_load(sites, managers, requesters, version)
    loaded = time.perf_counter() - started
    _analyze()
    site_manager = managers[sites[0].pk]
    regional = regionals[sites[0].region_id]
    cases = {
        "site manager, one site": (site_manager, {}),
        "regional manager, ten sites": (regional, {}),
        "regional manager, second page": (regional, {"after": inbox_for(regional).next_cursor}),
        "regional manager, overdue at one site": (
            regional,
            {"filters": InboxFilters(site_id=sites[1].pk, overdue=True)},
        ),
    }

    print(
        f"\n{ApprovalRequest.objects.count():,} requests ({in_review:,} in review), "
        f"{ApprovalStep.objects.count():,} steps, {Site.objects.count()} sites; "
        f"loaded in {loaded:.1f} s"
    )
    for label, (user, options) in cases.items():
        page = inbox_for(user, **options)
        plan = _plan(_inbox_sql(user, **options))
        median, without_jit = _median_ms(user, **options), _median_ms(user, jit=False, **options)
        print(
            f"\n=== {label}: {len(page.requests)} rows, median of {RUNS} runs {median:.1f} ms "
            f"({without_jit:.1f} ms with jit off)"
        )
        print(plan)
        assert page.requests, label
        assert INDEX_USE.search(plan), f"{label}: the inbox plan uses no index\n{plan}"
        assert "Seq Scan on approvals_approvalrequest" not in plan, plan
        assert "Seq Scan on approvals_approvalstep" not in plan, plan
