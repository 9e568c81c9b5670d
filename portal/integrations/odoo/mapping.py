"""From Odoo records to Tollgate requests and cases.

Each handler names its model, the fields it reads and what a row means:

* `purchase.order` in `to approve` → a purchase request (site from
  `picking_type_id.warehouse_id`);
* `stock.picking`: an internal transfer carrying the approval marker (the boolean custom field
  named by ODOO_TRANSFER_MARKER_FIELD, `x_tollgate_approval` by default, set in Odoo on a
  transfer between two warehouses that needs a decision) → a transfer request; a receipt or
  delivery past its scheduled date and not done → a shipment-delay case; a done receipt whose
  quantities differ from the demand beyond tolerance → a receipt-discrepancy case;
* draft `stock.scrap` worth at least ODOO_WRITE_OFF_THRESHOLD (quantity × product cost) → a
  write-off request;
* draft/sent `sale.order` with a line under the price floor (cost × (1 + ODOO_PRICE_FLOOR_MARGIN_PCT
  %)) or over the discount cap → a price-override request; whose customer would go over the
  credit limit → a credit-exception request;
* a vendor bill (`account.move`, `in_invoice`) whose lines differ from order price × received
  quantity beyond tolerance → an invoice-mismatch case (three-way match).

Each request keeps who made the record in Odoo (`create_uid`, else the responsible user) and
when it was made or asked for approval there (`date_order`, else `create_date`), so that the
risk signals judge the person and the moment in Odoo, never the integration user or the moment
Tollgate synced; a counterparty's age is its `create_date` in Odoo. Readable line items
(`odoo_snapshot["line_items"]`, strings only) show people what the record holds; the drift key
stays `odoo_snapshot["lines"]`.

A record that maps to an existing request updates it (drift goes back to review); it never
creates a duplicate. Lookups a batch needs (warehouses, products, partners, lines) are read in
one call per kind and batch and cached for the run.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals import services as approvals
from approvals.models import ApprovalRequest, RequestKind, RequestState
from exceptions import titles
from exceptions.rules import picking_delay_key
from exceptions.services import case_raise
from portal.core.formatting import count
from portal.integrations.odoo.records import ODOO_DATETIME
from sites.models import Site

SYSTEM_USERNAME = "odoo"
CENT = Decimal("0.01")
_OPEN = (RequestState.DRAFT, RequestState.SUBMITTED, RequestState.IN_REVIEW)
_UPDATABLE = (RequestState.IN_REVIEW, RequestState.APPROVED, RequestState.APPLY_FAILED)
USER_FIELDS = ["login", "name"]
PARTNER_FIELDS = ["name", "credit", "credit_limit", "category_id", "create_date"]
PRODUCT_FIELDS = ["standard_price", "list_price", "categ_id", "display_name", "uom_id"]
# Partner tags (res.partner.category) that name a customer class; the rest are "standard".
CUSTOMER_CLASSES = {"key account": "key", "wholesale": "wholesale", "retail": "standard"}


def _d(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _id(value) -> int | None:
    if value in (False, None):
        return None
    return int(value[0]) if isinstance(value, list | tuple) else int(value)


def _name(value) -> str:
    return value[1] if isinstance(value, list | tuple) and len(value) > 1 else ""


def _when(value) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value[:19], ODOO_DATETIME).replace(tzinfo=UTC)


def _text(value: Decimal | float | int) -> str:
    """A number as a plain string without float noise or trailing zeros: '12', '3.5'."""
    number = Decimal(str(value or 0))
    normal = number.normalize()
    return str(normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal)


def _makers(rows) -> list[int | None]:
    """The Odoo users a batch's authors are read from: who made each record, and who is
    responsible for it."""
    return [_id(r.get(field)) for r in rows for field in ("create_uid", "user_id")]


class Context:
    """What one sync run has learnt about Odoo, read in batches and kept for the run."""

    def __init__(self, client):
        self.client = client
        self.now = timezone.now()
        self.sites = {
            s.odoo_warehouse_id: s
            for s in Site.objects.filter(active=True, odoo_warehouse_id__isnull=False)
        }
        self.picking_types: dict[int, dict] = {}
        self.locations: dict[int, dict] = {}
        self.products: dict[int, dict] = {}
        self.partners: dict[int, dict] = {}
        self.tag_rows: dict[int, dict] = {}
        self.user_rows: dict[int, dict] = {}
        self.po_lines: dict[int, dict] = {}
        self.orders: dict[int, dict] = {}
        self.receipts: dict[int, dict] = {}
        self.lines: dict[tuple[str, int], list[dict]] = {}
        # On hand by (product, location), for the pairs read so far.
        self.stock: dict[tuple[int, int], Decimal] = {}
        # Confirmed purchase lines by product, newest first: (order, currency, unit price).
        self.prices: dict[int, list[tuple[int, int | None, Decimal]]] = {}
        self.order_currency: dict[int, int | None] = {}
        # Odoo ids that already have a request, by (model, kind), for the rows read so far.
        self.requested: dict[tuple[str, str], set[int]] = {}
        self._system_user = None

    def prepare(self, handler, rows: list[dict]) -> None:
        handler.prepare(rows, self)

    def fill(self, model: str, ids, fields: list[str], cache: dict) -> None:
        """Read the records of `ids` not yet in `cache`, in one call."""
        missing = sorted({i for i in ids if i is not None and i not in cache})
        if missing:
            for row in self.client.read(model, missing, fields):
                cache[row["id"]] = row

    def note_requested(self, model: str, kind: str, odoo_ids) -> None:
        """Learn which of `odoo_ids` already have a request of `kind`, in one query."""
        known = self.requested.setdefault((model, kind), set())
        known.update(
            ApprovalRequest.objects.filter(
                odoo_model=model, odoo_id__in=sorted(set(odoo_ids)), kind=kind
            ).values_list("odoo_id", flat=True)
        )

    def has_request(self, model: str, kind: str, odoo_id: int) -> bool:
        """Whether the Odoo record has a request of `kind` (among the rows prepared)."""
        return odoo_id in self.requested.get((model, kind), ())

    def children(self, model: str, parent_field: str, parent_ids, fields: list[str]) -> None:
        """Read the lines of `parent_ids` in one call and file them under their parent."""
        parent_ids = sorted(set(parent_ids))
        for parent in parent_ids:
            self.lines[(model, parent)] = []
        if not parent_ids:
            return
        rows = self.client.search_read(model, [[parent_field, "in", parent_ids]], fields)
        for row in rows:
            self.lines[(model, _id(row[parent_field]))].append(row)

    def last_prices(self, product_ids) -> None:
        """Read what was paid for `product_ids` on confirmed orders, and in which currency: one
        search for the lines and one read for their orders' currencies."""
        missing = sorted({p for p in product_ids if p is not None and p not in self.prices})
        if not missing:
            return
        for product in missing:
            self.prices[product] = []
        rows = self.client.search_read(
            "purchase.order.line",
            [["product_id", "in", missing], ["order_id.state", "in", ["purchase", "done"]]],
            ["product_id", "order_id", "price_unit"],
            order="id desc",
        )
        orders = sorted({_id(row["order_id"]) for row in rows} - self.order_currency.keys())
        if orders:
            for order in self.client.read("purchase.order", orders, ["currency_id"]):
                self.order_currency[order["id"]] = _id(order["currency_id"])
        for row in rows:
            order = _id(row["order_id"])
            self.prices[_id(row["product_id"])].append(
                (order, self.order_currency.get(order), _d(row["price_unit"]))
            )

    def on_hand(self, product_ids, location_ids) -> None:
        """Read what is on hand of `product_ids` at `location_ids` (stock.quant), in one call."""
        products = sorted({p for p in product_ids if p is not None})
        locations = sorted({loc for loc in location_ids if loc is not None})
        pairs = {(p, loc) for p in products for loc in locations}
        if not pairs or pairs <= self.stock.keys():
            return
        for pair in pairs:
            self.stock.setdefault(pair, Decimal(0))
        rows = self.client.search_read(
            "stock.quant",
            [["product_id", "in", products], ["location_id", "in", locations]],
            ["product_id", "location_id", "quantity"],
        )
        counted: dict[tuple[int, int], Decimal] = {}
        for row in rows:
            pair = (_id(row["product_id"]), _id(row["location_id"]))
            counted[pair] = counted.get(pair, Decimal(0)) + Decimal(str(row["quantity"] or 0))
        self.stock.update(counted)

    def last_price(self, product_id: int, *, order: int, currency: int | None) -> Decimal | None:
        """The price last paid for the product, in the same currency, on a confirmed order
        other than this one."""
        for paid_on, paid_in, price in self.prices.get(product_id, []):
            if paid_on != order and paid_in == currency:
                return price
        return None

    def site_of_picking_type(self, type_id: int | None) -> Site:
        warehouse = _id(self.picking_types.get(type_id, {}).get("warehouse_id"))
        return self.site_of_warehouse(warehouse)

    def site_of_location(self, location_id: int | None) -> Site:
        return self.site_of_warehouse(_id(self.locations.get(location_id, {}).get("warehouse_id")))

    def site_of_warehouse(self, warehouse_id: int | None) -> Site:
        site = self.sites.get(warehouse_id) if warehouse_id is not None else None
        if site is None:
            raise LookupError(f"Odoo warehouse {warehouse_id} is not the warehouse of an open site")
        return site

    def requester(self, odoo_user) -> object:
        """The Tollgate user whose login or e-mail is the Odoo user's login, else the system."""
        login = self.user_rows.get(_id(odoo_user), {}).get("login")
        User = get_user_model()
        if login:
            person = (
                User.objects.filter(username=login).first()
                or User.objects.filter(email__iexact=login).first()
            )
            if person is not None:
                return person
        return self.system_user()

    def author(self, row: dict) -> tuple[str, str]:
        """("res.users,<id>", name) of the Odoo user who made `row`, else its responsible user.

        The integration user (or OdooBot) making a record on someone's behalf is not its author:
        then the responsible user is, when there is one.
        """
        made_by, responsible = _id(row.get("create_uid")), _id(row.get("user_id"))
        chosen = made_by
        if chosen is None or (responsible is not None and chosen in self.integration_uids()):
            chosen = responsible or made_by
        if chosen is None:
            return "", ""
        name = self.user_rows.get(chosen, {}).get("name") or _name(
            row.get("create_uid") if chosen == made_by else row.get("user_id")
        )
        return f"res.users,{chosen}", name or ""

    def integration_uids(self) -> set[int]:
        """Odoo users that act for systems: OdooBot (uid 1) and the login Tollgate syncs as."""
        uids = {1}
        login = getattr(settings, "ODOO_LOGIN", "")
        uids.update(
            uid for uid, row in self.user_rows.items() if login and row.get("login") == login
        )
        return uids

    def system_user(self):
        if self._system_user is None:
            User = get_user_model()
            user, created = User.objects.get_or_create(
                username=SYSTEM_USERNAME,
                defaults={"first_name": "Odoo", "is_active": False},
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            self._system_user = user
        return self._system_user


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    kind: str
    site: Site
    requester: object
    title: str
    reason: str
    amount: Decimal
    currency: str
    snapshot: dict
    category: str = ""
    customer_class: str = ""
    counterparty: str = ""
    counterparty_ref: str = ""
    details: dict | None = None
    author_ref: str = ""
    author: str = ""
    asked_at: datetime | None = None


def upsert_request(model: str, odoo_id: int, draft: Draft | None) -> str:
    """Create the request for an Odoo record, or pass the record's change to the existing one."""
    if draft is None:
        return "ignored"
    existing = (
        ApprovalRequest.objects.filter(odoo_model=model, odoo_id=odoo_id, kind=draft.kind)
        .order_by("-revision")
        .first()
    )
    if existing is not None:
        return _update(existing, draft)
    request = approvals.request_create(
        requester=draft.requester,
        kind=draft.kind,
        site=draft.site,
        title=draft.title,
        reason=draft.reason,
        amount=draft.amount,
        currency=draft.currency,
        category=draft.category,
        customer_class=draft.customer_class,
        counterparty=draft.counterparty,
        counterparty_ref=draft.counterparty_ref,
        details=draft.details or {},
        odoo_model=model,
        odoo_id=odoo_id,
        odoo_snapshot=draft.snapshot,
        odoo_author_ref=draft.author_ref,
        odoo_author=draft.author,
        odoo_asked_at=draft.asked_at,
        by_system=True,
    )
    approvals.request_submit(actor=None, request_id=request.pk)
    return "created"


def _update(existing: ApprovalRequest, draft: Draft) -> str:
    if existing.state not in _UPDATABLE or existing.odoo_snapshot == draft.snapshot:
        return "unchanged"
    change = approvals.OdooChange(
        amount=draft.amount,
        currency=draft.currency,
        lines=draft.snapshot.get("lines", []),
        snapshot=draft.snapshot,
    )
    went_back = approvals.request_odoo_changed(request_id=existing.pk, change=change)
    return "returned_to_review" if went_back else "updated"


class PurchaseOrders:
    model = "purchase.order"
    fields = [
        "name",
        "state",
        "partner_id",
        "currency_id",
        "amount_total",
        "picking_type_id",
        "order_line",
        "user_id",
        "date_order",
        "create_uid",
        "create_date",
        "write_date",
    ]
    domain: list = []

    def prepare(self, rows, ctx: Context) -> None:
        ctx.fill(
            "stock.picking.type",
            [_id(r["picking_type_id"]) for r in rows],
            ["warehouse_id"],
            ctx.picking_types,
        )
        ctx.fill("res.users", _makers(rows), USER_FIELDS, ctx.user_rows)
        ctx.note_requested(self.model, RequestKind.PURCHASE, [r["id"] for r in rows])
        # Lines, vendors and prices only for the orders Tollgate keeps: most changed orders
        # are not, and cost nothing more.
        kept = [r for r in rows if self.relevant(r, ctx)]
        ctx.children(
            "purchase.order.line",
            "order_id",
            [r["id"] for r in kept],
            [
                "order_id",
                "product_id",
                "product_qty",
                "product_uom",
                "price_unit",
                "price_subtotal",
            ],
        )
        ctx.fill("res.partner", [_id(r["partner_id"]) for r in kept], PARTNER_FIELDS, ctx.partners)
        products = sorted(
            {
                _id(line["product_id"])
                for r in kept
                for line in ctx.lines[("purchase.order.line", r["id"])]
                if line["product_id"]
            }
        )
        ctx.fill("product.product", products, PRODUCT_FIELDS, ctx.products)
        ctx.last_prices(products)

    def relevant(self, row, ctx: Context) -> bool:
        """Whether the order concerns Tollgate: it waits for approval or already has a request.

        Most changed orders do not, and the sync passes over them without a savepoint each.
        """
        return row["state"] == "to approve" or ctx.has_request(
            self.model, RequestKind.PURCHASE, row["id"]
        )

    def handle(self, row, ctx: Context) -> str:
        if not self.relevant(row, ctx):
            return "ignored"
        snapshot = {
            "amount": str(_d(row["amount_total"])),
            "currency": _name(row["currency_id"]),
            "lines": sorted(row["order_line"]),
            "state": row["state"],
        }
        lines = ctx.lines.get(("purchase.order.line", row["id"]), [])
        snapshot["line_items"] = [_purchase_item(line, row, ctx) for line in lines]
        partner = ctx.partners.get(_id(row["partner_id"]), {})
        author_ref, author = ctx.author(row)
        draft = Draft(
            kind=RequestKind.PURCHASE,
            site=ctx.site_of_picking_type(_id(row["picking_type_id"])),
            requester=ctx.requester(row["user_id"]),
            title=f"{row['name']} from {_name(row['partner_id'])}",
            reason=f"Purchase order {row['name']} waits for approval in Odoo.",
            amount=_d(row["amount_total"]),
            currency=_name(row["currency_id"]),
            counterparty=_name(row["partner_id"]),
            counterparty_ref=f"res.partner,{_id(row['partner_id'])}",
            snapshot=snapshot,
            details={
                "odoo_reference": row["name"],
                "lines": len(row["order_line"]),
                "counterparty_since": partner.get("create_date"),
            },
            author_ref=author_ref,
            author=author,
            asked_at=_when(row.get("date_order")) or _when(row.get("create_date")),
        )
        return upsert_request(self.model, row["id"], draft)


def _product_name(line: dict, ctx: Context) -> str:
    product = ctx.products.get(_id(line.get("product_id")), {})
    return product.get("display_name") or _name(line.get("product_id"))


def _purchase_item(line: dict, order: dict, ctx: Context) -> dict:
    product_id = _id(line["product_id"])
    item = {
        "product": _product_name(line, ctx),
        "quantity": _text(line["product_qty"]),
        "uom": _name(line.get("product_uom")),
        "unit_price": str(_d(line["price_unit"])),
        "subtotal": str(_d(line["price_subtotal"])),
    }
    if product_id is not None:
        item["product_ref"] = f"product.product,{product_id}"
        last = ctx.last_price(product_id, order=order["id"], currency=_id(order["currency_id"]))
        if last is not None:
            item["last_price"] = str(last)
    return {key: value for key, value in item.items() if value != ""}


class Pickings:
    model = "stock.picking"
    domain: list = []

    @property
    def fields(self) -> list[str]:
        return [
            "name",
            "state",
            "picking_type_id",
            "picking_type_code",
            "location_id",
            "location_dest_id",
            "scheduled_date",
            "origin",
            "partner_id",
            "user_id",
            "create_uid",
            "create_date",
            "write_date",
            settings.ODOO_TRANSFER_MARKER_FIELD,
        ]

    def prepare(self, rows, ctx: Context) -> None:
        ctx.fill(
            "stock.picking.type",
            [_id(r["picking_type_id"]) for r in rows],
            ["warehouse_id"],
            ctx.picking_types,
        )
        marked = [r for r in rows if self._is_transfer(r)]
        ctx.fill(
            "stock.location",
            [_id(r["location_dest_id"]) for r in marked],
            ["warehouse_id"],
            ctx.locations,
        )
        ctx.fill("res.users", _makers(marked), USER_FIELDS, ctx.user_rows)
        counted = [r["id"] for r in rows if self._is_transfer(r) or self._is_receipt_done(r)]
        ctx.children(
            "stock.move",
            "picking_id",
            counted,
            ["picking_id", "product_id", "product_uom_qty", "quantity", "product_uom"],
        )
        products = [_id(m["product_id"]) for p in counted for m in ctx.lines[("stock.move", p)]]
        ctx.fill("product.product", products, PRODUCT_FIELDS, ctx.products)
        ctx.on_hand(
            [_id(m["product_id"]) for r in marked for m in ctx.lines[("stock.move", r["id"])]],
            [_id(r[side]) for r in marked for side in ("location_id", "location_dest_id")],
        )

    def _is_transfer(self, row) -> bool:
        return (
            row["picking_type_code"] == "internal"
            and bool(row.get(settings.ODOO_TRANSFER_MARKER_FIELD))
            and row["state"] not in ("done", "cancel")
        )

    def _is_receipt_done(self, row) -> bool:
        return row["picking_type_code"] == "incoming" and row["state"] == "done"

    def handle(self, row, ctx: Context) -> str:
        outcomes = []
        if self._is_transfer(row):
            outcomes.append(self._transfer(row, ctx))
        late = _late(row, ctx.now)
        if late is not None:
            outcomes.append(self._delay(row, ctx, late))
        if self._is_receipt_done(row):
            outcomes.append(self._receipt(row, ctx))
        return "+".join(outcomes) or "ignored"

    def _transfer(self, row, ctx: Context) -> str:
        moves = ctx.lines[("stock.move", row["id"])]
        value = sum(
            (
                _d(m["product_uom_qty"]) * _d(ctx.products[_id(m["product_id"])]["standard_price"])
                for m in moves
            ),
            Decimal(0),
        ).quantize(CENT)
        source = ctx.site_of_picking_type(_id(row["picking_type_id"]))
        destination = ctx.site_of_location(_id(row["location_dest_id"]))
        categories = sorted({_name(ctx.products[_id(m["product_id"])]["categ_id"]) for m in moves})
        author_ref, author = ctx.author(row)
        draft = Draft(
            kind=RequestKind.TRANSFER,
            site=source,
            requester=ctx.requester(row["user_id"]),
            title=f"{row['name']}: {source.code} → {destination.code}",
            reason=f"Transfer {row['name']} between warehouses waits for approval in Odoo.",
            amount=value,
            currency=source.currency,
            category=categories[0] if categories else "Mixed",
            snapshot={
                "amount": str(value),
                "lines": sorted(
                    [_id(m["product_id"]), str(_d(m["product_uom_qty"]))] for m in moves
                ),
                "line_items": [_transfer_item(m, row, ctx) for m in moves],
            },
            details={
                "destination_site": destination.code,
                "source_warehouse": source.name,
                "destination_warehouse": destination.name,
                "odoo_reference": row["name"],
            },
            author_ref=author_ref,
            author=author,
            asked_at=_when(row.get("create_date")),
        )
        return upsert_request(self.model, row["id"], draft)

    def _delay(self, row, ctx: Context, late: timedelta) -> str:
        site = ctx.site_of_picking_type(_id(row["picking_type_id"]))
        days = late.total_seconds() / 86400
        severity = "high" if days > 7 else "medium" if days > 2 else "low"
        _, created = case_raise(
            kind="shipment_delay",
            site=site,
            severity=severity,
            title=titles.shipment_late(
                picking=row["name"], days=days, incoming=row["picking_type_code"] == "incoming"
            ),
            source="odoo",
            # Keyed by the picking's name, which carriers report too: their delay joins this case.
            dedupe_key=picking_delay_key(row["name"]),
            payload=row,
            evidence={
                "scheduled_date": row["scheduled_date"],
                "days_late": round(days, 1),
                "origin": row["origin"],
                "partner": _name(row["partner_id"]),
                "state": row["state"],
            },
            odoo_model=self.model,
            odoo_id=row["id"],
            at=ctx.now,
        )
        return "case_opened" if created else "case_updated"

    def _receipt(self, row, ctx: Context) -> str:
        tolerance = Decimal(settings.ODOO_MATCH_TOLERANCE_PCT)
        differences = []
        for move in ctx.lines[("stock.move", row["id"])]:
            demand, received = _d(move["product_uom_qty"]), _d(move["quantity"])
            if demand and abs(received - demand) * 100 / demand > tolerance:
                differences.append(
                    {
                        "product": _name(move["product_id"]),
                        "ordered": demand,
                        "received": received,
                        "difference": received - demand,
                    }
                )
        if not differences:
            return "matched"
        site = ctx.site_of_picking_type(_id(row["picking_type_id"]))
        _, created = case_raise(
            kind="receipt_discrepancy",
            site=site,
            severity="medium",
            title=titles.receipt_discrepancy(
                receipt=row["name"], order=row["origin"] or "", lines=len(differences)
            ),
            source="odoo",
            dedupe_key=f"odoo:stock.picking:{row['id']}:receipt_discrepancy",
            payload=row,
            evidence={"lines": differences, "tolerance_pct": tolerance, "origin": row["origin"]},
            odoo_model=self.model,
            odoo_id=row["id"],
            at=ctx.now,
        )
        return "case_opened" if created else "case_updated"


def _transfer_item(move: dict, picking: dict, ctx: Context) -> dict:
    product_id = _id(move["product_id"])
    product = ctx.products.get(product_id, {})
    qty = Decimal(str(move["product_uom_qty"] or 0))
    cost = _d(product.get("standard_price"))
    item = {
        "product": _product_name(move, ctx),
        "product_ref": f"product.product,{product_id}",
        "quantity": _text(qty),
        "uom": _name(move.get("product_uom")),
        "unit_price": str(cost),
        "subtotal": str((qty * cost).quantize(CENT)),
    }
    source = ctx.stock.get((product_id, _id(picking["location_id"])))
    destination = ctx.stock.get((product_id, _id(picking["location_dest_id"])))
    if source is not None and destination is not None:
        item["source_after"] = _text(source - qty)
        item["destination_after"] = _text(destination + qty)
    return {key: value for key, value in item.items() if value != ""}


def _late(row, now: datetime) -> timedelta | None:
    scheduled = _when(row["scheduled_date"])
    external = row["picking_type_code"] in ("incoming", "outgoing")
    if not external or scheduled is None or row["state"] in ("done", "cancel", "draft"):
        return None
    late = now - scheduled
    return late if late > timedelta(hours=settings.ODOO_LATE_GRACE_HOURS) else None


class Scraps:
    model = "stock.scrap"
    fields = [
        "name",
        "state",
        "product_id",
        "scrap_qty",
        "product_uom_id",
        "location_id",
        "origin",
        "create_uid",
        "create_date",
        "write_date",
    ]
    domain: list = []

    def prepare(self, rows, ctx: Context) -> None:
        drafts = [r for r in rows if r["state"] == "draft"]
        ctx.fill(
            "stock.location",
            [_id(r["location_id"]) for r in drafts],
            ["warehouse_id"],
            ctx.locations,
        )
        ctx.fill(
            "product.product", [_id(r["product_id"]) for r in drafts], PRODUCT_FIELDS, ctx.products
        )
        ctx.fill("res.users", _makers(drafts), USER_FIELDS, ctx.user_rows)

    def handle(self, row, ctx: Context) -> str:
        if row["state"] != "draft":
            return "ignored"
        product = ctx.products[_id(row["product_id"])]
        value = (_d(row["scrap_qty"]) * _d(product["standard_price"])).quantize(CENT)
        if value < settings.ODOO_WRITE_OFF_THRESHOLD:
            return "below_threshold"
        site = ctx.site_of_location(_id(row["location_id"]))
        author_ref, author = ctx.author(row)
        item = {
            "product": product["display_name"],
            "product_ref": f"product.product,{_id(row['product_id'])}",
            "quantity": _text(row["scrap_qty"]),
            "uom": _name(row.get("product_uom_id")),
            "unit_price": str(_d(product["standard_price"])),
            "subtotal": str(value),
        }
        draft = Draft(
            kind=RequestKind.WRITE_OFF,
            site=site,
            requester=ctx.system_user(),
            title=f"{row['name']}: scrap {_text(row['scrap_qty'])} × {product['display_name']}",
            reason=f"Scrap {row['name']} ({row['origin'] or 'no source document'}) in Odoo.",
            amount=value,
            currency=site.currency,
            category=_name(product["categ_id"]),
            snapshot={
                "amount": str(value),
                "lines": [[_id(row["product_id"]), str(_d(row["scrap_qty"]))]],
                "line_items": [{key: v for key, v in item.items() if v != ""}],
            },
            details={"odoo_reference": row["name"], "product": product["display_name"]},
            author_ref=author_ref,
            author=author,
            asked_at=_when(row.get("create_date")),
        )
        return upsert_request(self.model, row["id"], draft)


class SaleOrders:
    model = "sale.order"
    fields = [
        "name",
        "state",
        "partner_id",
        "currency_id",
        "amount_total",
        "warehouse_id",
        "order_line",
        "user_id",
        "date_order",
        "create_uid",
        "create_date",
        "write_date",
    ]
    domain: list = []

    def prepare(self, rows, ctx: Context) -> None:
        open_orders = [r for r in rows if r["state"] in ("draft", "sent")]
        ctx.children(
            "sale.order.line",
            "order_id",
            [r["id"] for r in open_orders],
            ["order_id", "product_id", "price_unit", "discount", "product_uom_qty", "product_uom"],
        )
        products = [
            _id(line["product_id"])
            for r in open_orders
            for line in ctx.lines[("sale.order.line", r["id"])]
        ]
        ctx.fill("product.product", products, PRODUCT_FIELDS, ctx.products)
        ctx.fill(
            "res.partner", [_id(r["partner_id"]) for r in open_orders], PARTNER_FIELDS, ctx.partners
        )
        tags = [t for r in open_orders for t in ctx.partners[_id(r["partner_id"])]["category_id"]]
        ctx.fill("res.partner.category", tags, ["name"], ctx.tag_rows)
        ctx.fill("res.users", _makers(open_orders), USER_FIELDS, ctx.user_rows)

    def handle(self, row, ctx: Context) -> str:
        if row["state"] not in ("draft", "sent"):
            return "ignored"
        site = ctx.site_of_warehouse(_id(row["warehouse_id"]))
        partner = ctx.partners[_id(row["partner_id"])]
        outcomes = [
            upsert_request(self.model, row["id"], self._price_override(row, ctx, site, partner)),
            upsert_request(self.model, row["id"], self._credit(row, ctx, site, partner)),
        ]
        return "+".join(o for o in outcomes if o != "ignored") or "ignored"

    def _common(self, row, ctx: Context, site, partner) -> dict:
        author_ref, author = ctx.author(row)
        return {
            "author_ref": author_ref,
            "author": author,
            "asked_at": _when(row.get("date_order")) or _when(row.get("create_date")),
            "site": site,
            "requester": ctx.requester(row["user_id"]),
            "currency": _name(row["currency_id"]),
            "customer_class": _customer_class(partner, ctx),
            "counterparty": partner["name"],
            "counterparty_ref": f"res.partner,{partner['id']}",
        }

    def _price_override(self, row, ctx, site, partner) -> Draft | None:
        offending = _below_floor(ctx.lines[("sale.order.line", row["id"])], ctx)
        if not offending:
            return None
        worst = max(offending, key=lambda item: item["concession"])
        concession = sum((item["concession"] for item in offending), Decimal(0))
        return Draft(
            kind=RequestKind.PRICE_OVERRIDE,
            title=f"{row['name']}: {count(len(offending), 'line')} under the price floor",
            reason=f"Quotation {row['name']} prices below the floor or over the discount cap.",
            amount=concession.quantize(CENT),
            category=worst["category"],
            snapshot={
                "amount": str(concession.quantize(CENT)),
                "lines": sorted([i["product"], str(i["unit_price"])] for i in offending),
                "line_items": [i["item"] for i in offending],
            },
            details={
                "product": worst["product"],
                "unit_price": worst["unit_price"],
                "floor_price": worst["floor_price"],
                "discount_pct": worst["discount"],
                "counterparty_since": partner.get("create_date"),
                "odoo_reference": row["name"],
            },
            **self._common(row, ctx, site, partner),
        )

    def _credit(self, row, ctx, site, partner) -> Draft | None:
        limit = _d(partner.get("credit_limit"))
        exposure = _d(partner.get("credit")) + _d(row["amount_total"])
        if not limit or exposure <= limit:
            return None
        return Draft(
            kind=RequestKind.CREDIT_EXCEPTION,
            title=f"{row['name']}: {partner['name']} over the credit limit",
            reason=f"Confirming {row['name']} takes the customer's exposure to {exposure} "
            f"against a limit of {limit}.",
            amount=_d(row["amount_total"]),
            snapshot={"amount": str(_d(row["amount_total"])), "lines": sorted(row["order_line"])},
            details={
                "credit_limit": limit,
                "exposure": exposure,
                "counterparty_since": partner.get("create_date"),
                "odoo_reference": row["name"],
            },
            **self._common(row, ctx, site, partner),
        )


def _customer_class(partner: dict, ctx: Context) -> str:
    for tag in partner.get("category_id") or []:
        found = CUSTOMER_CLASSES.get(ctx.tag_rows.get(tag, {}).get("name", "").lower())
        if found:
            return found
    return "standard"


def _below_floor(lines: list[dict], ctx: Context) -> list[dict]:
    margin = Decimal(settings.ODOO_PRICE_FLOOR_MARGIN_PCT) / 100
    cap = Decimal(settings.ODOO_DISCOUNT_CAP_PCT)
    found = []
    for line in lines:
        product = ctx.products[_id(line["product_id"])]
        floor = (_d(product["standard_price"]) * (1 + margin)).quantize(CENT)
        discount = _d(line["discount"])
        price = (_d(line["price_unit"]) * (1 - discount / 100)).quantize(CENT)
        if price < floor or discount > cap:
            qty = Decimal(str(line["product_uom_qty"] or 0))
            item = {
                "product": product["display_name"],
                "product_ref": f"product.product,{_id(line['product_id'])}",
                "quantity": _text(qty),
                "uom": _name(line.get("product_uom")),
                "unit_price": str(price),
                "subtotal": str((qty * price).quantize(CENT)),
                "list_price": str(_d(product.get("list_price"))),
                "floor_price": str(floor),
                "discount_pct": _text(discount),
            }
            found.append(
                {
                    "item": {key: value for key, value in item.items() if value != ""},
                    "product": product["display_name"],
                    "category": _name(product["categ_id"]),
                    "unit_price": price,
                    "floor_price": floor,
                    "discount": discount,
                    "concession": max(floor - price, Decimal(0)) * _d(line["product_uom_qty"]),
                }
            )
    return found


class VendorBills:
    model = "account.move"
    fields = [
        "name",
        "state",
        "move_type",
        "partner_id",
        "invoice_origin",
        "amount_total",
        "currency_id",
        "invoice_line_ids",
        "write_date",
    ]
    domain: list = [["move_type", "=", "in_invoice"]]

    def prepare(self, rows, ctx: Context) -> None:
        bills = [r["id"] for r in rows if r["state"] in ("draft", "posted")]
        ctx.children(
            "account.move.line",
            "move_id",
            bills,
            ["move_id", "product_id", "quantity", "price_unit", "purchase_line_id"],
        )
        po_lines = [
            _id(line["purchase_line_id"])
            for b in bills
            for line in ctx.lines[("account.move.line", b)]
        ]
        ctx.fill(
            "purchase.order.line",
            po_lines,
            ["order_id", "product_id", "product_qty", "qty_received", "price_unit"],
            ctx.po_lines,
        )
        orders = {_id(line["order_id"]) for line in ctx.po_lines.values()}
        ctx.fill("purchase.order", orders, ["name", "picking_type_id", "picking_ids"], ctx.orders)
        ctx.fill(
            "stock.picking.type",
            [_id(o["picking_type_id"]) for o in ctx.orders.values()],
            ["warehouse_id"],
            ctx.picking_types,
        )
        # The receipts of those orders, so that a mismatch links the goods that arrived.
        receipts = [
            p for o in orders if o in ctx.orders for p in ctx.orders[o].get("picking_ids") or []
        ]
        ctx.fill("stock.picking", receipts, ["name", "state"], ctx.receipts)

    def handle(self, row, ctx: Context) -> str:
        if row["state"] not in ("draft", "posted"):
            return "ignored"
        comparison = _three_way(ctx.lines[("account.move.line", row["id"])], ctx)
        if comparison is None:
            return "not_from_an_order"
        expected, billed, lines, order = comparison
        tolerance = Decimal(settings.ODOO_MATCH_TOLERANCE_PCT)
        # Equal counts as matched even at zero: a bill drafted from an order before anything
        # arrived bills nothing for nothing received, which is no difference at all.
        if billed == expected or (
            expected and abs(billed - expected) * 100 / expected <= tolerance
        ):
            return "matched"
        site = ctx.site_of_picking_type(_id(order["picking_type_id"]))
        at_stake = abs(billed - expected)
        _, created = case_raise(
            kind="invoice_mismatch",
            site=site,
            severity="high" if at_stake >= 1000 else "medium",
            title=titles.invoice_mismatch(
                bill=row["name"],
                order=order["name"],
                difference=billed - expected,
                currency=_name(row["currency_id"]),
                vendor=_name(row.get("partner_id")),
            ),
            source="odoo",
            dedupe_key=f"odoo:account.move:{row['id']}:invoice_mismatch",
            payload=row,
            evidence={
                "order": order["name"],
                "order_id": order["id"],
                **_receipt_of(order, ctx),
                "bill": row["name"],
                "lines": lines,
                "expected": expected,
                "billed": billed,
                "difference": billed - expected,
                "tolerance_pct": tolerance,
            },
            amount_at_stake=at_stake,
            currency=_name(row["currency_id"]),
            odoo_model=self.model,
            odoo_id=row["id"],
            at=ctx.now,
        )
        return "case_opened" if created else "case_updated"


def _receipt_of(order: dict, ctx: Context) -> dict:
    """The order's last validated receipt, named and linked in the evidence; none yet: nothing."""
    done = [
        ctx.receipts[p]
        for p in order.get("picking_ids") or []
        if p in ctx.receipts and ctx.receipts[p].get("state") == "done"
    ]
    if not done:
        return {}
    receipt = max(done, key=lambda picking: picking["id"])
    return {"receipt": receipt["name"], "receipt_id": receipt["id"]}


def _three_way(bill_lines: list[dict], ctx: Context):
    expected = billed = Decimal(0)
    compared = []
    order = None
    for line in bill_lines:
        po_line = ctx.po_lines.get(_id(line["purchase_line_id"]))
        if po_line is None:
            continue
        order = ctx.orders[_id(po_line["order_id"])]
        owed = _d(po_line["qty_received"]) * _d(po_line["price_unit"])
        asked = _d(line["quantity"]) * _d(line["price_unit"])
        expected, billed = expected + owed, billed + asked
        compared.append(
            {
                "product": _name(line["product_id"]),
                "ordered": _d(po_line["product_qty"]),
                "received": _d(po_line["qty_received"]),
                "order_price": _d(po_line["price_unit"]),
                "billed_quantity": _d(line["quantity"]),
                "billed_price": _d(line["price_unit"]),
                "difference": (asked - owed).quantize(CENT),
            }
        )
    if order is None:
        return None
    return expected.quantize(CENT), billed.quantize(CENT), compared, order


HANDLERS = [PurchaseOrders(), Pickings(), Scraps(), SaleOrders(), VendorBills()]
