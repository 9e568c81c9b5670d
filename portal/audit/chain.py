"""The ledger's hash chain: the canonical form of an event and the hash that seals it.

Canonical form (version 1), the contract the standalone verifier
(`portal/audit/verify_export.py`) implements independently:

* a JSON object with exactly the keys in `FIELDS`;
* `at` as UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`; ids as integers or null; `before`, `after` and
  `context` as the JSON values stored (Decimals, datetimes and floats already turned into
  strings when recorded, so they read back byte for byte from any database);
* serialised with keys sorted, separators `,` and `:`, non-ASCII characters kept, UTF-8.

`hash` = SHA-256 (lower-case hex) of that serialisation, which includes `prev_hash`: the hash
of the event with the previous sequence number ("" before the first). Changing any stored byte
of an event changes its hash; removing or reordering events breaks the next `prev_hash`.
"""

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import encode_basestring

from django.core.serializers.json import DjangoJSONEncoder

CANONICAL_VERSION = 1
FIELDS = (
    "sequence",
    "at",
    "action",
    "actor_id",
    "actor",
    "on_behalf_of_id",
    "object_type",
    "object_id",
    "object_reference",
    "site_id",
    "policy_version",
    "before",
    "after",
    "comment",
    "context",
    "prev_hash",
)
GENESIS = ""
# The AuditEvent columns that hold FIELDS, in the same order: what a walk over many events
# reads (`values_list(*COLUMNS)`) instead of building a model instance per event.
COLUMNS = (
    "sequence",
    "at",
    "action",
    "actor_id",
    "actor_label",
    "on_behalf_of_id",
    "object_type",
    "object_id",
    "object_reference",
    "site_id",
    "policy_version_label",
    "before",
    "after",
    "comment",
    "context",
    "prev_hash",
)
# One encoder for every event: json.dumps would build one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalise(value):
    """A JSON value as it will read back from the database: Decimals, dates and floats as
    strings (PostgreSQL's jsonb rewrites some floats, e.g. 1e16 and -0.0, on the way in)."""
    return json.loads(json.dumps(_floats_as_text(value), cls=DjangoJSONEncoder))


def _floats_as_text(value):
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {key: _floats_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_floats_as_text(item) for item in value]
    return value


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# `timestamp` done by PostgreSQL, for walks over millions of events: format a timestamptz
# expression with `TIMESTAMP_SQL.format(expression)`.
TIMESTAMP_SQL = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def payload(event) -> dict:
    """The canonical fields of a stored (or about to be stored) AuditEvent."""
    return {
        "sequence": event.sequence,
        "at": timestamp(event.at),
        "action": event.action,
        "actor_id": event.actor_id,
        "actor": event.actor_label,
        "on_behalf_of_id": event.on_behalf_of_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_reference": event.object_reference,
        "site_id": event.site_id,
        "policy_version": event.policy_version_label,
        "before": event.before,
        "after": event.after,
        "comment": event.comment,
        "context": event.context,
        "prev_hash": event.prev_hash,
    }


def payload_of_values(values) -> dict:
    """`payload` of an event read as a row of COLUMNS (values after those are left out)."""
    fields = dict(zip(FIELDS, values, strict=False))
    fields["at"] = timestamp(fields["at"])
    return fields


def canonical(fields: dict) -> bytes:
    return _ENCODER.encode(fields).encode()


def canonical_text(value) -> str:
    """The canonical serialisation of any JSON value, as text."""
    return _ENCODER.encode(value)


def seal(fields: dict) -> str:
    """The hash of an event given its canonical fields."""
    return hashlib.sha256(canonical(fields)).hexdigest()


# --- the same bytes, faster, for walks over millions of events -------------------------------

# FIELDS in the order the canonical object lists them (sorted keys), each with the index of its
# value in a row of FIELDS order and its key already serialised.
_SORTED = tuple((FIELDS.index(name), encode_basestring(name) + ":") for name in sorted(FIELDS))


def canonical_row(values) -> bytes:
    """`canonical(fields)` of an event given as its values in FIELDS order, with `at` already
    in its canonical text: the same bytes, without building a dict or sorting its keys.

    The values the canonical form holds at the top level are text, integers, null and the three
    JSON columns; anything else is serialised as `canonical` would.
    """
    parts = []
    for index, key in _SORTED:
        value = values[index]
        if value.__class__ is str:
            parts.append(key + encode_basestring(value))
        elif value is None:
            parts.append(key + "null")
        elif value.__class__ is int:
            parts.append(key + int.__repr__(value))
        else:
            parts.append(key + _ENCODER.encode(value))
    return ("{" + ",".join(parts) + "}").encode()
