"""`stock.picking`: an internal transfer carrying the approval marker → a transfer request; a
receipt or delivery past its scheduled date and not done → a shipment-delay case; a done
receipt whose quantities differ from the demand beyond tolerance → a receipt-discrepancy case.
Whether a picking is late is exceptions.detection's rule.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from approvals.models import RequestKind
from exceptions import titles
from exceptions.detection import lateness
from exceptions.rules import picking_delay_key
from exceptions.services import case_raise
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
from portal.integrations.odoo.mapping.purchase_order import product_name


class Pickings:
    model = "stock.picking"
    domain: list = []

    @property
    def fields(self) -> list[str]:
        return [
            "name",
            "state",
            "picking_type_id",
            "picking_type_code",
            "location_id",
            "location_dest_id",
            "scheduled_date",
            "origin",
            "partner_id",
            "user_id",
            "create_uid",
            "create_date",
            "write_date",
            settings.ODOO_TRANSFER_MARKER_FIELD,
        ]

    def prepare(self, rows, ctx: Context) -> None:
        ctx.fill(
            "stock.picking.type",
            [id_of(r["picking_type_id"]) for r in rows],
            ["warehouse_id"],
            ctx.picking_types,
        )
        marked = [r for r in rows if self._is_transfer(r)]
        ctx.fill(
            "stock.location",
            [id_of(r["location_dest_id"]) for r in marked],
            ["warehouse_id"],
            ctx.locations,
        )
        ctx.fill("res.users", makers(marked), USER_FIELDS, ctx.user_rows)
        counted = [r["id"] for r in rows if self._is_transfer(r) or self._is_receipt_done(r)]
        ctx.children(
            "stock.move",
            "picking_id",
            counted,
            ["picking_id", "product_id", "product_uom_qty", "quantity", "product_uom"],
        )
        products = [id_of(m["product_id"]) for p in counted for m in ctx.lines[("stock.move", p)]]
        ctx.fill("product.product", products, PRODUCT_FIELDS, ctx.products)
        ctx.on_hand(
            [id_of(m["product_id"]) for r in marked for m in ctx.lines[("stock.move", r["id"])]],
            [id_of(r[side]) for r in marked for side in ("location_id", "location_dest_id")],
        )

    def _is_transfer(self, row) -> bool:
        return (
            row["picking_type_code"] == "internal"
            and bool(row.get(settings.ODOO_TRANSFER_MARKER_FIELD))
            and row["state"] not in ("done", "cancel")
        )

    def _is_receipt_done(self, row) -> bool:
        return row["picking_type_code"] == "incoming" and row["state"] == "done"

    def handle(self, row, ctx: Context) -> str:
        outcomes = []
        if self._is_transfer(row):
            outcomes.append(self._transfer(row, ctx))
        late = _late(row, ctx.now)
        if late is not None:
            outcomes.append(self._delay(row, ctx, late))
        if self._is_receipt_done(row):
            outcomes.append(self._receipt(row, ctx))
        return "+".join(outcomes) or "ignored"

    def _transfer(self, row, ctx: Context) -> str:
        moves = ctx.lines[("stock.move", row["id"])]
        value = sum(
            (
                decimal(m["product_uom_qty"])
                * decimal(ctx.products[id_of(m["product_id"])]["standard_price"])
                for m in moves
            ),
            Decimal(0),
        ).quantize(CENT)
        source = ctx.site_of_picking_type(id_of(row["picking_type_id"]))
        destination = ctx.site_of_location(id_of(row["location_dest_id"]))
        categories = sorted(
            {name_of(ctx.products[id_of(m["product_id"])]["categ_id"]) for m in moves}
        )
        author_ref, author = ctx.author(row)
        draft = Draft(
            kind=RequestKind.TRANSFER,
            site=source,
            requester=ctx.requester(row["user_id"]),
            title=f"{row['name']}: {source.code} → {destination.code}",
            reason=f"Transfer {row['name']} between warehouses waits for approval in Odoo.",
            amount=value,
            currency=source.currency,
            category=categories[0] if categories else "Mixed",
            snapshot={
                "amount": str(value),
                "lines": sorted(
                    [id_of(m["product_id"]), str(decimal(m["product_uom_qty"]))] for m in moves
                ),
                "line_items": [_transfer_item(m, row, ctx) for m in moves],
            },
            details={
                "destination_site": destination.code,
                "source_warehouse": source.name,
                "destination_warehouse": destination.name,
                "odoo_reference": row["name"],
            },
            author_ref=author_ref,
            author=author,
            asked_at=moment(row.get("create_date")),
        )
        return upsert_request(self.model, row["id"], draft)

    def _delay(self, row, ctx: Context, late: timedelta) -> str:
        site = ctx.site_of_picking_type(id_of(row["picking_type_id"]))
        days = late.total_seconds() / 86400
        severity = "high" if days > 7 else "medium" if days > 2 else "low"
        _, created = case_raise(
            kind="shipment_delay",
            site=site,
            severity=severity,
            title=titles.shipment_late(
                picking=row["name"], days=days, incoming=row["picking_type_code"] == "incoming"
            ),
            source="odoo",
            # Keyed by the picking's name, which carriers report too: their delay joins this case.
            dedupe_key=picking_delay_key(row["name"]),
            payload=row,
            evidence={
                "scheduled_date": row["scheduled_date"],
                "days_late": round(days, 1),
                "origin": row["origin"],
                "partner": name_of(row["partner_id"]),
                "state": row["state"],
            },
            odoo_model=self.model,
            odoo_id=row["id"],
            at=ctx.now,
        )
        return "case_opened" if created else "case_updated"

    def _receipt(self, row, ctx: Context) -> str:
        tolerance = Decimal(settings.ODOO_MATCH_TOLERANCE_PCT)
        differences = []
        for move in ctx.lines[("stock.move", row["id"])]:
            demand, received = decimal(move["product_uom_qty"]), decimal(move["quantity"])
            if demand and abs(received - demand) * 100 / demand > tolerance:
                differences.append(
                    {
                        "product": name_of(move["product_id"]),
                        "ordered": demand,
                        "received": received,
                        "difference": received - demand,
                    }
                )
        if not differences:
            return "matched"
        site = ctx.site_of_picking_type(id_of(row["picking_type_id"]))
        _, created = case_raise(
            kind="receipt_discrepancy",
            site=site,
            severity="medium",
            title=titles.receipt_discrepancy(
                receipt=row["name"], order=row["origin"] or "", lines=len(differences)
            ),
            source="odoo",
            dedupe_key=f"odoo:stock.picking:{row['id']}:receipt_discrepancy",
            payload=row,
            evidence={"lines": differences, "tolerance_pct": tolerance, "origin": row["origin"]},
            odoo_model=self.model,
            odoo_id=row["id"],
            at=ctx.now,
        )
        return "case_opened" if created else "case_updated"


def _transfer_item(move: dict, picking: dict, ctx: Context) -> dict:
    product_id = id_of(move["product_id"])
    product = ctx.products.get(product_id, {})
    qty = Decimal(str(move["product_uom_qty"] or 0))
    cost = decimal(product.get("standard_price"))
    item = {
        "product": product_name(move, ctx),
        "product_ref": f"product.product,{product_id}",
        "quantity": text(qty),
        "uom": name_of(move.get("product_uom")),
        "unit_price": str(cost),
        "subtotal": str((qty * cost).quantize(CENT)),
    }
    source = ctx.stock.get((product_id, id_of(picking["location_id"])))
    destination = ctx.stock.get((product_id, id_of(picking["location_dest_id"])))
    if source is not None and destination is not None:
        item["source_after"] = text(source - qty)
        item["destination_after"] = text(destination + qty)
    return {key: value for key, value in item.items() if value != ""}


def _late(row, now: datetime) -> timedelta | None:
    """The picking as facts for the lateness rule: a receipt or delivery crosses the gate; a
    draft, done or cancelled one is not open."""
    return lateness(
        scheduled=moment(row["scheduled_date"]),
        crosses_the_gate=row["picking_type_code"] in ("incoming", "outgoing"),
        open_=row["state"] not in ("done", "cancel", "draft"),
        now=now,
    )
