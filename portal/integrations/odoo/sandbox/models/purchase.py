"""Purchase orders and their lines."""

from portal.integrations.odoo.sandbox import computed as c
from portal.integrations.odoo.sandbox.models.fields import (
    PRIORITY,
    ModelSpec,
    boolean,
    char,
    company_currency,
    current_company,
    current_uid,
    datetime_,
    float_,
    html,
    integer,
    many2many,
    many2one,
    monetary,
    now,
    one2many,
    prefixed_sequence,
    selection,
)

PO_STATES = [
    ("draft", "RFQ"),
    ("sent", "RFQ Sent"),
    ("to approve", "To Approve"),
    ("purchase", "Purchase Order"),
    ("done", "Locked"),
    ("cancel", "Cancelled"),
]
INVOICE_STATUS = [("no", "Nothing to Bill"), ("to invoice", "Waiting Bills")]
INVOICE_STATUS += [("invoiced", "Fully Billed"), ("upselling", "Upselling Opportunity")]


def specs() -> list[ModelSpec]:
    """The purchase models."""
    return [
        ModelSpec(
            "purchase.order",
            "Purchase Order",
            {
                "name": char("Order Reference", default="New"),
                "partner_id": many2one("res.partner", "Vendor", required=True),
                "partner_ref": char("Vendor Reference"),
                "origin": char("Source Document"),
                "date_order": datetime_("Order Deadline", default=now),
                "date_approve": datetime_("Confirmation Date"),
                "date_planned": datetime_("Expected Arrival"),
                "currency_id": many2one("res.currency", "Currency", default=company_currency),
                "state": selection(PO_STATES, "Status", default="draft"),
                "priority": selection(PRIORITY, default="0"),
                "company_id": many2one("res.company", "Company", default=current_company),
                "user_id": many2one("res.users", "Buyer", default=current_uid),
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
            sequence=prefixed_sequence("P"),
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
                "company_id": many2one("res.company", "Company", default=current_company),
            },
            order="order_id, sequence, id",
        ),
    ]
