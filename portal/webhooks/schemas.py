"""What each source may send: plain checks that name every field that is wrong.

`validate(source, payload)` returns a list of messages; empty means the payload is acceptable.
Unknown extra fields are allowed, so a sender may add to its events without breaking Tollgate,
but anywhere in the payload text must be storable (no NUL character, no unpaired surrogate),
numbers finite and nesting shallow: a case keeps the payload, and PostgreSQL's jsonb refuses
the first two and the JSON encoder the last.
"""

import math
import re
from datetime import datetime
from decimal import Decimal

MAX_DEPTH = 32
CARRIER_TYPES = ("shipment.delayed", "delivery.failed", "shipment.status", "proof_of_delivery")
SUPPLIER_TYPES = ("asn", "order_confirmation", "shortage")


def validate(source: str, payload) -> list[str]:
    """Every way `payload` fails the schema of `source`; empty when it passes."""
    if not isinstance(payload, dict):
        return ["The body must be a JSON object."]
    unstorable = _unstorable(payload)
    if unstorable:
        return [unstorable]
    checker = {"carrier": _carrier, "supplier": _supplier}.get(source, _generic)
    return checker(payload)


def is_storable(text: str) -> bool:
    """Whether `text` can be stored as it is: no NUL character and no unpaired surrogate."""
    return _UNSTORABLE.search(text) is None


# A str holds a surrogate only unpaired: a pair decodes to the one character it encodes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(payload: dict) -> str:
    # Walked with a stack rather than recursion, so any depth the JSON parser accepted is safe.
    stack = [(payload, "$", 1)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{where}: nested more than {MAX_DEPTH} levels deep."
        if isinstance(value, dict):
            for key, item in value.items():
                if not is_storable(key):
                    return f"{where}: a key contains a NUL character or an unpaired surrogate."
                stack.append((item, f"{where}.{key[:40]}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{n}]", depth + 1) for n, item in enumerate(value))
        elif isinstance(value, str) and not is_storable(value):
            return f"{where}: contains a NUL character or an unpaired surrogate."
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{where}: numbers must be finite."
    return ""


def parse_time(value: str) -> datetime:
    """An ISO 8601 time with an offset (a trailing Z is read as UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def quantity(value) -> Decimal:
    """A JSON number as a Decimal, without the float's rounding noise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    return Decimal(str(value))


def _generic(payload: dict) -> list[str]:
    return _text(payload, "type")


def _carrier(payload: dict) -> list[str]:
    errors = _choice(payload, "type", CARRIER_TYPES)
    for field in ("tracking_number", "picking_ref", "site", "status"):
        errors += _text(payload, field)
    errors += _time(payload, "event_time", required=True)
    errors += _time(payload, "new_eta", required=False)
    return errors


def _supplier(payload: dict) -> list[str]:
    errors = _choice(payload, "type", SUPPLIER_TYPES)
    for field in ("order_ref", "site"):
        errors += _text(payload, field)
    lines = payload.get("lines")
    if not isinstance(lines, list) or not lines:
        return [*errors, "lines: a non-empty list of order lines is required."]
    for number, line in enumerate(lines, start=1):
        errors += _line(number, line)
    return errors


def _line(number: int, line) -> list[str]:
    where = f"lines[{number}]"
    if not isinstance(line, dict):
        return [f"{where}: must be an object with product, quantity and ordered_quantity."]
    errors = [f"{where}.{m}" for m in _text(line, "product")]
    for field in ("quantity", "ordered_quantity"):
        try:
            if quantity(line.get(field)) < 0:
                errors.append(f"{where}.{field}: must not be negative.")
        except ValueError:
            errors.append(f"{where}.{field}: a number is required.")
    return errors


def _text(payload: dict, field: str) -> list[str]:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        return [f"{field}: a non-empty string is required."]
    if len(value) > 100:
        return [f"{field}: at most 100 characters."]
    return []


def _choice(payload: dict, field: str, choices: tuple[str, ...]) -> list[str]:
    if payload.get(field) not in choices:
        return [f"{field}: must be one of {', '.join(choices)}."]
    return []


def _time(payload: dict, field: str, *, required: bool) -> list[str]:
    value = payload.get(field)
    if value is None and not required:
        return []
    try:
        parse_time(value)
    except (TypeError, ValueError, AttributeError):
        return [f"{field}: an ISO 8601 time with a time zone is required, e.g. 2026-05-01T14:00Z."]
    return []
