"""The one pagination of every API list: cursors, so pages stay stable while rows arrive.

A list view orders by its `cursor_ordering` (default newest first by id). The ordering must be
unique and unchanging, e.g. ("-created_at", "-id"): a cursor points between two rows by it.
A page size out of range answers 422. A cursor is opaque: one this list did not give out names
no page, and answers 404 like an id that names no object (the schema cannot tell a client which
cursors exist, only the list can).
"""

from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination as BaseCursorPagination

from portal.api.filters import MAX_ID


class CursorPagination(BaseCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-id",)
    invalid_cursor_message = "The cursor is not one this list gave out."

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        f"A whole number from 1 to {self.max_page_size} is required."
                    ]
                }
            )
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        # The model tells decode_cursor what a position of the ordering's first field can be.
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise self._invalid_cursor() from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        """A cursor is base64 anyone can write: its position must be a value the ordering's
        first field can hold, or the query would fail in the database (a 500)."""
        field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            if "\x00" in position:
                raise ValueError(position)
            value = field.to_python(position)
            if isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID:
                raise ValueError(position)
            if isinstance(value, datetime):
                value.astimezone(UTC)
        except (DjangoValidationError, ValueError, OverflowError):
            raise self._invalid_cursor() from None

    def _invalid_cursor(self) -> exceptions.NotFound:
        return exceptions.NotFound(self.invalid_cursor_message)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "The `next` or `previous` link's cursor; one this list did not give out "
                    "answers 404."
                )
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
        return parameters
