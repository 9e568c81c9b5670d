"""The keyset cursor of the inbox, shared by its page and its API.

A cursor names the last row shown by its due time and id; it is written opaque (URL-safe
base64), so that nobody builds one by hand and relies on its shape.
"""

import base64
import binascii
import re
from datetime import UTC, datetime

from django.utils import timezone

from portal.core.ids import ID_PATTERN


def keyset_encode(cursor: tuple[datetime, int]) -> str:
    """`(due, id)` as a query-string value."""
    due, pk = cursor
    return base64.urlsafe_b64encode(f"{due.isoformat()}|{pk}".encode()).decode()


def keyset_decode(value: str) -> tuple[datetime, int]:
    """The `(due, id)` a value of `keyset_encode` names; ValueError for anything else."""
    try:
        due, pk = base64.urlsafe_b64decode(value.encode()).decode().split("|")
        moment = datetime.fromisoformat(due)
        if timezone.is_naive(moment):
            raise ValueError(due)
        moment.astimezone(UTC)  # a moment too near the ends of time to compare with raises
        if not re.fullmatch(ID_PATTERN, pk):
            raise ValueError(pk)
    except (OverflowError, UnicodeError, binascii.Error) as error:
        raise ValueError(value) from error
    return moment, int(pk)
