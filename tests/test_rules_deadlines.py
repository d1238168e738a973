"""Polish public holidays, working days and filing deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rules.deadlines import add_months, filing_day, filing_deadline, late_filing, statutory_deadline
from rules.ruleset import Deadlines
from rules.workdays import is_public_holiday, is_working_day, next_working_day
from worker.domain.model import CHANGE, CORRECTION, FIRST


def gregorian_easter(year: int) -> date:
    """Easter Sunday by the anonymous Gregorian algorithm (Meeus/Jones/Butcher), an
    independent computation to check the holiday calendar against."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@pytest.mark.parametrize("year", range(2015, 2041))
def test_movable_feasts_follow_easter(year):
    easter = gregorian_easter(year)
    assert is_public_holiday(easter)
    assert is_public_holiday(easter + timedelta(days=1))  # Easter Monday
    assert is_public_holiday(easter + timedelta(days=49))  # Pentecost Sunday
    assert is_public_holiday(easter + timedelta(days=60))  # Corpus Christi (Thursday)
    assert (easter + timedelta(days=60)).weekday() == 3
    assert not is_public_holiday(easter - timedelta(days=2))  # Good Friday is a working day in Poland
    assert not is_working_day(easter + timedelta(days=1))


@pytest.mark.parametrize(
    "day",
    ["2024-04-01", "2025-04-21", "2026-04-06",  # Easter Mondays
     "2024-05-30", "2025-06-19", "2026-06-04",  # Corpus Christi
     "2025-01-01", "2025-01-06", "2025-05-01", "2025-05-03", "2025-08-15", "2025-11-01", "2025-11-11",
     "2025-12-25", "2025-12-26"],
)
def test_known_public_holidays(day):
    assert is_public_holiday(date.fromisoformat(day))


def test_christmas_eve_is_a_holiday_from_2025():
    assert not is_public_holiday(date(2024, 12, 24))  # a Tuesday, a working day
    assert is_working_day(date(2024, 12, 24))
    assert is_public_holiday(date(2025, 12, 24)) and is_public_holiday(date(2026, 12, 24))


def test_ordinary_days():
    assert is_working_day(date(2025, 3, 17))  # Monday
    assert not is_working_day(date(2025, 3, 15)) and not is_working_day(date(2025, 3, 16))
    assert not is_public_holiday(date(2025, 3, 15))  # a Saturday is not a holiday, only a day off
    assert next_working_day(date(2025, 3, 17)) == date(2025, 3, 17)


@pytest.mark.parametrize(
    "day, expected",
    [
        ("2025-03-15", "2025-03-17"),  # Saturday → Monday
        ("2025-04-19", "2025-04-22"),  # Saturday, Easter Sunday, Easter Monday → Tuesday
        ("2025-06-19", "2025-06-20"),  # Corpus Christi → Friday
        ("2024-11-10", "2024-11-12"),  # Sunday, Independence Day → Tuesday
        ("2025-12-24", "2025-12-29"),  # Wigilia, Christmas, Saturday, Sunday → Monday
        ("2024-12-24", "2024-12-24"),  # not yet a holiday in 2024
        ("2025-05-01", "2025-05-02"),  # 1 May (Thursday) → Friday; 3 May is a Saturday
        ("2025-05-03", "2025-05-05"),
    ],
)
def test_next_working_day(day, expected):
    assert next_working_day(date.fromisoformat(day)) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    "applies_from, deadline",
    [
        ("2025-03-03", "2025-03-17"),  # +14 = Monday
        ("2025-03-01", "2025-03-17"),  # +14 = Saturday → Monday
        ("2025-04-07", "2025-04-22"),  # +14 = Easter Monday → Tuesday
        ("2025-06-05", "2025-06-20"),  # +14 = Corpus Christi → Friday
        ("2025-12-10", "2025-12-29"),  # +14 = Wigilia 2025 → after Christmas and the weekend
        ("2024-12-10", "2024-12-24"),  # Wigilia 2024 was a working day
        ("2025-01-20", "2025-02-03"),
    ],
)
def test_first_declaration_deadline(applies_from, deadline):
    assert filing_deadline(FIRST, date.fromisoformat(applies_from)) == date.fromisoformat(deadline)


@pytest.mark.parametrize(
    "applies_from, deadline",
    [
        ("2025-01-01", "2025-02-10"),  # Monday
        ("2025-01-31", "2025-02-10"),
        ("2025-04-15", "2025-05-12"),  # 10 May 2025 is a Saturday
        ("2024-10-20", "2024-11-12"),  # Sunday 10th, holiday 11th
        ("2025-12-01", "2026-01-12"),  # across the year; 10 Jan 2026 is a Saturday
        ("2025-07-31", "2025-08-11"),  # 10 Aug 2025 is a Sunday
    ],
)
def test_change_deadline(applies_from, deadline):
    assert filing_deadline(CHANGE, date.fromisoformat(applies_from)) == date.fromisoformat(deadline)


def test_correction_has_no_deadline_and_unknown_purposes_neither():
    assert filing_deadline(CORRECTION, date(2025, 1, 1)) is None
    assert filing_deadline("WHATEVER", date(2025, 1, 1)) is None


def test_deadline_parameters_come_from_the_rule_set():
    params = Deadlines(first_declaration_days=30, change_day_of_next_month=15)
    assert statutory_deadline(FIRST, date(2025, 3, 3), params) == date(2025, 4, 2)
    assert statutory_deadline(CHANGE, date(2025, 3, 3), params) == date(2025, 4, 15)


def test_deadline_at_the_end_of_the_calendar_does_not_crash():
    assert filing_deadline(FIRST, date(9999, 12, 25)) is None
    assert filing_deadline(CHANGE, date(9999, 12, 25)) is None


def test_filing_day_is_the_day_in_poland():
    assert filing_day(datetime(2025, 7, 8, 22, 30, tzinfo=UTC)) == date(2025, 7, 9)  # CEST
    assert filing_day(datetime(2025, 1, 8, 22, 30, tzinfo=UTC)) == date(2025, 1, 8)  # CET: 23:30
    assert filing_day(datetime(2025, 1, 8, 23, 30)) == date(2025, 1, 8)  # naive: local already


def test_late_filing_finding():
    assert late_filing(FIRST, date(2025, 3, 3), None) is None
    assert late_filing(FIRST, date(2025, 3, 3), date(2025, 3, 17)) is None
    f = late_filing(CHANGE, date(2025, 4, 15), date(2025, 5, 13))
    assert f is not None and f.code == "LATE_FILING" and f.severity == "warning"
    assert "2025-05-12" in f.message and "2025-05-10" in f.message and "dniem wolnym" in f.message


def test_add_months_clamps_to_the_month_end():
    assert add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
    assert add_months(date(2025, 3, 15), -3) == date(2024, 12, 15)
