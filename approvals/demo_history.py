"""Ninety days of the demo company's approvals, made through the services at the time they
happened, so that the demo opens like a company that has been working for a while.

Every request is raised, submitted, decided, withdrawn or expired by the demo people through
`approvals.services` under a clock moved to that moment (time-machine), in business hours on
weekdays, counted back from now: the ledger is one valid chain, the dashboards have history,
routine amounts go through on the fast path, and the last days leave work waiting, some of it
routine enough for the regional manager's bulk page (Rotterdam's site manager is on leave this
week and has handed her approvals to the regional manager).

Each requester raises at most one request of a kind at a site every four days (purchases, the
daily business, every other weekday) and spreads them over several counterparties, so the risk
signals flag only what their data says: a purchase asked for on a Saturday evening, two
purchases that together cross a threshold, and the amounts that really are unusual.

Purchases come in three bands: small ones through on the fast path, routine replenishment
between the fast-path limit and the material threshold, which the site managers approve but
for the rare one, and a few material ones. Two small ones never add up to the fast-path limit
and two routine ones never to the material threshold, so a purchase every other weekday is
never taken for threshold splitting. Over ninety days that gives the "Routine purchases" rule
well over fifty decisions by people, nearly all approvals: the evidence on which the policy
insight page proposes to widen its fast path.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals import policies, services
from approvals.models import ApprovalRequest, RequestState
from sites.models import Site

D = Decimal
DAYS = 90
RANDOM_SEED = 20261206
# UTC office hours inside every Benelux site's business hours, summer and winter.
OFFICE_HOURS_UTC = (8, 15)

# site -> (requester, site manager)
PEOPLE = {
    "AMS": ("requester", "site.manager"),
    "RTM": ("req.rotterdam", "sm.rotterdam"),
    "ANR": ("req.antwerp", "sm.antwerp"),
}
DECIDERS = ("regional.manager", "rm.benelux.2", "finance")
VENDORS = [
    "Brouwer Beverages",
    "Noord Foods",
    "Scheldt Packaging",
    "Hanse Coffee Traders",
    "Maas Machinery",
    "Alpine Water Co",
    "Rhine Forklift Service",
]
CUSTOMERS = [
    ("Vondel Horeca", "standard"),
    ("Albert Markt", "key"),
    ("Zuidas Lunchroom", "wholesale"),
    ("Brugge Brasserie", "standard"),
    ("Café Centraal", "standard"),
]
PRODUCTS = [
    ("[TG-0001] Cola 24x33cl", "Soft Drinks", D("9.20")),
    ("[TG-0006] Basmati Rice 10kg", "Dry Food", D("18.50")),
    ("[TG-0009] Coffee Beans 6x1kg", "Dry Food", D("92.00")),
    ("[TG-0011] Frozen Fries 4x2.5kg", "Frozen", D("13.20")),
    ("[TG-0014] Euro Pallet", "Packaging", D("11.00")),
    ("[TG-0023] Barcode Scanner", "Spare Parts", D("415.00")),
]
# kind -> (fast-path share, routine amount range, reviewed amount range), in EUR
AMOUNTS = {
    "transfer": (0.75, (300, 1900), (2100, 6500)),
    "write_off": (0.7, (60, 240), (260, 720)),
    "return_authorization": (0.75, (40, 480), (520, 1600)),
}
KIND_OFFSET = {"purchase": 0, "transfer": 1, "write_off": 2, "return_authorization": 3}
# Purchases: (share, amount range in EUR) for the fast path, routine replenishment and material
# orders; a routine purchase is rejected once in ROUTINE_REJECT_EVERY.
PURCHASE_BANDS = {
    "fast": (0.2, (180, 480)),
    "routine": (0.7, (1050, 2450)),
    "material": (0.1, (5200, 9000)),
}
ROUTINE_REJECT_EVERY = 60
REJECT_SHARE = 0.12
# Rotterdam's site manager is on leave for the last LEAVE_DAYS days; what Rotterdam asked for
# meanwhile waits for the regional manager, who stands in. By weekday of the leave, oldest first;
# the five purchases fall on five different weekdays however the weekend falls, so no 72-hour
# window holds purchases that add up to a threshold (no "threshold splitting").
LEAVE_DAYS = 9
ROTTERDAM_ROUTINE = [
    (0, "transfer", D("2410.00")),
    (0, "purchase", D("1150.00")),
    (1, "purchase", D("1040.00")),
    (2, "return_authorization", D("655.40")),
    (3, "purchase", D("1180.00")),
    (3, "write_off", D("482.10")),
    (4, "purchase", D("1090.00")),
    (5, "return_authorization", D("820.00")),
    (6, "purchase", D("1120.75")),
    (6, "transfer", D("3120.50")),
]


@dataclass
class Counts:
    raised: int = 0
    fast_path: int = 0


def already_seeded() -> bool:
    """History is added once: any request raised in Tollgate itself means the demo has it."""
    return ApprovalRequest.objects.filter(odoo_model="").exists()


def office_moment(day: datetime, rng: random.Random) -> datetime:
    first, last = OFFICE_HOURS_UTC
    return day.replace(
        hour=rng.randint(first, last - 1), minute=rng.randint(0, 59), second=0, microsecond=0
    )


def weekdays_back(now: datetime, days: int) -> list[datetime]:
    """The weekdays of the last `days` days, oldest first, excluding today."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    found = [start - timedelta(days=n) for n in range(days, 0, -1)]
    return [day for day in found if day.weekday() < 5]


def seed(*, now: datetime | None = None) -> Counts:
    """Add the ninety days of history, unless it is there already."""
    counts = Counts()
    if already_seeded():
        return counts
    now = now or timezone.now()
    history = _History(now, counts)
    history.run()
    return counts


class _History:
    def __init__(self, now: datetime, counts: Counts):
        self.now = now
        self.counts = counts
        self.rng = random.Random(RANDOM_SEED)  # noqa: S311 - repeatable demo data
        self.routine_decided = 0
        users = get_user_model().objects.in_bulk(field_name="username")
        self.user = users
        self.sites = {site.code: site for site in Site.objects.filter(code__in=PEOPLE)}

    # -- the schedule ---------------------------------------------------------------------

    def run(self) -> None:
        days = weekdays_back(self.now, DAYS)
        for index, day in enumerate(days):
            for code in PEOPLE:
                for kind, offset in KIND_OFFSET.items():
                    # One request of a kind per requester and site every fourth weekday, and a
                    # purchase every other weekday.
                    every = 2 if kind == "purchase" else 4
                    if (index + offset + list(PEOPLE).index(code)) % every == 0:
                        self._one(code, kind, day, age_days=(self.now - day).days)
            if index % 3 == 1:
                self._price_override(days[index], index)
        self._requester_states(days)
        self._flagged_on_purpose(days)
        self._rotterdam_routine(days)
        self._rotterdam_on_leave()

    def _one(self, code: str, kind: str, day: datetime, *, age_days: int) -> None:
        recent = age_days <= 3
        if code == "RTM" and age_days <= LEAVE_DAYS:
            return  # Rotterdam's days of leave are laid out by _rotterdam_routine
        band, (low, high) = self._band(kind)
        amount = D(self.rng.randint(low, high)) + D(self.rng.randint(0, 99)) / 100
        at = office_moment(day, self.rng)
        request = self._raise(code, kind, amount, at)
        if request is not None and not recent:
            reject = None
            if kind == "purchase" and band != "material":
                # Small and routine purchases are approved (a small one reaches a person only
                # when flagged), but for the rare routine one.
                self.routine_decided += band == "routine"
                reject = band == "routine" and (
                    self.routine_decided % ROUTINE_REJECT_EVERY == ROUTINE_REJECT_EVERY // 2
                )
            self._decide(request, at, reject=reject)
            if kind == "transfer":
                self._validated_in_odoo(request)

    def _band(self, kind: str) -> tuple[str, tuple[int, int]]:
        """Which band a new request falls in, and its amount range."""
        draw = self.rng.random()
        if kind == "purchase":
            for band, (share, amounts) in PURCHASE_BANDS.items():
                if draw < share:
                    return band, amounts
                draw -= share
            return band, amounts
        fast_share, routine, reviewed = AMOUNTS[kind]
        return ("fast", routine) if draw < fast_share else ("reviewed", reviewed)

    def _validated_in_odoo(self, transfer: ApprovalRequest) -> None:
        """An approved transfer is picked and validated by the warehouse a few hours later."""
        transfer.refresh_from_db()
        if transfer.state != RequestState.APPROVED:
            return
        at = self._later(self._later(transfer.decided_at))
        if at >= self.now:
            return
        with time_machine.travel(at, tick=False):
            services.request_mark_applied(
                request_id=transfer.pk, note="Transfer validated in Odoo by the warehouse."
            )

    # -- raising --------------------------------------------------------------------------

    def _fields(self, code: str, kind: str, amount: Decimal) -> dict:
        product, category, cost = self.rng.choice(PRODUCTS)
        site = self.sites[code]
        fields = {
            "kind": kind,
            "site": site,
            "amount": amount,
            "currency": "EUR",
            "category": category,
        }
        quantity = max(int(amount / cost), 1)
        item = {
            "product": product,
            "quantity": str(quantity),
            "uom": "Units",
            "unit_price": str(cost),
            "subtotal": str((cost * quantity).quantize(D("0.01"))),
        }
        if kind == "purchase":
            vendor = self.rng.choice(VENDORS)
            fields.update(
                title=f"{product.split('] ')[1]} from {vendor}",
                reason="Replenishment below the reorder point.",
                counterparty=vendor,
                category="",
                details={"line_items": [item]},
            )
        elif kind == "transfer":
            destination = self.rng.choice([c for c in PEOPLE if c != code])
            fields.update(
                title=f"Stock to {self.sites[destination].name}",
                reason=f"{self.sites[destination].name} runs short before the next delivery.",
                details={"destination_site": destination, "line_items": [item]},
            )
        elif kind == "write_off":
            fields.update(
                title=f"Write off {quantity} × {product.split('] ')[1]}",
                reason=self.rng.choice(
                    ["Damaged in handling.", "Past its best-before date.", "Broken packaging."]
                ),
                details={"line_items": [item]},
            )
        else:
            customer, customer_class = self.rng.choice(CUSTOMERS)
            fields.update(
                title=f"Return from {customer}",
                reason="Delivered short-dated; the customer sends it back.",
                counterparty=customer,
                customer_class=customer_class,
                details={"line_items": [item]},
            )
        return fields

    def _raise(
        self, code: str, kind: str, amount: Decimal, at: datetime, *, submit: bool = True
    ) -> ApprovalRequest | None:
        requester = self.user[PEOPLE[code][0]]
        fields = self._fields(code, kind, amount)
        with time_machine.travel(at, tick=False):
            request = services.request_raise(requester=requester, submit=submit, **fields)
        self.counts.raised += 1
        self.counts.fast_path += int(request.fast_path)
        return request

    def _price_override(self, day: datetime, index: int) -> None:
        code = list(PEOPLE)[index % len(PEOPLE)]
        customer, customer_class = CUSTOMERS[index % len(CUSTOMERS)]
        product, category, cost = PRODUCTS[index % len(PRODUCTS)]
        floor = (cost * D("1.05")).quantize(D("0.01"))
        offered = (cost * D(str(self.rng.uniform(0.95, 1.03)))).quantize(D("0.01"))
        quantity = self.rng.choice([24, 48, 96])
        at = office_moment(day, self.rng)
        fields = {
            "kind": "price_override",
            "site": self.sites[code],
            "title": f"{customer}: 1 line under the price floor",
            "reason": "Matching a competitor's offer for a regular customer.",
            "amount": ((floor - offered).max(D("0.01")) * quantity).quantize(D("0.01")),
            "currency": "EUR",
            "category": category,
            "customer_class": customer_class,
            "counterparty": customer,
            "details": {
                "product": product,
                "unit_price": str(offered),
                "floor_price": str(floor),
                "line_items": [
                    {
                        "product": product,
                        "quantity": str(quantity),
                        "unit_price": str(offered),
                        "subtotal": str(offered * quantity),
                        "floor_price": str(floor),
                    }
                ],
            },
        }
        with time_machine.travel(at, tick=False):
            request = services.request_raise(
                requester=self.user[PEOPLE[code][0]], submit=True, **fields
            )
        self.counts.raised += 1
        if (self.now - day).days > 3:
            self._decide(request, at)

    # -- deciding -------------------------------------------------------------------------

    def _decide(
        self, request: ApprovalRequest, asked: datetime, *, reject: bool | None = None
    ) -> None:
        """The tiers are decided one after another, a few working hours apart; `reject` None
        leaves the outcome to chance (REJECT_SHARE)."""
        at = asked
        chance = self.rng.random() < REJECT_SHARE
        reject = chance if reject is None else reject
        for _ in range(4):
            request.refresh_from_db()
            if request.state != RequestState.IN_REVIEW:
                break
            at = self._later(at)
            if at >= self.now:
                break
            with time_machine.travel(at, tick=False):
                person = self._decider(request)
                if person is None:
                    break
                if reject:
                    services.request_reject(
                        actor=person,
                        request_id=request.pk,
                        reason="Not this month: the budget for it is spent.",
                    )
                else:
                    services.request_approve(
                        actor=person, request_id=request.pk, comment="Checked against the order."
                    )

    def _later(self, at: datetime) -> datetime:
        later = at + timedelta(hours=self.rng.uniform(1, 6))
        first, last = OFFICE_HOURS_UTC
        while later.weekday() >= 5 or not first <= later.hour < last:
            later = (later + timedelta(days=1)).replace(hour=first, minute=self.rng.randint(0, 59))
        return later

    def _decider(self, request: ApprovalRequest):
        site_manager = PEOPLE.get(request.site.code, ("", ""))[1]
        for username in (site_manager, *DECIDERS):
            person = self.user.get(username)
            if person is not None and policies.decision_options(person, request):
                return person
        return None

    # -- the requester's requests in every state ------------------------------------------

    def _requester_states(self, days: list[datetime]) -> None:
        ruth = self.user["requester"]
        # A draft not yet sent.
        self._raise(
            "AMS", "purchase", D("2480.00"), office_moment(days[-1], self.rng), submit=False
        )
        # Withdrawn: the supplier delivered from the consignment stock after all.
        withdrawn = self._raise("AMS", "transfer", D("3150.00"), office_moment(days[-20], self.rng))
        with time_machine.travel(self._later(withdrawn.submitted_at), tick=False):
            services.request_withdraw(
                actor=ruth, request_id=withdrawn.pk, reason="Covered by consignment stock."
            )
        # Expired: a major purchase that finance let pass its deadline.
        major = self._raise("AMS", "purchase", D("62400.00"), office_moment(days[-30], self.rng))
        self._expire(major)
        # Applied: an approved write-off, booked in Odoo by the warehouse the next morning.
        write_off = self._raise("AMS", "write_off", D("640.00"), office_moment(days[-12], self.rng))
        self._decide(write_off, write_off.submitted_at)
        write_off.refresh_from_db()
        if write_off.state == RequestState.APPROVED:
            with time_machine.travel(self._later(write_off.decided_at), tick=False):
                services.request_mark_applied(
                    request_id=write_off.pk, note="Scrap booked in Odoo by the warehouse."
                )

    def _expire(self, request: ApprovalRequest) -> None:
        at = request.submitted_at
        for _ in range(3):
            request.refresh_from_db()
            active = request.steps.filter(round=request.round, state="active")
            if request.state != RequestState.IN_REVIEW:
                return
            if all(step.on_breach == "expire" for step in active):
                due = max(step.due_at for step in active)
                with time_machine.travel(due + timedelta(minutes=5), tick=False):
                    services.sla_sweep(now=due + timedelta(minutes=5))
                return
            at = self._later(at)
            with time_machine.travel(at, tick=False):
                person = self._decider(request)
                if person is None:
                    return
                services.request_approve(actor=person, request_id=request.pk, comment="Agreed.")

    # -- a few true flags, and Rotterdam's leave ------------------------------------------

    def _flagged_on_purpose(self, days: list[datetime]) -> None:
        # Asked for on a Saturday evening, after a supplier's call.
        saturday = next(
            day for day in reversed(days) if day.weekday() == 4 and (self.now - day).days >= 2
        ) + timedelta(days=1, hours=19, minutes=40)
        if saturday < self.now:
            self._raise("AMS", "purchase", D("1480.00"), saturday)

    def _rotterdam_routine(self, days: list[datetime]) -> None:
        """Routine work at Rotterdam over its rules' fast-path limits, waiting since the site
        manager went on leave; no two of a kind add up to a threshold."""
        leave = [day for day in days if (self.now - day).days <= LEAVE_DAYS] or days[-1:]
        last = max(number for number, _, _ in ROTTERDAM_ROUTINE)
        for number, kind, amount in ROTTERDAM_ROUTINE:
            # Spread over however many weekdays the leave has had, oldest first.
            day = leave[round(number * (len(leave) - 1) / last)]
            self._raise("RTM", kind, amount, office_moment(day, self.rng))

    def _rotterdam_on_leave(self) -> None:
        start = self.now - timedelta(days=LEAVE_DAYS)
        services.delegation_create(
            actor=self.user["sm.rotterdam"],
            delegator=self.user["sm.rotterdam"],
            delegate=self.user["regional.manager"],
            starts_at=start,
            ends_at=self.now + timedelta(days=11),
            note="On leave; Rosa decides Rotterdam's approvals until I am back.",
        )
