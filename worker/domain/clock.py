"""Time as the worker sees it: the one Polish time zone, "now" in UTC, Polish days.

Every module takes the zone, ``utcnow`` and the filing day from here (there used to be
four copies of the zone and two of each function).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WARSAW = ZoneInfo("Europe/Warsaw")


def utcnow() -> datetime:
    return datetime.now(UTC)


def filing_day(filed_at: datetime | date) -> date:
    """The calendar day in Poland on which a document was filed (naive times are taken as
    Polish time; a date is that day).

    >>> filing_day(datetime(2024, 12, 31, 23, 30, tzinfo=UTC))
    datetime.date(2025, 1, 1)
    >>> filing_day(datetime(2025, 3, 9, 23, 30, tzinfo=UTC))   # 00:30 in Warsaw
    datetime.date(2025, 3, 10)
    >>> filing_day(datetime(2024, 12, 31, 23, 30))
    datetime.date(2024, 12, 31)
    >>> filing_day(date(2025, 1, 31))
    datetime.date(2025, 1, 31)
    """
    if isinstance(filed_at, datetime):
        if filed_at.tzinfo is not None and filed_at.utcoffset() is not None:
            return filed_at.astimezone(WARSAW).date()
        return filed_at.date()
    return filed_at


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A Polish calendar day as a UTC interval [start, end) (23 or 25 hours at DST changes).

    >>> [t.isoformat() for t in day_bounds(date(2025, 3, 30))]
    ['2025-03-29T23:00:00+00:00', '2025-03-30T22:00:00+00:00']
    """
    start = datetime.combine(day, time(0), tzinfo=WARSAW)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=WARSAW)
    return start.astimezone(UTC), end.astimezone(UTC)


__all__ = ["WARSAW", "day_bounds", "filing_day", "utcnow"]
