"""What every Odoo model's handler shares: reading values, the run's lookups (Context), and
turning a record into a request (Draft, upsert_request).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals import services as approvals
from approvals.models import ApprovalRequest, RequestState
from portal.integrations.odoo.records import ODOO_DATETIME
from sites.models import Site

SYSTEM_USERNAME = "odoo"


CENT = Decimal("0.01")


OPEN_STATES = (RequestState.DRAFT, RequestState.SUBMITTED, RequestState.IN_REVIEW)


UPDATABLE_STATES = (RequestState.IN_REVIEW, RequestState.APPROVED, RequestState.APPLY_FAILED)


USER_FIELDS = ["login", "name"]


PARTNER_FIELDS = ["name", "credit", "credit_limit", "category_id", "create_date"]


PRODUCT_FIELDS = ["standard_price", "list_price", "categ_id", "display_name", "uom_id"]


# Partner tags (res.partner.category) that name a customer class; the rest are "standard".
CUSTOMER_CLASSES = {"key account": "key", "wholesale": "wholesale", "retail": "standard"}


def decimal(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def id_of(value) -> int | None:
    if value in (False, None):
        return None
    return int(value[0]) if isinstance(value, list | tuple) else int(value)


def name_of(value) -> str:
    return value[1] if isinstance(value, list | tuple) and len(value) > 1 else ""


def moment(value) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value[:19], ODOO_DATETIME).replace(tzinfo=UTC)


def text(value: Decimal | float | int) -> str:
    """A number as a plain string without float noise or trailing zeros: '12', '3.5'."""
    number = Decimal(str(value or 0))
    normal = number.normalize()
    return str(normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal)


def makers(rows) -> list[int | None]:
    """The Odoo users a batch's authors are read from: who made each record, and who is
    responsible for it."""
    return [id_of(r.get(field)) for r in rows for field in ("create_uid", "user_id")]


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
            self.lines[(model, id_of(row[parent_field]))].append(row)

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
        orders = sorted({id_of(row["order_id"]) for row in rows} - self.order_currency.keys())
        if orders:
            for order in self.client.read("purchase.order", orders, ["currency_id"]):
                self.order_currency[order["id"]] = id_of(order["currency_id"])
        for row in rows:
            order = id_of(row["order_id"])
            self.prices[id_of(row["product_id"])].append(
                (order, self.order_currency.get(order), decimal(row["price_unit"]))
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
            pair = (id_of(row["product_id"]), id_of(row["location_id"]))
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
        warehouse = id_of(self.picking_types.get(type_id, {}).get("warehouse_id"))
        return self.site_of_warehouse(warehouse)

    def site_of_location(self, location_id: int | None) -> Site:
        return self.site_of_warehouse(
            id_of(self.locations.get(location_id, {}).get("warehouse_id"))
        )

    def site_of_warehouse(self, warehouse_id: int | None) -> Site:
        site = self.sites.get(warehouse_id) if warehouse_id is not None else None
        if site is None:
            raise LookupError(f"Odoo warehouse {warehouse_id} is not the warehouse of an open site")
        return site

    def requester(self, odoo_user) -> object:
        """The Tollgate user whose login or e-mail is the Odoo user's login, else the system."""
        login = self.user_rows.get(id_of(odoo_user), {}).get("login")
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
        made_by, responsible = id_of(row.get("create_uid")), id_of(row.get("user_id"))
        chosen = made_by
        if chosen is None or (responsible is not None and chosen in self.integration_uids()):
            chosen = responsible or made_by
        if chosen is None:
            return "", ""
        name = self.user_rows.get(chosen, {}).get("name") or name_of(
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
    if existing.state not in UPDATABLE_STATES or existing.odoo_snapshot == draft.snapshot:
        return "unchanged"
    change = approvals.OdooChange(
        amount=draft.amount,
        currency=draft.currency,
        lines=draft.snapshot.get("lines", []),
        snapshot=draft.snapshot,
    )
    went_back = approvals.request_odoo_changed(request_id=existing.pk, change=change)
    return "returned_to_review" if went_back else "updated"
