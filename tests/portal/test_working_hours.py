"""A site's business hours as people read them (portal.core.formatting.working_hours)."""

from datetime import time

import pytest

from portal.core.formatting import working_hours


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("12345", "Mon–Fri 08:00–18:00"),
        ("54321", "Mon–Fri 08:00–18:00"),
        ("1235", "Mon–Wed, Fri 08:00–18:00"),
        ("135", "Mon, Wed, Fri 08:00–18:00"),
        ("67", "Sat–Sun 08:00–18:00"),
    ],
)
def test_working_days_read_as_ranges_of_day_names(days, expected):
    assert working_hours(days, time(8), time(18), "en_GB") == expected


def test_day_names_are_the_persons_language():
    assert working_hours("12345", time(7, 30), time(16), "de_DE") == "Mo.–Fr. 07:30–16:00"


def test_a_site_without_working_days_says_so():
    assert working_hours("", time(8), time(18), "en_GB") == "no working days"
