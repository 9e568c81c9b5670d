"""Journals, invoices and bills, and their lines."""

from portal.integrations.odoo.sandbox import computed as c
from portal.integrations.odoo.sandbox.models.fields import (
    ModelSpec,
    char,
    company_currency,
    current_company,
    date,
    float_,
    many2many,
    many2one,
    monetary,
    one2many,
    selection,
    titled,
    today,
)

MOVE_TYPES = titled(
    "entry", "out_invoice", "out_refund", "in_invoice", "in_refund", "out_receipt", "in_receipt"
)


def specs() -> list[ModelSpec]:
    """The accounting models."""
    return [
        ModelSpec(
            "account.journal",
            "Journal",
            {
                "name": char(required=True),
                "code": char(),
                "type": selection(titled("sale", "purchase", "cash", "bank", "general")),
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
                "date": date(default=today),
                "invoice_date": date("Invoice/Bill Date"),
                "invoice_date_due": date("Due Date"),
                "invoice_origin": char("Origin"),
                "partner_id": many2one("res.partner", "Partner"),
                "journal_id": many2one("account.journal", "Journal"),
                "company_id": many2one("res.company", "Company", default=current_company),
                "currency_id": many2one("res.currency", "Currency", default=company_currency),
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
                    titled("product", "line_section", "line_note", "tax", "payment_term"),
                    default="product",
                ),
                "company_id": many2one("res.company", "Company", default=current_company),
            },
            order="move_id, id",
        ),
    ]
