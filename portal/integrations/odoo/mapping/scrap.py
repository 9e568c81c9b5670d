"""Draft `stock.scrap` worth at least ODOO_WRITE_OFF_THRESHOLD (quantity × product cost) → a
write-off request.
"""

from django.conf import settings

from approvals.models import RequestKind
from portal.integrations.odoo.mapping.common import (
    CENT,
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
            [id_of(r["location_id"]) for r in drafts],
            ["warehouse_id"],
            ctx.locations,
        )
        ctx.fill(
            "product.product",
            [id_of(r["product_id"]) for r in drafts],
            PRODUCT_FIELDS,
            ctx.products,
        )
        ctx.fill("res.users", makers(drafts), USER_FIELDS, ctx.user_rows)

    def handle(self, row, ctx: Context) -> str:
        if row["state"] != "draft":
            return "ignored"
        product = ctx.products[id_of(row["product_id"])]
        value = (decimal(row["scrap_qty"]) * decimal(product["standard_price"])).quantize(CENT)
        if value < settings.ODOO_WRITE_OFF_THRESHOLD:
            return "below_threshold"
        site = ctx.site_of_location(id_of(row["location_id"]))
        author_ref, author = ctx.author(row)
        item = {
            "product": product["display_name"],
            "product_ref": f"product.product,{id_of(row['product_id'])}",
            "quantity": text(row["scrap_qty"]),
            "uom": name_of(row.get("product_uom_id")),
            "unit_price": str(decimal(product["standard_price"])),
            "subtotal": str(value),
        }
        draft = Draft(
            kind=RequestKind.WRITE_OFF,
            site=site,
            requester=ctx.system_user(),
            title=f"{row['name']}: scrap {text(row['scrap_qty'])} × {product['display_name']}",
            reason=f"Scrap {row['name']} ({row['origin'] or 'no source document'}) in Odoo.",
            amount=value,
            currency=site.currency,
            category=name_of(product["categ_id"]),
            snapshot={
                "amount": str(value),
                "lines": [[id_of(row["product_id"]), str(decimal(row["scrap_qty"]))]],
                "line_items": [{key: v for key, v in item.items() if v != ""}],
            },
            details={"odoo_reference": row["name"], "product": product["display_name"]},
            author_ref=author_ref,
            author=author,
            asked_at=moment(row.get("create_date")),
        )
        return upsert_request(self.model, row["id"], draft)
