"""The inbox's keyset cursor, as its page and its API write and read it."""

import base64
from datetime import UTC, datetime

import pytest

from portal.core.cursors import keyset_decode, keyset_encode


def test_a_cursor_reads_back_as_the_row_it_names():
    due = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

    assert keyset_decode(keyset_encode((due, 42))) == (due, 42)


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "value",
    [
        "not-a-cursor",
        _raw("2026-03-01T09:30:00|42"),  # no time zone
        _raw("2026-03-01T09:30:00+00:00|4\N{SUPERSCRIPT TWO}"),
        _raw(f"2026-03-01T09:30:00+00:00|{10**30}"),
        _raw("0001-01-01T00:00:00+14:00|1"),  # before the first representable instant in UTC
        _raw("2026-03-01T09:30:00+00:00"),
    ],
)
def test_anything_but_a_cursor_is_refused(value):
    with pytest.raises(ValueError):
        keyset_decode(value)
