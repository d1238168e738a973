"""Polish statutory days off, as data with their validity (``rules/days-off.toml``).

The law (ustawa z 18 stycznia 1951 r. o dniach wolnych od pracy, art. 1) lists the days
off: every Sunday, fixed dates (each with the years it is in force: Epiphany from 2011,
Christmas Eve from 2025) and movable feasts counted from Easter Sunday (Easter Sunday and
Monday, Pentecost Sunday, Corpus Christi). A change of the law is a new line in the data
file, never a code change. The calendar answers only from ``covers_from`` on: a day before
it is an error (:class:`CalendarError`), not a guess.

>>> cal = load_days_off()
>>> cal.is_day_off(date(2025, 12, 24)), cal.is_day_off(date(2024, 12, 24))
(True, False)
>>> cal.is_day_off(date(2028, 6, 15))   # Corpus Christi 2028
True
>>> [d.isoformat() for d in sorted(cal.days_off(2025)) if d.month == 4]
['2025-04-20', '2025-04-21']
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated

from dateutil.easter import easter
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, ValidationError

DEFAULT_RESOURCE = "days-off.toml"


class CalendarError(ValueError):
    """The calendar data is unusable, or a day lies outside what it covers."""


@dataclass(frozen=True)
class FixedDayOff:
    name: str
    month: int
    day: int
    valid_from: date
    valid_until: date | None = None  # exclusive

    def on(self, year: int) -> date | None:
        day = date(year, self.month, self.day)
        return day if _in_force(day, self.valid_from, self.valid_until) else None


@dataclass(frozen=True)
class MovableDayOff:
    name: str
    days_after_easter: int
    valid_from: date
    valid_until: date | None = None

    def on(self, year: int) -> date | None:
        day = easter(year) + timedelta(days=self.days_after_easter)
        return day if _in_force(day, self.valid_from, self.valid_until) else None


def _in_force(day: date, valid_from: date, valid_until: date | None) -> bool:
    return valid_from <= day and (valid_until is None or day < valid_until)


@dataclass(frozen=True)
class DaysOff:
    """The statutory days off; :meth:`is_day_off` is what deadlines are judged on."""

    covers_from: date
    sundays: bool
    fixed: tuple[FixedDayOff, ...]
    movable: tuple[MovableDayOff, ...]
    single: tuple[tuple[str, date], ...]
    source: str = "<days off>"

    def days_off(self, year: int) -> frozenset[date]:
        """The listed days off of ``year`` (Sundays aside)."""
        return _days_of(self, year)

    def is_day_off(self, day: date) -> bool:
        if day < self.covers_from:
            raise CalendarError(f"{self.source}: {day} is before the calendar's first day {self.covers_from}")
        return (self.sundays and day.weekday() == 6) or day in _days_of(self, day.year)

    def is_working_day(self, day: date) -> bool:
        """Neither a Saturday nor a day off."""
        return day.weekday() != 5 and not self.is_day_off(day)

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the next one (o.p. art. 12 § 5)."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day


@functools.lru_cache(maxsize=256)
def _days_of(cal: DaysOff, year: int) -> frozenset[date]:
    entries: tuple[FixedDayOff | MovableDayOff, ...] = (*cal.fixed, *cal.movable)
    days = {d for d in (entry.on(year) for entry in entries) if d is not None}
    days.update(d for _, d in cal.single if d.year == year)
    return frozenset(d for d in days if d >= cal.covers_from)


# --------------------------------------------------------------------------- the file

Name = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)]
Day = Annotated[date, Strict()]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Fixed(_Table):
    name: Name
    month: Annotated[int, Strict(), Field(ge=1, le=12)]
    day: Annotated[int, Strict(), Field(ge=1, le=31)]
    valid_from: Day
    valid_until: Day | None = None


class _Movable(_Table):
    name: Name
    days_after_easter: Annotated[int, Strict(), Field(ge=-60, le=70)]
    valid_from: Day
    valid_until: Day | None = None


class _Single(_Table):
    name: Name
    date: Day


class _Document(_Table):
    covers_from: Day
    sundays: Annotated[bool, Strict()]
    fixed: list[_Fixed] = []
    movable: list[_Movable] = []
    single: list[_Single] = []


def loads_days_off(text: str, source: str = "<string>") -> DaysOff:
    """Parse and validate the calendar from TOML text; :class:`CalendarError` (one line)."""
    try:
        doc = _Document.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{source}: not valid TOML ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        raise CalendarError(f"{source}: {where}: {err['msg']}") from None
    fixed: list[FixedDayOff] = []
    for f in doc.fixed:
        try:
            date(2000, f.month, f.day)  # a leap year: 29 February is a date
        except ValueError:
            raise CalendarError(f"{source}: {f.name!r}: {f.day}.{f.month} is not a day of the year") from None
        fixed.append(FixedDayOff(f.name, f.month, f.day, f.valid_from, f.valid_until))
    movable = [MovableDayOff(m.name, m.days_after_easter, m.valid_from, m.valid_until) for m in doc.movable]
    entries: list[FixedDayOff | MovableDayOff] = [*fixed, *movable]
    for entry in entries:
        if entry.valid_until is not None and entry.valid_until <= entry.valid_from:
            raise CalendarError(f"{source}: {entry.name!r}: valid_until {entry.valid_until} is not after valid_from {entry.valid_from}")
    return DaysOff(
        covers_from=doc.covers_from,
        sundays=doc.sundays,
        fixed=tuple(fixed),
        movable=tuple(movable),
        single=tuple((s.name, s.date) for s in doc.single),
        source=source,
    )


@functools.cache
def load_days_off(path: Path | str | None = None) -> DaysOff:
    """The packaged calendar (``None``) or one from a file; read once per process."""
    if path is None:
        source = f"rules/{DEFAULT_RESOURCE}"
        text = resources.files("rules").joinpath(DEFAULT_RESOURCE).read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CalendarError(f"{source}: cannot read the calendar ({exc.__class__.__name__})") from None
    return loads_days_off(text, source)


__all__ = ["CalendarError", "DaysOff", "FixedDayOff", "MovableDayOff", "load_days_off", "loads_days_off"]
