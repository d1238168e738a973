"""A payer's account: allocation earliest due first, charge states, the account state.

``spec/payments.md`` sections 4 and 5, pure and order-independent:

- **paid** = Σ ``MATCHED`` credits − Σ ``MATCHED`` debits of the payer (:func:`net_paid`);
- the payer's charges, ordered by (``due_on``, month, ``property_id``), are filled in turn,
  each with min(amount, what remains) (o.p. art. 62 § 1: without an indication, the
  liability with the earliest due date; the union reads no indications from titles);
  what remains after the last is the overpayment (nadpłata);
- the **state** of a charge on the Polish date *d*: ``PAID`` paid = amount (0.00 zł too),
  ``OVERDUE`` paid < amount and d > due, ``PARTLY_PAID`` 0 < paid < amount and d ≤ due,
  ``DUE`` paid = 0 and d ≤ due;
- the **account**: charged, paid, balance = paid − charged, arrears = Σ (amount − paid) of
  the ``OVERDUE`` charges (bez odsetek), overpayment = max(0, paid − charged).

Filling a fixed ordered list does not depend on the order the payments came in, so the
state is the same whatever order statements and declarations arrived in.

A payer whose matched debits exceed the matched credits (more returned than paid — only an
office decision can cause it) has ``paid`` < 0: nothing is allocated, and the balance keeps
the negative amount. :func:`check_account` states the table's invariants with that term.

>>> from rules.charges import Charge
>>> jan = Charge(1, date(2025, 1, 15), date(2025, 1, 1), 9, 1, Decimal("174.50"))
>>> feb = Charge(1, date(2025, 2, 17), date(2025, 2, 1), 9, 1, Decimal("174.50"))
>>> acc = account_state(1, [feb, jan], Decimal("200.00"), date(2025, 2, 10))
>>> [(s.charge.month.month, str(s.paid), s.state) for s in acc.charges]
[(1, '174.50', 'PAID'), (2, '25.50', 'PARTLY_PAID')]
>>> str(acc.balance), str(acc.arrears), str(acc.overpayment)
('-149.00', '0.00', '0.00')
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from rules.charges import Charge
from worker.domain.clock import WARSAW

ZERO = Decimal("0.00")
GROSZ = Decimal("0.01")

DUE = "DUE"
PARTLY_PAID = "PARTLY_PAID"
PAID = "PAID"
OVERDUE = "OVERDUE"
CHARGE_STATES = (DUE, PARTLY_PAID, PAID, OVERDUE)

CREDIT = "CREDIT"
DEBIT = "DEBIT"


@dataclass(frozen=True)
class Flow:
    """A ``MATCHED`` movement of a payer, as the account needs it (amount > 0)."""

    payer_id: int
    direction: str  # CREDIT or DEBIT
    amount: Decimal


@dataclass(frozen=True)
class ChargeState:
    """A charge with what was allocated to it and its state: an ``ebok_charge`` row."""

    charge: Charge
    paid: Decimal
    state: str


@dataclass(frozen=True)
class AccountState:
    """An ``ebok_account`` row, with the payer's charge states."""

    payer_id: int
    charged: Decimal
    paid: Decimal
    balance: Decimal
    arrears: Decimal
    overpayment: Decimal
    on: date  # the Polish date the states hold for
    charges: tuple[ChargeState, ...]

    @property
    def open_amount(self) -> Decimal:
        """Σ (amount − paid) of the ``DUE`` and ``PARTLY_PAID`` charges (not yet overdue)."""
        return sum((s.charge.amount - s.paid for s in self.charges if s.state in (DUE, PARTLY_PAID)), ZERO)


def polish_date(as_of: datetime) -> date:
    """The local date in Poland of a UTC (aware) timestamp: what the states hold for."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware timestamp (UTC)")
    return as_of.astimezone(WARSAW).date()


def _money(value: Decimal) -> Decimal:
    if value != value.quantize(GROSZ):
        raise ValueError(f"amount {value} is not in whole grosze")
    return value.quantize(GROSZ)


def net_paid(flows: Iterable[Flow]) -> dict[int, Decimal]:
    """Σ credits − Σ debits per payer."""
    out: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for f in flows:
        amount = _money(f.amount)
        if amount <= 0:
            raise ValueError("a movement's amount must be positive")
        if f.direction == CREDIT:
            out[f.payer_id] += amount
        elif f.direction == DEBIT:
            out[f.payer_id] -= amount
        else:
            raise ValueError(f"unknown direction {f.direction!r}")
    return dict(out)


def charge_state(amount: Decimal, paid: Decimal, due_on: date, on: date) -> str:
    """The state of one charge on the Polish date ``on``.

    >>> charge_state(Decimal("0.00"), Decimal("0.00"), date(2025, 1, 15), date(2025, 3, 1))
    'PAID'
    >>> charge_state(Decimal("10.00"), Decimal("0.00"), date(2025, 1, 15), date(2025, 1, 15))
    'DUE'
    >>> charge_state(Decimal("10.00"), Decimal("4.00"), date(2025, 1, 15), date(2025, 1, 16))
    'OVERDUE'
    """
    if paid == amount:
        return PAID
    if on > due_on:
        return OVERDUE
    return PARTLY_PAID if paid > 0 else DUE


def allocate(charges: Iterable[Charge], paid: Decimal, on: date) -> tuple[tuple[ChargeState, ...], Decimal]:
    """Fill the charges earliest due first with ``paid``; returns the states and what
    remains (the overpayment, 0 when everything went to charges or ``paid`` ≤ 0)."""
    remaining = max(ZERO, _money(paid))
    states = []
    for charge in sorted(charges, key=lambda c: (c.due_on, c.month, c.property_id)):
        amount = _money(charge.amount)
        if amount < 0:
            raise ValueError("a charge's amount must not be negative")
        share = min(amount, remaining)
        remaining -= share
        states.append(ChargeState(charge, share, charge_state(amount, share, charge.due_on, on)))
    return tuple(states), remaining


def account_state(payer_id: int, charges: Iterable[Charge], paid: Decimal, on: date) -> AccountState:
    """The account of one payer on the Polish date ``on``."""
    mine = [c for c in charges if c.payer_id == payer_id]
    states, _ = allocate(mine, paid, on)
    charged = sum((c.amount for c in mine), ZERO)
    paid = _money(paid)
    return AccountState(
        payer_id=payer_id,
        charged=charged,
        paid=paid,
        balance=paid - charged,
        arrears=sum((s.charge.amount - s.paid for s in states if s.state == OVERDUE), ZERO),
        overpayment=max(ZERO, paid - charged),
        on=on,
        charges=states,
    )


def accounts(charges: Iterable[Charge], paid: Mapping[int, Decimal], on: date) -> dict[int, AccountState]:
    """Every payer's account: one per payer with a charge or a payment (``paid`` from
    :func:`net_paid`; a payer with movements that net to 0.00 has an account too)."""
    by_payer: dict[int, list[Charge]] = defaultdict(list)
    for c in charges:
        by_payer[c.payer_id].append(c)
    payers = sorted(set(by_payer) | set(paid))
    return {p: account_state(p, by_payer.get(p, []), paid.get(p, ZERO), on) for p in payers}


def check_account(acc: AccountState) -> list[str]:
    """The invariants of ``ebok_account`` and ``ebok_charge`` that ``acc`` breaks (empty:
    none). A negative ``paid`` adds its amount to the balance identity (see the module)."""
    problems = []
    shortfall = max(ZERO, -acc.paid)
    if acc.balance != acc.paid - acc.charged:
        problems.append("balance != paid - charged")
    if acc.balance != acc.overpayment - acc.arrears - acc.open_amount - shortfall:
        problems.append("balance != overpayment - arrears - open amount")
    if acc.overpayment > 0 and acc.arrears != 0:
        problems.append("overpayment with arrears")
    if acc.charged != sum((s.charge.amount for s in acc.charges), ZERO):
        problems.append("charged != sum of charges")
    partly = [s for s in acc.charges if 0 < s.paid < s.charge.amount]
    if len(partly) > 1:
        problems.append("more than one charge partly paid")
    for i, s in enumerate(acc.charges):
        if not ZERO <= s.paid <= s.charge.amount:
            problems.append(f"charge {s.charge.key}: paid outside 0..amount")
        if s.paid < s.charge.amount and any(t.paid > 0 for t in acc.charges[i + 1 :]):
            problems.append(f"charge {s.charge.key}: a later charge is paid before it")
    return problems


__all__ = [
    "CHARGE_STATES",
    "CREDIT",
    "DEBIT",
    "DUE",
    "OVERDUE",
    "PAID",
    "PARTLY_PAID",
    "AccountState",
    "ChargeState",
    "Flow",
    "account_state",
    "accounts",
    "allocate",
    "charge_state",
    "check_account",
    "net_paid",
    "polish_date",
]
