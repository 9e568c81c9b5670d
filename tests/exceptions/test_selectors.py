"""The queues: scoped to the person, filtered, prioritised with a reason, counted by age."""

from datetime import timedelta
from decimal import Decimal

import time_machine
from django.utils import timezone

from approvals.services import currency_rate_add
from exceptions.selectors import QueueFilters, open_cases_for, prioritised, queue_summary
from exceptions.services import case_raise
from tests.factories import SiteFactory


def _case(
    site, key, *, kind="invoice_mismatch", severity="medium", amount=None, at=None, currency="EUR"
):
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity=severity,
        title=f"case {key}",
        source="odoo",
        dedupe_key=f"test:{key}",
        payload={},
        evidence={},
        amount_at_stake=Decimal(amount) if amount else None,
        currency=currency if amount else "",
        at=at,
    )
    return case


def test_priority_weighs_severity_lateness_and_money_and_says_why(site_a1, finance):
    now = timezone.now()
    old_small = _case(site_a1, "old", severity="medium", amount="50", at=now - timedelta(days=9))
    fresh_big = _case(site_a1, "big", severity="high", amount="25000", at=now)
    fresh_low = _case(site_a1, "low", severity="low", at=now)

    ranked = prioritised(finance, at=now)

    # Severity first: six days overdue lifts the medium case, but not past a high one.
    assert [item.case for item in ranked] == [fresh_big, old_small, fresh_low]
    assert ranked[0].reason == "high severity · €25,000.00 at stake"
    assert ranked[1].reason == "medium severity · €50.00 at stake · 6 days overdue"
    assert ranked[-1].reason == "low severity"
    assert ranked[0].score > ranked[1].score > ranked[2].score


def test_queues_filter_by_queue_kind_severity_and_overdue(site_a1, finance):
    now = timezone.now()
    _case(site_a1, "bill", severity="high", at=now - timedelta(days=2))
    _case(site_a1, "late", kind="shipment_delay", severity="low", at=now)

    finance_queue = open_cases_for(finance, QueueFilters(queue="finance"))
    warehouse_queue = open_cases_for(finance, QueueFilters(queue="warehouse"))
    overdue = open_cases_for(finance, QueueFilters(overdue=True), at=now)

    assert [c.title for c in finance_queue] == ["case bill"]
    assert [c.title for c in warehouse_queue] == ["case late"]
    assert [c.title for c in overdue] == ["case bill"]


def test_the_summary_counts_open_overdue_and_aging_per_queue(site_a1, finance):
    now = timezone.now()
    _case(site_a1, "a", at=now - timedelta(hours=5))
    _case(site_a1, "b", at=now - timedelta(days=4))
    _case(site_a1, "c", severity="critical", at=now - timedelta(days=10))

    summary = queue_summary(finance, at=now)["finance"]

    assert (summary["open"], summary["overdue"]) == (3, 2)
    assert summary["aging"] == {
        "under 1 day": 1,
        "1–3 days": 0,
        "3–7 days": 1,
        "over 7 days": 1,
    }


def test_someone_without_a_role_at_the_site_sees_no_queue(site_a1, outsider):
    _case(site_a1, "hidden")

    assert list(open_cases_for(outsider)) == []
    assert queue_summary(outsider) == {}


def test_a_case_climbs_the_queue_as_it_waits(site_a1, finance):
    now = timezone.now()
    waiting = _case(site_a1, "waiting", severity="low", at=now)
    medium = _case(site_a1, "medium", severity="medium", at=now)
    assert [i.case for i in prioritised(finance, at=now)] == [medium, waiting]

    with time_machine.travel(now + timedelta(days=14)):
        later = timezone.now()
        medium_again = _case(site_a1, "medium-2", severity="medium", at=later)
        high = _case(site_a1, "high", severity="high", at=later)

        # A week past its deadline the low case outranks a medium one raised just now, but not
        # a high one; the medium case, eleven days overdue, now comes before the fresh high one.
        ranked = [i.case for i in prioritised(finance, at=later)]
        assert ranked == [medium, high, waiting, medium_again]


def test_money_at_stake_is_compared_in_the_base_currency(region_a, site_a1, finance):
    now = timezone.now()
    currency_rate_add(
        actor=None, currency="SEK", units_per_base=Decimal("11.5"), valid_from=now - timedelta(1)
    )
    stockholm = SiteFactory(code="A3", region=region_a, currency="SEK")
    kronor = _case(stockholm, "sek", severity="high", amount="5000", at=now, currency="SEK")
    euros = _case(site_a1, "eur", severity="high", amount="1000", at=now)

    ranked = prioritised(finance, at=now)

    # 5,000 kronor is about 435 euros: the 1,000 euro case ranks first.
    assert [item.case for item in ranked] == [euros, kronor]
    assert ranked[1].reason == "high severity · €434.78 at stake"
    assert ranked[1].stake.quantize(Decimal("0.01")) == Decimal("434.78")


def test_an_amount_without_a_rate_still_ranks_and_says_so(region_a, finance):
    now = timezone.now()
    oslo = SiteFactory(code="A4", region=region_a, currency="NOK")
    case, _ = case_raise(
        kind="invoice_mismatch",
        site=oslo,
        severity="medium",
        title="case nok",
        source="odoo",
        dedupe_key="test:nok",
        payload={},
        evidence={},
        amount_at_stake=Decimal("300"),
        currency="NOK",
        at=now,
    )

    [item] = prioritised(finance, at=now)

    assert item.case == case
    assert item.stake == Decimal("300")
