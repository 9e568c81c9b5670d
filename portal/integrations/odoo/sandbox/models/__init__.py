"""The models the sandbox serves: their fields, default orders and how they are named.

Field names follow Odoo 17 (see PROTOCOL.md section 4), so code written against the sandbox
reads a real database unchanged. A few fields exist only here and say so by their prefix:

- `stock.picking.x_tollgate_approval` (boolean): the *approval marker* of an inter-warehouse
  transfer. True means the transfer waits for a Tollgate decision before anyone may validate
  it; Tollgate reads it to raise a request. `x_tollgate_ref` (char) holds the request's
  reference once Tollgate has one. On a real database these are custom fields (Studio).
- `purchase.order.x_sandbox_refuse_approve` (boolean): makes `button_approve` skip the order
  for every user, standing in for a record rule or approval-rights quirk (see actions/purchase.py).
- `stock.scrap.x_scrap_value` (float, computed): `scrap_qty * product standard_price`. Real
  Odoo keeps that value in stock valuation layers; the connector should compute it itself.
- `sale.order.line.x_price_floor` (float, computed): `standard_price * 1.05`, the demo price
  floor; a line priced below it, or discounted by more than 15 %, is a price override.

Customers are classed with Odoo's own partner tags (`res.partner.category_id`): "Key
Account", "Wholesale", "Retail", "Credit Watch".
"""

from portal.integrations.odoo.sandbox import computed as c
from portal.integrations.odoo.sandbox.models import (
    account,
    base,
    product,
    purchase,
    sale,
    stock,
    technical,
)
from portal.integrations.odoo.sandbox.models.fields import (
    NUMERIC,
    RELATIONAL,
    TEXTUAL,
    X2MANY,
    Field,
    ModelSpec,
    char,
    datetime_,
    integer,
    many2one,
    one2many,
)

__all__ = ["NUMERIC", "REGISTRY", "RELATIONAL", "TEXTUAL", "X2MANY", "Field", "ModelSpec"]


def _common() -> dict[str, Field]:
    return {
        "id": integer("ID"),
        "display_name": char("Display Name", compute=True),
        "create_date": datetime_("Created on"),
        "write_date": datetime_("Last Updated on"),
        "create_uid": many2one("res.users", "Created by"),
        "write_uid": many2one("res.users", "Last Updated by"),
    }


def _specs() -> list[ModelSpec]:
    # In a fixed order: the demo's ir.model rows are made, and so numbered, in it.
    return [
        *base.specs(),
        *product.specs(),
        *stock.places(),
        *purchase.specs(),
        *stock.transfers(),
        *sale.specs(),
        *account.specs(),
        *technical.specs(),
    ]


def _with_common(spec: ModelSpec) -> ModelSpec:
    spec.fields = {**_common(), **spec.fields}
    if spec.mail_thread:
        spec.fields["message_ids"] = one2many(
            "mail.message", ("model", "res_id"), "Messages", compute=c.message_ids_of(spec.name)
        )
    return spec


REGISTRY: dict[str, ModelSpec] = {spec.name: _with_common(spec) for spec in _specs()}
