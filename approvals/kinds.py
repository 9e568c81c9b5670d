"""What each kind of request must say about itself, and the check that it does.

Every kind carries an amount and currency, a site and a reason; the table below adds what the
kind needs on top (a product category, a customer class, a counterparty, kind-specific details
such as the destination of a transfer) and which Odoo model it comes from when it has one.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError

from approvals.models import RequestKind


@dataclass(frozen=True)
class KindSpec:
    odoo_model: str = ""
    needs_category: bool = False
    needs_customer_class: bool = False
    counterparty: str = ""  # "vendor", "customer" or "" when none
    details: dict[str, type] = field(default_factory=dict)
    # Whether the request lists products (quantity, unit price); its amount is then their sum.
    line_items: bool = False


K = RequestKind
KINDS: dict[str, KindSpec] = {
    # A purchase order spans categories; its category is given when known, never required.
    K.PURCHASE: KindSpec(
        odoo_model="purchase.order",
        counterparty="vendor",
        line_items=True,
    ),
    K.TRANSFER: KindSpec(
        odoo_model="stock.picking",
        needs_category=True,
        details={"destination_site": str},
        line_items=True,
    ),
    K.WRITE_OFF: KindSpec(odoo_model="stock.scrap", needs_category=True, line_items=True),
    K.PRICE_OVERRIDE: KindSpec(
        odoo_model="sale.order",
        needs_category=True,
        needs_customer_class=True,
        counterparty="customer",
        details={"product": str, "unit_price": Decimal, "floor_price": Decimal},
    ),
    K.CREDIT_EXCEPTION: KindSpec(
        odoo_model="sale.order",
        needs_customer_class=True,
        counterparty="customer",
        details={"credit_limit": Decimal, "exposure": Decimal},
    ),
    K.RETURN_AUTHORIZATION: KindSpec(
        needs_category=True,
        needs_customer_class=True,
        counterparty="customer",
        line_items=True,
    ),
    K.EXPEDITED_FREIGHT: KindSpec(details={"carrier": str}),
}


def validate_request_fields(
    *,
    kind: str,
    amount: Decimal,
    currency: str,
    reason: str,
    category: str,
    customer_class: str,
    counterparty: str,
    details: dict,
    odoo_model: str,
) -> None:
    """Raise one ValidationError naming every field that `kind` needs and did not get."""
    if kind not in KINDS:
        raise ValidationError({"kind": f"Unknown kind {kind!r}; use one of {', '.join(KINDS)}."})
    spec = KINDS[kind]
    errors: dict[str, str] = {}
    if amount is None or amount < 0:
        errors["amount"] = "An amount of zero or more is required."
    if not currency or len(currency) != 3 or not currency.isupper():
        errors["currency"] = "A three-letter currency code such as EUR is required."
    if not reason.strip():
        errors["reason"] = "Say why this is needed."
    if spec.needs_category and not category:
        errors["category"] = f"A product category is required for a {K(kind).label.lower()}."
    if spec.needs_customer_class and not customer_class:
        errors["customer_class"] = "A customer class is required for this kind."
    if spec.counterparty and not counterparty:
        errors["counterparty"] = f"Name the {spec.counterparty}."
    if odoo_model and spec.odoo_model and odoo_model != spec.odoo_model:
        errors["odoo_model"] = f"A {kind} request links to {spec.odoo_model}, not {odoo_model}."
    errors.update(_detail_errors(spec, details))
    if errors:
        raise ValidationError(errors)


def _detail_errors(spec: KindSpec, details: dict) -> dict[str, str]:
    errors = {}
    for name, expected in spec.details.items():
        value = details.get(name)
        if value in (None, ""):
            errors[f"details.{name}"] = f"{name.replace('_', ' ').capitalize()} is required."
        elif expected is Decimal and not _is_finite_number(value):
            errors[f"details.{name}"] = f"{name.replace('_', ' ').capitalize()} is a number."
        elif expected is str and not isinstance(value, str):
            errors[f"details.{name}"] = f"{name.replace('_', ' ').capitalize()} is text."
    since = details.get("counterparty_since")
    if since not in (None, "") and not _is_iso_date(since):
        errors["details.counterparty_since"] = "Give the date as YYYY-MM-DD."
    return errors


def _is_finite_number(value) -> bool:
    try:
        return Decimal(str(value)).is_finite()
    except ArithmeticError:
        return False


def _is_iso_date(value) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True
