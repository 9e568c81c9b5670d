"""Quotations and sales orders, their lines, and pricelists."""

from portal.integrations.odoo.sandbox import computed as c
from portal.integrations.odoo.sandbox.models.fields import (
    ModelSpec,
    boolean,
    char,
    company_currency,
    current_company,
    current_uid,
    date,
    datetime_,
    float_,
    integer,
    many2one,
    monetary,
    now,
    one2many,
    prefixed_sequence,
    selection,
    text,
)

SO_STATES = [("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order")]
SO_STATES += [("cancel", "Cancelled")]


def specs() -> list[ModelSpec]:
    """The sales models."""
    return [
        ModelSpec(
            "sale.order",
            "Sales Order",
            {
                "name": char("Order Reference", default="New"),
                "partner_id": many2one("res.partner", "Customer", required=True),
                "client_order_ref": char("Customer Reference"),
                "origin": char("Source Document"),
                "date_order": datetime_("Order Date", default=now),
                "validity_date": date("Expiration"),
                "pricelist_id": many2one("product.pricelist", "Pricelist"),
                "currency_id": many2one("res.currency", "Currency", default=company_currency),
                "state": selection(SO_STATES, "Status", default="draft"),
                "locked": boolean(default=False),
                "company_id": many2one("res.company", "Company", default=current_company),
                "user_id": many2one("res.users", "Salesperson", default=current_uid),
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
            sequence=prefixed_sequence("S"),
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
                "company_id": many2one("res.company", "Company", default=current_company),
            },
            order="order_id, sequence, id",
        ),
    ]
