"""The models the sandbox serves: their fields, default orders and how they are named.

Field names follow Odoo 17 (see PROTOCOL.md section 4), so code written against the sandbox
reads a real database unchanged. A few fields exist only here and say so by their prefix:

- `stock.picking.x_tollgate_approval` (boolean): the *approval marker* of an inter-warehouse
  transfer. True means the transfer waits for a Tollgate decision before anyone may validate
  it; Tollgate reads it to raise a request. `x_tollgate_ref` (char) holds the request's
  reference once Tollgate has one. On a real database these are custom fields (Studio).
- `purchase.order.x_sandbox_refuse_approve` (boolean): makes `button_approve` skip the order
  for every user, standing in for a record rule or approval-rights quirk (see actions.py).
- `stock.scrap.x_scrap_value` (float, computed): `scrap_qty * product standard_price`. Real
  Odoo keeps that value in stock valuation layers; the connector should compute it itself.
- `sale.order.line.x_price_floor` (float, computed): `standard_price * 1.05`, the demo price
  floor; a line priced below it, or discounted by more than 15 %, is a price override.

Customers are classed with Odoo's own partner tags (`res.partner.category_id`): "Key
Account", "Wholesale", "Retail", "Credit Watch".
"""

from dataclasses import dataclass
from typing import Any

from portal.integrations.odoo.sandbox import computed as c

RELATIONAL = frozenset({"many2one", "one2many", "many2many"})
X2MANY = frozenset({"one2many", "many2many"})
NUMERIC = frozenset({"integer", "float", "monetary"})
TEXTUAL = frozenset({"char", "text", "html"})


@dataclass(frozen=True)
class Field:
    type: str
    string: str = ""
    relation: str | None = None
    inverse: str | tuple[str, str] | None = None
    selection: tuple[tuple[str, str], ...] | None = None
    required: bool = False
    default: Any = None
    compute: Any = None

    @property
    def stored(self) -> bool:
        return self.compute is None and self.type != "one2many"

    def describe(self, name: str) -> dict:
        """The field as `fields_get` reports it."""
        info = {
            "type": self.type,
            "string": self.string or name.replace("_", " ").title(),
            "required": self.required,
            "readonly": self.compute is not None,
            "store": self.stored,
            "searchable": True,
            "sortable": self.stored,
        }
        if self.relation:
            info["relation"] = self.relation
        if self.type == "one2many" and isinstance(self.inverse, str):
            info["relation_field"] = self.inverse
        if self.selection is not None:
            info["selection"] = [list(pair) for pair in self.selection]
        return info


@dataclass
class ModelSpec:
    name: str
    description: str
    fields: dict[str, Field]
    order: str = "id"
    display: Any = None  # callable(env, row) -> str; else the `name` field
    parent_store: bool = False  # keeps parent_path for child_of / parent_of
    parent_name: str = "parent_id"
    mail_thread: bool = False
    sequence: Any = None  # callable(env, vals) -> name, when `name` is left to the server


def char(string="", **kw):
    return Field("char", string, **kw)


def text(string="", **kw):
    return Field("text", string, **kw)


def html(string="", **kw):
    return Field("html", string, **kw)


def integer(string="", **kw):
    return Field("integer", string, **kw)


def float_(string="", **kw):
    return Field("float", string, **kw)


def monetary(string="", **kw):
    return Field("monetary", string, **kw)


def boolean(string="", **kw):
    return Field("boolean", string, **kw)


def date(string="", **kw):
    return Field("date", string, **kw)


def datetime_(string="", **kw):
    return Field("datetime", string, **kw)


def selection(pairs, string="", **kw):
    return Field("selection", string, selection=tuple(pairs), **kw)


def many2one(relation, string="", **kw):
    return Field("many2one", string, relation=relation, **kw)


def one2many(relation, inverse, string="", **kw):
    return Field("one2many", string, relation=relation, inverse=inverse, **kw)


def many2many(relation, string="", **kw):
    return Field("many2many", string, relation=relation, **kw)


def _now(env):
    return env.now


def _today(env):
    return env.now[:10]


def _uid(env):
    return env.uid


def _company(env):
    return env.company_id


def _company_currency(env):
    return env.company_currency_id


def _states(*names):
    return [(n, n.replace("_", " ").title()) for n in names]


PO_STATES = [
    ("draft", "RFQ"),
    ("sent", "RFQ Sent"),
    ("to approve", "To Approve"),
    ("purchase", "Purchase Order"),
    ("done", "Locked"),
    ("cancel", "Cancelled"),
]
PICKING_STATES = _states("draft", "waiting", "confirmed", "assigned", "done", "cancel")
MOVE_STATES = _states("draft", "waiting", "confirmed", "partially_available", "assigned", "done")
MOVE_STATES += [("cancel", "Cancelled")]
SO_STATES = [("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order")]
SO_STATES += [("cancel", "Cancelled")]
MOVE_TYPES = _states(
    "entry", "out_invoice", "out_refund", "in_invoice", "in_refund", "out_receipt", "in_receipt"
)
PRIORITY = [("0", "Normal"), ("1", "Urgent")]
LOCATION_USAGE = _states("supplier", "view", "internal", "customer", "inventory", "transit")
MESSAGE_TYPES = _states("email", "comment", "notification", "auto_comment", "user_notification")
INVOICE_STATUS = [("no", "Nothing to Bill"), ("to invoice", "Waiting Bills")]
INVOICE_STATUS += [("invoiced", "Fully Billed"), ("upselling", "Upselling Opportunity")]


def _common() -> dict[str, Field]:
    return {
        "id": integer("ID"),
        "display_name": char("Display Name", compute=True),
        "create_date": datetime_("Created on"),
        "write_date": datetime_("Last Updated on"),
        "create_uid": many2one("res.users", "Created by"),
        "write_uid": many2one("res.users", "Last Updated by"),
    }


def _sequence(prefix: str, width: int = 5):
    def name(env, vals) -> str:
        return f"{prefix}{env.next_number(prefix):0{width}d}"

    return name


def _picking_name(env, vals) -> str:
    ptype = env.row("stock.picking.type", vals.get("picking_type_id")) or {}
    warehouse = env.row("stock.warehouse", ptype.get("warehouse_id")) or {}
    prefix = f"{warehouse.get('code', 'WH')}/{ptype.get('sequence_code', 'INT')}/"
    return f"{prefix}{env.next_number(prefix):05d}"


def _specs() -> list[ModelSpec]:
    return [
        ModelSpec(
            "res.company",
            "Companies",
            {
                "name": char("Company Name", required=True),
                "currency_id": many2one("res.currency", "Currency", required=True),
                "partner_id": many2one("res.partner", "Partner"),
                "parent_id": many2one("res.company", "Parent Company"),
                "sequence": integer(default=10),
                "po_double_validation": selection(
                    [
                        ("one_step", "Confirm purchase orders in one step"),
                        ("two_step", "Get 2 levels of approvals to confirm a purchase order"),
                    ],
                    default="two_step",
                ),
                "po_double_validation_amount": monetary("Double validation amount", default=5000.0),
                "po_lock": selection(
                    [("edit", "Allow to edit"), ("lock", "Confirmed orders are locked")],
                    default="edit",
                ),
            },
            order="sequence, name",
        ),
        ModelSpec(
            "res.currency",
            "Currency",
            {
                "name": char("Currency", required=True),
                "symbol": char(),
                "rate": float_(default=1.0),
                "decimal_places": integer(default=2),
                "active": boolean(default=True),
            },
            order="active desc, name",
        ),
        ModelSpec(
            "res.partner",
            "Contact",
            {
                "name": char(required=True),
                "is_company": boolean(default=False),
                "company_id": many2one("res.company", "Company"),
                "parent_id": many2one("res.partner", "Related Company"),
                "email": char(),
                "phone": char(),
                "ref": char("Reference"),
                "city": char(),
                "country_code": char(),
                "supplier_rank": integer(default=0),
                "customer_rank": integer(default=0),
                "credit": monetary("Total Receivable"),
                "credit_limit": monetary("Credit Limit"),
                "use_partner_credit_limit": boolean("Partner Limit"),
                "category_id": many2many("res.partner.category", "Tags"),
                "user_id": many2one("res.users", "Salesperson"),
                "active": boolean(default=True),
            },
            order="name, id desc",
            mail_thread=True,
        ),
        ModelSpec(
            "res.partner.category",
            "Partner Tags",
            {
                "name": char("Tag Name", required=True),
                "color": integer(),
                "parent_id": many2one("res.partner.category", "Parent Category"),
                "parent_path": char(),
                "active": boolean(default=True),
            },
            order="name",
            parent_store=True,
        ),
        ModelSpec(
            "res.users",
            "User",
            {
                "name": char(required=True),
                "login": char(required=True),
                "partner_id": many2one("res.partner", "Related Partner"),
                "company_id": many2one("res.company", "Company", default=_company),
                "company_ids": many2many("res.company", "Companies"),
                "groups_id": many2many("res.groups", "Groups"),
                "active": boolean(default=True),
                "share": boolean(default=False),
                "lang": char(default="en_US"),
                "tz": char(default="Europe/Brussels"),
            },
            order="name, login",
        ),
        ModelSpec(
            "res.groups",
            "Access Groups",
            {"name": char(required=True), "full_name": char("Group Name")},
            order="name",
        ),
        ModelSpec(
            "uom.uom", "Product Unit of Measure", {"name": char(required=True)}, order="name"
        ),
        ModelSpec(
            "product.category",
            "Product Category",
            {
                "name": char(required=True),
                "parent_id": many2one("product.category", "Parent Category"),
                "parent_path": char(),
                "complete_name": char(compute=c.complete_name_of("product.category")),
                "child_id": one2many("product.category", "parent_id", "Child Categories"),
            },
            order="complete_name",
            display=c.complete_name_of("product.category"),
            parent_store=True,
        ),
        ModelSpec(
            "product.product",
            "Product Variant",
            {
                "name": char(required=True),
                "default_code": char("Internal Reference"),
                "barcode": char(),
                "categ_id": many2one("product.category", "Product Category", required=True),
                "type": selection(
                    [
                        ("consu", "Consumable"),
                        ("service", "Service"),
                        ("product", "Storable Product"),
                    ],
                    default="product",
                ),
                "list_price": float_("Sales Price", default=1.0),
                "standard_price": float_("Cost"),
                "uom_id": many2one("uom.uom", "Unit of Measure", default=lambda env: 1),
                "company_id": many2one("res.company", "Company"),
                "seller_id": many2one("res.partner", "Main Vendor"),
                "qty_available": float_("Quantity On Hand", compute=c.qty_available),
                "active": boolean(default=True),
            },
            order="default_code, name, id",
            display=c.product_name,
            mail_thread=True,
        ),
        ModelSpec(
            "stock.location",
            "Inventory Locations",
            {
                "name": char("Location Name", required=True),
                "complete_name": char("Full Location Name", compute=c.location_name),
                "location_id": many2one("stock.location", "Parent Location"),
                "parent_path": char(),
                "usage": selection(LOCATION_USAGE, "Location Type", default="internal"),
                "warehouse_id": many2one("stock.warehouse", "Warehouse"),
                "company_id": many2one("res.company", "Company"),
                "scrap_location": boolean("Is a Scrap Location?"),
                "active": boolean(default=True),
            },
            order="complete_name, id",
            display=c.location_name,
            parent_store=True,
            parent_name="location_id",
        ),
        ModelSpec(
            "stock.warehouse",
            "Warehouse",
            {
                "name": char("Warehouse", required=True),
                "code": char("Short Name", required=True),
                "company_id": many2one("res.company", "Company", required=True, default=_company),
                "partner_id": many2one("res.partner", "Address"),
                "active": boolean(default=True),
                "sequence": integer(default=10),
                "view_location_id": many2one("stock.location", "View Location"),
                "lot_stock_id": many2one("stock.location", "Location Stock"),
                "in_type_id": many2one("stock.picking.type", "In Type"),
                "out_type_id": many2one("stock.picking.type", "Out Type"),
                "int_type_id": many2one("stock.picking.type", "Internal Type"),
            },
            order="sequence, id",
        ),
        ModelSpec(
            "stock.picking.type",
            "Picking Type",
            {
                "name": char("Operation Type", required=True),
                "code": selection(
                    [
                        ("incoming", "Receipt"),
                        ("outgoing", "Delivery"),
                        ("internal", "Internal Transfer"),
                    ],
                    "Type of Operation",
                    required=True,
                ),
                "sequence_code": char("Sequence Prefix"),
                "warehouse_id": many2one("stock.warehouse", "Warehouse"),
                "company_id": many2one("res.company", "Company"),
                "default_location_src_id": many2one("stock.location", "Default Source Location"),
                "default_location_dest_id": many2one(
                    "stock.location", "Default Destination Location"
                ),
                "sequence": integer(default=10),
                "active": boolean(default=True),
            },
            order="sequence, id",
            display=c.picking_type_name,
        ),
        ModelSpec(
            "stock.quant",
            "Quants",
            {
                "product_id": many2one("product.product", "Product", required=True),
                "location_id": many2one("stock.location", "Location", required=True),
                "quantity": float_(),
                "company_id": many2one("res.company", "Company"),
            },
            display=lambda env, row: f"quant {row['id']}",
        ),
        ModelSpec(
            "purchase.order",
            "Purchase Order",
            {
                "name": char("Order Reference", default="New"),
                "partner_id": many2one("res.partner", "Vendor", required=True),
                "partner_ref": char("Vendor Reference"),
                "origin": char("Source Document"),
                "date_order": datetime_("Order Deadline", default=_now),
                "date_approve": datetime_("Confirmation Date"),
                "date_planned": datetime_("Expected Arrival"),
                "currency_id": many2one("res.currency", "Currency", default=_company_currency),
                "state": selection(PO_STATES, "Status", default="draft"),
                "priority": selection(PRIORITY, default="0"),
                "company_id": many2one("res.company", "Company", default=_company),
                "user_id": many2one("res.users", "Buyer", default=_uid),
                "picking_type_id": many2one("stock.picking.type", "Deliver To", required=True),
                "order_line": one2many("purchase.order.line", "order_id", "Order Lines"),
                "picking_ids": one2many("stock.picking", "purchase_id", "Receptions"),
                "invoice_ids": many2many("account.move", "Bills", compute=c.po_invoice_ids),
                "invoice_status": selection(
                    INVOICE_STATUS, "Billing Status", compute=c.po_invoice_status
                ),
                "receipt_status": selection(
                    [
                        ("pending", "Not Received"),
                        ("partial", "Partially Received"),
                        ("full", "Fully Received"),
                    ],
                    compute=c.po_receipt_status,
                ),
                "amount_untaxed": monetary("Untaxed Amount", compute=c.po_amount),
                "amount_tax": monetary("Taxes", compute=c.no_tax),
                "amount_total": monetary("Total", compute=c.po_amount),
                "notes": html("Terms and Conditions"),
                "x_sandbox_refuse_approve": boolean("Sandbox: refuse approval"),
            },
            order="priority desc, id desc",
            mail_thread=True,
            sequence=_sequence("P"),
        ),
        ModelSpec(
            "purchase.order.line",
            "Purchase Order Line",
            {
                "name": char("Description"),
                "order_id": many2one("purchase.order", "Order Reference", required=True),
                "sequence": integer(default=10),
                "product_id": many2one("product.product", "Product"),
                "product_qty": float_("Quantity", default=1.0),
                "product_uom": many2one("uom.uom", "Unit of Measure", default=lambda env: 1),
                "qty_received": float_("Received Qty"),
                "qty_invoiced": float_("Billed Qty", compute=c.po_line_qty_invoiced),
                "price_unit": float_("Unit Price"),
                "price_subtotal": monetary("Subtotal", compute=c.subtotal("product_qty")),
                "price_total": monetary("Total", compute=c.subtotal("product_qty")),
                "date_planned": datetime_("Expected Arrival"),
                "partner_id": many2one("res.partner", "Partner", compute=c.po_line_partner),
                "state": selection(PO_STATES, "Status", compute=c.po_line_state),
                "company_id": many2one("res.company", "Company", default=_company),
            },
            order="order_id, sequence, id",
        ),
        ModelSpec(
            "stock.picking",
            "Transfer",
            {
                "name": char("Reference", default="/"),
                "origin": char("Source Document"),
                "picking_type_id": many2one("stock.picking.type", "Operation Type", required=True),
                "picking_type_code": selection(
                    [
                        ("incoming", "Receipt"),
                        ("outgoing", "Delivery"),
                        ("internal", "Internal Transfer"),
                    ],
                    compute=c.picking_type_code,
                ),
                "location_id": many2one("stock.location", "Source Location", required=True),
                "location_dest_id": many2one(
                    "stock.location", "Destination Location", required=True
                ),
                "partner_id": many2one("res.partner", "Contact"),
                "company_id": many2one("res.company", "Company", default=_company),
                "user_id": many2one("res.users", "Responsible", default=_uid),
                "state": selection(PICKING_STATES, "Status", default="draft"),
                "priority": selection(PRIORITY, default="0"),
                "scheduled_date": datetime_("Scheduled Date", default=_now),
                "date_deadline": datetime_("Deadline"),
                "date_done": datetime_("Date of Transfer"),
                "backorder_id": many2one("stock.picking", "Back Order of"),
                "move_ids": one2many("stock.move", "picking_id", "Stock Moves"),
                "purchase_id": many2one("purchase.order", "Purchase Orders"),
                "sale_id": many2one("sale.order", "Sales Order"),
                "x_tollgate_approval": boolean("Needs Tollgate approval"),
                "x_tollgate_ref": char("Tollgate request"),
            },
            order="priority desc, scheduled_date asc, id desc",
            mail_thread=True,
            sequence=_picking_name,
        ),
        ModelSpec(
            "stock.move",
            "Stock Move",
            {
                "name": char("Description"),
                "picking_id": many2one("stock.picking", "Transfer"),
                "product_id": many2one("product.product", "Product", required=True),
                "product_uom_qty": float_("Demand", default=0.0),
                "quantity": float_("Quantity"),
                "product_uom": many2one("uom.uom", "UoM", default=lambda env: 1),
                "location_id": many2one("stock.location", "Source Location", required=True),
                "location_dest_id": many2one(
                    "stock.location", "Destination Location", required=True
                ),
                "state": selection(MOVE_STATES, "Status", default="draft"),
                "date": datetime_("Date Scheduled", default=_now),
                "purchase_line_id": many2one("purchase.order.line", "Purchase Order Line"),
                "sale_line_id": many2one("sale.order.line", "Sale Line"),
                "company_id": many2one("res.company", "Company", default=_company),
                "sequence": integer(default=10),
            },
            order="sequence, id",
        ),
        ModelSpec(
            "stock.scrap",
            "Scrap",
            {
                "name": char("Reference", default="New"),
                "origin": char("Source Document"),
                "product_id": many2one("product.product", "Product", required=True),
                "scrap_qty": float_("Quantity", default=1.0),
                "product_uom_id": many2one("uom.uom", "Unit of Measure", default=lambda env: 1),
                "location_id": many2one("stock.location", "Source Location", required=True),
                "scrap_location_id": many2one("stock.location", "Scrap Location"),
                "picking_id": many2one("stock.picking", "Picking"),
                "lot_id": many2one("stock.lot", "Lot/Serial"),
                "company_id": many2one("res.company", "Company", default=_company),
                "state": selection(
                    [("draft", "Draft"), ("done", "Done")], "Status", default="draft"
                ),
                "date_done": datetime_("Date"),
                "x_scrap_value": float_("Sandbox: scrap value", compute=c.scrap_value),
            },
            order="id desc",
            mail_thread=True,
            sequence=_sequence("SP/"),
        ),
        ModelSpec(
            "stock.lot",
            "Lot/Serial",
            {"name": char(required=True), "product_id": many2one("product.product")},
        ),
        ModelSpec(
            "sale.order",
            "Sales Order",
            {
                "name": char("Order Reference", default="New"),
                "partner_id": many2one("res.partner", "Customer", required=True),
                "client_order_ref": char("Customer Reference"),
                "origin": char("Source Document"),
                "date_order": datetime_("Order Date", default=_now),
                "validity_date": date("Expiration"),
                "pricelist_id": many2one("product.pricelist", "Pricelist"),
                "currency_id": many2one("res.currency", "Currency", default=_company_currency),
                "state": selection(SO_STATES, "Status", default="draft"),
                "locked": boolean(default=False),
                "company_id": many2one("res.company", "Company", default=_company),
                "user_id": many2one("res.users", "Salesperson", default=_uid),
                "warehouse_id": many2one("stock.warehouse", "Warehouse"),
                "order_line": one2many("sale.order.line", "order_id", "Order Lines"),
                "picking_ids": one2many("stock.picking", "sale_id", "Transfers"),
                "invoice_status": selection(
                    [
                        ("upselling", "Upselling Opportunity"),
                        ("invoiced", "Fully Invoiced"),
                        ("to invoice", "To Invoice"),
                        ("no", "Nothing to Invoice"),
                    ],
                    default="no",
                ),
                "amount_untaxed": monetary("Untaxed Amount", compute=c.so_amount),
                "amount_tax": monetary("Taxes", compute=c.no_tax),
                "amount_total": monetary("Total", compute=c.so_amount),
            },
            order="date_order desc, id desc",
            mail_thread=True,
            sequence=_sequence("S"),
        ),
        ModelSpec(
            "product.pricelist",
            "Pricelist",
            {
                "name": char(required=True),
                "currency_id": many2one("res.currency"),
                "active": boolean(default=True),
            },
        ),
        ModelSpec(
            "sale.order.line",
            "Sales Order Line",
            {
                "name": text("Description"),
                "order_id": many2one("sale.order", "Order Reference", required=True),
                "sequence": integer(default=10),
                "product_id": many2one("product.product", "Product"),
                "product_uom_qty": float_("Quantity", default=1.0),
                "product_uom": many2one("uom.uom", "Unit of Measure", default=lambda env: 1),
                "qty_delivered": float_("Delivery Quantity"),
                "qty_invoiced": float_("Invoiced Quantity"),
                "price_unit": float_("Unit Price"),
                "discount": float_("Discount (%)"),
                "price_subtotal": monetary("Subtotal", compute=c.subtotal("product_uom_qty")),
                "price_total": monetary("Total", compute=c.subtotal("product_uom_qty")),
                "x_price_floor": float_("Sandbox: price floor", compute=c.price_floor),
                "state": selection(SO_STATES, "Order Status", compute=c.so_line_state),
                "company_id": many2one("res.company", "Company", default=_company),
            },
            order="order_id, sequence, id",
        ),
        ModelSpec(
            "account.journal",
            "Journal",
            {
                "name": char(required=True),
                "code": char(),
                "type": selection(_states("sale", "purchase", "cash", "bank", "general")),
                "company_id": many2one("res.company"),
            },
        ),
        ModelSpec(
            "account.move",
            "Journal Entry",
            {
                "name": char("Number", default="/"),
                "ref": char("Reference"),
                "move_type": selection(MOVE_TYPES, "Type", default="entry", required=True),
                "state": selection(
                    [("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled")],
                    "Status",
                    default="draft",
                ),
                "date": date(default=_today),
                "invoice_date": date("Invoice/Bill Date"),
                "invoice_date_due": date("Due Date"),
                "invoice_origin": char("Origin"),
                "partner_id": many2one("res.partner", "Partner"),
                "journal_id": many2one("account.journal", "Journal"),
                "company_id": many2one("res.company", "Company", default=_company),
                "currency_id": many2one("res.currency", "Currency", default=_company_currency),
                "payment_state": selection(
                    [
                        ("not_paid", "Not Paid"),
                        ("in_payment", "In Payment"),
                        ("paid", "Paid"),
                        ("partial", "Partially Paid"),
                        ("reversed", "Reversed"),
                    ],
                    default="not_paid",
                ),
                "invoice_line_ids": one2many("account.move.line", "move_id", "Invoice lines"),
                "line_ids": one2many("account.move.line", "move_id", "Journal Items"),
                "amount_untaxed": monetary("Untaxed Amount", compute=c.move_amount),
                "amount_tax": monetary("Tax", compute=c.no_tax),
                "amount_total": monetary("Total", compute=c.move_amount),
                "amount_residual": monetary("Amount Due", compute=c.move_residual),
            },
            order="date desc, name desc, id desc",
            display=c.move_display,
            mail_thread=True,
        ),
        ModelSpec(
            "account.move.line",
            "Journal Item",
            {
                "name": char("Label"),
                "move_id": many2one("account.move", "Journal Entry", required=True),
                "product_id": many2one("product.product", "Product"),
                "quantity": float_(default=1.0),
                "price_unit": float_("Unit Price"),
                "discount": float_("Discount (%)"),
                "price_subtotal": monetary("Subtotal", compute=c.subtotal("quantity")),
                "purchase_line_id": many2one("purchase.order.line", "Purchase Order Line"),
                "sale_line_ids": many2many("sale.order.line", "Sales Order Lines"),
                "display_type": selection(
                    _states("product", "line_section", "line_note", "tax", "payment_term"),
                    default="product",
                ),
                "company_id": many2one("res.company", "Company", default=_company),
            },
            order="move_id, id",
        ),
        ModelSpec(
            "mail.message",
            "Message",
            {
                "subject": char(),
                "body": html("Contents", default=""),
                "model": char("Related Document Model"),
                "res_id": integer("Related Document ID"),
                "record_name": char("Message Record Name"),
                "message_type": selection(MESSAGE_TYPES, "Type", default="comment", required=True),
                "subtype_id": many2one("mail.message.subtype", "Subtype"),
                "author_id": many2one("res.partner", "Author"),
                "date": datetime_(default=_now),
            },
            order="id desc",
            display=lambda env, row: row.get("record_name") or row.get("subject") or "",
        ),
        ModelSpec(
            "mail.message.subtype",
            "Message subtypes",
            {"name": char(required=True), "internal": boolean("Internal Only")},
        ),
        ModelSpec(
            "ir.model",
            "Models",
            {
                "name": char("Model Description", required=True),
                "model": char("Model", required=True),
                "state": selection(
                    [("manual", "Custom Object"), ("base", "Base Object")], default="base"
                ),
                "transient": boolean(),
            },
            order="model",
        ),
        ModelSpec(
            "ir.model.data",
            "Model Data",
            {
                "name": char("External Identifier", required=True),
                "module": char(required=True),
                "model": char("Model Name", required=True),
                "res_id": integer("Record ID"),
            },
            order="module, model, name",
            display=lambda env, row: f"{row['module']}.{row['name']}",
        ),
    ]


def _with_common(spec: ModelSpec) -> ModelSpec:
    spec.fields = {**_common(), **spec.fields}
    if spec.mail_thread:
        spec.fields["message_ids"] = one2many(
            "mail.message", ("model", "res_id"), "Messages", compute=c.message_ids_of(spec.name)
        )
    return spec


REGISTRY: dict[str, ModelSpec] = {spec.name: _with_common(spec) for spec in _specs()}
