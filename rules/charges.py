"""Charges (należności) from the fee periods (``spec/payments.md``, sections 4 and 5).

One charge per (property, payer, month) for each month of an ``ebok_fee_period`` from its
``valid_from`` to the current month, not past its ``valid_to``; the amount is the period's
``monthly_fee`` (0.00 zł too: a month at 0.00 zł is a charge that is paid by itself), due on
the month's due date (:mod:`rules.duedates`). A period without a payer charges nobody.

The result is a function of the set of periods alone (sorted on output), so the order the
declarations arrived in does not matter. Two periods giving the same (property, payer,
month) would break the table's key: :class:`ChargeError` (the fee periods of one property
never overlap, so this is a bug upstream, not a document's fault).

>>> from decimal import Decimal
>>> p = FeePeriodRow(7, property_id=1, payer_id=3, valid_from=date(2025, 1, 1), valid_to=None, monthly_fee=Decimal("174.50"))
>>> [(c.month.isoformat(), str(c.amount), c.due_on.isoformat()) for c in charges_from_periods([p], date(2025, 3, 20), load_ruleset())]
[('2025-01-01', '174.50', '2025-01-15'), ('2025-02-01', '174.50', '2025-02-17'), ('2025-03-01', '174.50', '2025-03-17')]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rules.daysoff import DaysOff, load_days_off
from rules.duedates import due_on
from rules.ruleset import RuleSet, load_ruleset


class ChargeError(ValueError):
    """The fee periods cannot be charged (overlapping periods of one property and payer)."""


@dataclass(frozen=True)
class FeePeriodRow:
    """One ``ebok_fee_period`` row, as the charges need it."""

    id: int
    property_id: int
    payer_id: int | None
    valid_from: date  # first day of a month
    valid_to: date | None  # last day of a month; None while open
    monthly_fee: Decimal


@dataclass(frozen=True, order=True)
class Charge:
    """One ``ebok_charge`` row without its state (:mod:`rules.ledger` adds ``paid`` and the
    state). Ordered as the allocation fills them within a payer: due date, month, property."""

    payer_id: int
    due_on: date
    month: date  # first day of the month charged
    property_id: int
    fee_period_id: int
    amount: Decimal

    @property
    def key(self) -> tuple[int, int, date]:
        """The table's unique key (property_id, payer_id, month)."""
        return (self.property_id, self.payer_id, self.month)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def charges_from_periods(
    periods: Iterable[FeePeriodRow],
    today: date,
    ruleset: RuleSet,
    calendar: DaysOff | None = None,
) -> list[Charge]:
    """Every charge of ``periods`` up to the month of ``today`` (the Polish date of the
    computation), sorted by payer, due date, month and property."""
    cal = calendar or load_days_off()
    current = today.replace(day=1)
    out: dict[tuple[int, int, date], Charge] = {}
    due_cache: dict[date, date] = {}
    for period in periods:
        if period.payer_id is None:
            continue
        month = period.valid_from.replace(day=1)
        while month <= current and (period.valid_to is None or month <= period.valid_to):
            due = due_cache.get(month)
            if due is None:
                due = due_cache[month] = due_on(month, ruleset, cal)
            charge = Charge(period.payer_id, due, month, period.property_id, period.id, period.monthly_fee)
            if charge.key in out:
                raise ChargeError(
                    f"fee periods {out[charge.key].fee_period_id} and {period.id} both charge property "
                    f"{period.property_id}, payer {period.payer_id} for {month:%Y-%m}"
                )
            out[charge.key] = charge
            month = _next_month(month)
    return sorted(out.values())


__all__ = ["Charge", "ChargeError", "FeePeriodRow", "charges_from_periods", "load_ruleset"]
