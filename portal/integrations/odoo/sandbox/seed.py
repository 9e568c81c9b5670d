"""The demo company as Odoo holds it, built to match Tollgate's own demo sites.

`seed_demo(path)` fills an empty sandbox database; run again, it keeps what is there. The
company mirrors `sites/demo.py`: one `res.company` per region (1 Benelux in EUR, 2 Nordics in
SEK, 3 UK & Ireland in GBP) and nine warehouses whose ids are the sites' `odoo_warehouse_id`.
Documents carry their site's currency (Oslo NOK, Copenhagen DKK, Dublin EUR). Every user has
an API key equal to the login: `admin` (uid 2, purchase manager, all companies) and `buyer`
(uid 3, Benelux, may not approve large orders).

The documents are drawn from a fixed random seed, with dates counted back from the moment of
seeding, so that every queue Tollgate watches has work in it. Like a real company's, the
records are made by people (`create_uid` is the buyer or the manager, not OdooBot) during
office hours on weekdays (08:00-15:00 UTC, inside every demo site's business hours); the users
and almost all partners were created years ago, and two vendors only a few weeks ago, with a
couple of orders from each waiting for approval. The queues: purchase orders waiting for
approval (some above the approval limit, some refusing approval), inter-warehouse transfers
with the approval marker, draft scraps (some worth more than 500), sale lines under the price
floor or over the discount cap, customers over their credit limit, late receipts and
deliveries, receipts that differ from the order and vendor bills that differ from order times
received. See models.py for the markers. The stock covers every draft scrap and open marked
transfer, so each approval Tollgate writes back can be carried out, as at a real distributor.
"""

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portal.integrations.odoo.sandbox import actions
from portal.integrations.odoo.sandbox.models import REGISTRY
from portal.integrations.odoo.sandbox.orm import Env
from portal.integrations.odoo.sandbox.store import Store
from sites.demo import REGIONS, SITES

RANDOM_SEED = 20240917
# Working hours in UTC that fall inside every demo site's business hours (08:00-18:00 local,
# from London to Stockholm, summer and winter).
OFFICE_HOURS_UTC = (8, 15)
NEW_VENDORS = [("Kempen Koffiebranders", 24), ("Zaandam Verpakkingen", 17)]  # name, days old
USER_SINCE_DAYS = {"admin": 2900, "buyer": 1460}
DEMO_DB = "tollgate-demo"
CURRENCIES = [  # name, symbol, units per EUR
    ("EUR", "€", 1.0),
    ("USD", "$", 1.08),
    ("GBP", "£", 0.85),
    ("SEK", "kr", 11.5),
    ("NOK", "kr", 11.7),
    ("DKK", "kr", 7.46),
]
COMPANIES = {  # region -> (legal name, currency, approval limit in company currency)
    "BNL": ("Tollgate Benelux B.V.", "EUR", 5000.0),
    "NOR": ("Tollgate Nordics AB", "SEK", 55000.0),
    "UKI": ("Tollgate UK & Ireland Ltd", "GBP", 4500.0),
}
GROUPS = [  # module, xml id, name
    ("base", "group_user", "Internal User"),
    ("base", "group_system", "Settings"),
    ("purchase", "group_purchase_user", "Purchase / User"),
    ("purchase", "group_purchase_manager", "Purchase / Administrator"),
    ("stock", "group_stock_manager", "Inventory / Administrator"),
    ("sales_team", "group_sale_manager", "Sales / Administrator"),
]
CATEGORIES = {  # name -> parent
    "All": None,
    "Goods": "All",
    "Beverages": "Goods",
    "Soft Drinks": "Beverages",
    "Water": "Beverages",
    "Dry Food": "Goods",
    "Frozen": "Goods",
    "Packaging": "All",
    "Spare Parts": "All",
}
PRODUCTS = {  # category -> [(name, cost)]
    "Soft Drinks": [("Cola 24x33cl", 9.2), ("Lemonade 12x1L", 11.5), ("Iced Tea 24x50cl", 14.8)],
    "Water": [("Still Water 6x1.5L", 2.4), ("Sparkling Water 24x50cl", 6.9)],
    "Dry Food": [
        ("Basmati Rice 10kg", 18.5),
        ("Penne 12x500g", 9.6),
        ("Olive Oil 6x1L", 38.0),
        ("Coffee Beans 6x1kg", 92.0),
        ("Oat Flakes 10x500g", 8.9),
    ],
    "Frozen": [
        ("Frozen Fries 4x2.5kg", 13.2),
        ("Frozen Peas 10x1kg", 12.7),
        ("Fish Fillets 5kg", 61.0),
    ],
    "Packaging": [
        ("Euro Pallet", 11.0),
        ("Stretch Film 500m", 17.5),
        ("Carton 600x400", 0.9),
        ("Shrink Hood", 1.6),
    ],
    "Spare Parts": [
        ("Forklift Battery 48V", 2950.0),
        ("Reach Truck Mast Chain", 780.0),
        ("Conveyor Belt 10m", 1240.0),
        ("Pallet Jack Wheel Set", 96.0),
        ("Barcode Scanner", 415.0),
        ("Dock Leveller Seal", 560.0),
    ],
}
VENDORS = [
    "Brouwer Beverages",
    "Noord Foods",
    "Scheldt Packaging",
    "Fjord Fisheries",
    "Baltic Grain",
    "Nordkap Drinks",
    "Thames Logistics Parts",
    "Pennine Packaging",
    "Liffey Supplies",
    "Rhine Forklift Service",
    "Vistula Oils",
    "Alpine Water Co",
    "Iberia Olive Growers",
    "Hanse Coffee Traders",
    "Jutland Frozen",
    "Clyde Industrial",
    "Maas Machinery",
    "Oresund Cartons",
]
CUSTOMERS = [
    "Albert Markt",
    "Bakkerij de Zon",
    "Café Centraal",
    "Delhaize Franchise Gent",
    "Eetcafé Bloem",
    "Fjällstugan AB",
    "Göta Restaurang",
    "Hotel Nyhavn",
    "ICA Nära Södermalm",
    "Joker Grünerløkka",
    "Kiwi Majorstuen",
    "Lundin Catering",
    "Market Street Deli",
    "North Quay Hotel",
    "Old Trafford Catering",
    "Park Royal Canteen",
    "Quayside Bistro",
    "Riverside Foods Ltd",
    "Salford Wholesale",
    "Temple Bar Traders",
    "Usher's Island Café",
    "Vondel Horeca",
    "Waterloo Catering",
    "Zuidas Lunchroom",
    "Brugge Brasserie",
    "Antwerp Harbour Canteen",
    "Malmö Mat",
    "Bergen Bryggen Kafé",
    "Aarhus Spisehus",
    "Leeds Larder",
    "Cork Street Kitchen",
    "Galway Grocers",
    "Eindhoven Eetcafé",
    "Utrecht Uitspanning",
    "Göteborg Grossist",
    "Odense Deli",
]
TAGS = ["Key Account", "Wholesale", "Retail", "Credit Watch"]


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def seed_demo(path: Path | str) -> bool:
    """Build the demo company into the database at `path`; False if it was already there."""
    store = Store(path)
    try:
        if store.meta("seed") == "demo":
            return False
        store.wipe()
        with store.transaction() as tx:
            env = Env(tx, uid=1, context={}, now=fmt(now_utc()), version="17.0")
            DemoBuilder(env).build()
            tx.set_meta("seed", "demo")
        return True
    finally:
        store.close()


class DemoBuilder:
    """Creates the demo records through the sandbox's own ORM and actions."""

    def __init__(self, env: Env):
        self.env = env
        self.rng = random.Random(RANDOM_SEED)  # noqa: S311 - repeatable demo data
        self.now = now_utc()
        self.currency: dict[str, int] = {}
        self.company: dict[str, int] = {}
        self.warehouses: list[dict] = []
        self.products: list[dict] = []
        self.vendors: list[int] = []
        self.customers: list[int] = []

    def build(self) -> None:
        self._base()
        self._companies_and_users()
        self._locations_and_warehouses()
        self._catalogue()
        self._partners()
        self._stock()
        self._purchases()
        self._transfers()
        self._sales()
        self._scraps()
        self._stock_behind_open_work()
        self._new_vendors()
        self.env.now = fmt(self.now)
        self.env.uid = 1

    # -- helpers -------------------------------------------------------------------------

    def create(self, model: str, vals: dict, at: datetime | None = None) -> int:
        self.env.now = fmt(at or self.now)
        return self.env.create(model, vals)

    def xmlid(self, module: str, name: str, model: str, res_id: int) -> None:
        self.create(
            "ir.model.data", {"module": module, "name": name, "model": model, "res_id": res_id}
        )

    def days_ago(self, low: float, high: float) -> datetime:
        """A moment `low`-`high` days back, moved into office hours on a weekday."""
        return self.office_hours(self.now - timedelta(days=self.rng.uniform(low, high)))

    def office_hours(self, moment: datetime) -> datetime:
        """`moment` moved back to a weekday and into office hours, never after now.

        Deterministic (no draw from the random generator), so the rest of the data is the same.
        """
        first, last = OFFICE_HOURS_UTC
        moment = moment.replace(hour=first + moment.hour % (last - first))
        while moment.weekday() >= 5 or moment > self.now:
            moment -= timedelta(days=1)
        return moment

    def by(self, uid: int) -> None:
        """Records made from here on are made by Odoo user `uid`."""
        self.env.uid = uid

    def site_currency(self, warehouse: dict) -> int:
        return self.currency[warehouse["site"].currency]

    # -- reference data ------------------------------------------------------------------

    def _base(self) -> None:
        for spec in REGISTRY.values():
            self.create("ir.model", {"model": spec.name, "name": spec.description})
        for name, symbol, rate in CURRENCIES:
            self.currency[name] = self.create(
                "res.currency", {"name": name, "symbol": symbol, "rate": rate}
            )
            self.xmlid("base", name, "res.currency", self.currency[name])
        for module, name, label in GROUPS:
            group_id = self.create("res.groups", {"name": label, "full_name": label})
            self.xmlid(module, name, "res.groups", group_id)
        for name in ("Units", "Dozens", "kg"):
            self.create("uom.uom", {"name": name})
        comment = self.create("mail.message.subtype", {"name": "Discussions", "internal": False})
        note = self.create("mail.message.subtype", {"name": "Note", "internal": True})
        self.xmlid("mail", "mt_comment", "mail.message.subtype", comment)
        self.xmlid("mail", "mt_note", "mail.message.subtype", note)

    def _companies_and_users(self) -> None:
        for number, (region, (legal, currency, limit)) in enumerate(COMPANIES.items(), start=1):
            partner = self.create("res.partner", {"name": legal, "is_company": True})
            company = self.create(
                "res.company",
                {
                    "name": legal,
                    "currency_id": self.currency[currency],
                    "partner_id": partner,
                    "sequence": number,
                    "po_double_validation": "two_step",
                    "po_double_validation_amount": limit,
                },
            )
            if company != REGIONS[region][1]:
                raise RuntimeError("res.company ids must match REGIONS in sites/demo.py")
            self.company[region] = company
            self.create(
                "account.journal",
                {"name": "Vendor Bills", "code": "BILL", "type": "purchase", "company_id": company},
            )
            self.create(
                "account.journal",
                {"name": "Customer Invoices", "code": "INV", "type": "sale", "company_id": company},
            )
        self.xmlid("base", "main_company", "res.company", 1)
        groups = sorted(self.env.rows("res.groups"))
        self._user("OdooBot", "__system__", groups, active=False)
        self._user("Alex Morgan", "admin", groups)
        self._user("Ruth Okafor", "buyer", groups[:1] + groups[2:3])
        self.xmlid("base", "user_root", "res.users", 1)
        self.xmlid("base", "user_admin", "res.users", 2)

    def _user(self, name: str, login: str, groups: list[int], active: bool = True) -> int:
        since = self.office_hours(self.now - timedelta(days=USER_SINCE_DAYS.get(login, 3000)))
        partner = self.create(
            "res.partner", {"name": name, "email": f"{login}@tollgate.example"}, at=since
        )
        user_id = self.create(
            "res.users",
            {
                "name": name,
                "login": login,
                "partner_id": partner,
                "company_id": 1,
                "company_ids": [[6, 0, list(self.company.values())]],
                "groups_id": [[6, 0, groups]],
                "active": active,
                "tz": "Europe/Amsterdam",
            },
            at=since,
        )
        self.env.tx.update("res.users", user_id, {"_password": login, "_api_keys": [login]})
        return user_id

    def _locations_and_warehouses(self) -> None:
        physical = self.create("stock.location", {"name": "Physical Locations", "usage": "view"})
        partners = self.create("stock.location", {"name": "Partners", "usage": "view"})
        virtual = self.create("stock.location", {"name": "Virtual Locations", "usage": "view"})
        vendors = self.create(
            "stock.location", {"name": "Vendors", "usage": "supplier", "location_id": partners}
        )
        customers = self.create(
            "stock.location", {"name": "Customers", "usage": "customer", "location_id": partners}
        )
        self.scrap_location = self.create(
            "stock.location",
            {"name": "Scrap", "usage": "inventory", "scrap_location": True, "location_id": virtual},
        )
        self.xmlid("stock", "stock_location_suppliers", "stock.location", vendors)
        self.xmlid("stock", "stock_location_customers", "stock.location", customers)
        self.xmlid("stock", "stock_location_scrapped", "stock.location", self.scrap_location)
        for site in SITES:
            self.warehouses.append(self._warehouse(site, physical, vendors, customers))

    def _warehouse(self, site, physical: int, vendors: int, customers: int) -> dict:
        company = self.company[site.region]
        view = self.create(
            "stock.location",
            {"name": site.code, "usage": "view", "location_id": physical, "company_id": company},
        )
        stock = self.create(
            "stock.location", {"name": "Stock", "location_id": view, "company_id": company}
        )
        warehouse_id = self.create(
            "stock.warehouse",
            {
                "name": site.name,
                "code": site.code,
                "company_id": company,
                "view_location_id": view,
                "lot_stock_id": stock,
                "sequence": site.odoo_warehouse_id,
            },
        )
        if warehouse_id != site.odoo_warehouse_id:
            raise RuntimeError("warehouse ids must match odoo_warehouse_id in sites/demo.py")
        for location in (view, stock):
            self.env.write("stock.location", [location], {"warehouse_id": warehouse_id})
        types = {}
        for code, label, prefix, src, dest in (
            ("incoming", "Receipts", "IN", vendors, stock),
            ("outgoing", "Delivery Orders", "OUT", stock, customers),
            ("internal", "Internal Transfers", "INT", stock, stock),
        ):
            types[code] = self.create(
                "stock.picking.type",
                {
                    "name": label,
                    "code": code,
                    "sequence_code": prefix,
                    "warehouse_id": warehouse_id,
                    "company_id": company,
                    "default_location_src_id": src,
                    "default_location_dest_id": dest,
                },
            )
        self.env.write(
            "stock.warehouse",
            [warehouse_id],
            {
                "in_type_id": types["incoming"],
                "out_type_id": types["outgoing"],
                "int_type_id": types["internal"],
            },
        )
        return {"id": warehouse_id, "site": site, "company": company, "stock": stock, **types}

    def _catalogue(self) -> None:
        categories: dict[str, int] = {}
        for name, parent in CATEGORIES.items():
            categories[name] = self.create(
                "product.category", {"name": name, "parent_id": categories.get(parent, False)}
            )
        self.xmlid("product", "product_category_all", "product.category", categories["All"])
        number = 0
        for category, items in PRODUCTS.items():
            for name, cost in items:
                number += 1
                margin = self.rng.uniform(1.18, 1.45)
                product_id = self.create(
                    "product.product",
                    {
                        "name": name,
                        "default_code": f"TG-{number:04d}",
                        "categ_id": categories[category],
                        "standard_price": cost,
                        "list_price": round(cost * margin, 2),
                        "barcode": f"871{number:010d}",
                    },
                )
                self.products.append(self.env.row("product.product", product_id))

    def _partners(self) -> None:
        tags = {name: self.create("res.partner.category", {"name": name}) for name in TAGS}
        for number, name in enumerate(VENDORS):
            self.vendors.append(
                self.create(
                    "res.partner",
                    {
                        "name": name,
                        "is_company": True,
                        "supplier_rank": 1,
                        "email": f"orders@{name.split()[0].lower()}.example",
                    },
                    at=self._long_ago(number),
                )
            )
        for number, name in enumerate(CUSTOMERS):
            limit = self.rng.choice([5000.0, 10000.0, 25000.0, 50000.0])
            over = number % 6 == 0  # six customers are over their limit
            credit = round(
                limit * (self.rng.uniform(1.05, 1.6) if over else self.rng.uniform(0, 0.9)), 2
            )
            tag = TAGS[number % 3]
            tag_ids = [tags[tag]] + ([tags["Credit Watch"]] if over else [])
            self.customers.append(
                self.create(
                    "res.partner",
                    {
                        "name": name,
                        "is_company": True,
                        "customer_rank": 1,
                        "credit_limit": limit,
                        "credit": credit,
                        "use_partner_credit_limit": True,
                        "category_id": [[6, 0, tag_ids]],
                        "ref": f"C{number + 1:04d}",
                    },
                    at=self._long_ago(number + len(VENDORS)),
                )
            )

    def _long_ago(self, number: int) -> datetime:
        """A partner's creation: one to eight years back, spread without a random draw."""
        return self.office_hours(self.now - timedelta(days=400 + (number * 137) % 2500))

    def _stock(self) -> None:
        for warehouse in self.warehouses:
            for product in self.products:
                qty = float(self.rng.choice([0, 2, 5, 12, 40, 80, 150, 300]))
                if qty:
                    self.create(
                        "stock.quant",
                        {
                            "product_id": product["id"],
                            "location_id": warehouse["stock"],
                            "quantity": qty,
                            "company_id": warehouse["company"],
                        },
                    )

    # -- documents -----------------------------------------------------------------------

    def _lines(self, count: int, spare_parts: bool) -> list[dict]:
        pool = [
            p for p in self.products if (p["standard_price"] > 90) == spare_parts
        ] or self.products
        return self.rng.sample(pool, k=min(count, len(pool)))

    def _purchases(self, count: int = 320) -> None:
        states = (
            ["draft"] * 15
            + ["sent"] * 8
            + ["to approve"] * 27
            + ["purchase"] * 34
            + ["done"] * 9
            + ["cancel"] * 7
        )
        for number in range(count):
            self._purchase(self.rng.choice(states), number)

    def _purchase(self, state: str, number: int) -> None:
        warehouse = self.rng.choice(self.warehouses)
        currency = self.site_currency(warehouse)
        rate = self.env.row("res.currency", currency)["rate"]
        ordered = (
            self.days_ago(0.5, 120)
            if state in ("draft", "sent", "to approve")
            else self.days_ago(3, 120)
        )
        products = self._lines(self.rng.randint(1, 4), spare_parts=self.rng.random() < 0.25)
        lines = [
            {
                "product_id": p["id"],
                "name": p["name"],
                "product_qty": float(self.rng.choice([5, 10, 12, 24, 50, 100, 200])),
                "price_unit": round(p["standard_price"] * rate * self.rng.uniform(0.96, 1.04), 2),
            }
            for p in products
        ]
        if state == "to approve":
            self._above_limit(lines, warehouse, currency)
        planned = ordered + timedelta(days=self.rng.randint(3, 20))
        buyer = self.rng.choice([2, 3])
        self.by(buyer)
        order_id = self.create(
            "purchase.order",
            {
                "partner_id": self.rng.choice(self.vendors),
                "picking_type_id": warehouse["incoming"],
                "company_id": warehouse["company"],
                "currency_id": currency,
                "date_order": fmt(ordered),
                "date_planned": fmt(planned),
                "priority": "1" if self.rng.random() < 0.12 else "0",
                "partner_ref": f"SO-{40000 + number}",
                "user_id": buyer,
                "order_line": [[0, 0, line] for line in lines],
                "x_sandbox_refuse_approve": state == "to approve" and number % 11 == 0,
            },
            at=ordered,
        )
        if state in ("purchase", "done"):
            self._approve(order_id, state, ordered + timedelta(hours=self.rng.randint(2, 30)))
        elif state != "draft":
            self.env.now = fmt(ordered + timedelta(hours=1))
            self.env.set_state("purchase.order", [order_id], state=state)

    def _above_limit(self, lines: list[dict], warehouse: dict, currency: int) -> None:
        company = self.env.row("res.company", warehouse["company"])
        limit = self._converted(
            company["po_double_validation_amount"], company["currency_id"], currency
        )
        total = sum(line["product_qty"] * line["price_unit"] for line in lines)
        if total < limit:
            factor = limit / max(total, 1.0) * self.rng.uniform(1.05, 2.5)
            for line in lines:
                line["product_qty"] = float(round(line["product_qty"] * factor + 0.5))

    def _converted(self, amount: float, from_currency: int, to_currency: int) -> float:
        # At the currencies' rates, as the sandbox converts the double validation limit.
        rate_from = (self.env.row("res.currency", from_currency) or {}).get("rate") or 1.0
        rate_to = (self.env.row("res.currency", to_currency) or {}).get("rate") or 1.0
        return amount / rate_from * rate_to

    def _approve(self, order_id: int, state: str, approved: datetime) -> None:
        self.env.now = fmt(approved)
        self.env.set_state("purchase.order", [order_id], state=state, date_approve=fmt(approved))
        order = self.env.row("purchase.order", order_id)
        picking_id = actions.create_receipt(self.env, order)
        planned = datetime.strptime(order["date_planned"], "%Y-%m-%d %H:%M:%S")
        if planned < self.now - timedelta(days=1) and self.rng.random() < 0.75:
            self._receive(picking_id, planned + timedelta(hours=self.rng.randint(0, 72)))
            self._bill(order_id, planned + timedelta(days=self.rng.randint(1, 10)))
        elif self.rng.random() < 0.3:
            self.env.write(
                "stock.picking", [picking_id], {"date_deadline": fmt(planned + timedelta(days=2))}
            )

    def _receive(self, picking_id: int, when: datetime) -> None:
        self.env.now = fmt(min(when, self.now))
        for move_id in self.env.children("stock.move", "picking_id", picking_id):
            move = self.env.row("stock.move", move_id)
            roll = self.rng.random()
            factor = (
                self.rng.uniform(0.7, 0.95)
                if roll < 0.12
                else (self.rng.uniform(1.02, 1.1) if roll < 0.18 else 1.0)
            )
            self.env.write(
                "stock.move",
                [move_id],
                {"quantity": float(round(move["product_uom_qty"] * factor))},
            )
        self.env.context = {"skip_backorder": True, "picking_ids_not_to_backorder": [picking_id]}
        actions.picking_button_validate(self.env, "stock.picking", [picking_id])
        self.env.context = {}

    def _bill(self, order_id: int, when: datetime) -> None:
        if self.rng.random() < 0.15 or when > self.now:
            return
        order = self.env.row("purchase.order", order_id)
        lines = []
        for line_id in self.env.children("purchase.order.line", "order_id", order_id):
            line = self.env.row("purchase.order.line", line_id)
            roll = self.rng.random()
            quantity = line["product_qty"] if roll < 0.1 else line["qty_received"]
            price = (
                round(line["price_unit"] * self.rng.uniform(1.03, 1.08), 2)
                if 0.1 <= roll < 0.2
                else line["price_unit"]
            )
            lines.append(
                {
                    "product_id": line["product_id"],
                    "name": line["name"],
                    "quantity": quantity,
                    "price_unit": price,
                    "purchase_line_id": line_id,
                }
            )
        journal = next(
            j
            for j in self.env.rows("account.journal").values()
            if j["company_id"] == order["company_id"] and j["type"] == "purchase"
        )
        bill_id = self.create(
            "account.move",
            {
                "move_type": "in_invoice",
                "partner_id": order["partner_id"],
                "company_id": order["company_id"],
                "currency_id": order["currency_id"],
                "invoice_origin": order["name"],
                "ref": f"INV-{order['partner_ref']}",
                "invoice_date": fmt(when)[:10],
                "date": fmt(when)[:10],
                "invoice_date_due": fmt(when + timedelta(days=30))[:10],
                "journal_id": journal["id"],
                "invoice_line_ids": [[0, 0, line] for line in lines],
            },
            at=when,
        )
        roll = self.rng.random()
        if roll < 0.6:
            actions.move_action_post(self.env, "account.move", [bill_id])
            if roll < 0.25:
                self.env.write("account.move", [bill_id], {"payment_state": "paid"})
        elif roll < 0.65:
            self.env.set_state("account.move", [bill_id], state="cancel")

    def _transfers(self, count: int = 220) -> None:
        states = (
            ["draft"] * 25 + ["confirmed"] * 20 + ["assigned"] * 25 + ["done"] * 25 + ["cancel"] * 5
        )
        for number in range(count):
            self._transfer(self.rng.choice(states), number)

    def _transfer(self, state: str, number: int) -> None:
        source = self.rng.choice(self.warehouses)
        targets = [
            w for w in self.warehouses if w["company"] == source["company"] and w is not source
        ]
        target = self.rng.choice(targets)
        scheduled = self.now + timedelta(days=self.rng.uniform(-25, 15))
        created = self.office_hours(
            min(scheduled, self.now) - timedelta(days=self.rng.uniform(1, 10))
        )
        # Benelux's transfers are raised by the buyer, the other regions' by the manager.
        self.by(3 if source["site"].region == "BNL" else 2)
        needs_approval = state in ("draft", "confirmed", "assigned") and self.rng.random() < 0.45
        approved = state == "done" and self.rng.random() < 0.3
        self.env.now = fmt(created)
        picking_id = actions.create_picking(
            self.env,
            picking_type_id=source["internal"],
            location_id=source["stock"],
            location_dest_id=target["stock"],
            partner_id=None,
            origin=f"Replenish {target['site'].code}",
            moves=[
                {
                    "product_id": p["id"],
                    "product_uom_qty": float(self.rng.choice([5, 10, 20, 40, 60])),
                }
                for p in self._lines(self.rng.randint(1, 3), spare_parts=self.rng.random() < 0.2)
            ],
            state="draft",
            extra={
                "scheduled_date": fmt(scheduled),
                "x_tollgate_approval": needs_approval or approved,
                "x_tollgate_ref": f"TG-{1000 + number}" if approved else None,
                "priority": "1" if self.rng.random() < 0.1 else "0",
            },
        )
        self._advance_picking(picking_id, state, scheduled)

    def _advance_picking(self, picking_id: int, state: str, scheduled: datetime) -> None:
        if state == "draft":
            return
        if state == "cancel":
            actions.picking_action_cancel(self.env, "stock.picking", [picking_id])
            return
        actions.picking_action_confirm(self.env, "stock.picking", [picking_id])
        if state in ("assigned", "done"):
            for move_id in self.env.children("stock.move", "picking_id", picking_id):
                move = self.env.row("stock.move", move_id)
                self.env.write(
                    "stock.move",
                    [move_id],
                    {"quantity": move["product_uom_qty"], "state": "assigned"},
                )
            self.env.set_state("stock.picking", [picking_id], state="assigned")
        if state == "done" and scheduled < self.now:
            self.env.now = fmt(scheduled)
            self.env.context = {
                "skip_backorder": True,
                "picking_ids_not_to_backorder": [picking_id],
            }
            actions.picking_button_validate(self.env, "stock.picking", [picking_id])
            self.env.context = {}

    def _sales(self, count: int = 300) -> None:
        states = ["draft"] * 30 + ["sent"] * 15 + ["sale"] * 45 + ["cancel"] * 10
        for number in range(count):
            self._sale(self.rng.choice(states), number)

    def _sale(self, state: str, number: int) -> None:
        warehouse = self.rng.choice(self.warehouses)
        currency = self.site_currency(warehouse)
        rate = self.env.row("res.currency", currency)["rate"]
        ordered = self.days_ago(0.2, 90)
        self.by(2 if warehouse["site"].region == "BNL" else 3)
        lines = [
            self._sale_line(p, rate)
            for p in self._lines(self.rng.randint(1, 4), spare_parts=self.rng.random() < 0.15)
        ]
        order_id = self.create(
            "sale.order",
            {
                "partner_id": self.rng.choice(self.customers),
                "warehouse_id": warehouse["id"],
                "company_id": warehouse["company"],
                "currency_id": currency,
                "date_order": fmt(ordered),
                "validity_date": fmt(ordered + timedelta(days=30))[:10],
                "client_order_ref": f"PO{70000 + number}",
                "order_line": [[0, 0, line] for line in lines],
            },
            at=ordered,
        )
        self.env.now = fmt(ordered + timedelta(hours=2))
        if state in ("sent", "cancel"):
            self.env.set_state("sale.order", [order_id], state=state)
        elif state == "sale":
            actions.so_action_confirm(self.env, "sale.order", [order_id])
            self.env.write("sale.order", [order_id], {"date_order": fmt(ordered)})
            self._deliver(order_id, ordered + timedelta(days=self.rng.randint(1, 7)))

    def _sale_line(self, product: dict, rate: float) -> dict:
        roll = self.rng.random()
        price, discount = (
            round(product["list_price"] * rate, 2),
            self.rng.choice([0.0, 0.0, 5.0, 10.0]),
        )
        if roll < 0.12:  # under the price floor (cost * 1.05)
            price = round(product["standard_price"] * rate * self.rng.uniform(0.85, 1.03), 2)
            discount = 0.0
        elif roll < 0.22:  # over the discount cap (15 %)
            discount = float(self.rng.choice([17.5, 20.0, 25.0, 30.0]))
        return {
            "product_id": product["id"],
            "name": product["name"],
            "price_unit": price,
            "discount": discount,
            "product_uom_qty": float(self.rng.choice([1, 2, 5, 10, 20, 48])),
        }

    def _deliver(self, order_id: int, scheduled: datetime) -> None:
        for picking_id in self.env.children("stock.picking", "sale_id", order_id):
            self.env.write("stock.picking", [picking_id], {"scheduled_date": fmt(scheduled)})
            roll = self.rng.random()
            state = (
                "done"
                if roll < 0.5 and scheduled < self.now
                else ("assigned" if roll < 0.8 else "confirmed")
            )
            self._advance_picking(picking_id, state, scheduled)
            if state == "done" and self.rng.random() < 0.7:
                self._invoice(order_id, scheduled + timedelta(days=1))

    def _invoice(self, order_id: int, when: datetime) -> None:
        order = self.env.row("sale.order", order_id)
        lines = []
        for line_id in self.env.children("sale.order.line", "order_id", order_id):
            line = self.env.row("sale.order.line", line_id)
            lines.append(
                {
                    "product_id": line["product_id"],
                    "name": line["name"],
                    "quantity": line["qty_delivered"],
                    "price_unit": line["price_unit"],
                    "discount": line["discount"],
                    "sale_line_ids": [[6, 0, [line_id]]],
                }
            )
            self.env.write("sale.order.line", [line_id], {"qty_invoiced": line["qty_delivered"]})
        journal = next(
            j
            for j in self.env.rows("account.journal").values()
            if j["company_id"] == order["company_id"] and j["type"] == "sale"
        )
        invoice_id = self.create(
            "account.move",
            {
                "move_type": "out_invoice",
                "partner_id": order["partner_id"],
                "company_id": order["company_id"],
                "currency_id": order["currency_id"],
                "invoice_origin": order["name"],
                "journal_id": journal["id"],
                "invoice_date": fmt(min(when, self.now))[:10],
                "date": fmt(min(when, self.now))[:10],
                "invoice_date_due": fmt(when + timedelta(days=30))[:10],
                "invoice_line_ids": [[0, 0, line] for line in lines],
            },
            at=min(when, self.now),
        )
        actions.move_action_post(self.env, "account.move", [invoice_id])
        self.env.write("sale.order", [order_id], {"invoice_status": "invoiced"})

    def _scraps(self, count: int = 210) -> None:
        for _ in range(count):
            warehouse = self.rng.choice(self.warehouses)
            product = self.rng.choice(self.products)
            on_hand = max(actions.on_hand(self.env, product["id"], warehouse["stock"]), 0.0)
            qty = float(self.rng.randint(1, max(int(on_hand), 1)))
            created = self.days_ago(0.1, 60)
            self.by(3 if warehouse["site"].region == "BNL" else 2)
            done = self.rng.random() < 0.4
            self.create(
                "stock.scrap",
                {
                    "product_id": product["id"],
                    "scrap_qty": float(qty),
                    "location_id": warehouse["stock"],
                    "scrap_location_id": self.scrap_location,
                    "company_id": warehouse["company"],
                    "origin": self.rng.choice(
                        ["Damaged in handling", "Expired", "Broken packaging", "Cycle count", ""]
                    )
                    or False,
                    "state": "done" if done else "draft",
                    "date_done": fmt(created + timedelta(hours=3)) if done else False,
                },
                at=created,
            )

    def _stock_behind_open_work(self) -> None:
        """Stock on the shelves for every draft scrap and open marked transfer.

        Approving one in Tollgate validates it in Odoo, which refuses a scrap beyond the stock
        and a transfer with nothing to reserve. A warehouse scraps and sends only what it
        holds, so wherever those open documents together claim more than is on hand (drafted
        against the same count, or before deliveries took the stock), the count is raised to
        cover them all, rounded up to whole tens: every approval can be carried out, in any
        order. Draws nothing from the random generator.
        """
        claims: dict[tuple[int, int], float] = defaultdict(float)
        for scrap in self.env.rows("stock.scrap").values():
            if scrap["state"] == "draft":
                claims[(scrap["product_id"], scrap["location_id"])] += scrap["scrap_qty"]
        for picking in self.env.rows("stock.picking").values():
            if not picking.get("x_tollgate_approval") or picking["state"] in ("done", "cancel"):
                continue
            for move_id in self.env.children("stock.move", "picking_id", picking["id"]):
                move = self.env.row("stock.move", move_id)
                if move["state"] not in ("done", "cancel"):
                    claims[(move["product_id"], move["location_id"])] += move["product_uom_qty"]
        self.env.now = fmt(self.now)
        for (product_id, location_id), claimed in sorted(claims.items()):
            on_hand = actions.on_hand(self.env, product_id, location_id)
            if on_hand >= claimed:
                continue
            counted = float(math.ceil(claimed / 10) * 10)
            quants = self.env.children(
                "stock.quant", ("product_id", "location_id"), (product_id, location_id)
            )
            if quants:
                first = self.env.row("stock.quant", quants[0])
                self.env.write(
                    "stock.quant",
                    [first["id"]],
                    {"quantity": first["quantity"] + counted - on_hand},
                )
                continue
            location = self.env.row("stock.location", location_id)
            self.create(
                "stock.quant",
                {
                    "product_id": product_id,
                    "location_id": location_id,
                    "quantity": counted,
                    "company_id": location["company_id"],
                },
            )

    def _new_vendors(self) -> None:
        """Two vendors taken on a few weeks ago, each with a first order waiting for approval.

        Drawn from a generator of their own, so that the rest of the data stays as it was.
        """
        rng = random.Random(RANDOM_SEED + 1)  # noqa: S311 - repeatable demo data
        amsterdam = next(w for w in self.warehouses if w["site"].code == "AMS")
        for name, days_old in NEW_VENDORS:
            self.by(2)
            since = self.office_hours(self.now - timedelta(days=days_old))
            vendor = self.create(
                "res.partner",
                {
                    "name": name,
                    "is_company": True,
                    "supplier_rank": 1,
                    "email": f"orders@{name.split()[0].lower()}.example",
                },
                at=since,
            )
            self.by(3)
            ordered = self.office_hours(since + timedelta(days=rng.randint(3, 10)))
            products = [p for p in self.products if p["standard_price"] < 90]
            lines = [
                {
                    "product_id": p["id"],
                    "name": p["name"],
                    "product_qty": float(rng.choice([100, 200, 300])),
                    "price_unit": round(p["standard_price"] * rng.uniform(0.96, 1.04), 2),
                }
                for p in rng.sample(products, k=2)
            ]
            self._above_limit(lines, amsterdam, self.currency["EUR"])
            order_id = self.create(
                "purchase.order",
                {
                    "partner_id": vendor,
                    "picking_type_id": amsterdam["incoming"],
                    "company_id": amsterdam["company"],
                    "currency_id": self.currency["EUR"],
                    "date_order": fmt(ordered),
                    "date_planned": fmt(ordered + timedelta(days=7)),
                    "user_id": 3,
                    "order_line": [[0, 0, line] for line in lines],
                },
                at=ordered,
            )
            self.env.now = fmt(ordered + timedelta(hours=1))
            self.env.set_state("purchase.order", [order_id], state="to approve")
