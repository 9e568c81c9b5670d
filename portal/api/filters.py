"""Query-string filter pieces every API list shares: strict about what they accept, so a
malformed filter is a 422 that says why, never silently ignored or a 500."""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

MAX_ID = 2**63 - 1


class InstantField(IsoDateTimeField):
    """An ISO 8601 moment that exists in UTC, given to the database in UTC: it compares in
    UTC, and refuses offsets beyond 15:59 that ISO 8601 allows (up to 23:59)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is not None:
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                raise ValidationError(
                    "This moment is outside the years 1 to 9999 in UTC."
                ) from None
        return moment


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantField


class StrictBooleanField(forms.Field):
    """`true` or `false`, nothing else: the schema says boolean, so "1" or "yes" is refused."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value not in ("true", "false"):
            raise ValidationError("Use true or false.")
        return value == "true"


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class StrictFilterSet(django_filters.FilterSet):
    """Refuses a filter given without a value, rather than silently ignoring it."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name in self.filters:
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            if "" in values:
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number that fits the database's 64-bit keys."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
