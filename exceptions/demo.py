"""The demo company's queue rules and case deadlines, created through the services; safe to run
again (only what is missing is added, and a rule an administrator changed stays as it is).

Beyond the fixed default queues: a critical late shipment is the customer service desk's to
tell the customer about; Rotterdam's port receipts are settled by procurement with the
shipping lines; in the Nordics damaged returns go back to the warehouse for inspection; and
big ASN conflicts anywhere are finance's. Deadlines: 4 clock hours for critical cases, a
working day for high ones (finance's in its own business hours, escalated to finance), three
and seven days below that.
"""

from decimal import Decimal

from exceptions import services
from exceptions.models import CaseDeadline, Queue, QueueRule
from sites.models import Region, Site
from sites.roles import Role

D = Decimal

# (kind, minimum severity, site code, region code, queue, why)
RULES = [
    (
        "shipment_delay",
        "critical",
        "",
        "",
        Queue.CUSTOMER_SERVICE,
        "Customers hear about critical delays from customer service first.",
    ),
    (
        "receipt_discrepancy",
        "",
        "RTM",
        "",
        Queue.PROCUREMENT,
        "Port receipts are settled with the shipping lines by procurement.",
    ),
    (
        "return_damage",
        "",
        "",
        "NOR",
        Queue.WAREHOUSE,
        "Nordic warehouses inspect damaged returns before any claim.",
    ),
    ("asn_conflict", "high", "", "", Queue.FINANCE, "Large ASN conflicts change what is paid."),
]

# (severity, queue, hours, business hours, remind at %, escalation role)
DEADLINES = [
    ("critical", "", D("4"), False, 50, Role.REGIONAL_MANAGER),
    ("high", "", D("24"), False, 75, Role.REGIONAL_MANAGER),
    ("high", Queue.FINANCE, D("10"), True, 75, Role.FINANCE),
    ("medium", "", D("72"), False, 75, Role.REGIONAL_MANAGER),
    ("low", "", D("168"), False, 75, Role.REGIONAL_MANAGER),
]


def seed() -> None:
    """Create the demo queue rules and deadlines that do not exist yet."""
    for kind, severity, site_code, region_code, queue, note in RULES:
        scope = {
            "site": Site.objects.filter(code=site_code).first() if site_code else None,
            "region": Region.objects.filter(code=region_code).first() if region_code else None,
        }
        if (site_code and scope["site"] is None) or (region_code and scope["region"] is None):
            continue
        if not QueueRule.objects.filter(kind=kind, min_severity=severity, **scope).exists():
            rule = QueueRule(kind=kind, min_severity=severity, queue=queue, note=note, **scope)
            services.queue_rule_save(actor=None, rule=rule)
    for severity, queue, hours, business_hours, remind, escalation_role in DEADLINES:
        if not CaseDeadline.objects.filter(severity=severity, queue=queue).exists():
            deadline = CaseDeadline(
                severity=severity,
                queue=queue,
                hours=hours,
                business_hours=business_hours,
                remind_at_percent=remind,
                escalation_role=escalation_role,
            )
            services.case_deadline_save(actor=None, deadline=deadline)


# --- ninety days of cases -------------------------------------------------------------------

# (kind, severity, site, title, evidence, amount at stake, who works it, resolution code, note):
# each kind ends in several ways, told apart by what the case says, so that the suggested
# resolutions have something real to learn from.
HISTORY_CASES = [
    (
        "shipment_delay",
        "medium",
        "AMS",
        "Noord Foods delivery {n} is 3 days late",
        {
            "days_late": 3,
            "partner": "Noord Foods",
            "carrier_note": "Port congestion in Rotterdam; the carrier offers a new slot",
        },
        None,
        "site.manager",
        "rescheduled",
        "New delivery slot agreed with the carrier; the customer confirmed the new date.",
    ),
    (
        "shipment_delay",
        "medium",
        "AMS",
        "Hanse Coffee Traders delivery {n} is 5 days late",
        {
            "days_late": 5,
            "partner": "Hanse Coffee Traders",
            "carrier_note": "Truck breakdown; the customer needs the order before the weekend",
        },
        None,
        "site.manager",
        "expedited",
        "Sent the urgent lines by express courier at our cost.",
    ),
    (
        "shipment_delay",
        "low",
        "AMS",
        "Alpine Water Co delivery {n} is 1 day late",
        {
            "days_late": 1,
            "partner": "Alpine Water Co",
            "carrier_note": "Missed the evening cut-off; arrives tomorrow morning",
        },
        None,
        "site.manager",
        "delivered_late",
        "Arrived the next morning; the delay is recorded against the carrier.",
    ),
    (
        "receipt_discrepancy",
        "medium",
        "ANR",
        "Receipt {n}: 12 cartons short",
        {
            "lines": [
                {
                    "product": "[TG-0014] Euro Pallet",
                    "ordered": "120",
                    "received": "108",
                    "difference": "-12",
                }
            ],
            "remark": "Supplier's packing list also shows 108",
        },
        None,
        "sm.antwerp",
        "supplier_ships_balance",
        "Supplier ships the missing cartons with the next delivery.",
    ),
    (
        "receipt_discrepancy",
        "medium",
        "ANR",
        "Receipt {n}: 6 cartons damaged in transit",
        {
            "lines": [
                {
                    "product": "[TG-0006] Basmati Rice 10kg",
                    "ordered": "60",
                    "received": "60",
                    "damaged": "6",
                }
            ],
            "remark": "Crushed pallet corner, photos taken at the dock",
        },
        None,
        "sm.antwerp",
        "supplier_credit",
        "Photos sent; the supplier credits the damaged cartons.",
    ),
    (
        "receipt_discrepancy",
        "low",
        "ANR",
        "Receipt {n}: count differs from the packing list by 2",
        {
            "lines": [
                {
                    "product": "[TG-0001] Cola 24x33cl",
                    "ordered": "80",
                    "received": "78",
                    "difference": "-2",
                }
            ],
            "remark": "Scanner count during the night shift; recount requested",
        },
        None,
        "sm.antwerp",
        "stock_corrected",
        "Recount found the cartons in the wrong bay; receipt corrected in Odoo.",
    ),
    (
        "asn_conflict",
        "medium",
        "RTM",
        "ASN {n} announces 4 pallets, the order has 3",
        {"announced": 4, "ordered": 3, "remark": "Extra pallet on the notice only"},
        None,
        "sm.rotterdam",
        "asn_corrected",
        "The supplier sent a corrected shipping notice for 3 pallets.",
    ),
    (
        "asn_conflict",
        "medium",
        "RTM",
        "ASN {n} lists a substitute product for an order line",
        {
            "announced": "[TG-0016] Carton 600x400",
            "ordered": "[TG-0014] Euro Pallet",
            "remark": "Substitute agreed by phone with purchasing",
        },
        None,
        "sm.rotterdam",
        "order_amended",
        "Purchase order amended to the substitute product.",
    ),
    (
        "invoice_mismatch",
        "medium",
        "AMS",
        "Bill {n} differs from its order by 84.00",
        {
            "lines": [
                {
                    "product": "[TG-0009] Coffee Beans 6x1kg",
                    "ordered": "20",
                    "received": "20",
                    "order_price": "92.00",
                    "billed_quantity": "20",
                    "billed_price": "96.20",
                    "difference": "84.00",
                }
            ],
            "expected": "1840.00",
            "billed": "1924.00",
            "difference": "84.00",
        },
        D("84.00"),
        "finance",
        "credit_note_requested",
        "Credit note requested from the supplier for the price difference.",
    ),
    (
        "invoice_mismatch",
        "medium",
        "AMS",
        "Bill {n} charges 20 units, 18 were received",
        {
            "lines": [
                {
                    "product": "[TG-0011] Frozen Fries 4x2.5kg",
                    "ordered": "20",
                    "received": "18",
                    "order_price": "13.20",
                    "billed_quantity": "20",
                    "billed_price": "13.20",
                    "difference": "26.40",
                }
            ],
            "expected": "237.60",
            "billed": "264.00",
            "difference": "26.40",
        },
        D("26.40"),
        "finance",
        "bill_corrected",
        "The supplier corrected the bill to the received quantity before payment.",
    ),
    (
        "invoice_mismatch",
        "low",
        "AMS",
        "Bill {n} differs from its order by 46.00 after a price list change",
        {
            "lines": [
                {
                    "product": "[TG-0001] Cola 24x33cl",
                    "ordered": "100",
                    "received": "100",
                    "order_price": "9.20",
                    "billed_quantity": "100",
                    "billed_price": "9.66",
                    "difference": "46.00",
                }
            ],
            "remark": "New vendor price list from the first of the month",
            "difference": "46.00",
        },
        D("46.00"),
        "finance",
        "order_price_updated",
        "The order carried last month's price; the bill is accepted.",
    ),
]
# Now and then a case ends otherwise than its kind usually does (the supplier prefers to credit
# rather than ship, the customer waits after all): the suggestions must live with that.
HISTORY_SURPRISE = 0.12
# Open now, one of each kind, with their numbers.
OPEN_CASES = [
    (
        "invoice_mismatch",
        "high",
        "AMS",
        "Bill BILL/2026/0412 differs from P00318 by 1,184.00",
        {
            "order": "P00318",
            "lines": [
                {
                    "product": "[TG-0023] Barcode Scanner",
                    "ordered": "12",
                    "received": "10",
                    "order_price": "415.00",
                    "billed_quantity": "12",
                    "billed_price": "415.00",
                    "difference": "830.00",
                },
                {
                    "product": "[TG-0008] Olive Oil 6x1L",
                    "ordered": "40",
                    "received": "40",
                    "order_price": "38.00",
                    "billed_quantity": "40",
                    "billed_price": "46.85",
                    "difference": "354.00",
                },
            ],
            "expected": "5670.00",
            "billed": "6854.00",
            "difference": "1184.00",
            "tolerance_pct": 2,
        },
        D("1184.00"),
    ),
    (
        "shipment_delay",
        "high",
        "RTM",
        "WH/IN/00871 from Fjord Fisheries is 8.5 days late",
        {"scheduled_date": "", "days_late": 8.5, "partner": "Fjord Fisheries", "state": "assigned"},
        None,
    ),
    (
        "receipt_discrepancy",
        "medium",
        "AMS",
        "WH/IN/00902 received differs from the order on 1 line",
        {
            "lines": [
                {
                    "product": "[TG-0011] Frozen Fries 4x2.5kg",
                    "ordered": "200",
                    "received": "176",
                    "difference": "-24",
                }
            ],
            "tolerance_pct": 2,
        },
        None,
    ),
    (
        "asn_conflict",
        "medium",
        "ANR",
        "ASN 7731 from Scheldt Packaging lists a product not ordered",
        {"announced": "[TG-0016] Carton 600x400 × 5,000", "ordered": "none on P00344"},
        None,
    ),
]


def seed_history(*, now=None) -> int:
    """Ninety days of cases opened, worked and resolved by the demo people, and one open case
    of each kind; added once (nothing when any case exists). Returns how many it opened."""
    import random
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from exceptions.models import ExceptionCase

    if ExceptionCase.objects.exists():
        return 0
    now = now or timezone.now()
    rng = random.Random(20261207)  # noqa: S311 - repeatable demo data
    people = get_user_model().objects.in_bulk(field_name="username")
    sites = {site.code: site for site in Site.objects.filter(code__in=["AMS", "RTM", "ANR"])}
    opened = 0
    day = now.replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=88)
    number = 0
    while day < now - timedelta(days=2):
        # About two cases a working day, some days more, some none.
        for _ in range(3) if day.weekday() < 5 else ():
            if rng.random() >= 0.6:
                continue
            number += 1
            opened += _history_case(rng, day, now, number, sites, people)
        day += timedelta(days=1)
    for hours_ago, (kind, severity, code, title, evidence, stake) in zip(
        (30, 52, 6, 20), OPEN_CASES, strict=True
    ):
        at = now - timedelta(hours=hours_ago)
        _raise_at(at, kind, sites[code], severity, title, f"demo:open:{kind}", evidence, stake)
        opened += 1
    return opened


def _raise_at(at, kind, site, severity, title, key, evidence, stake):
    """A case as the Odoo sync raises it, at the moment `at`."""
    import time_machine

    with time_machine.travel(at, tick=False):
        case, _ = services.case_raise(
            kind=kind,
            site=site,
            severity=severity,
            title=title,
            source="odoo",
            dedupe_key=key,
            payload={},
            evidence=evidence,
            amount_at_stake=stake,
            currency="EUR" if stake else "",
        )
    return case


def _history_case(rng, day, now, number: int, sites: dict, people: dict) -> int:
    """One case of the history: raised, worked and resolved by the demo people."""
    from datetime import timedelta

    import time_machine

    kind, severity, code, title, evidence, stake, worker, resolution, note = rng.choice(
        HISTORY_CASES
    )
    if rng.random() < HISTORY_SURPRISE:
        others = [case for case in HISTORY_CASES if case[0] == kind and case[7] != resolution]
        resolution, note = rng.choice(others)[7:9]
    seen = day.replace(hour=rng.randint(8, 13), minute=rng.randint(0, 59))
    title = title.format(n=f"#{4100 + number}")
    case = _raise_at(
        seen, kind, sites[code], severity, title, f"demo:{kind}:{number}", evidence, stake
    )
    person = people[worker]
    worked = seen + timedelta(hours=rng.uniform(1, 5))
    with time_machine.travel(worked, tick=False):
        services.case_assign(actor=person, case_id=case.pk, owner=person)
        services.case_start(actor=person, case_id=case.pk)
    done = worked + timedelta(hours=rng.choice([2, 5, 22, 26, 50]))
    if done.weekday() >= 5:
        done += timedelta(days=2)
    with time_machine.travel(min(done, now - timedelta(hours=1)), tick=False):
        services.case_resolve(actor=person, case_id=case.pk, code=resolution, note=note)
    return 1
