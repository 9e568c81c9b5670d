"""Products and their categories."""

from portal.integrations.odoo.sandbox import computed as c
from portal.integrations.odoo.sandbox.models.fields import (
    ModelSpec,
    boolean,
    char,
    float_,
    many2one,
    one2many,
    selection,
)


def specs() -> list[ModelSpec]:
    """The product models."""
    return [
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
    ]
