"""The benchmark datasets: one million approval requests and the company around them.

Interface (the benchmarks rely on it):

    ensure(scale="1m") -> Dataset   # build on first use, reuse afterwards

Scales: "10k", "100k", "1m" requests. Every scale has the same company (200 sites in 20
regions, 5,000 users holding 1–10 site or region roles); audit events are twice the requests
and exception cases a fifth of them (2,000,000 and 200,000 at "1m"). "1m" lives in the database
DATABASE_URL names; the others beside it, named `<that name>_10k` and `<that name>_100k`.
"""

from dataclasses import dataclass

SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
BENCH_PASSWORD = "bench-only-password"  # benchmark databases only; never a real account


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


def ensure(scale: str = "1m") -> Dataset:
    raise NotImplementedError("to be built")
