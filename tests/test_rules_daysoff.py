"""The Polish days off as data (rules/days-off.toml) and the due dates of the fee."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources

import holidays
import pytest

from rules.daysoff import CalendarError, load_days_off, loads_days_off
from rules.duedates import DueDayMissing, due_on, nominal_due_day, require_due_days
from rules.ruleset import RuleSetError, load_ruleset, loads_ruleset

CAL = load_days_off()
RULES = load_ruleset()


@pytest.mark.parametrize("year", range(1990, 2101))
def test_the_data_agrees_with_the_holidays_package_every_year(year):
    """The project's own calendar and the ``holidays`` package (an independent
    implementation of the same law) give the same days off, year by year."""
    theirs = set(holidays.country_holidays("PL", years=year).keys())
    ours = set(CAL.days_off(year))
    assert ours == theirs, (sorted(ours - theirs), sorted(theirs - ours))


def test_every_sunday_is_a_day_off_and_no_saturday_is_a_working_day():
    day = date(2025, 1, 1)
    while day.year == 2025:
        if day.weekday() == 6:
            assert CAL.is_day_off(day)
        if day.weekday() == 5:
            assert not CAL.is_working_day(day)
        day += timedelta(days=1)


def test_christmas_eve_from_2025_and_epiphany_from_2011():
    assert not CAL.is_day_off(date(2024, 12, 24)) and CAL.is_day_off(date(2025, 12, 24))
    assert not CAL.is_day_off(date(2010, 1, 6)) and CAL.is_day_off(date(2011, 1, 6))
    assert CAL.is_day_off(date(2018, 11, 12)) and not CAL.is_day_off(date(2019, 11, 12))


def test_a_day_before_the_calendar_is_an_error_not_a_guess():
    with pytest.raises(CalendarError, match="before the calendar"):
        CAL.is_day_off(date(1989, 12, 31))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("covers_from = 1990-01-01\nsundays = true\n[[fixed]]\nname = 'x'\nmonth = 2\nday = 30\nvalid_from = 1990-01-01\n", "not a day of the year"),
        ("covers_from = 1990-01-01\nsundays = true\n[[fixed]]\nname = 'x'\nmonth = 2\nday = 3\nvalid_from = 1990-01-01\nvalid_until = 1990-01-01\n", "not after"),
        ("covers_from = 1990-01-01\nsundays = true\nextra = 1\n", "extra"),
        ("sundays = true\n", "covers_from"),
        ("covers_from = 1990-01-01\nsundays = 'yes'\n", "sundays"),
    ],
)
def test_a_broken_calendar_is_refused_in_one_line(text, message):
    with pytest.raises(CalendarError, match=message) as info:
        loads_days_off(text, "days.toml")
    assert "\n" not in str(info.value) and str(info.value).startswith("days.toml: ")


def test_a_new_day_off_is_data():
    text = "covers_from = 2030-01-01\nsundays = false\n[[fixed]]\nname = 'nowe'\nmonth = 3\nday = 2\nvalid_from = 2031-01-01\n"
    cal = loads_days_off(text)
    assert not cal.is_day_off(date(2030, 3, 2)) and cal.is_day_off(date(2031, 3, 2))
    assert not cal.is_day_off(date(2031, 3, 9))  # a Sunday, but this calendar has no Sundays


# --------------------------------------------------------------------------- due dates


@pytest.mark.parametrize(
    ("month", "due"),
    [
        ("2025-01", "2025-01-15"),
        ("2025-02", "2025-02-17"),  # the 15th is a Saturday
        ("2025-06", "2025-06-16"),  # a Sunday
        ("2025-08", "2025-08-18"),  # 15 August (Friday), then the weekend
        ("2028-06", "2028-06-16"),  # Corpus Christi on the 15th
        ("2028-08", "2028-08-16"),  # 15 August (Tuesday)
    ],
)
def test_the_specifications_due_date_vectors(month, due):
    assert due_on(date.fromisoformat(month + "-01"), RULES) == date.fromisoformat(due)


def test_a_due_date_is_never_on_a_day_off_or_a_saturday_and_never_before_the_15th():
    for year in range(2014, 2060):
        for m in range(1, 13):
            due = due_on(date(year, m, 1), RULES)
            assert CAL.is_working_day(due) and due.day >= 15 and due.month == m
            # nothing in between was a working day
            day = date(year, m, 15)
            while day < due:
                assert not CAL.is_working_day(day)
                day += timedelta(days=1)


def test_a_month_without_a_due_day_rule_is_refused():
    assert nominal_due_day(date(2013, 7, 9), RULES) == date(2013, 7, 15)
    with pytest.raises(DueDayMissing, match="2013-06"):
        due_on(date(2013, 6, 1), RULES)
    with pytest.raises(DueDayMissing, match="2013-01"):
        require_due_days(RULES, date(2013, 1, 1), date(2025, 1, 1))
    require_due_days(RULES, date(2013, 7, 1), date(2040, 12, 1))


def _ruleset_with(due_dates: str):
    """The packaged rule set with its due-day rules replaced."""
    base = resources.files("rules").joinpath("czysty-region.toml").read_text(encoding="utf-8")
    return loads_ruleset(base[: base.index("[[due_dates]]")] + due_dates, source="rules.toml")


def test_due_day_rules_have_validity_and_are_validated():
    rs = _ruleset_with("[[due_dates]]\nvalid_from = 2020-01-01\nday = 15\n[[due_dates]]\nvalid_from = 2026-01-01\nday = 20\n")
    assert due_on(date(2025, 12, 1), rs) == date(2025, 12, 15)
    assert due_on(date(2026, 1, 1), rs) == date(2026, 1, 20)
    with pytest.raises(RuleSetError, match="same month"):
        _ruleset_with("[[due_dates]]\nvalid_from = 2020-01-01\nday = 15\n[[due_dates]]\nvalid_from = 2020-01-01\nday = 20\n")
    with pytest.raises(RuleSetError, match=r"due_dates\[0\]\.day"):
        _ruleset_with("[[due_dates]]\nvalid_from = 2020-01-01\nday = 31\n")
    with pytest.raises(RuleSetError, match="first day of a month"):
        _ruleset_with("[[due_dates]]\nvalid_from = 2020-01-02\nday = 15\n")
