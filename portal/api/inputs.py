"""Input read from a JSON body: each value of the JSON type its schema states.

DRF converts generously (5 for "5", "7" for 7, "yes" for true), which the schema does not
allow; a request that breaks the schema must be refused, so a body serializer takes text only
as a JSON string, a whole number only as a JSON integer, a truth value only as true or false.
"""

from collections.abc import Mapping

from rest_framework import serializers

# field class -> (JSON types it takes, the message when given another)
_TYPES = (
    (serializers.BooleanField, (bool,), "Give true or false."),
    (serializers.IntegerField, (int,), "Give a whole number."),
    (serializers.DecimalField, (str,), 'Give the number as a decimal string, e.g. "12.50".'),
    (serializers.CharField, (str,), "Give text (a JSON string)."),
    (serializers.ChoiceField, (str,), "Give one of the choices, as a JSON string."),
    (serializers.DateTimeField, (str,), "Give an ISO 8601 date and time, as a JSON string."),
)


class BodySerializer(serializers.Serializer):
    """A serializer of a JSON body that refuses a value of another JSON type than its field's."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            wrong = {
                name: [message]
                for name, field in self.fields.items()
                if name in data and (message := _type_error(field, data[name]))
            }
            if wrong:
                raise serializers.ValidationError(wrong)
            data = {name: _whole(self.fields.get(name), value) for name, value in data.items()}
        return super().to_internal_value(data)


def _type_error(field, value) -> str | None:
    if value is None or field.read_only:
        return None  # whether null is allowed is the field's own check
    for kind, types, message in _TYPES:
        if isinstance(field, kind):
            right = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            return None if right or _is_whole(field, value) else message
    return None


def _is_whole(field, value) -> bool:
    """JSON Schema counts 7.0 as an integer; so does the API."""
    return (
        isinstance(field, serializers.IntegerField)
        and isinstance(value, float)
        and value.is_integer()
    )


def _whole(field, value):
    return int(value) if _is_whole(field, value) else value


def serializer_by_kind(data, by_kind: dict, unknown: type) -> type[serializers.Serializer]:
    """The serializer of the kind a body names in `kind`, or `unknown`, which refuses it."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind in by_kind:
        return by_kind[kind]
    return unknown


def holds_nul(value) -> bool:
    """Whether a NUL character is in any key or text of a JSON value (PostgreSQL stores none)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False
