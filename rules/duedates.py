"""Due dates of the monthly fee (``spec/payments.md``, section 4).

The fee of a month is due on the union's due day of that month (the rule set's
``[[due_dates]]``, a rule with its validity: :meth:`rules.ruleset.RuleSet.due_day`); a due
day on a Saturday or a statutory day off moves to the next day that is neither (o.p.
art. 12 § 5; the days off: :mod:`rules.daysoff`). A month with no rule in force is an
error (:class:`DueDayMissing`): the worker refuses to start rather than guess.

>>> rs = load_ruleset()
>>> [due_on(date(2025, m, 1), rs).isoformat() for m in (1, 2, 6, 8)]
['2025-01-15', '2025-02-17', '2025-06-16', '2025-08-18']
>>> due_on(date(2028, 6, 1), rs), due_on(date(2028, 8, 1), rs)
(datetime.date(2028, 6, 16), datetime.date(2028, 8, 16))
"""

from __future__ import annotations

from datetime import date

from rules.daysoff import DaysOff, load_days_off
from rules.ruleset import RuleSet, RuleSetError, load_ruleset


class DueDayMissing(RuleSetError):
    """A month is charged for which the rule set has no due-day rule in force."""


def _month(day: date) -> date:
    return day.replace(day=1)


def nominal_due_day(month: date, ruleset: RuleSet) -> date:
    """The due day of ``month`` before any move (the rule's day of that month)."""
    rule = ruleset.due_day(month)
    if rule is None:
        raise DueDayMissing(f"{ruleset.source}: no due-day rule ([[due_dates]]) in force for {month:%Y-%m}")
    return _month(month).replace(day=rule.day)


def due_on(month: date, ruleset: RuleSet, calendar: DaysOff | None = None) -> date:
    """The due date of the fee for ``month`` (any day of it), moved to a working day."""
    return (calendar or load_days_off()).next_working_day(nominal_due_day(month, ruleset))


def require_due_days(ruleset: RuleSet, first_month: date, last_month: date) -> None:
    """Raise :class:`DueDayMissing` for the first month in ``first_month``…``last_month``
    without a due-day rule (the start-up check over the months that are charged)."""
    month = _month(first_month)
    while month <= last_month:
        nominal_due_day(month, ruleset)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


__all__ = ["DueDayMissing", "due_on", "load_ruleset", "nominal_due_day", "require_due_days"]
