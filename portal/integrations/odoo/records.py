"""Typed, read-only copies of the Odoo records Tollgate works with.

Odoo's JSON speaks in `False` for "no value", many2one as `id` or `[id, "name"]` depending on
how it was read, floats for money and naive UTC strings for times. Each record class here turns
one `search_read` row into Python values Tollgate can trust: `None`, `Ref`, `Decimal` and aware
UTC datetimes. Each also names the fields it needs (`FIELDS`), so the connector never asks
Odoo for every field of a model (which computes them all).
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Self, TypeVar

ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"
ODOO_DATE = "%Y-%m-%d"
R = TypeVar("R", bound="OdooRecord")


@dataclass(frozen=True)
class Ref:
    """A many2one value: the id, and the display name when Odoo sent it."""

    id: int
    name: str | None = None


def many2one(value: Any) -> Ref | None:
    """`False`, `id` or `[id, name]` as a `Ref` or None."""
    if value is False or value is None:
        return None
    if isinstance(value, (list, tuple)):
        record_id, name = value[0], value[1] if len(value) > 1 else None
        return Ref(int(record_id), name if isinstance(name, str) else None)
    return Ref(int(value))


def x2many(value: Any) -> tuple[int, ...]:
    """A one2many or many2many value as a tuple of ids."""
    return tuple(int(record_id) for record_id in value or ())


def text(value: Any) -> str | None:
    """A char, text or selection value; Odoo's `False` becomes None."""
    return None if value is False or value is None else str(value)


def integer(value: Any) -> int:
    """An integer field (Odoo sends 0, never False, for an empty one)."""
    return int(value or 0)


def boolean(value: Any) -> bool:
    """A boolean field."""
    return bool(value)


def decimal(value: Any) -> Decimal | None:
    """A monetary or float field as an exact Decimal (from the float's shortest repr)."""
    if value is False or value is None:
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def utc_datetime(value: Any) -> datetime | None:
    """A datetime field ("YYYY-MM-DD HH:MM:SS", naive UTC) as an aware UTC datetime."""
    if value is False or value is None:
        return None
    return datetime.strptime(value[:19], ODOO_DATETIME).replace(tzinfo=UTC)


def day(value: Any) -> date | None:
    """A date field ("YYYY-MM-DD") as a date."""
    if value is False or value is None:
        return None
    return datetime.strptime(value[:10], ODOO_DATE).date()


def odoo(source: str, convert: Callable[[Any], Any]) -> Any:
    """Declare a record attribute read from the Odoo field `source` through `convert`."""
    return field(metadata={"odoo": source, "convert": convert})


@dataclass(frozen=True)
class OdooRecord:
    """Base of the typed records; `record()` fills in `MODEL` and `FIELDS`."""

    MODEL: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[str, ...]] = ()

    id: int = odoo("id", int)

    @classmethod
    def from_odoo(cls, row: dict) -> Self:
        """Build the record from one `read`/`search_read` row."""
        values = {}
        for attribute in fields(cls):
            source = attribute.metadata.get("odoo")
            if source is None:
                continue
            if source not in row:
                raise ValueError(f"{cls.MODEL} row lacks {source!r}; read {cls.__name__}.FIELDS")
            values[attribute.name] = attribute.metadata["convert"](row[source])
        return cls(**values)


def record(model: str) -> Callable[[type[R]], type[R]]:
    """Make a class a frozen record of `model` and list the Odoo fields it reads."""

    def declare(cls: type[R]) -> type[R]:
        cls = dataclass(frozen=True)(cls)
        cls.MODEL = model
        sources = (f.metadata.get("odoo") for f in fields(cls))
        cls.FIELDS = tuple(source for source in sources if source not in (None, "id"))
        return cls

    return declare


# --- Purchasing -------------------------------------------------------------------------------


@record("purchase.order.line")
class PurchaseOrderLine(OdooRecord):
    order: Ref | None = odoo("order_id", many2one)
    product: Ref | None = odoo("product_id", many2one)
    description: str | None = odoo("name", text)
    quantity: Decimal | None = odoo("product_qty", decimal)
    quantity_received: Decimal | None = odoo("qty_received", decimal)
    quantity_invoiced: Decimal | None = odoo("qty_invoiced", decimal)
    price_unit: Decimal | None = odoo("price_unit", decimal)
    price_subtotal: Decimal | None = odoo("price_subtotal", decimal)
    price_total: Decimal | None = odoo("price_total", decimal)
    date_planned: datetime | None = odoo("date_planned", utc_datetime)
    write_date: datetime | None = odoo("write_date", utc_datetime)


@record("purchase.order")
class PurchaseOrder(OdooRecord):
    name: str | None = odoo("name", text)
    state: str | None = odoo("state", text)
    partner: Ref | None = odoo("partner_id", many2one)
    partner_ref: str | None = odoo("partner_ref", text)
    date_order: datetime | None = odoo("date_order", utc_datetime)
    date_approve: datetime | None = odoo("date_approve", utc_datetime)
    date_planned: datetime | None = odoo("date_planned", utc_datetime)
    currency: Ref | None = odoo("currency_id", many2one)
    amount_untaxed: Decimal | None = odoo("amount_untaxed", decimal)
    amount_tax: Decimal | None = odoo("amount_tax", decimal)
    amount_total: Decimal | None = odoo("amount_total", decimal)
    company: Ref | None = odoo("company_id", many2one)
    user: Ref | None = odoo("user_id", many2one)
    picking_type: Ref | None = odoo("picking_type_id", many2one)
    origin: str | None = odoo("origin", text)
    priority: str | None = odoo("priority", text)
    invoice_status: str | None = odoo("invoice_status", text)
    receipt_status: str | None = odoo("receipt_status", text)
    line_ids: tuple[int, ...] = odoo("order_line", x2many)
    picking_ids: tuple[int, ...] = odoo("picking_ids", x2many)
    invoice_ids: tuple[int, ...] = odoo("invoice_ids", x2many)
    write_date: datetime | None = odoo("write_date", utc_datetime)
    lines: tuple[PurchaseOrderLine, ...] = ()


# --- Stock ------------------------------------------------------------------------------------


@record("stock.move")
class StockMove(OdooRecord):
    picking: Ref | None = odoo("picking_id", many2one)
    product: Ref | None = odoo("product_id", many2one)
    state: str | None = odoo("state", text)
    demand: Decimal | None = odoo("product_uom_qty", decimal)
    # `quantity` is Odoo 17+; Odoo 16 calls it `quantity_done`.
    quantity: Decimal | None = odoo("quantity", decimal)
    location: Ref | None = odoo("location_id", many2one)
    location_dest: Ref | None = odoo("location_dest_id", many2one)
    date: datetime | None = odoo("date", utc_datetime)
    write_date: datetime | None = odoo("write_date", utc_datetime)


@record("stock.picking")
class StockPicking(OdooRecord):
    name: str | None = odoo("name", text)
    state: str | None = odoo("state", text)
    picking_type: Ref | None = odoo("picking_type_id", many2one)
    picking_type_code: str | None = odoo("picking_type_code", text)
    location: Ref | None = odoo("location_id", many2one)
    location_dest: Ref | None = odoo("location_dest_id", many2one)
    partner: Ref | None = odoo("partner_id", many2one)
    company: Ref | None = odoo("company_id", many2one)
    user: Ref | None = odoo("user_id", many2one)
    backorder: Ref | None = odoo("backorder_id", many2one)
    origin: str | None = odoo("origin", text)
    priority: str | None = odoo("priority", text)
    scheduled_date: datetime | None = odoo("scheduled_date", utc_datetime)
    date_deadline: datetime | None = odoo("date_deadline", utc_datetime)
    date_done: datetime | None = odoo("date_done", utc_datetime)
    move_ids: tuple[int, ...] = odoo("move_ids", x2many)
    write_date: datetime | None = odoo("write_date", utc_datetime)
    moves: tuple[StockMove, ...] = ()


@record("stock.scrap")
class StockScrap(OdooRecord):
    name: str | None = odoo("name", text)
    state: str | None = odoo("state", text)
    product: Ref | None = odoo("product_id", many2one)
    quantity: Decimal | None = odoo("scrap_qty", decimal)
    uom: Ref | None = odoo("product_uom_id", many2one)
    location: Ref | None = odoo("location_id", many2one)
    scrap_location: Ref | None = odoo("scrap_location_id", many2one)
    picking: Ref | None = odoo("picking_id", many2one)
    lot: Ref | None = odoo("lot_id", many2one)
    company: Ref | None = odoo("company_id", many2one)
    origin: str | None = odoo("origin", text)
    date_done: datetime | None = odoo("date_done", utc_datetime)
    write_date: datetime | None = odoo("write_date", utc_datetime)


@record("stock.warehouse")
class Warehouse(OdooRecord):
    name: str | None = odoo("name", text)
    code: str | None = odoo("code", text)
    company: Ref | None = odoo("company_id", many2one)
    active: bool = odoo("active", boolean)
    stock_location: Ref | None = odoo("lot_stock_id", many2one)
    view_location: Ref | None = odoo("view_location_id", many2one)
    receipt_type: Ref | None = odoo("in_type_id", many2one)
    delivery_type: Ref | None = odoo("out_type_id", many2one)
    internal_type: Ref | None = odoo("int_type_id", many2one)
    write_date: datetime | None = odoo("write_date", utc_datetime)


# --- Sales ------------------------------------------------------------------------------------


@record("sale.order.line")
class SaleOrderLine(OdooRecord):
    order: Ref | None = odoo("order_id", many2one)
    product: Ref | None = odoo("product_id", many2one)
    description: str | None = odoo("name", text)
    quantity: Decimal | None = odoo("product_uom_qty", decimal)
    quantity_delivered: Decimal | None = odoo("qty_delivered", decimal)
    quantity_invoiced: Decimal | None = odoo("qty_invoiced", decimal)
    price_unit: Decimal | None = odoo("price_unit", decimal)
    discount: Decimal | None = odoo("discount", decimal)
    price_subtotal: Decimal | None = odoo("price_subtotal", decimal)
    price_total: Decimal | None = odoo("price_total", decimal)
    write_date: datetime | None = odoo("write_date", utc_datetime)


@record("sale.order")
class SaleOrder(OdooRecord):
    name: str | None = odoo("name", text)
    state: str | None = odoo("state", text)
    locked: bool = odoo("locked", boolean)
    partner: Ref | None = odoo("partner_id", many2one)
    date_order: datetime | None = odoo("date_order", utc_datetime)
    pricelist: Ref | None = odoo("pricelist_id", many2one)
    currency: Ref | None = odoo("currency_id", many2one)
    amount_untaxed: Decimal | None = odoo("amount_untaxed", decimal)
    amount_tax: Decimal | None = odoo("amount_tax", decimal)
    amount_total: Decimal | None = odoo("amount_total", decimal)
    company: Ref | None = odoo("company_id", many2one)
    user: Ref | None = odoo("user_id", many2one)
    invoice_status: str | None = odoo("invoice_status", text)
    line_ids: tuple[int, ...] = odoo("order_line", x2many)
    write_date: datetime | None = odoo("write_date", utc_datetime)
    lines: tuple[SaleOrderLine, ...] = ()


# --- Accounting -------------------------------------------------------------------------------


@record("account.move.line")
class AccountMoveLine(OdooRecord):
    move: Ref | None = odoo("move_id", many2one)
    product: Ref | None = odoo("product_id", many2one)
    description: str | None = odoo("name", text)
    quantity: Decimal | None = odoo("quantity", decimal)
    price_unit: Decimal | None = odoo("price_unit", decimal)
    price_subtotal: Decimal | None = odoo("price_subtotal", decimal)
    purchase_line: Ref | None = odoo("purchase_line_id", many2one)
    write_date: datetime | None = odoo("write_date", utc_datetime)


@record("account.move")
class AccountMove(OdooRecord):
    name: str | None = odoo("name", text)
    ref: str | None = odoo("ref", text)
    move_type: str | None = odoo("move_type", text)
    state: str | None = odoo("state", text)
    accounting_date: date | None = odoo("date", day)
    invoice_date: date | None = odoo("invoice_date", day)
    invoice_date_due: date | None = odoo("invoice_date_due", day)
    partner: Ref | None = odoo("partner_id", many2one)
    journal: Ref | None = odoo("journal_id", many2one)
    company: Ref | None = odoo("company_id", many2one)
    currency: Ref | None = odoo("currency_id", many2one)
    amount_untaxed: Decimal | None = odoo("amount_untaxed", decimal)
    amount_tax: Decimal | None = odoo("amount_tax", decimal)
    amount_total: Decimal | None = odoo("amount_total", decimal)
    amount_residual: Decimal | None = odoo("amount_residual", decimal)
    payment_state: str | None = odoo("payment_state", text)
    invoice_origin: str | None = odoo("invoice_origin", text)
    line_ids: tuple[int, ...] = odoo("invoice_line_ids", x2many)
    write_date: datetime | None = odoo("write_date", utc_datetime)
    lines: tuple[AccountMoveLine, ...] = ()


# --- Partners ---------------------------------------------------------------------------------


@record("res.partner")
class Partner(OdooRecord):
    name: str | None = odoo("name", text)
    ref: str | None = odoo("ref", text)
    email: str | None = odoo("email", text)
    phone: str | None = odoo("phone", text)
    is_company: bool = odoo("is_company", boolean)
    parent: Ref | None = odoo("parent_id", many2one)
    company: Ref | None = odoo("company_id", many2one)
    active: bool = odoo("active", boolean)
    write_date: datetime | None = odoo("write_date", utc_datetime)


RECORDS: tuple[type[OdooRecord], ...] = (
    PurchaseOrder,
    PurchaseOrderLine,
    StockPicking,
    StockMove,
    StockScrap,
    SaleOrder,
    SaleOrderLine,
    AccountMove,
    AccountMoveLine,
    Warehouse,
    Partner,
)
# The fields read for each model, by model name.
FIELDS: dict[str, tuple[str, ...]] = {cls.MODEL: cls.FIELDS for cls in RECORDS}
