"""How amounts, quantities, counts and moments read: portal.core.formatting."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from portal.core import formatting

NBSP = "\xa0"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("currency", "locale", "expected"),
    [
        ("EUR", "en_GB", "€154,482.50"),
        ("GBP", "en_GB", "£154,482.50"),
        ("SEK", "en_GB", "SEK154,482.50"),
        ("EUR", "de_DE", f"154.482,50{NBSP}€"),
        ("GBP", "de_DE", f"154.482,50{NBSP}£"),
        ("SEK", "de_DE", f"154.482,50{NBSP}SEK"),
    ],
)
def test_amount_has_thousands_separators_and_two_decimals_in_each_locale(
    currency, locale, expected
):
    assert formatting.money("154482.5", currency, locale) == expected


@pytest.mark.parametrize(
    ("locale", "expected"), [("en_GB", "JP¥154,482"), ("de_DE", f"154.482{NBSP}¥")]
)
def test_yen_has_no_decimals(locale, expected):
    assert formatting.money("154482", "JPY", locale) == expected


@pytest.mark.parametrize(
    ("locale", "expected"), [("en_GB", "KWD1,250.125"), ("de_DE", f"1.250,125{NBSP}KWD")]
)
def test_kuwaiti_dinar_has_three_decimals(locale, expected):
    assert formatting.money("1250.125", "KWD", locale) == expected


def test_amount_that_is_not_a_number_shows_a_dash():
    assert formatting.money("n/a", "EUR", "en_GB") == "—"
    assert formatting.money(None, "EUR", "en_GB") == "—"


def test_moment_today_names_the_sites_zone():
    when = datetime(2026, 3, 10, 8, 5, tzinfo=UTC)

    assert formatting.moment(when, "Europe/Stockholm", "en_GB", now=NOW) == "today 09:05 CET"


def test_moment_yesterday_in_london():
    when = datetime(2026, 3, 9, 8, 5, tzinfo=UTC)

    assert formatting.moment(when, "Europe/London", "en_GB", now=NOW) == "yesterday 08:05 GMT"


def test_moment_later_this_year_names_the_day_and_summer_zone():
    when = datetime(2026, 7, 1, 8, 5, tzinfo=UTC)

    assert formatting.moment(when, "Europe/London", "en_GB", now=NOW) == "Wed 1 Jul 09:05 BST"


def test_moment_of_another_year_is_a_date_without_clock():
    when = datetime(2025, 3, 2, 8, 5, tzinfo=UTC)

    assert formatting.moment(when, "Europe/London", "en_GB", now=NOW) == "2 Mar 2025"


def test_moment_without_zone_for_tables_that_name_it_once():
    when = datetime(2026, 3, 10, 8, 5, tzinfo=UTC)

    text = formatting.moment(when, "Europe/Stockholm", "en_GB", now=NOW, with_zone=False)

    assert text == "today 09:05"


def test_zone_abbreviation_follows_daylight_saving():
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    zone = formatting.zone_of("Europe/Stockholm")

    assert (winter.astimezone(zone).tzname(), summer.astimezone(zone).tzname()) == ("CET", "CEST")
    assert formatting.zone_of("Not/AZone").key == "UTC"


def test_day_in_the_sites_zone_can_be_the_next_calendar_day():
    late_evening_utc = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)

    assert formatting.day(late_evening_utc, "Europe/Stockholm", "en_GB") == "Mon 7 Dec 2026"


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        ("1250.000", "en_GB", "1,250"),
        ("1250.5", "de_DE", "1.250,5"),
        ("2.50", "en_GB", "2.5"),
        ("", "en_GB", "—"),
    ],
)
def test_quantity_has_separators_and_no_trailing_zeros(value, locale, expected):
    assert formatting.quantity(value, locale) == expected


def test_count_says_one_line_and_three_lines_never_line_s():
    assert formatting.count(1, "line") == "1 line"
    assert formatting.count(3, "line") == "3 lines"
    assert formatting.count(2, "person", "people") == "2 people"


def test_the_hour_that_repeats_keeps_its_zone_however_often_it_is_written():
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)  # summer time, then again in winter
    second = first.replace(fold=1)
    noon = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)

    words = [
        formatting.moment(when, "Europe/Berlin", now=noon)
        for when in (first, second, first, second)
    ]

    assert words == ["today 02:30 CEST", "today 02:30 CET"] * 2
