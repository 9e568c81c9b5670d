"""Draft/sent `sale.order` with a line under the price floor or over the discount cap (the rule:
approvals.detection) → a price-override request; whose customer would go over the credit
limit → a credit-exception request.
"""

from decimal import Decimal

from approvals.detection import price_below_floor
from approvals.models import RequestKind
from portal.core.formatting import count
from portal.integrations.odoo.mapping.common import (
    CENT,
    CUSTOMER_CLASSES,
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
            id_of(line["product_id"])
            for r in open_orders
            for line in ctx.lines[("sale.order.line", r["id"])]
        ]
        ctx.fill("product.product", products, PRODUCT_FIELDS, ctx.products)
        ctx.fill(
            "res.partner",
            [id_of(r["partner_id"]) for r in open_orders],
            PARTNER_FIELDS,
            ctx.partners,
        )
        tags = [t for r in open_orders for t in ctx.partners[id_of(r["partner_id"])]["category_id"]]
        ctx.fill("res.partner.category", tags, ["name"], ctx.tag_rows)
        ctx.fill("res.users", makers(open_orders), USER_FIELDS, ctx.user_rows)

    def handle(self, row, ctx: Context) -> str:
        if row["state"] not in ("draft", "sent"):
            return "ignored"
        site = ctx.site_of_warehouse(id_of(row["warehouse_id"]))
        partner = ctx.partners[id_of(row["partner_id"])]
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
            "asked_at": moment(row.get("date_order")) or moment(row.get("create_date")),
            "site": site,
            "requester": ctx.requester(row["user_id"]),
            "currency": name_of(row["currency_id"]),
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
        limit = decimal(partner.get("credit_limit"))
        exposure = decimal(partner.get("credit")) + decimal(row["amount_total"])
        if not limit or exposure <= limit:
            return None
        return Draft(
            kind=RequestKind.CREDIT_EXCEPTION,
            title=f"{row['name']}: {partner['name']} over the credit limit",
            reason=f"Confirming {row['name']} takes the customer's exposure to {exposure} "
            f"against a limit of {limit}.",
            amount=decimal(row["amount_total"]),
            snapshot={
                "amount": str(decimal(row["amount_total"])),
                "lines": sorted(row["order_line"]),
            },
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
    """The order's lines as facts for the price floor rule, and those it flags, described."""
    found = []
    for line in lines:
        product = ctx.products[id_of(line["product_id"])]
        check = price_below_floor(
            unit_price=decimal(line["price_unit"]),
            discount_pct=decimal(line["discount"]),
            cost=decimal(product["standard_price"]),
            quantity=decimal(line["product_uom_qty"]),
        )
        if check is None:
            continue
        qty = Decimal(str(line["product_uom_qty"] or 0))
        item = {
            "product": product["display_name"],
            "product_ref": f"product.product,{id_of(line['product_id'])}",
            "quantity": text(qty),
            "uom": name_of(line.get("product_uom")),
            "unit_price": str(check.unit_price),
            "subtotal": str((qty * check.unit_price).quantize(CENT)),
            "list_price": str(decimal(product.get("list_price"))),
            "floor_price": str(check.floor_price),
            "discount_pct": text(check.discount),
        }
        found.append(
            {
                "item": {key: value for key, value in item.items() if value != ""},
                "product": product["display_name"],
                "category": name_of(product["categ_id"]),
                "unit_price": check.unit_price,
                "floor_price": check.floor_price,
                "discount": check.discount,
                "concession": check.concession,
            }
        )
    return found
