"""The benchmark datasets: one million approval requests and the company around them.

Interface (the benchmarks rely on it):

    ensure(scale="1m") -> Dataset   # build on first use, reuse afterwards

Scales: "10k", "100k", "1m" requests. Every scale has the same company (200 sites in 20
regions, 5,000 users holding 1–10 site or region roles, except the three named people who reach
every site through one role at each region); audit events are twice the requests and exception
cases a fifth of them (2,000,000 and 200,000 at "1m"). "1m" lives in the database DATABASE_URL
names; the others beside it, named `<that name>_10k` and `<that name>_100k`. Each scale starts
as a copy of `<that name>_company`, which holds the migrated schema and the company alone.

How a dataset is built. The company is made through the real services (regions, sites and the
approval policy, each with its audit event); people, roles and the big tables are written with
PostgreSQL COPY in the shape the services write them: every request routed by the policy, its
steps copied from the policy's tiers, a decision for every decided step, a write-back row for
every final decision on an Odoo record, and two audit events per request sealed into the hash
chain in the ledger's canonical form (checked against `chain.canonical` / `chain.seal` as it
goes; `verify_audit` passes). Draws come from a seeded generator,
so every build of a scale holds the same company and the same requests; times are laid out
backwards from the hour of the build, so "the last 30 days" always has data.

A table `bench_dataset` (created here, not by a migration: it exists only in benchmark
databases) records the generator version, the scale and the counts. `ensure` returns at once
when the marker matches, and drops and rebuilds the database when the generator changed.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
import time
from array import array
from bisect import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
BENCH_PASSWORD = "bench-only-password"  # benchmark databases only; never a real account
GENERATOR_VERSION = 3
SEED = 2026

REGIONS = 20
SITES_PER_REGION = 10
USERS = 5_000
PENDING_SHARE = 0.15
POLICY_NAME = "Bench framework"
BATCH = 20_000


@dataclass(frozen=True)
class Dataset:
    scale: str
    database: str
    requests: int
    pending: int
    sites: int
    users: int
    audit_events: int
    cases: int
    # Usernames by the reach the inbox benchmark needs: "site_1" holds a role at one site,
    # "region_10" at a ten-site region, "all_200" roles reaching all 200 sites; also
    # "site_manager" and "regional_manager" (the two personas the issue names), "auditor",
    # "finance" and "admin" (a superuser).
    users_by_reach: dict[str, str]


# Named people: (username, [(role, "site" | "region", number)], superuser).
NAMED = (
    ("site_1", [("site_manager", "site", 1)], False),
    ("region_10", [("regional_manager", "region", 1)], False),
    ("all_200", [("regional_manager", "region", r) for r in range(1, REGIONS + 1)], False),
    ("site_manager", [("site_manager", "site", 2), ("requester", "site", 3)], False),
    ("regional_manager", [("regional_manager", "region", 2)], False),
    ("auditor", [("auditor", "region", r) for r in range(1, REGIONS + 1)], False),
    ("finance", [("finance", "region", r) for r in range(1, 6)], False),
    ("admin", [("admin", "region", r) for r in range(1, REGIONS + 1)], True),
)
USERS_BY_REACH = {name: name for name, _, _ in NAMED}
SITES = REGIONS * SITES_PER_REGION
# The people who decide, per tier: one site manager per site, one regional manager and one
# finance officer per region; then one requester per site. User ids follow the named people.
FIRST_STAFF = len(NAMED) + 1
SITE_MANAGER_STAFF = FIRST_STAFF  # + site number - 1
REGIONAL_STAFF = SITE_MANAGER_STAFF + SITES  # + region number - 1
FINANCE_STAFF = REGIONAL_STAFF + REGIONS
REQUESTER_STAFF = FINANCE_STAFF + REGIONS
FIRST_OTHER = REQUESTER_STAFF + SITES
# The person who decides most at "1m" (16,413 decisions): the regional manager of region 1, who
# decides the second tier of every two- and three-tier request at its ten sites.
HEAVY_DECIDER = f"user{REGIONAL_STAFF:04d}"

# A generated person's roles: role, weight, share held on a whole region (else on one site).
ROLE_MIX = (
    ("requester", 40, 0.1),
    ("site_manager", 20, 0.1),
    ("regional_manager", 10, 0.8),
    ("finance", 10, 0.8),
    ("auditor", 12, 0.8),
    ("admin", 8, 0.8),
)
TIME_ZONES = ("Europe/Amsterdam", "Europe/Berlin", "Europe/Paris", "Europe/London", "Europe/Madrid")

# The policy: amounts in the base currency decide how many tiers a request needs.
FAST_PATH_BELOW = Decimal(500)
BANDS = (Decimal(5_000), Decimal(50_000))  # < 5,000: one tier; < 50,000: two; else three
MIN_AMOUNT, MAX_AMOUNT = 50.0, 200_000.0
TIERS = (
    # role, held at, SLA hours, escalation role
    ("site_manager", "site", 24, "regional_manager"),
    ("regional_manager", "region", 48, "finance"),
    ("finance", "region", 72, "regional_manager"),
)

KINDS = (
    # kind, weight, Odoo model, needs category, needs customer class, counterparty word
    ("purchase", 40, "purchase.order", False, False, "Vendor"),
    ("transfer", 15, "stock.picking", True, False, "Site"),
    ("write_off", 10, "stock.scrap", True, False, "Stock"),
    ("price_override", 10, "sale.order", True, True, "Customer"),
    ("credit_exception", 8, "sale.order", False, True, "Customer"),
    ("return_authorization", 10, "", True, True, "Customer"),
    ("expedited_freight", 7, "", False, False, "Carrier"),
)
CATEGORIES = ("beverages", "dry goods", "chilled", "frozen", "household", "spare parts")
CUSTOMER_CLASSES = ("A", "B", "C", "key account")
CARRIERS = ("DHL", "DSV", "Kuehne+Nagel", "DB Schenker")
# What became of a request that went through review (the fast path aside).
FINAL_STATES = (
    ("applied", 0.64),
    ("approved", 0.06),
    ("apply_failed", 0.02),
    ("rejected", 0.16),
    ("withdrawn", 0.12),
)
REJECT_REASONS = (
    "Over budget for the quarter.",
    "Price not in line with the framework contract.",
    "Stock available at a neighbouring site.",
)

CASE_KINDS = (
    # kind, weight, queue, Odoo model
    ("shipment_delay", 25, "procurement", "purchase.order"),
    ("delivery_failed", 10, "customer_service", "stock.picking"),
    ("receipt_discrepancy", 20, "warehouse", "stock.picking"),
    ("asn_conflict", 8, "warehouse", "stock.picking"),
    ("invoice_mismatch", 15, "finance", "account.move"),
    ("reservation_failure", 7, "warehouse", "sale.order"),
    ("price_variance", 10, "finance", "purchase.order"),
    ("return_damage", 5, "customer_service", "stock.picking"),
)
SEVERITIES = (("low", 30, 72), ("medium", 40, 24), ("high", 22, 8), ("critical", 8, 4))
CASE_STATES = (
    ("new", 0.10),
    ("assigned", 0.08),
    ("in_progress", 0.07),
    ("resolved", 0.60),
    ("dismissed", 0.15),
)
CASE_SOURCES = ("odoo", "webhook", "manual")
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0"


# --- the entry point ----------------------------------------------------------------------------


def database_for(scale: str) -> str:
    """The database that holds `scale`: DATABASE_URL's for "1m", a sibling for the others."""
    from django.conf import settings

    base = settings.DATABASES["default"]["NAME"]
    return base if scale == "1m" else f"{base}_{scale}"


def company_database() -> str:
    """The database holding the company alone, which every scale starts as a copy of."""
    return f"{database_for('1m')}_company"


def ensure(scale: str = "1m") -> Dataset:
    """The dataset of `scale`, built on first use (or when the generator changed), else reused."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    from django.core.management import call_command

    from tests.benchmarks.harness import use_database

    name = database_for(scale)
    found = _marker(name)
    if found is not None and found.get("version") == GENERATOR_VERSION:
        with use_database(name):
            call_command("migrate", interactive=False, verbosity=0)
        return _dataset(scale, name, found["counts"])
    print(f"\ndataset {scale}: building {name} ...", flush=True)
    template = _ensure_company()
    started = time.perf_counter()
    _recreate(name, template=template)
    with use_database(name):
        _forget_marker()  # the company's, copied with the template: a failed build is no dataset
        call_command("migrate", interactive=False, verbosity=0)
        counts = Builder(scale).build()
        seconds = time.perf_counter() - started
        _write_marker(scale, counts, seconds)
    print(f"dataset {scale}: built in {seconds:.1f} s: {counts}", flush=True)
    return _dataset(scale, name, counts)


def _ensure_company() -> str:
    """The company database, built (migrated, company, people, policy) unless it is current."""
    from django.core.management import call_command

    from tests.benchmarks.harness import use_database

    name = company_database()
    found = _marker(name)
    if found is not None and found.get("version") == GENERATOR_VERSION:
        with use_database(name):
            call_command("migrate", interactive=False, verbosity=0)
        return name
    started = time.perf_counter()
    _recreate(name)
    with use_database(name):
        call_command("migrate", interactive=False, verbosity=0)
        counts = Company().build()
        seconds = time.perf_counter() - started
        _write_marker("company", counts, seconds)
    print(f"dataset company: built in {seconds:.1f} s: {counts}", flush=True)
    return name


def _dataset(scale: str, name: str, counts: dict) -> Dataset:
    return Dataset(
        scale=scale,
        database=name,
        requests=counts["requests"],
        pending=counts["pending"],
        sites=counts["sites"],
        users=counts["users"],
        audit_events=counts["audit_events"],
        cases=counts["cases"],
        users_by_reach=dict(USERS_BY_REACH),
    )


def build_seconds(scale: str) -> float | None:
    """How long the last build of `scale` ("company" for the shared part) took, or None."""
    name = company_database() if scale == "company" else database_for(scale)
    found = _marker(name)
    return found.get("seconds") if found else None


def _admin_connection(dbname: str = "postgres"):
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=dbname,
        user=database.get("USER") or "postgres",
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or "127.0.0.1",
        port=database.get("PORT") or 5432,
        autocommit=True,
    )


def _marker(name: str) -> dict | None:
    """The marker row of database `name`, or None when the database or the marker is missing."""
    import psycopg

    try:
        with _admin_connection(name) as db:
            row = db.execute("SELECT version, counts, seconds FROM bench_dataset").fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None
    if row is None:
        return None
    return {"version": row[0], "counts": row[1], "seconds": row[2]}


def _recreate(name: str, *, template: str | None = None) -> None:
    from django.db import connection

    connection.close()
    copy_of = f' TEMPLATE "{template}"' if template else ""
    with _admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"{copy_of}')


def _forget_marker() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_dataset")


def _write_marker(scale: str, counts: dict, seconds: float) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_dataset")
        cursor.execute(
            "CREATE TABLE bench_dataset (scale text PRIMARY KEY, version integer NOT NULL, "
            "counts jsonb NOT NULL, seconds double precision NOT NULL, "
            "built_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor.execute(
            "INSERT INTO bench_dataset (scale, version, counts, seconds) VALUES (%s, %s, %s, %s)",
            [scale, GENERATOR_VERSION, json.dumps(counts), seconds],
        )


# --- COPY text format ---------------------------------------------------------------------------
# Times are whole seconds since the epoch while generating: integer arithmetic, and text made
# from a per-day prefix, keep a million rows from spending minutes in datetime.

_DAYS: dict[int, str] = {}


def _day(seconds: int) -> tuple[str, int]:
    day, rest = divmod(seconds, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
    return prefix, rest


def _ts(seconds: int | None) -> str:
    """A timestamptz in COPY's text format."""
    if seconds is None:
        return "\\N"
    prefix, rest = _day(seconds)
    hour, rest = divmod(rest, 3600)
    return f"{prefix} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}+00"


def _canonical_ts(seconds: int) -> str:
    """The same moment as portal.audit.chain.timestamp writes it."""
    prefix, rest = _day(seconds)
    hour, rest = divmod(rest, 3600)
    return f"{prefix}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}.000000Z"


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _opt(value) -> str:
    return "\\N" if value is None else str(value)


def _bool(value: bool) -> str:
    return "t" if value else "f"


def _copy(table: str, columns: str, lines: list[str]) -> None:
    """COPY `lines` (tab-separated rows, text format) into `table`."""
    if not lines:
        return
    from django.db import connection

    connection.ensure_connection()
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        copy.write("\n".join(lines) + "\n")


def _weighted(options, weight_index: int = 1):
    """Cumulative weights for `_pick`."""
    total, cumulative = 0.0, []
    for option in options:
        total += option[weight_index]
        cumulative.append(total)
    return [c / total for c in cumulative]


def _pick(draw: random.Random, options, cumulative):
    return options[min(bisect(cumulative, draw.random()), len(options) - 1)]


# --- the company: made once through the services, copied into every scale ----------------------


def _plan_people() -> tuple[dict[int, str], dict[int, list[tuple[str, str, int]]], set[int]]:
    """Every person's username and roles (role, "site" | "region", number); the superusers."""
    names: dict[int, str] = {}
    roles_of: dict[int, list[tuple[str, str, int]]] = {}
    superusers = set()
    for user_id, (name, roles, superuser) in enumerate(NAMED, start=1):
        names[user_id], roles_of[user_id] = name, list(roles)
        if superuser:
            superusers.add(user_id)
    draw = random.Random(f"{SEED}-people")  # noqa: S311 -- the same made-up data on every build
    for user_id in range(FIRST_STAFF, USERS + 1):
        names[user_id] = f"user{user_id:04d}"
        roles_of[user_id] = _roles_of(user_id, draw)
    return names, roles_of, superusers


def _roles_of(user_id: int, draw: random.Random) -> list[tuple[str, str, int]]:
    """The staff's own role first, then more up to 1–10 in all, never the same one twice."""
    roles: list[tuple[str, str, int]] = []
    allowed = ROLE_MIX
    if user_id < REGIONAL_STAFF:
        roles.append(("site_manager", "site", user_id - SITE_MANAGER_STAFF + 1))
    elif user_id < FINANCE_STAFF:
        roles.append(("regional_manager", "region", user_id - REGIONAL_STAFF + 1))
    elif user_id < REQUESTER_STAFF:
        roles.append(("finance", "region", user_id - FINANCE_STAFF + 1))
    elif user_id < FIRST_OTHER:
        roles.append(("requester", "site", user_id - REQUESTER_STAFF + 1))
    if roles:
        # Deciders never raise and requesters never decide, so the staff's votes stay valid.
        keep = ("requester", "auditor") if roles[0][0] == "requester" else ("auditor", "admin")
        allowed = tuple(mix for mix in ROLE_MIX if mix[0] in keep)
    wanted = draw.randrange(1, 11)
    weights = _weighted(allowed)
    while len(roles) < wanted:
        role, _, region_share = _pick(draw, allowed, weights)
        if draw.random() < region_share:
            scope = ("region", draw.randrange(1, REGIONS + 1))
        else:
            scope = ("site", draw.randrange(1, SITES + 1))
        if (role, *scope) not in roles:
            roles.append((role, *scope))
    return roles


class Company:
    """Regions, sites and the policy through the services; people and roles by COPY."""

    def build(self) -> dict:
        self.start = _epoch(datetime.now(UTC)) - 400 * 86_400
        self._regions_and_sites()
        self._people()
        self._policy()
        _seal_backlog()
        with connection_cursor() as cursor:
            cursor.execute("ANALYZE")
        return {
            "sites": len(self.sites),
            "users": USERS,
            "memberships": self.memberships,
        }

    def _regions_and_sites(self) -> None:
        from sites import services

        self.sites, self.regions = [], []
        for r in range(1, REGIONS + 1):
            region = services.region_create(actor=None, code=f"R{r:02d}", name=f"Region {r:02d}")
            self.regions.append(region)
            for s in range(SITES_PER_REGION):
                number = (r - 1) * SITES_PER_REGION + s + 1
                site = services.site_create(
                    actor=None,
                    code=f"S{number:03d}",
                    name=f"Warehouse {number:03d}",
                    region=region,
                    time_zone=TIME_ZONES[(r - 1) % len(TIME_ZONES)],
                    currency="EUR",
                    odoo_company_id=r,
                    odoo_warehouse_id=number,
                )
                self.sites.append(site)

    def _people(self) -> None:
        """5,000 people sharing one password hash, their memberships and the grant rows."""
        from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

        # Production's hasher, named: inside pytest the first configured one is the suite's fast
        # test hasher, which the benchmark's production-settings server does not accept.
        password = make_password(BENCH_PASSWORD, hasher=PBKDF2PasswordHasher())
        names, roles_of, superusers = _plan_people()
        joined = _ts(self.start - 30 * 86_400)
        lines = [
            "\t".join(
                (
                    str(user_id),
                    password,
                    "\\N",
                    _bool(user_id in superusers),
                    name,
                    "Bench",
                    name.replace("_", " ").title(),
                    f"{name}@bench.invalid",
                    _bool(user_id in superusers),
                    "t",
                    joined,
                )
            )
            for user_id, name in names.items()
        ]
        _copy(
            "auth_user",
            "id, password, last_login, is_superuser, username, first_name, last_name, email, "
            "is_staff, is_active, date_joined",
            lines,
        )
        valid_from = _ts(self.start)
        lines, membership_id = [], 0
        for user_id, roles in roles_of.items():
            for role, level, number in roles:
                membership_id += 1
                site = self.sites[number - 1].pk if level == "site" else None
                region = self.regions[number - 1].pk if level == "region" else None
                lines.append(
                    f"{membership_id}\t{user_id}\t{role}\t{_opt(site)}\t{_opt(region)}\t"
                    f"{valid_from}\t\\N\t\\N\t{valid_from}\t"
                )
        _copy(
            "sites_membership",
            "id, user_id, role, site_id, region_id, valid_from, valid_to, granted_by_id, "
            "granted_at, note",
            lines,
        )
        self.memberships = membership_id
        grant = """
            INSERT INTO sites_siteuserobjectpermission
                (user_id, permission_id, content_object_id, membership_id)
            SELECT m.user_id, p.id, s.id, m.id
            FROM sites_membership m
            JOIN sites_site s ON {join}
            JOIN auth_permission p ON p.codename = 'role_' || m.role
            JOIN django_content_type ct ON ct.id = p.content_type_id
                AND ct.app_label = 'sites' AND ct.model = 'site'
        """
        with connection_cursor() as cursor:
            # One grant row per membership and site it covers, as sites.services writes them.
            cursor.execute(grant.format(join="s.id = m.site_id"))
            cursor.execute(grant.format(join="s.region_id = m.region_id"))
        _reset_sequences(["auth_user", "sites_membership"])

    def _policy(self) -> None:
        from approvals import services
        from approvals.specs import RuleSpec, TierSpec, VersionSpec

        def tiers(count: int) -> tuple[TierSpec, ...]:
            return tuple(
                TierSpec(
                    role=role,
                    sla_hours=Decimal(hours),
                    stage=stage,
                    held_at=held_at,
                    escalation_role=escalation,
                )
                for stage, (role, held_at, hours, escalation) in enumerate(TIERS[:count], start=1)
            )

        rules = (
            RuleSpec(
                name="Routine",
                tiers=tiers(1),
                max_amount=BANDS[0],
                auto_approve_below=FAST_PATH_BELOW,
            ),
            RuleSpec(name="Significant", tiers=tiers(2), min_amount=BANDS[0], max_amount=BANDS[1]),
            RuleSpec(name="Major", tiers=tiers(3), min_amount=BANDS[1]),
        )
        policy = services.policy_create(actor=None, name=POLICY_NAME)
        services.policy_publish(
            actor=None,
            policy=policy,
            spec=VersionSpec(rules=rules, note="Benchmark policy"),
            effective_from=datetime.fromtimestamp(self.start + 86_400, UTC),
        )


# --- one scale: requests, steps, decisions, write-backs, cases, the ledger ----------------------


class Builder:
    """Builds one scale into the database Django's default connection points at (a copy of the
    company database)."""

    def __init__(self, scale: str):
        self.scale = scale
        self.requests = SCALES[scale]
        self.draw = random.Random(f"{SEED}-{scale}")  # noqa: S311 -- the same made-up data on every build
        self.now = _epoch(datetime.now(UTC)) // 3600 * 3600
        self.start = self.now - 365 * 86_400
        self.kind_weights = _weighted(KINDS)
        self.final_weights = _weighted(FINAL_STATES)
        self.case_kind_weights = _weighted(CASE_KINDS)
        self.severity_weights = _weighted(SEVERITIES)
        self.case_state_weights = _weighted(CASE_STATES)
        self.timings: dict[str, float] = {}

    def build(self) -> dict:
        steps = (
            ("company", self._load_company),
            ("drop indexes", self._drop_indexes),
            ("requests", self._requests),
            ("cases", self._cases),
            ("audit", self._audit),
            ("create indexes", self._create_indexes),
            ("analyze", self._analyze),
        )
        for label, step in steps:
            started = time.perf_counter()
            step()
            self.timings[label] = round(time.perf_counter() - started, 1)
            print(f"  {self.scale} {label}: {self.timings[label]:.1f} s", flush=True)
        return self._counts()

    def _load_company(self) -> None:
        from approvals.models import PolicyTier, PolicyVersion
        from sites.models import Region, Site

        regions = list(Region.objects.order_by("pk"))
        sites = list(Site.objects.order_by("pk"))
        self.site_ids = [site.pk for site in sites]
        self.site_codes = [site.code for site in sites]
        self.site_index = {pk: n for n, pk in enumerate(self.site_ids)}
        region_index = {region.pk: n for n, region in enumerate(regions)}
        self.site_region = [region_index[site.region_id] for site in sites]
        self.region_codes = [region.code for region in regions]
        self.version = PolicyVersion.objects.select_related("policy").get(policy__name=POLICY_NAME)
        self.version_label = str(self.version)
        self.rules = list(self.version.rules.order_by("position"))
        self.tier_ids = {
            rule.pk: list(
                PolicyTier.objects.filter(rule=rule)
                .order_by("position")
                .values_list("pk", flat=True)
            )
            for rule in self.rules
        }
        self.usernames, roles_of, _ = _plan_people()
        self.requesters_at: list[list[int]] = [[] for _ in range(SITES)]
        for user_id, roles in roles_of.items():
            if user_id < REQUESTER_STAFF:
                continue
            for role, level, number in roles:
                if role != "requester":
                    continue
                first = number - 1 if level == "site" else (number - 1) * SITES_PER_REGION
                last = first + (1 if level == "site" else SITES_PER_REGION)
                for site_index in range(first, last):
                    self.requesters_at[site_index].append(user_id)

    # -- indexes: dropped while loading, built once afterwards --

    def _drop_indexes(self) -> None:
        with connection_cursor() as cursor:
            cursor.execute(
                """
                SELECT i.indexname, i.indexdef FROM pg_indexes i
                WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
                """,
                [list(LOADED_TABLES)],
            )
            self.indexes = cursor.fetchall()
            for name, _ in self.indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            # The rows are written consistent; foreign keys are checked once, at the end.
            cursor.execute("SET session_replication_role = replica")

    def _create_indexes(self) -> None:
        with connection_cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in self.indexes:
                cursor.execute(definition)
            self._check_foreign_keys(cursor)
            self._check_last_decided(cursor)

    def _check_foreign_keys(self, cursor) -> None:
        """Every foreign key of the loaded tables points at a row (what COPY did not check)."""
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, af.attname
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
            WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)
            """,
            [list(LOADED_TABLES)],
        )
        for table, column, target, target_column in cursor.fetchall():
            cursor.execute(
                f"SELECT count(*) FROM {table} t WHERE t.{column} IS NOT NULL AND NOT EXISTS "  # noqa: S608
                f"(SELECT 1 FROM {target} x WHERE x.{target_column} = t.{column})"
            )
            dangling = cursor.fetchone()[0]
            if dangling:
                raise RuntimeError(f"{dangling} rows of {table}.{column} point nowhere")

    @staticmethod
    def _check_last_decided(cursor) -> None:
        """Each request's stored last decision time is its newest decision's, as the services
        keep it (and as migration 0009 fills it)."""
        cursor.execute(
            """
            SELECT count(*) FROM approvals_approvalrequest r
            LEFT JOIN (
                SELECT request_id, max(at) AS at FROM approvals_decision GROUP BY request_id
            ) d ON d.request_id = r.id
            WHERE r.last_decided_at IS DISTINCT FROM d.at
            """
        )
        wrong = cursor.fetchone()[0]
        if wrong:
            raise RuntimeError(f"{wrong} requests store another last decision time")

    # -- requests, steps, decisions, write-backs --

    def _requests(self) -> None:
        self.step_id = self.decision_id = self.outbox_id = 0
        # What the audit events need of each request, in compact arrays indexed by request id.
        size = self.requests + 1
        self.submitted_at = array("q", bytes(8 * size))
        self.decided_at = array("q", bytes(8 * size))
        self.outcome = array("b", bytes(size))  # index into OUTCOMES
        self.site_of = array("h", bytes(2 * size))
        self.requester_of = array("h", bytes(2 * size))
        self.final_actor = array("h", bytes(2 * size))  # 0: Tollgate itself
        self.title_of: list[str] = [""] * size
        for first in range(1, self.requests + 1, BATCH):
            rows = {"requests": [], "steps": [], "decisions": [], "outbox": []}
            for request_id in range(first, min(first + BATCH, self.requests + 1)):
                self._request(request_id, rows)
            _copy("approvals_approvalrequest", REQUEST_COLUMNS, rows["requests"])
            _copy("approvals_approvalstep", STEP_COLUMNS, rows["steps"])
            _copy("approvals_decision", DECISION_COLUMNS, rows["decisions"])
            _copy("odoo_outboxitem", OUTBOX_COLUMNS, rows["outbox"])
        _reset_sequences(
            [
                "approvals_approvalrequest",
                "approvals_approvalstep",
                "approvals_decision",
                "odoo_outboxitem",
            ]
        )

    def _request(self, request_id: int, rows: dict) -> None:
        draw = self.draw
        site_index = draw.randrange(SITES)
        kind, _, odoo_model, needs_category, needs_class, word = _pick(
            draw, KINDS, self.kind_weights
        )
        pending = draw.random() < PENDING_SHARE
        low = float(FAST_PATH_BELOW) if pending else MIN_AMOUNT
        cents = round(math.exp(draw.uniform(math.log(low), math.log(MAX_AMOUNT))) * 100)
        amount = f"{cents // 100}.{cents % 100:02d}"
        tiers = 1 if cents < BANDS[0] * 100 else 2 if cents < BANDS[1] * 100 else 3
        rule = self.rules[tiers - 1]
        requesters = self.requesters_at[site_index]
        requester = requesters[draw.randrange(len(requesters))]
        # Seconds each tier took: about one in five runs past its SLA.
        durations = [
            int(TIERS[t][2] * 3600 * (1.6 * draw.random() ** 2 + 0.01)) for t in range(tiers)
        ]
        fast = not pending and cents < FAST_PATH_BELOW * 100
        if pending:
            state, stop = "in_review", draw.randrange(tiers)
            activated = self.now - int(draw.random() * 1.5 * TIERS[stop][2] * 3600)
            submitted = activated - sum(durations[:stop])
        else:
            # Submissions spread over the year in id order; every outcome known by now.
            offset = (request_id - 1 + draw.random()) / self.requests
            submitted = self.start + int(offset * 360 * 86_400)
            if fast:
                state, stop = draw.choice(("applied", "applied", "applied", "approved")), tiers
            else:
                state = _pick(draw, FINAL_STATES, self.final_weights)[0]
                stop = draw.randrange(tiers) if state in ("rejected", "withdrawn") else tiers
        number = draw.randrange(1, 5_000)
        category = draw.choice(CATEGORIES) if needs_category or draw.random() < 0.3 else ""
        customer_class = draw.choice(CUSTOMER_CLASSES) if needs_class else ""
        details = (
            f'{{"carrier": "{draw.choice(CARRIERS)}"}}' if kind == "expedited_freight" else "{}"
        )
        title = f"{KIND_TITLES[kind]} {word} {number}"
        request = {"id": request_id, "site": site_index, "state": state, "requester": requester}
        if fast:
            decided, due, last_decision = submitted, None, submitted
            self._fast_path(request_id, amount, submitted, rows)
        else:
            decided, due, last_decision = self._steps(
                request, rule, durations, submitted, stop, rows
            )
        self.submitted_at[request_id] = submitted
        self.decided_at[request_id] = decided
        self.outcome[request_id] = OUTCOMES.index("fast" if fast else state)
        self.site_of[request_id] = site_index
        self.requester_of[request_id] = requester
        self.title_of[request_id] = title
        sampled = fast and _sampled(self.version.pk, request_id, self.version.fast_path_sample_rate)
        rows["requests"].append(
            "\t".join(
                (
                    str(request_id),
                    kind,
                    state,
                    str(self.site_ids[site_index]),
                    str(requester),
                    "1",
                    title,
                    "Needed to keep the site supplied.",
                    amount,
                    "EUR",
                    amount,
                    category,
                    customer_class,
                    f"{word} {number}",
                    f"res.partner,{number}",
                    details,
                    odoo_model,
                    str(request_id) if odoo_model else "\\N",
                    "{}",
                    str(self.version.pk),
                    str(rule.pk),
                    "0" if fast else "1",
                    "[]",
                    _bool(fast),
                    _bool(sampled),
                    "[]",
                    _ts(due),
                    APPLY_ERROR if state == "apply_failed" else "",
                    _ts(submitted - 120),
                    _ts(submitted),
                    _ts(None if pending else decided),
                    _ts(decided + 300 if state == "applied" else None),
                    "",
                    "",
                    "\\N",
                    _ts(last_decision),
                )
            )
        )
        if odoo_model and state in ("applied", "approved", "apply_failed", "rejected"):
            self._outbox(request_id, state, odoo_model, 0 if fast else 1, decided, rows)

    def _fast_path(self, request_id: int, amount: str, at: int, rows: dict) -> None:
        self.decision_id += 1
        evidence = (
            f'{{"policy_version": "{self.version_label}", "rule": "Routine", '
            f'"auto_approve_below": "{FAST_PATH_BELOW}", "amount_base": "{amount}", '
            f'"base_currency": "EUR", "risk_flags": []}}'
        )
        rows["decisions"].append(
            f"{self.decision_id}\t{request_id}\t\\N\tauto_approve\t\\N\t\\N\t\\N\t0\t"
            f"{self.version.pk}\t\t{evidence}\t{_ts(at)}"
        )

    def _steps(self, request: dict, rule, durations: list[int], at: int, stop: int, rows: dict):
        """The request's tiers; returns when its outcome came, when its active tier is due and
        when its last decision was made (None before the first)."""
        state, request_id = request["state"], request["id"]
        site_id = self.site_ids[request["site"]]
        ended, request_due, last_decision = at, None, None
        for index, tier_id in enumerate(self.tier_ids[rule.pk]):
            role, held_at, hours, escalation = TIERS[index]
            decider, activated, completed = None, None, None
            if index < stop:
                step_state, activated = "approved", at
                completed = at + durations[index]
                decider = self._decider(index, request["site"])
            elif index == stop:
                activated = at
                if state == "in_review":
                    step_state = "active"
                elif state == "rejected":
                    step_state, decider = "rejected", self._decider(index, request["site"])
                    completed = at + durations[index]
                else:  # withdrawn while this tier waited
                    step_state, completed = "closed", at + durations[index] // 2
            elif state == "in_review":
                step_state = "waiting"
            else:
                step_state, completed = "closed", ended
            due = remind = reminded = escalated = None
            escalated_role = ""
            if activated is not None:
                due, remind = activated + hours * 3600, activated + hours * 2700
                late_at = completed or self.now
                reminded = remind if late_at > remind else None
                if late_at > due:
                    escalated, escalated_role = due, escalation
            self.step_id += 1
            rows["steps"].append(
                f"{self.step_id}\t{request_id}\t{site_id}\t{tier_id}\t1\t{index + 1}\t{index + 1}\t"
                f"{step_state}\t{role}\t{held_at}\t1\tf\t{hours}.00\tf\t{escalation}\t"
                f"{escalated_role}\tescalate\t{_ts(activated)}\t{_ts(remind)}\t{_ts(due)}\t"
                f"{_ts(reminded)}\t{_ts(escalated)}\t{_ts(completed)}"
            )
            if step_state == "active":
                request_due = due
            if decider is not None:
                self.decision_id += 1
                outcome = "approve" if step_state == "approved" else "reject"
                comment = (
                    REJECT_REASONS[request_id % len(REJECT_REASONS)] if outcome == "reject" else ""
                )
                rows["decisions"].append(
                    f"{self.decision_id}\t{request_id}\t{self.step_id}\t{outcome}\t{decider}\t"
                    f"\\N\t\\N\t1\t{self.version.pk}\t{comment}\t{{}}\t{_ts(completed)}"
                )
                self.final_actor[request_id] = decider
                last_decision = completed
            if completed is not None and index <= stop:
                at = ended = completed
        if state == "withdrawn":
            self.final_actor[request_id] = request["requester"]
        return ended, request_due, last_decision

    def _decider(self, tier_index: int, site_index: int) -> int:
        if tier_index == 0:
            return SITE_MANAGER_STAFF + site_index
        staff = REGIONAL_STAFF if tier_index == 1 else FINANCE_STAFF
        return staff + self.site_region[site_index]

    def _outbox(self, request_id, state, odoo_model, round_, decided: int, rows: dict) -> None:
        outbox_state = {"approved": "pending", "apply_failed": "failed"}.get(state, "applied")
        action = "reject" if state == "rejected" else "approve"
        attempts = {"pending": 0, "failed": 5}.get(outbox_state, 1)
        error = APPLY_ERROR if outbox_state == "failed" else ""
        applied = decided + 300 if outbox_state == "applied" else None
        self.outbox_id += 1
        rows["outbox"].append(
            f"{self.outbox_id}\t{request_id}\t{round_}\t{action}\tf\t{odoo_model}\t{request_id}\t"
            f"{outbox_state}\t{attempts}\t{_ts(decided)}\t{error}\t\\N\t{_ts(decided)}\t"
            f"{_ts(applied)}"
        )

    # -- exception cases --

    def _cases(self) -> None:
        total = self.requests // 5
        draw = random.Random(f"{SEED}-{self.scale}-cases")  # noqa: S311 -- the same made-up data on every build
        for first in range(1, total + 1, BATCH):
            lines = [
                self._case(case_id, total, draw)
                for case_id in range(first, min(first + BATCH, total + 1))
            ]
            _copy("exceptions_exceptioncase", CASE_COLUMNS, lines)
        _reset_sequences(["exceptions_exceptioncase"])

    def _case(self, case_id: int, total: int, draw: random.Random) -> str:
        kind, _, queue, odoo_model = _pick(draw, CASE_KINDS, self.case_kind_weights)
        severity, _, hours = _pick(draw, SEVERITIES, self.severity_weights)
        state = _pick(draw, CASE_STATES, self.case_state_weights)[0]
        site_index = draw.randrange(SITES)
        if state in ("new", "assigned", "in_progress"):
            detected, closed = self.now - int(draw.random() * 14 * 86_400), None
        else:
            detected = self.start + int((case_id - 1 + draw.random()) / total * 360 * 86_400)
            closed = detected + int(hours * 7200 * draw.random())
        due, remind = detected + hours * 3600, detected + hours * 2700
        late_at = closed or self.now
        owner = SITE_MANAGER_STAFF + site_index if state != "new" else None
        resolution = {"resolved": "corrected_in_odoo", "dismissed": "not_an_issue"}.get(state, "")
        amount = f"{draw.uniform(20, 20_000):.2f}" if queue == "finance" else None
        occurrences = 1 + int(draw.random() ** 4 * 5)
        title = f"{kind.replace('_', ' ').capitalize()} at {self.site_codes[site_index]}"
        return (
            f"{case_id}\t{kind}\t{state}\t{severity}\t{self.site_ids[site_index]}\t{queue}\t"
            f"{_opt(owner)}\t{title}\t{draw.choice(CASE_SOURCES)}\tbench:{kind}:{case_id}\t"
            f"{odoo_model}\t{case_id}\t{{}}\t{{}}\t{_opt(amount)}\t{'EUR' if amount else ''}\t"
            f"{occurrences}\t{_ts(detected)}\t{_ts(detected + (occurrences - 1) * 3600)}\t"
            f"{_ts(due)}\t{_ts(remind)}\t{_ts(remind if late_at > remind else None)}\t"
            f"{_ts(due if late_at > due else None)}\tregional_manager\t\t{resolution}\t"
            f"{'Handled in the bench dataset.' if resolution else ''}\t{_ts(closed)}"
        )

    # -- the audit ledger --

    def _audit(self) -> None:
        """Two sealed events per request (submitted; then its outcome), in time order.

        The services' own events (regions, sites, the policy) open the ledger; these continue
        its chain until it holds twice as many events as there are requests.
        """
        from portal.audit import chain

        _seal_backlog()
        with connection_cursor() as cursor:
            cursor.execute(
                "SELECT sequence, hash FROM audit_auditevent WHERE sequence IS NOT NULL "
                "ORDER BY sequence DESC LIMIT 1"
            )
            head = cursor.fetchone()
        self.sequence, self.prev_hash = head if head else (0, chain.GENESIS)
        target = 2 * self.requests
        submitted = self.submitted_at
        order = sorted(range(1, self.requests + 1), key=submitted.__getitem__)
        outcomes: list[tuple[int, int]] = []  # (when, request id): events still to come
        lines: list[str] = []
        for request_id in order:
            at = submitted[request_id]
            while outcomes and outcomes[0][0] <= at and self.sequence < target:
                lines.append(self._event(*heapq.heappop(outcomes), second=True))
            if self.sequence >= target:
                break
            lines.append(self._event(at, request_id, second=False))
            heapq.heappush(outcomes, (self.decided_at[request_id], request_id))
            if len(lines) >= BATCH:
                _copy("audit_auditevent", AUDIT_COLUMNS, lines)
                lines = []
        while outcomes and self.sequence < target:
            lines.append(self._event(*heapq.heappop(outcomes), second=True))
        _copy("audit_auditevent", AUDIT_COLUMNS, lines)

    def _event(self, at: int, request_id: int, *, second: bool) -> str:
        """One event as a COPY line, sealed onto the chain."""
        outcome = OUTCOMES[self.outcome[request_id]]
        if not second:
            action, actor, before, after = (
                "request.submitted",
                self.requester_of[request_id],
                "draft",
                "submitted",
            )
        else:
            action, before, after = SECOND_EVENTS[outcome]
            actor = self.final_actor[request_id] if outcome not in ("fast", "in_review") else 0
        round_after = 1 if second and outcome != "fast" else 0
        comment = ""
        if second and outcome == "rejected":
            comment = REJECT_REASONS[request_id % len(REJECT_REASONS)]
        site_index = self.site_of[request_id]
        site_id, site_code = self.site_ids[site_index], self.site_codes[site_index]
        region = self.region_codes[self.site_region[site_index]]
        if actor:
            actor_id, actor_label = str(actor), self.usernames[actor]
            context = (
                f'{{"correlation_id":"{request_id:016x}{int(second):016x}",'
                f'"ip":"10.{site_index % 250}.{request_id % 250}.{actor % 250}",'
                f'"path":"/approvals/{request_id}/","region":"{region}",'
                f'"user_agent":"{USER_AGENT}"}}'
            )
        else:
            actor_id, actor_label, context = "null", "tollgate", f'{{"region":"{region}"}}'
        reference = f"AR-{request_id:06d} {self.title_of[request_id]} @ {region}/{site_code}"[:200]
        before_json = f'{{"state":"{before}"}}'
        after_json = f'{{"round":{round_after},"state":"{after}"}}'
        self.sequence += 1
        # chain.canonical of the event's fields, written out in its sorted key order.
        canonical = (
            f'{{"action":"{action}","actor":"{actor_label}","actor_id":{actor_id},'
            f'"after":{after_json},"at":"{_canonical_ts(at)}","before":{before_json},'
            f'"comment":"{comment}","context":{context},"object_id":"{request_id}",'
            f'"object_reference":"{reference}","object_type":"approvals.approvalrequest",'
            f'"on_behalf_of_id":null,"policy_version":"{self.version_label}",'
            f'"prev_hash":"{self.prev_hash}","sequence":{self.sequence},"site_id":{site_id}}}'
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        if self.sequence % 50_000 == 1:
            self._check_canonical(canonical, digest)
        line = (
            f"{self.sequence}\t{_ts(at)}\t{action}\t{actor_id if actor else chr(92) + 'N'}\t"
            f"{actor_label}\t\\N\tapprovals.approvalrequest\t{request_id}\t{reference}\t"
            f"{site_id}\t{self.version_label}\t{before_json}\t{after_json}\t{comment}\t"
            f"{context}\t{self.prev_hash}\t{digest}"
        )
        self.prev_hash = digest
        return line

    @staticmethod
    def _check_canonical(canonical: str, digest: str) -> None:
        """The hand-written canonical form is exactly the ledger's own (checked now and then)."""
        from portal.audit import chain

        fields = json.loads(canonical)
        if chain.canonical(fields).decode() != canonical or chain.seal(fields) != digest:
            raise RuntimeError("the generated audit event differs from chain.canonical")

    def _analyze(self) -> None:
        with connection_cursor() as cursor:
            # VACUUM too, as autovacuum would soon after such a load: it marks the pages
            # all-visible, which index-only scans need.
            for table in LOADED_TABLES:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            cursor.execute("ANALYZE")

    def _counts(self) -> dict:
        counts = {}
        with connection_cursor() as cursor:
            for key, sql in COUNTS.items():
                cursor.execute(sql)
                counts[key] = cursor.fetchone()[0]
        counts["timings"] = self.timings
        return counts


OUTCOMES = ("fast", "in_review", "applied", "approved", "apply_failed", "rejected", "withdrawn")
# The outcome event of each: action, state before, state after.
SECOND_EVENTS = {
    "fast": ("request.auto_approved", "submitted", "approved"),
    "in_review": ("request.in_review", "submitted", "in_review"),
    "applied": ("request.approved", "in_review", "approved"),
    "approved": ("request.approved", "in_review", "approved"),
    "apply_failed": ("request.approved", "in_review", "approved"),
    "rejected": ("request.rejected", "in_review", "rejected"),
    "withdrawn": ("request.withdrawn", "in_review", "withdrawn"),
}
APPLY_ERROR = "Odoo refused the update: the record is locked."
LOADED_TABLES = (
    "approvals_approvalrequest",
    "approvals_approvalstep",
    "approvals_decision",
    "odoo_outboxitem",
    "exceptions_exceptioncase",
    "audit_auditevent",
)
COUNTS = {
    "requests": "SELECT count(*) FROM approvals_approvalrequest",
    "pending": "SELECT count(*) FROM approvals_approvalrequest WHERE state = 'in_review'",
    "steps": "SELECT count(*) FROM approvals_approvalstep",
    "decisions": "SELECT count(*) FROM approvals_decision",
    "outbox": "SELECT count(*) FROM odoo_outboxitem",
    "sites": "SELECT count(*) FROM sites_site",
    "regions": "SELECT count(*) FROM sites_region",
    "users": "SELECT count(*) FROM auth_user",
    "memberships": "SELECT count(*) FROM sites_membership",
    "grants": "SELECT count(*) FROM sites_siteuserobjectpermission",
    "audit_events": "SELECT count(*) FROM audit_auditevent",
    "cases": "SELECT count(*) FROM exceptions_exceptioncase",
}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def connection_cursor():
    from django.db import connection

    return connection.cursor()


KIND_TITLES = {
    "purchase": "Purchase order for",
    "transfer": "Transfer of stock to",
    "write_off": "Write-off of damaged",
    "price_override": "Price override for",
    "credit_exception": "Credit limit exception for",
    "return_authorization": "Return authorisation for",
    "expedited_freight": "Expedited freight with",
}

REQUEST_COLUMNS = (
    "id, kind, state, site_id, requester_id, revision, title, reason, amount, currency, "
    "amount_base, category, customer_class, counterparty, counterparty_ref, details, odoo_model, "
    "odoo_id, odoo_snapshot, policy_version_id, rule_id, round, risk_flags, fast_path, "
    "sampled_for_review, drift, due_at, apply_error, created_at, submitted_at, decided_at, "
    "applied_at, odoo_author_ref, odoo_author, odoo_asked_at, last_decided_at"
)
STEP_COLUMNS = (
    "id, request_id, site_id, tier_id, round, position, stage, state, role, held_at, quorum, "
    "comment_required, sla_hours, business_hours, escalation_role, escalated_role, on_breach, "
    "activated_at, remind_at, due_at, reminded_at, escalated_at, completed_at"
)
DECISION_COLUMNS = (
    "id, request_id, step_id, outcome, actor_id, on_behalf_of_id, delegation_id, round, "
    "policy_version_id, comment, evidence, at"
)
OUTBOX_COLUMNS = (
    "id, request_id, round, action, cancel_in_odoo, odoo_model, odoo_id, state, attempts, "
    "next_attempt_at, last_error, odoo_message_id, created_at, applied_at"
)
CASE_COLUMNS = (
    "id, kind, state, severity, site_id, queue, owner_id, title, source, dedupe_key, odoo_model, "
    "odoo_id, payload, evidence, amount_at_stake, currency, occurrences, detected_at, "
    "last_seen_at, due_at, remind_at, reminded_at, escalated_at, escalation_role, "
    "pending_resolution, resolution_code, resolution_note, closed_at"
)
AUDIT_COLUMNS = (
    "sequence, at, action, actor_id, actor_label, on_behalf_of_id, object_type, object_id, "
    "object_reference, site_id, policy_version_label, before, after, comment, context, "
    "prev_hash, hash"
)


def _sampled(version_id: int, request_id: int, rate: Decimal) -> bool:
    # The same rule as approvals.services: which fast-path approvals finance reviews afterwards.
    digest = hashlib.sha256(f"{version_id}:{request_id}".encode()).digest()
    return Decimal(int.from_bytes(digest[:4], "big")) / Decimal(2**32) < rate


def _seal_backlog() -> None:
    """Seal the events the services wrote, so the generated chain continues from a sealed head."""
    from django.db import connection

    from portal.audit import sequencer

    if not connection.in_atomic_block:
        sequencer.seal()


def _reset_sequences(tables: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            # Table names are this module's own constants, never input.
            sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT max(id) FROM {table}), 1))"  # noqa: E501, S608
            cursor.execute(sql)
