"""Inventory: locations, warehouses and their operation types, quants, and the transfers
(pickings and their moves), scraps and lots."""

from portal.integrations.odoo.sandbox import computed as c
from portal.integrations.odoo.sandbox.models.fields import (
    PRIORITY,
    ModelSpec,
    boolean,
    char,
    current_company,
    current_uid,
    datetime_,
    float_,
    integer,
    many2one,
    now,
    one2many,
    prefixed_sequence,
    selection,
    titled,
)

PICKING_STATES = titled("draft", "waiting", "confirmed", "assigned", "done", "cancel")
MOVE_STATES = titled("draft", "waiting", "confirmed", "partially_available", "assigned", "done")
MOVE_STATES += [("cancel", "Cancelled")]
LOCATION_USAGE = titled("supplier", "view", "internal", "customer", "inventory", "transit")


def _picking_name(env, vals) -> str:
    ptype = env.row("stock.picking.type", vals.get("picking_type_id")) or {}
    warehouse = env.row("stock.warehouse", ptype.get("warehouse_id")) or {}
    prefix = f"{warehouse.get('code', 'WH')}/{ptype.get('sequence_code', 'INT')}/"
    return f"{prefix}{env.next_number(prefix):05d}"


def places() -> list[ModelSpec]:
    """Where stock is: locations, warehouses, operation types, quants."""
    return [
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
                "company_id": many2one(
                    "res.company", "Company", required=True, default=current_company
                ),
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
    ]


def transfers() -> list[ModelSpec]:
    """How stock moves: pickings, moves, scraps and lots."""
    return [
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
                "company_id": many2one("res.company", "Company", default=current_company),
                "user_id": many2one("res.users", "Responsible", default=current_uid),
                "state": selection(PICKING_STATES, "Status", default="draft"),
                "priority": selection(PRIORITY, default="0"),
                "scheduled_date": datetime_("Scheduled Date", default=now),
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
                "date": datetime_("Date Scheduled", default=now),
                "purchase_line_id": many2one("purchase.order.line", "Purchase Order Line"),
                "sale_line_id": many2one("sale.order.line", "Sale Line"),
                "company_id": many2one("res.company", "Company", default=current_company),
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
                "company_id": many2one("res.company", "Company", default=current_company),
                "state": selection(
                    [("draft", "Draft"), ("done", "Done")], "Status", default="draft"
                ),
                "date_done": datetime_("Date"),
                "x_scrap_value": float_("Sandbox: scrap value", compute=c.scrap_value),
            },
            order="id desc",
            mail_thread=True,
            sequence=prefixed_sequence("SP/"),
        ),
        ModelSpec(
            "stock.lot",
            "Lot/Serial",
            {"name": char(required=True), "product_id": many2one("product.product")},
        ),
    ]
