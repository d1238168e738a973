"""Filing deadlines of DO-1 declarations (``spec/fee-rules.md``, "Declaration purposes").

- PIERWSZA (``FIRST``): within 14 days of ``ObowiazujeOd`` (the day the duty arose); the
  day of the event is not counted, so the deadline is ``applies_from + 14 days``.
- NOWA (``CHANGE``): by the 10th day of the month after the month of the change.
- KOREKTA (``CORRECTION``): no deadline. A correction fixes an error in a declaration
  already filed and may be filed at any time (art. 81 Ordynacji podatkowej); lateness is
  judged on the declaration it corrects, never on the correction.

A deadline falling on a Saturday, Sunday or Polish public holiday moves to the next working
day (:mod:`rules.workdays`). The filing day is the day in Poland (Europe/Warsaw) of the
filing time: ePUAP's ``dataNadania`` carries an offset; a paper receipt date has none and is
taken as it is.

>>> filing_deadline("FIRST", date(2025, 4, 7))     # 04-21 is Easter Monday
datetime.date(2025, 4, 22)
>>> filing_deadline("CHANGE", date(2025, 1, 15))   # 10 Feb 2025 is a Monday
datetime.date(2025, 2, 10)
>>> filing_deadline("CORRECTION", date(2025, 1, 15)) is None
True
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from rules.ruleset import Deadlines
from rules.workdays import next_working_day
from worker.domain.clock import WARSAW, filing_day
from worker.domain.findings import Finding, finding
from worker.domain.model import CHANGE, FIRST

POLAND = WARSAW



def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, clamped to the month's last day.

    >>> add_months(date(2025, 8, 31), 6), add_months(date(2025, 1, 31), 1)
    (datetime.date(2026, 2, 28), datetime.date(2025, 2, 28))
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def statutory_deadline(purpose: str, applies_from: date, params: Deadlines | None = None) -> date | None:
    """The deadline before moving it off a day off; ``None`` when the purpose has none."""
    params = params or Deadlines()
    try:
        if purpose == FIRST:
            return applies_from + timedelta(days=params.first_declaration_days)
        if purpose == CHANGE:
            return add_months(applies_from.replace(day=1), 1).replace(day=params.change_day_of_next_month)
    except (OverflowError, ValueError):  # a date at the end of the calendar: no deadline to speak of
        return None
    return None


def filing_deadline(purpose: str, applies_from: date, params: Deadlines | None = None) -> date | None:
    """The last day a declaration of ``purpose`` applying from ``applies_from`` may be
    filed, moved to the next working day; ``None`` for a correction (no deadline)."""
    raw = statutory_deadline(purpose, applies_from, params)
    if raw is None:
        return None
    try:
        return next_working_day(raw)
    except OverflowError:
        return raw


def late_filing(
    purpose: str,
    applies_from: date,
    filed_at: datetime | date | None,
    params: Deadlines | None = None,
    field: str | None = None,
) -> Finding | None:
    """``LATE_FILING`` when the declaration was filed after its deadline, else ``None``."""
    if filed_at is None:
        return None
    deadline = filing_deadline(purpose, applies_from, params)
    if deadline is None:
        return None
    filed = filing_day(filed_at)
    if filed <= deadline:
        return None
    params = params or Deadlines()
    raw = statutory_deadline(purpose, applies_from, params)
    if purpose == FIRST:
        rule = f"{params.first_declaration_days} dni od dnia powstania obowiązku, {applies_from.isoformat()}"
    else:
        rule = (
            f"do {params.change_day_of_next_month}. dnia miesiąca następującego po miesiącu zmiany, "
            f"{applies_from.isoformat()}"
        )
    moved = ""
    if raw is not None and raw != deadline:
        moved = f"; {raw.isoformat()} był dniem wolnym od pracy, więc termin przesunął się na najbliższy dzień roboczy"
    return finding(
        "LATE_FILING",
        field,
        f"Deklaracja złożona po terminie: termin upłynął {deadline.isoformat()} ({rule}{moved}), "
        f"a deklarację złożono {filed.isoformat()}.",
    )


__all__ = ["POLAND", "add_months", "filing_day", "filing_deadline", "late_filing", "statutory_deadline"]
