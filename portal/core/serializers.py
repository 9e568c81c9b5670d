"""What every app's API shares: how ids and money are written, query-string input, and the
actions a record offers."""

from rest_framework import serializers

MONEY = {"max_digits": 16, "decimal_places": 2, "coerce_to_string": True}
# An id given as input: a whole number that fits the database's 64-bit keys.
ID = {"min_value": 1, "max_value": 2**63 - 1}


class QuerySerializer(serializers.Serializer):
    """Query-string input: a parameter given without a value is refused, unless blank is allowed
    (DRF would otherwise treat it as left out, which the schema does not say). Text is taken as
    given: trimming a value of spaces to nothing would refuse what the schema allows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, serializers.CharField):
                field.trim_whitespace = False

    def to_internal_value(self, data):
        blank = {
            name: ["Give a value, or leave the parameter out."]
            for name, field in self.fields.items()
            if data.get(name) == "" and not getattr(field, "allow_blank", False)
        }
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


class ActionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="Whether you may take this action now.")
    reason = serializers.CharField(
        allow_null=True, help_text="Why not, when not allowed; null when allowed."
    )
