"""Polish public holidays and working days (for filing deadlines and due dates).

The statutory days off (ustawa o dniach wolnych od pracy) are the project's own data with
their validity (:mod:`rules.daysoff`, ``rules/days-off.toml``): the fixed feasts, the
movable ones (Easter Sunday and Monday, Pentecost Sunday, Corpus Christi), Epiphany from
2011 and Christmas Eve (Wigilia, 24 December) from 2025 (Dz.U. 2024 poz. 1965). The
``holidays`` package is the independent check in the tests.

A deadline that falls on a Saturday, a Sunday or a public holiday moves to the next day
that is none of these (art. 12 § 5 Ordynacji podatkowej, applied to the fee by art. 6q
u.c.p.g.).

>>> is_public_holiday(date(2025, 4, 21))   # Easter Monday 2025
True
>>> is_public_holiday(date(2024, 12, 24)), is_public_holiday(date(2025, 12, 24))
(False, True)
>>> next_working_day(date(2025, 6, 19))    # Corpus Christi (Thu) -> Friday
datetime.date(2025, 6, 20)
"""

from __future__ import annotations

from datetime import date

from rules.daysoff import load_days_off


def warm_up(year: int | None = None) -> None:
    """Read the calendar and work out the days off of ``year`` and the year before
    (default: this year) now, before forking processes that would each do it again."""
    year = year or date.today().year
    cal = load_days_off()
    cal.days_off(year - 1)
    cal.days_off(year)


def is_public_holiday(day: date) -> bool:
    """Whether ``day`` is a Polish statutory public holiday (Sundays aside)."""
    return day in load_days_off().days_off(day.year)


def is_working_day(day: date) -> bool:
    """Neither a Saturday, a Sunday nor a public holiday."""
    return load_days_off().is_working_day(day)


def next_working_day(day: date) -> date:
    """``day`` itself when it is a working day, otherwise the next working day."""
    return load_days_off().next_working_day(day)


__all__ = ["is_public_holiday", "is_working_day", "next_working_day", "warm_up"]
