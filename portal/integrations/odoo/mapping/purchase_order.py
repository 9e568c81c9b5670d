"""`purchase.order` in `to approve` → a purchase request (site from
`picking_type_id.warehouse_id`).
"""

from approvals.models import RequestKind
from portal.integrations.odoo.mapping.common import (
    PARTNER_FIELDS,
    PRODUCT_FIELDS,
    USER_FIELDS,
    Context,
    Draft,
    decimal,
    id_of,
    makers,
    moment,
    name_of,
    text,
    upsert_request,
)


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
            [id_of(r["picking_type_id"]) for r in rows],
            ["warehouse_id"],
            ctx.picking_types,
        )
        ctx.fill("res.users", makers(rows), USER_FIELDS, ctx.user_rows)
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
        ctx.fill(
            "res.partner", [id_of(r["partner_id"]) for r in kept], PARTNER_FIELDS, ctx.partners
        )
        products = sorted(
            {
                id_of(line["product_id"])
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
            "amount": str(decimal(row["amount_total"])),
            "currency": name_of(row["currency_id"]),
            "lines": sorted(row["order_line"]),
            "state": row["state"],
        }
        lines = ctx.lines.get(("purchase.order.line", row["id"]), [])
        snapshot["line_items"] = [_purchase_item(line, row, ctx) for line in lines]
        partner = ctx.partners.get(id_of(row["partner_id"]), {})
        author_ref, author = ctx.author(row)
        draft = Draft(
            kind=RequestKind.PURCHASE,
            site=ctx.site_of_picking_type(id_of(row["picking_type_id"])),
            requester=ctx.requester(row["user_id"]),
            title=f"{row['name']} from {name_of(row['partner_id'])}",
            reason=f"Purchase order {row['name']} waits for approval in Odoo.",
            amount=decimal(row["amount_total"]),
            currency=name_of(row["currency_id"]),
            counterparty=name_of(row["partner_id"]),
            counterparty_ref=f"res.partner,{id_of(row['partner_id'])}",
            snapshot=snapshot,
            details={
                "odoo_reference": row["name"],
                "lines": len(row["order_line"]),
                "counterparty_since": partner.get("create_date"),
            },
            author_ref=author_ref,
            author=author,
            asked_at=moment(row.get("date_order")) or moment(row.get("create_date")),
        )
        return upsert_request(self.model, row["id"], draft)


def product_name(line: dict, ctx: Context) -> str:
    product = ctx.products.get(id_of(line.get("product_id")), {})
    return product.get("display_name") or name_of(line.get("product_id"))


def _purchase_item(line: dict, order: dict, ctx: Context) -> dict:
    product_id = id_of(line["product_id"])
    item = {
        "product": product_name(line, ctx),
        "quantity": text(line["product_qty"]),
        "uom": name_of(line.get("product_uom")),
        "unit_price": str(decimal(line["price_unit"])),
        "subtotal": str(decimal(line["price_subtotal"])),
    }
    if product_id is not None:
        item["product_ref"] = f"product.product,{product_id}"
        last = ctx.last_price(product_id, order=order["id"], currency=id_of(order["currency_id"]))
        if last is not None:
            item["last_price"] = str(last)
    return {key: value for key, value in item.items() if value != ""}
