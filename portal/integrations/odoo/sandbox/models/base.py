"""Companies, currencies, partners and their tags, users, groups and units of measure."""

from portal.integrations.odoo.sandbox.models.fields import (
    ModelSpec,
    boolean,
    char,
    current_company,
    float_,
    integer,
    many2many,
    many2one,
    monetary,
    selection,
)


def specs() -> list[ModelSpec]:
    """The base models, in the order the registry lists them."""
    return [
        ModelSpec(
            "res.company",
            "Companies",
            {
                "name": char("Company Name", required=True),
                "currency_id": many2one("res.currency", "Currency", required=True),
                "partner_id": many2one("res.partner", "Partner"),
                "parent_id": many2one("res.company", "Parent Company"),
                "sequence": integer(default=10),
                "po_double_validation": selection(
                    [
                        ("one_step", "Confirm purchase orders in one step"),
                        ("two_step", "Get 2 levels of approvals to confirm a purchase order"),
                    ],
                    default="two_step",
                ),
                "po_double_validation_amount": monetary("Double validation amount", default=5000.0),
                "po_lock": selection(
                    [("edit", "Allow to edit"), ("lock", "Confirmed orders are locked")],
                    default="edit",
                ),
            },
            order="sequence, name",
        ),
        ModelSpec(
            "res.currency",
            "Currency",
            {
                "name": char("Currency", required=True),
                "symbol": char(),
                "rate": float_(default=1.0),
                "decimal_places": integer(default=2),
                "active": boolean(default=True),
            },
            order="active desc, name",
        ),
        ModelSpec(
            "res.partner",
            "Contact",
            {
                "name": char(required=True),
                "is_company": boolean(default=False),
                "company_id": many2one("res.company", "Company"),
                "parent_id": many2one("res.partner", "Related Company"),
                "email": char(),
                "phone": char(),
                "ref": char("Reference"),
                "city": char(),
                "country_code": char(),
                "supplier_rank": integer(default=0),
                "customer_rank": integer(default=0),
                "credit": monetary("Total Receivable"),
                "credit_limit": monetary("Credit Limit"),
                "use_partner_credit_limit": boolean("Partner Limit"),
                "category_id": many2many("res.partner.category", "Tags"),
                "user_id": many2one("res.users", "Salesperson"),
                "active": boolean(default=True),
            },
            order="name, id desc",
            mail_thread=True,
        ),
        ModelSpec(
            "res.partner.category",
            "Partner Tags",
            {
                "name": char("Tag Name", required=True),
                "color": integer(),
                "parent_id": many2one("res.partner.category", "Parent Category"),
                "parent_path": char(),
                "active": boolean(default=True),
            },
            order="name",
            parent_store=True,
        ),
        ModelSpec(
            "res.users",
            "User",
            {
                "name": char(required=True),
                "login": char(required=True),
                "partner_id": many2one("res.partner", "Related Partner"),
                "company_id": many2one("res.company", "Company", default=current_company),
                "company_ids": many2many("res.company", "Companies"),
                "groups_id": many2many("res.groups", "Groups"),
                "active": boolean(default=True),
                "share": boolean(default=False),
                "lang": char(default="en_US"),
                "tz": char(default="Europe/Brussels"),
            },
            order="name, login",
        ),
        ModelSpec(
            "res.groups",
            "Access Groups",
            {"name": char(required=True), "full_name": char("Group Name")},
            order="name",
        ),
        ModelSpec(
            "uom.uom", "Product Unit of Measure", {"name": char(required=True)}, order="name"
        ),
    ]
