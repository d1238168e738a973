"""Polish public holidays and working days (for filing deadlines).

The statutory days off (ustawa o dniach wolnych od pracy) come from the ``holidays``
package, which follows the law year by year: the fixed feasts, the movable ones (Easter
Sunday and Monday, Pentecost Sunday, Corpus Christi), Epiphany from 2011 and Christmas
Eve (Wigilia, 24 December) from 2025 (Dz.U. 2024 poz. 1965).

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

from datetime import date, timedelta
from functools import cache

import holidays as _holidays


@cache
def _holidays_of(year: int) -> frozenset[date]:
    return frozenset(_holidays.country_holidays("PL", years=year).keys())


def warm_up(year: int | None = None) -> None:
    """Load the calendar of ``year`` and the year before (default: this year) now — the
    ``holidays`` package imports every country's module on first use (≈ 0.15 s) and works
    out each year once (≈ 0.05 s): before forking processes that would each do it again."""
    year = year or date.today().year
    _holidays_of(year - 1)
    _holidays_of(year)


def is_public_holiday(day: date) -> bool:
    """Whether ``day`` is a Polish statutory public holiday (Sundays aside)."""
    return day in _holidays_of(day.year)


def is_working_day(day: date) -> bool:
    """Neither a Saturday, a Sunday nor a public holiday."""
    return day.weekday() < 5 and not is_public_holiday(day)


def next_working_day(day: date) -> date:
    """``day`` itself when it is a working day, otherwise the next working day."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


__all__ = ["is_public_holiday", "is_working_day", "next_working_day", "warm_up"]
