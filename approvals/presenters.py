"""What a request asks for, in words and formatted numbers, for the request page.

Two readers: `line_items` turns the readable line items (one shape for every producer: a list
of dicts of strings, from Odoo in `odoo_snapshot["line_items"]`, from the browser in
`details["line_items"]`) into a table whose columns depend on the kind of request; `facts`
turns a request's details and Odoo snapshot into labelled sentences. Neither prints a Python
list or dict, an Odoo id or an unformatted amount.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date

from approvals.kinds import KINDS
from approvals.models import ApprovalRequest, RequestKind
from portal.core import formatting

K = RequestKind


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = True


@dataclass
class LineTable:
    """The lines of one request, formatted, with the columns its kind shows."""

    columns: list[Column]
    rows: list[list[tuple[str, str]]]  # (column label, formatted value) per cell
    caption: str
    note: str = ""
    total: str = ""


def raw_line_items(request: ApprovalRequest) -> list[dict]:
    """The request's line items in the shared shape; Odoo's copy wins over the browser's."""
    for source in (request.odoo_snapshot, request.details):
        lines = (source or {}).get("line_items")
        if isinstance(lines, list) and lines:
            return [line for line in lines if isinstance(line, dict)]
    return []


def line_items(request: ApprovalRequest, *, sites: dict | None = None) -> LineTable | None:
    """The table of what is bought, moved, scrapped or priced; None when there are no lines.

    `sites` maps site codes to sites (for a transfer's destination); without it the code shows.
    """
    lines = raw_line_items(request) or _lines_from_details(request)
    if not lines:
        return None
    currency = request.currency
    columns = [c for c in _columns(request, sites or {}) if _shown(c, lines)]
    rows = [[(c.label, _cell(c, line, currency)) for c in columns] for line in lines]
    total = _sum(line.get("subtotal") for line in lines)
    return LineTable(
        columns=columns,
        rows=rows,
        caption=_caption(request, len(lines)),
        note=_note(request, sites or {}),
        total=formatting.money(total, currency) if total is not None else "",
    )


def no_lines_sentence(request: ApprovalRequest) -> str:
    """What to say when a request carries no line items (older requests, or kinds without)."""
    count = (request.details or {}).get("lines")
    if not isinstance(count, int) and isinstance((request.odoo_snapshot or {}).get("lines"), list):
        count = len(request.odoo_snapshot["lines"])
    if request.odoo_model:
        held = (
            f"Odoo holds {formatting.count(count, 'line')} for this record"
            if isinstance(count, int) and count > 0
            else "The lines of this record are in Odoo"
        )
        return f"{held}; Tollgate did not copy them. Open the record in Odoo to read them."
    return "No line items were given with this request."


def _columns(request: ApprovalRequest, sites: dict) -> list[Column]:
    product, qty = Column("product", "Product", numeric=False), Column("quantity", "Quantity")
    unit, subtotal = Column("unit_price", "Unit price"), Column("subtotal", "Subtotal")
    if request.kind == K.PURCHASE:
        return [
            product,
            qty,
            unit,
            Column("last_price", "Last price paid"),
            Column("difference", "Difference"),
            subtotal,
        ]
    if request.kind == K.TRANSFER:
        source = request.site.code
        destination = (request.details or {}).get("destination_site") or "destination"
        return [
            product,
            qty,
            Column("source_after", f"Left at {source}"),
            Column("destination_after", f"At {destination} after"),
            Column("subtotal", "Value"),
        ]
    if request.kind == K.WRITE_OFF:
        return [product, qty, Column("unit_price", "Unit cost"), Column("subtotal", "Value lost")]
    if request.kind == K.PRICE_OVERRIDE:
        return [
            product,
            qty,
            Column("list_price", "List price"),
            Column("floor_price", "Floor"),
            Column("unit_price", "Offered price"),
            Column("discount_pct", "Discount"),
            subtotal,
        ]
    return [product, qty, unit, subtotal]


def _shown(column: Column, lines: list[dict]) -> bool:
    """A column shows when at least one line has its value (derived columns: their inputs)."""
    if column.key == "product":
        return True
    if column.key == "difference":
        return any(_has(line, "last_price") and _has(line, "unit_price") for line in lines)
    if column.key == "discount_pct":
        return any(_discount(line) is not None for line in lines)
    return any(_has(line, column.key) for line in lines)


def _has(line: dict, key: str) -> bool:
    return line.get(key) not in (None, "")


def _cell(column: Column, line: dict, currency: str) -> str:
    key = column.key
    if key == "product":
        return str(line.get("product") or "Unnamed product")
    if key == "quantity":
        amount = formatting.quantity(line.get("quantity"))
        uom = str(line.get("uom") or "").strip()
        return f"{amount} {uom}" if uom and amount != "—" else amount
    if key in ("source_after", "destination_after"):
        return formatting.quantity(line.get(key))
    if key == "difference":
        return _difference(line, currency)
    if key == "discount_pct":
        share = _discount(line)
        return formatting.percent(share) if share is not None else "—"
    return formatting.money(line.get(key), currency)


def _difference(line: dict, currency: str) -> str:
    """'+€0.40 (+3.8 %)' against the last price paid; a dash when either is missing."""
    now, before = _number(line.get("unit_price")), _number(line.get("last_price"))
    if now is None or before is None:
        return "—"
    change = now - before
    if change == 0:
        return "same"
    sign = "+" if change > 0 else "\u2212"  # the minus sign, as tables print it
    text = f"{sign}{formatting.money(abs(change), currency)}"
    if before:
        text += f" ({sign}{formatting.percent(abs(change) * 100 / before)})"
    return text


def _discount(line: dict) -> Decimal | None:
    given = _number(line.get("discount_pct"))
    if given is not None:
        return given
    listed, offered = _number(line.get("list_price")), _number(line.get("unit_price"))
    if listed and offered is not None:
        return (listed - offered) * 100 / listed
    return None


def _number(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _sum(values) -> Decimal | None:
    numbers = [n for n in (_number(v) for v in values) if n is not None]
    return sum(numbers, Decimal(0)) if numbers else None


def _caption(request: ApprovalRequest, count: int) -> str:
    what = {
        K.PURCHASE: "ordered",
        K.TRANSFER: "moved",
        K.WRITE_OFF: "scrapped",
        K.PRICE_OVERRIDE: "priced below the floor or over the discount cap",
    }.get(request.kind, "in this request")
    return f"{formatting.count(count, 'line').capitalize()} {what}"


def _note(request: ApprovalRequest, sites: dict) -> str:
    if request.kind != K.TRANSFER:
        return ""
    code = (request.details or {}).get("destination_site") or ""
    destination = sites.get(code)
    where = f"{destination.code} {destination.name}" if destination else (code or "another site")
    return (
        f"From {request.site.code} {request.site.name} to {where}; stock after the transfer as "
        "Odoo reported it when the request was raised."
    )


def _lines_from_details(request: ApprovalRequest) -> list[dict]:
    """One line for a price override that names its product and prices only in its details."""
    details = request.details or {}
    if request.kind != K.PRICE_OVERRIDE or not details.get("product"):
        return []
    return [
        {
            "product": str(details["product"]),
            "unit_price": details.get("unit_price"),
            "floor_price": details.get("floor_price"),
            "list_price": details.get("list_price"),
            "discount_pct": details.get("discount_pct"),
        }
    ]


ODOO_MODELS = {
    "purchase.order": "Purchase order",
    "stock.picking": "Transfer",
    "stock.scrap": "Scrap order",
    "sale.order": "Quotation",
}


def odoo_record(request: ApprovalRequest) -> str:
    """'Purchase order P00042': the Odoo record as its users name it."""
    kind = ODOO_MODELS.get(request.odoo_model, "Record")
    reference = (request.details or {}).get("odoo_reference")
    return f"{kind} {reference}" if reference else f"{kind} in Odoo"


# --- facts --------------------------------------------------------------------------------------

# Details and snapshot keys that the page shows elsewhere (the heading, the line table), or
# that only the drift check reads.
HIDDEN = {"line_items", "lines", "amount", "currency", "counterparty_since", "odoo_reference"}
MONEY_KEYS = {"unit_price", "floor_price", "list_price", "credit_limit", "exposure", "last_price"}
LABELS = {
    "odoo_reference": "Odoo reference",
    "destination_site": "Destination",
    "product": "Product",
    "unit_price": "Offered price",
    "floor_price": "Price floor",
    "list_price": "List price",
    "discount_pct": "Discount",
    "credit_limit": "Credit limit",
    "exposure": "Exposure with this order",
    "carrier": "Carrier",
    "exception_case": "Raised from exception case",
    "state": "State in Odoo",
}
ODOO_STATES = {
    "draft": "Draft",
    "sent": "Sent",
    "to approve": "Waiting for approval",
    "purchase": "Confirmed purchase order",
    "sale": "Confirmed sales order",
    "done": "Done",
    "cancel": "Cancelled",
    "assigned": "Ready",
    "confirmed": "Waiting",
    "waiting": "Waiting for another operation",
}


def facts(request: ApprovalRequest, *, sites: dict | None = None, now=None) -> list[tuple]:
    """(label, text) pairs for the request's details and its Odoo snapshot, formatted."""
    sites = sites or {}
    found = []
    since = counterparty_since(request, now=now)
    if since:
        found.append(("Relationship", since))
    seen = set()
    for source in (request.details or {}, request.odoo_snapshot or {}):
        for key, value in source.items():
            if key in HIDDEN or key in seen or value in (None, "", [], {}):
                continue
            seen.add(key)
            found.append((_label(key), _value(key, value, request, sites)))
    return found


def counterparty_since(request: ApprovalRequest, *, now=None) -> str:
    """'Customer since Mar 2019 (7 years)', from the date Odoo first knew the partner."""
    raw = (request.details or {}).get("counterparty_since")
    when = _as_date(raw)
    if when is None:
        return ""
    role = (KINDS.get(request.kind).counterparty if request.kind in KINDS else "") or "partner"
    moment = datetime(when.year, when.month, when.day, tzinfo=UTC)
    month = format_date(when, "MMM y", locale=formatting.locale_or_default(None))
    return f"{role.capitalize()} since {month} ({formatting.age(moment, now=now)})"


def _as_date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            return None
    return None


def _label(key: str) -> str:
    return LABELS.get(key) or str(key).replace("_", " ").strip().capitalize()


def _value(key: str, value, request: ApprovalRequest, sites: dict) -> str:
    if key in MONEY_KEYS:
        return formatting.money(value, request.currency)
    if key == "discount_pct":
        return formatting.percent(value)
    if key == "destination_site":
        site = sites.get(value)
        return f"{site.code} {site.name}" if site else str(value)
    if key == "state" and isinstance(value, str):
        return ODOO_STATES.get(value, value.replace("_", " ").capitalize())
    return plain(value, zone=request.site)


def plain(value, *, zone=None) -> str:
    """Any stored value as words: never a Python list, dict or ISO time."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return formatting.moment(value, zone)
    if isinstance(value, date):
        return formatting.day(value, zone)
    if isinstance(value, (int, float, Decimal)):
        return formatting.quantity(value)
    if isinstance(value, dict):
        parts = [f"{_label(k)}: {plain(v, zone=zone)}" for k, v in value.items()]
        return "; ".join(parts) or "—"
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, (str, int, float, Decimal)) for item in value):
            return ", ".join(plain(item, zone=zone) for item in value) or "—"
        return formatting.count(len(value), "entry", "entries")
    text = str(value)
    if _looks_like_moment(text):
        return formatting.moment(text, zone)
    return text


def _looks_like_moment(text: str) -> bool:
    if len(text) < 10 or text[4:5] != "-" or text[7:8] != "-":
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def sites_named_in(requests) -> dict:
    """The sites that requests name by code in their details (transfer destinations)."""
    from sites.models import Site

    codes = {
        (r.details or {}).get("destination_site")
        for r in requests
        if isinstance((r.details or {}).get("destination_site"), str)
    }
    codes.discard(None)
    if not codes:
        return {}
    return {site.code: site for site in Site.objects.filter(code__in=codes)}
