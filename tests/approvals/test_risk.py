"""Risk signals on constructed histories: each flag, the numbers behind it, and where it routes.

History is built through the real services, one submission at a time, by moving the clock back
and raising requests then. The company (people, sites, the policy matrix) is founded months
before the working morning on which the tests' own requests are raised, so that memberships
and the policy are already in force when that history is written.
"""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from statistics import median
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from approvals import risk, services
from approvals.models import ApprovalRequest, Outcome, RequestState
from sites import services as site_services
from sites.roles import Role
from tests.approvals.conftest import WORKING_MORNING, raise_request
from tests.conftest import persona

D = Decimal
FOUNDED = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)
ROUTINE = [Role.SITE_MANAGER]
ROUTINE_WITH_RISK_REVIEW = [Role.SITE_MANAGER, Role.FINANCE]


@pytest.fixture
def _founded(_working_morning):
    _working_morning.move_to(FOUNDED)


# `_founded` comes first so that the matrix and every persona are made on FOUNDED.
@pytest.fixture
def company(
    _founded, matrix, site_a1, site_a2, site_b1, requester, site_manager, staffed, _working_morning
):
    """Everyone and everything, in place since FOUNDED; the clock is back on the working morning."""
    colleague = persona("requester.a1.second", Role.REQUESTER, site=site_a1)
    requester_a2 = persona("requester.a2", Role.REQUESTER, site=site_a2)
    _working_morning.move_to(WORKING_MORNING)
    return SimpleNamespace(
        a1=site_a1,
        a2=site_a2,
        b1=site_b1,
        requester=requester,
        colleague=colleague,
        requester_a2=requester_a2,
        requester_b=staffed["requester_b"],
        site_manager=site_manager,
    )


@pytest.fixture
def clock(company, _working_morning):
    """The traveller that tests move to place history before, or submissions after, the morning."""
    return _working_morning


def submit(requester, site, **fields) -> ApprovalRequest:
    """Raise and submit a request, then read it back as anyone looking at it later would."""
    return ApprovalRequest.objects.get(pk=raise_request(requester, site, **fields).pk)


def weekly_history(clock, requester, site, amounts, **fields) -> None:
    """One submission a week (Tuesday mornings) before the working morning, oldest first."""
    for weeks_ago, amount in zip(range(len(amounts), 0, -1), amounts, strict=True):
        clock.move_to(WORKING_MORNING - timedelta(weeks=weeks_ago))
        raise_request(requester, site, amount=str(amount), **fields)
    clock.move_to(WORKING_MORNING)


def codes(request) -> list[str]:
    return [flag["code"] for flag in request.risk_flags]


def flag(request, code: str) -> dict:
    (found,) = [f for f in request.risk_flags if f["code"] == code]
    return found


def tiers(request) -> list[str]:
    return [step.role for step in request.steps.order_by("position")]


def assert_fast_pathed(request) -> None:
    assert request.state == RequestState.APPROVED
    assert request.fast_path
    assert request.decisions.get().outcome == Outcome.AUTO_APPROVE


def assert_held_for_risk_review(request) -> None:
    assert request.state == RequestState.IN_REVIEW
    assert not request.fast_path
    assert not request.decisions.filter(outcome=Outcome.AUTO_APPROVE).exists()
    assert tiers(request) == ROUTINE_WITH_RISK_REVIEW


def days_ago(days: int) -> str:
    return (WORKING_MORNING - timedelta(days=days)).date().isoformat()


# --- amount_outlier -------------------------------------------------------------------------

PURCHASES = ["1000", "1100", "900", "1200", "1050"]


def by_hand(value: str, history: list[str]) -> tuple[Decimal, Decimal, Decimal]:
    """Median, 1.4826 × MAD and the robust z-score, the way an auditor would work them out."""
    amounts = [D(a) for a in history]
    centre = median(amounts)
    spread = D("1.4826") * median(abs(a - centre) for a in amounts)
    return centre, spread, (D(value) - centre) / spread


@pytest.mark.parametrize("amount", ["1400", "100"])
def test_amount_far_from_the_vendors_history_at_the_site_is_flagged(company, clock, amount):
    weekly_history(clock, company.requester, company.a1, PURCHASES)
    centre, spread, z = by_hand(amount, PURCHASES)
    assert (centre, spread.quantize(D("0.01"))) == (D("1050"), D("74.13"))
    assert abs(z) > D("3.5")

    target = submit(company.requester, company.a1, amount=amount)

    outlier = flag(target, "amount_outlier")
    assert outlier["numbers"] == {
        "amount": f"{amount}.00",
        "median": "1050.00",
        "spread": "74.13",
        "spread_method": "1.4826 × MAD",
        "robust_z": str(z.quantize(D("0.01"))),
        "history": 5,
    }
    for number in (f"{amount}.00 EUR", "1050.00 EUR", "74.13", f"{z:.2f}", "5 past requests"):
        assert number in outlier["explanation"]
    assert "Acme Supplies" in outlier["explanation"]
    assert_held_for_risk_review(target)


@pytest.mark.parametrize("amount", ["1250", "850"])
def test_amount_inside_the_usual_band_is_not_flagged(company, clock, amount):
    weekly_history(clock, company.requester, company.a1, PURCHASES)
    assert abs(by_hand(amount, PURCHASES)[2]) < D("3.5")

    target = submit(company.requester, company.a1, amount=amount)

    assert target.risk_flags == []
    assert tiers(target) == ROUTINE


def test_too_little_history_flags_no_outlier(company, clock):
    weekly_history(clock, company.requester, company.a1, PURCHASES[:4])

    target = submit(company.requester, company.a1, amount="4900")

    assert target.risk_flags == []


def test_history_at_another_site_does_not_count(company, clock):
    weekly_history(clock, company.requester_a2, company.a2, PURCHASES)

    at_a1 = submit(company.requester, company.a1, amount="4000")
    at_a2 = submit(company.requester_a2, company.a2, amount="4000")

    assert at_a1.risk_flags == []
    assert codes(at_a2) == ["amount_outlier"]


def test_history_with_another_vendor_does_not_count(company, clock):
    weekly_history(
        clock, company.requester, company.a1, PURCHASES, counterparty_ref="res.partner,8"
    )

    for_acme = submit(company.colleague, company.a1, amount="4000")
    for_the_other = submit(
        company.requester, company.a1, amount="4000", counterparty_ref="res.partner,8"
    )

    assert for_acme.risk_flags == []
    assert codes(for_the_other) == ["amount_outlier"]


def test_mostly_repeated_amounts_use_the_mean_absolute_deviation(company, clock):
    history = ["1000", "1000", "1000", "1200", "1300"]
    weekly_history(clock, company.requester, company.a1, history)
    deviations = [abs(D(a) - 1000) for a in history]
    assert median(deviations) == 0  # three of the five are the median itself
    assert sum(deviations) / 5 == 100
    spread = D("1.2533") * D("100")
    z_far, z_near = (D("1500") - 1000) / spread, (D("1400") - 1000) / spread
    assert z_far > D("3.5") > z_near

    far = submit(company.requester, company.a1, amount="1500")
    near = submit(company.requester, company.a1, amount="1400")

    numbers = flag(far, "amount_outlier")["numbers"]
    assert numbers["spread"] == "125.33"
    assert numbers["robust_z"] == str(z_far.quantize(D("0.01")))
    assert "mean absolute deviation" in flag(far, "amount_outlier")["explanation"]
    assert near.risk_flags == []


def test_a_history_of_one_repeated_amount_tolerates_one_percent(company, clock):
    weekly_history(clock, company.requester, company.a1, ["1000"] * 5)

    same = submit(company.requester, company.a1, amount="1000")
    little_more = submit(company.requester, company.a1, amount="1030")
    much_more = submit(company.requester, company.a1, amount="1040")

    assert same.risk_flags == little_more.risk_flags == []
    numbers = flag(much_more, "amount_outlier")["numbers"]
    assert (numbers["spread"], numbers["robust_z"]) == ("10.00", "4.00")
    assert "1% of the median" in numbers["spread_method"]


# --- threshold_split ------------------------------------------------------------------------


def test_small_purchases_by_one_requester_that_together_cross_the_fast_path_are_held(
    company, clock
):
    raised = []
    for hour, vendor in enumerate(["res.partner,7", "res.partner,8", "res.partner,9"]):
        clock.move_to(WORKING_MORNING + timedelta(hours=hour))
        raised.append(submit(company.requester, company.a1, amount="200", counterparty_ref=vendor))
    first, second, third = raised

    assert first.risk_flags == second.risk_flags == []
    assert_fast_pathed(first)
    assert_fast_pathed(second)
    split = flag(third, "threshold_split")
    assert split["numbers"] == {
        "threshold": "500.00",
        "total": "600.00",
        "count": 3,
        "related": [first.reference, second.reference],
        "grouped_by": "requester",
        "window_hours": 72,
    }
    for words in ("the same requester", "600.00 EUR", "500.00 EUR", first.reference):
        assert words in split["explanation"]
    assert_held_for_risk_review(third)


def test_purchases_for_one_vendor_by_different_requesters_add_up(company, clock):
    submit(company.requester, company.a1, amount="300")
    clock.shift(timedelta(hours=1))

    second = submit(company.colleague, company.a1, amount="300")

    split = flag(second, "threshold_split")
    assert split["numbers"]["grouped_by"] == "counterparty"
    assert split["numbers"]["total"] == "600.00"
    assert "the same counterparty (Acme Supplies)" in split["explanation"]
    assert_held_for_risk_review(second)


def test_different_requesters_buying_from_different_vendors_do_not_add_up(company, clock):
    submit(company.requester, company.a1, amount="300")
    clock.shift(timedelta(hours=1))

    second = submit(company.colleague, company.a1, amount="300", counterparty_ref="res.partner,8")

    assert second.risk_flags == []
    assert_fast_pathed(second)


@pytest.mark.parametrize(("hours_later", "flagged"), [(71, True), (73, False)])
def test_only_requests_within_the_split_window_add_up(company, clock, hours_later, flagged):
    submit(company.requester, company.a1, amount="300")
    clock.shift(timedelta(hours=hours_later))  # Friday morning, still inside business hours

    later = submit(company.requester, company.a1, amount="300")

    assert ("threshold_split" in codes(later)) is flagged
    assert later.fast_path is not flagged


def test_requests_at_or_above_the_threshold_do_not_count_towards_it(company, clock):
    big = submit(company.requester, company.a1, amount="600")
    clock.shift(timedelta(hours=1))
    submit(company.requester, company.a1, amount="200")
    clock.shift(timedelta(hours=1))

    third = submit(company.requester, company.a1, amount="200")

    assert big.state == RequestState.IN_REVIEW
    assert third.risk_flags == []
    assert_fast_pathed(third)


def test_requests_at_another_site_do_not_add_up(company, clock):
    submit(company.requester_a2, company.a2, amount="300")
    clock.shift(timedelta(hours=1))

    at_a1 = submit(company.requester, company.a1, amount="300")

    assert at_a1.risk_flags == []


def test_a_rejected_request_raised_again_is_not_a_split_of_itself(company, clock):
    clock.move_to(WORKING_MORNING - timedelta(hours=12))  # Monday 22:00 in Amsterdam
    first = submit(company.requester, company.a1, amount="300")
    assert codes(first) == ["after_hours"]
    services.request_reject(actor=company.site_manager, request_id=first.pk, reason="Not now")
    clock.move_to(WORKING_MORNING)

    again = services.request_resubmit(
        actor=company.requester, request_id=first.pk, reason="Tuesday, as asked"
    )
    again = services.request_submit(actor=company.requester, request_id=again.pk)

    assert again.revision == 2
    assert again.risk_flags == []
    assert_fast_pathed(again)


# --- new_counterparty -----------------------------------------------------------------------


@pytest.mark.parametrize("age", [10, 89])
def test_vendor_created_recently_in_odoo_is_flagged_with_its_age(company, clock, age):
    target = submit(
        company.requester,
        company.a1,
        amount="200",
        details={"counterparty_since": days_ago(age)},
    )

    new = flag(target, "new_counterparty")
    assert new["numbers"] == {"counterparty": "res.partner,7", "age_days": age}
    assert f"Acme Supplies was created in Odoo {age} days ago" in new["explanation"]
    assert_held_for_risk_review(target)


@pytest.mark.parametrize("since", [days_ago(90), "2019-01-01"])
def test_vendor_known_for_ninety_days_or_more_is_not_new(company, clock, since):
    target = submit(
        company.requester, company.a1, amount="200", details={"counterparty_since": since}
    )

    assert target.risk_flags == []
    assert_fast_pathed(target)


def test_without_odoo_date_the_first_submitted_request_for_a_counterparty_is_new(company, clock):
    unknown = {"counterparty": "Newco", "counterparty_ref": "res.partner,42", "details": {}}
    submit(company.requester, company.a1, amount="1000", submit=False, **unknown)

    first = submit(company.requester, company.a1, amount="1000", **unknown)
    clock.shift(timedelta(hours=1))
    second = submit(company.requester, company.a1, amount="1000", **unknown)

    new = flag(first, "new_counterparty")
    assert new["numbers"] == {"counterparty": "res.partner,42", "age_days": None}
    assert "Newco has no earlier submitted request" in new["explanation"]
    assert tiers(first) == ROUTINE_WITH_RISK_REVIEW
    assert second.risk_flags == []
    assert tiers(second) == ROUTINE


def test_an_unreadable_odoo_date_is_refused_before_anything_is_written(company, clock):
    before = ApprovalRequest.objects.count()

    with pytest.raises(ValidationError) as refused:
        submit(
            company.requester,
            company.a1,
            amount="200",
            counterparty_ref="res.partner,43",
            details={"counterparty_since": "last spring"},
        )

    assert refused.value.message_dict == {
        "details.counterparty_since": ["Give the date as YYYY-MM-DD."]
    }
    assert ApprovalRequest.objects.count() == before


# --- after_hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "local", "local_time"),
    [
        (datetime(2026, 3, 10, 21, 0, tzinfo=UTC), "Tue 10 Mar 2026 at 22:00", "2026-03-10T22:00"),
        (datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "Sat 14 Mar 2026 at 10:00", "2026-03-14T10:00"),
    ],
)
def test_submission_outside_the_sites_hours_is_flagged_in_its_local_time(
    company, clock, moment, local, local_time
):
    clock.move_to(moment)

    target = submit(company.requester, company.a1, amount="200")

    late = flag(target, "after_hours")
    assert late["numbers"]["time_zone"] == "Europe/Amsterdam"
    assert late["numbers"]["local_time"].startswith(local_time)
    assert late["numbers"]["local_time"].endswith("+01:00")
    assert f"{local} CET" in late["explanation"]
    assert "business hours (Mon–Fri 08:00–18:00)" in late["explanation"]
    assert_held_for_risk_review(target)


def test_the_same_instant_is_after_hours_in_amsterdam_but_not_in_london(company, clock):
    clock.move_to(datetime(2026, 3, 10, 17, 30, tzinfo=UTC))

    amsterdam = submit(company.requester, company.a1, amount="100")
    london = submit(company.requester_b, company.b1, amount="100")

    assert codes(amsterdam) == ["after_hours"]
    assert "Tue 10 Mar 2026 at 18:30 CET" in amsterdam.risk_flags[0]["explanation"]
    assert london.risk_flags == []
    assert_fast_pathed(london)


def test_after_hours_follows_the_sites_own_opening_times_and_days(company, clock):
    site = site_services.site_update(
        actor=None, site=company.a1, opens_at=time(6), closes_at=time(23), business_days="123456"
    )
    in_hours = [datetime(2026, 3, 10, 21, 0, tzinfo=UTC), datetime(2026, 3, 14, 9, 0, tzinfo=UTC)]
    out_of_hours = [
        datetime(2026, 3, 10, 4, 30, tzinfo=UTC),  # Tuesday 05:30 in Amsterdam
        datetime(2026, 3, 15, 9, 0, tzinfo=UTC),  # Sunday
    ]

    flags = {}
    for moment in in_hours + out_of_hours:
        clock.move_to(moment)
        flags[moment] = codes(submit(company.requester, site, amount="1000"))

    assert [flags[m] for m in in_hours] == [[], []]
    assert [flags[m] for m in out_of_hours] == [["after_hours"], ["after_hours"]]


# --- price_below_history --------------------------------------------------------------------


def override(unit_price: str, *, product="SKU-1", customer="res.partner,30") -> dict:
    return {
        "kind": "price_override",
        "amount": "400",
        "counterparty": "Bistro Nord",
        "counterparty_ref": customer,
        "details": {
            "counterparty_since": "2019-01-01",
            "product": product,
            "unit_price": unit_price,
            "floor_price": "5.00",
        },
    }


PAST_PRICES = ["10.00", "10.40", "9.80"]


def price_history(clock, company, prices, **where) -> None:
    for weeks_ago, price in zip(range(len(prices), 0, -1), prices, strict=True):
        clock.move_to(WORKING_MORNING - timedelta(weeks=weeks_ago))
        raise_request(company.requester, company.a1, **override(price, **where))
    clock.move_to(WORKING_MORNING)


@pytest.mark.parametrize(("price", "drop"), [("8.40", "16.0"), ("8.50", "15.0")])
def test_price_far_below_the_customers_history_is_flagged(company, clock, price, drop):
    price_history(clock, company, PAST_PRICES)
    assert median(D(p) for p in PAST_PRICES) == D("10.00")

    target = submit(company.requester, company.a1, **override(price))

    cheap = flag(target, "price_below_history")
    assert cheap["numbers"] == {
        "unit_price": price,
        "median": "10.00",
        "drop_pct": drop,
        "history": 3,
    }
    assert (
        f"Unit price {price} for SKU-1 is {drop} % below the median 10.00" in (cheap["explanation"])
    )
    assert_held_for_risk_review(target)


@pytest.mark.parametrize("price", ["8.60", "10.50"])
def test_price_close_to_or_above_the_customers_history_is_not_flagged(company, clock, price):
    price_history(clock, company, PAST_PRICES)

    target = submit(company.requester, company.a1, **override(price))

    assert target.risk_flags == []
    assert tiers(target) == ROUTINE


def test_fewer_than_three_past_prices_flag_nothing(company, clock):
    price_history(clock, company, PAST_PRICES[:2])

    target = submit(company.requester, company.a1, **override("1.00"))

    assert target.risk_flags == []


def test_prices_for_another_product_or_customer_do_not_count(company, clock):
    price_history(clock, company, PAST_PRICES, product="SKU-2")
    price_history(clock, company, PAST_PRICES, customer="res.partner,31")

    target = submit(company.requester, company.a1, **override("1.00"))

    assert target.risk_flags == []


# --- determinism and routing ----------------------------------------------------------------


def test_flags_are_stored_on_the_request_and_reassessing_gives_the_same(company, clock):
    clock.move_to(datetime(2026, 3, 10, 16, 0, tzinfo=UTC))
    submit(company.requester, company.a1, amount="300")
    clock.move_to(datetime(2026, 3, 10, 20, 0, tzinfo=UTC))

    target = submit(
        company.requester,
        company.a1,
        amount="300",
        details={"counterparty_since": days_ago(10)},
    )

    assert codes(target) == ["threshold_split", "new_counterparty", "after_hours"]
    version, at = target.policy_version, target.submitted_at
    once = risk.assess(target, version=version, at=at)
    twice = risk.assess(target, version=version, at=at)
    assert once == twice == target.risk_flags
    assert all(set(f) == {"code", "explanation", "numbers"} for f in target.risk_flags)
    assert_held_for_risk_review(target)
    assert target.rule.name == "Routine purchases"
