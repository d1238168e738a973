"""Fee periods of a property, correction bases and the no-retroactive-decrease rule.

Pure functions over plain data: the loader reads a property's declarations from the
database, passes them in as :class:`PeriodInput` and writes the :class:`FeePeriod` rows
(``ebok_fee_period``) it gets back.

Fee periods (:func:`compute_fee_periods`)
    Input: the property's declarations that take part in the fee periods — every
    ``ACCEPTED`` one *and* every ``SUPERSEDED`` one (a correction replaces the corrected
    declaration's data only from its own ``ObowiazujeOd`` on, so the corrected one may still
    govern the months before; when both apply from the same month the correction simply
    wins). ``NEEDS_REVIEW`` and ``REJECTED`` ones are left out.

    Order: by the month a declaration applies from, then by filing time, a correction always
    after the declaration it corrects (``corrects_id``) within a month; remaining ties by the
    day it applies from, the purpose, the declared fee, the declared content, and only for two
    identical documents by the id — content first, so the result does not depend on arrival
    order (ids are assigned in arrival order). Each declaration governs from the first day of
    its month until the next one in that order takes over; the last period is open
    (``valid_to`` None). Within what a declaration governs, the periods are split at the
    union's rate changes and each is priced with the declaration's facts and the rates in
    force on the first day of its months (:func:`rules.fees.compute_fee`); where a price
    cannot be computed (no rates for those months) the declared monthly fee is charged.
    Adjacent pieces of the same declaration at the same fee are merged, so a rate change
    that leaves the fee unchanged does not split the period.

    Sale of the property (NOWA with ``PrzyczynaZmiany`` ``ZBYCIE_NIERUCHOMOSCI``): the
    seller's duty ends. From the month of the sale (the month of the change, like any NOWA)
    the declaration charges 0.00 zł, whatever facts it repeats — a period at 0.00 zł of the
    sale declaration, until the next owner's declaration takes over (if the buyer's
    declaration applies from the same month, there is no 0.00 zł period at all). That keeps
    the contract's "no gaps between the first and the last period" and tells the eBOK
    truthfully that nothing is charged. A sale declaration only ends what its own payer
    declared: when another payer's declaration already governs at that point, it has no
    effect (a buyer's declaration filed before the seller's notice is not cut off).

Correction base (:func:`select_correction_base`)
    Among the same payer's declarations for the property (the caller passes only those
    filed before the correction and accepted then: :mod:`rules.reconcile`): the one with the same
    ``ObowiazujeOd`` (the last one in the period order if several), otherwise the latest one
    in force on that day (applying from that day or earlier, last in the period order).

Retroactive decrease (:func:`check_retroactive_decrease`)
    A NOWA that charges less than before for any month before the month it was filed in is
    ``RETROACTIVE_DECREASE`` (for the office to decide), unless ``PrzyczynaZmiany`` is
    ``SMIERC_MIESZKANCA`` and it was filed within 6 months of the change (the death).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from rules.deadlines import POLAND, add_months, filing_day
from rules.fees import ZERO, compute_fee
from rules.ruleset import RuleSet, money
from worker.domain.findings import Finding, finding
from worker.domain.model import CHANGE, CORRECTION, FIRST, PAPER, Declaration

SALE = "ZBYCIE_NIERUCHOMOSCI"
DEATH = "SMIERC_MIESZKANCA"
_PURPOSE_RANK = {FIRST: 0, CHANGE: 1, CORRECTION: 2}
_FAR_FUTURE = datetime.max.replace(tzinfo=None)


@dataclass(frozen=True)
class PeriodInput:
    """One declaration of the property, as the loader knows it."""

    declaration_id: int
    payer_id: int | None
    purpose: str  # FIRST / CHANGE / CORRECTION
    applies_from: date
    filed_at: datetime | date | None
    corrects_id: int | None  # the declaration this correction corrects
    declaration: Declaration

    @property
    def is_sale(self) -> bool:
        return self.purpose == CHANGE and (self.declaration.change_reason or "").strip().upper() == SALE


@dataclass(frozen=True)
class FeePeriod:
    """One ``ebok_fee_period`` row (without the property id, which the caller knows)."""

    declaration_id: int
    payer_id: int | None
    valid_from: date  # first day of a month
    valid_to: date | None  # last day of a month; None while open
    monthly_fee: Decimal

    def covers(self, month: date) -> bool:
        return self.valid_from <= month and (self.valid_to is None or month <= self.valid_to)


def month_start(day: date) -> date:
    return day.replace(day=1)


def _utc_naive(value: datetime | date | None) -> datetime:
    """Filing time as a comparable naive UTC datetime (a naive time or a bare date is
    Polish local time; unknown sorts last)."""
    if value is None:
        return _FAR_FUTURE
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=POLAND)
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return value.replace(tzinfo=None)


def order_declarations(decls: Iterable[PeriodInput]) -> list[PeriodInput]:
    """The declarations in the order they take effect (see the module docstring)."""
    items = list(decls)
    by_id = {d.declaration_id: d for d in items}
    memo: dict[int, tuple[datetime, int]] = {}

    def chain(d: PeriodInput) -> tuple[datetime, int]:
        """(effective filing time, depth): a correction sorts after its base in one month."""
        if d.declaration_id in memo:
            return memo[d.declaration_id]
        memo[d.declaration_id] = (_utc_naive(d.filed_at), 0)  # guards a cycle of corrections
        base = by_id.get(d.corrects_id) if d.corrects_id is not None else None
        result = (_utc_naive(d.filed_at), 0)
        if base is not None and base is not d and month_start(base.applies_from) == month_start(d.applies_from):
            b_time, b_depth = chain(base)
            result = (max(result[0], b_time), b_depth + 1)
        memo[d.declaration_id] = result
        return result

    def key(d: PeriodInput) -> tuple[object, ...]:
        eff_time, depth = chain(d)
        return (
            month_start(d.applies_from),
            eff_time,
            depth,
            d.applies_from,
            _PURPOSE_RANK.get(d.purpose, 9),
            d.declaration.monthly_fee if isinstance(d.declaration.monthly_fee, Decimal) else ZERO,
            _Content(d.declaration),  # content, not arrival: two different documents never tie here
            d.declaration_id,
        )

    return sorted(items, key=key)


class _Content:
    """A declaration compared by its content (its ``repr``), worked out only when the
    keys before it tie."""

    __slots__ = ("declaration", "_text")

    def __init__(self, declaration: object) -> None:
        self.declaration = declaration
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            self._text = repr(self.declaration)
        return self._text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Content) and (self.declaration is other.declaration or self.text() == other.text())

    def __lt__(self, other: _Content) -> bool:
        return self.text() < other.text()

    __hash__ = None  # type: ignore[assignment]


def _governing(ordered: list[PeriodInput]) -> list[tuple[date, PeriodInput]]:
    """(first month, declaration) for each change of the governing declaration."""
    timeline: list[tuple[date, PeriodInput]] = []
    current: PeriodInput | None = None
    for d in ordered:
        if d.is_sale and (current is None or current.is_sale or current.payer_id != d.payer_id):
            continue  # nothing of this payer to end
        current = d
        start = month_start(d.applies_from)
        if timeline and timeline[-1][0] == start:
            timeline[-1] = (start, d)
        else:
            timeline.append((start, d))
    return timeline


def monthly_fee_for(decl: PeriodInput, ruleset: RuleSet, month: date) -> Decimal:
    """What ``decl`` charges for ``month``: 0.00 for a sale, else the fee computed with the
    rates in force on the month's first day, else (not computable) the declared fee."""
    if decl.is_sale:
        return ZERO
    total = compute_fee(decl.declaration, ruleset, on=month_start(month)).total
    if total is not None:
        return total
    declared = decl.declaration.monthly_fee
    return declared if isinstance(declared, Decimal) else ZERO


def compute_fee_periods(decls: Sequence[PeriodInput], ruleset: RuleSet) -> list[FeePeriod]:
    """The property's fee periods (see the module docstring); sorted, contiguous, the last
    one open. Empty when there is no declaration."""
    timeline = _governing(order_declarations(decls))
    changes = sorted({month_start(d) for d in ruleset.rate_change_dates()})
    pieces: list[FeePeriod] = []
    for n, (start, decl) in enumerate(timeline):
        end = timeline[n + 1][0] if n + 1 < len(timeline) else None  # exclusive month start
        bounds = [start] + [c for c in changes if start < c and (end is None or c < end)]
        for k, piece_start in enumerate(bounds):
            piece_end = bounds[k + 1] if k + 1 < len(bounds) else end
            fee = monthly_fee_for(decl, ruleset, piece_start)
            prev = pieces[-1] if pieces else None
            if prev is not None and prev.declaration_id == decl.declaration_id and prev.monthly_fee == fee:
                pieces[-1] = FeePeriod(prev.declaration_id, prev.payer_id, prev.valid_from, _last_day(piece_end), fee)
            else:
                pieces.append(FeePeriod(decl.declaration_id, decl.payer_id, piece_start, _last_day(piece_end), fee))
    return pieces


def _last_day(next_month_start: date | None) -> date | None:
    return None if next_month_start is None else next_month_start - timedelta(days=1)


def fee_for_month(periods: Sequence[FeePeriod], month: date) -> Decimal | None:
    """The fee the periods charge for the month of ``month`` (None: not covered)."""
    m = month_start(month)
    for p in periods:
        if p.covers(m):
            return p.monthly_fee
    return None


# --------------------------------------------------------------------------- corrections


def select_correction_base(correction: PeriodInput, candidates: Sequence[PeriodInput]) -> int | None:
    """The id of the declaration ``correction`` corrects, or None (``CORRECTION_WITHOUT_BASE``).

    ``candidates``: the property's accepted declarations (the correction itself is ignored
    if present). Only the same payer's declarations qualify.
    """
    own = [
        c
        for c in candidates
        if c.declaration_id != correction.declaration_id
        and correction.payer_id is not None
        and c.payer_id == correction.payer_id
    ]
    same_day = [c for c in own if c.applies_from == correction.applies_from]
    pool = same_day or [c for c in own if c.applies_from <= correction.applies_from]
    if not pool:
        return None
    return order_declarations(pool)[-1].declaration_id


def correction_without_base(channel: str | None = None) -> Finding:
    """``CORRECTION_WITHOUT_BASE``: a correction with nothing to correct (yet)."""
    return finding(
        "CORRECTION_WITHOUT_BASE",
        "cel.rodzaj" if channel == PAPER else "CelZlozenia/Rodzaj",
        "Deklaracja jest korektą, ale nie znaleziono przyjętej deklaracji tego składającego dla tej "
        "nieruchomości, złożonej przed korektą, którą mogłaby korygować. Korekta zostanie sprawdzona "
        "ponownie, gdy taka deklaracja zostanie przyjęta.",
    )


# --------------------------------------------------------------------------- retroactive decrease


def check_retroactive_decrease(
    new: PeriodInput,
    previous: Sequence[FeePeriod] | Callable[[date], Decimal | None],
    ruleset: RuleSet,
    filed_at: datetime | date | None = None,
) -> list[Finding]:
    """``RETROACTIVE_DECREASE`` when the NOWA ``new`` lowers the fee for a month before the
    month it was filed in (see the module docstring).

    ``previous`` gives the fee charged for a month *without* ``new``: the property's current
    fee periods, or a function of the month's first day. ``filed_at`` defaults to the
    input's filing time; without one nothing can be said (no finding).
    """
    if new.purpose != CHANGE:
        return []
    filed = filed_at if filed_at is not None else new.filed_at
    if filed is None:
        return []
    filed_day = filing_day(filed)
    filing_month = month_start(filed_day)
    month = month_start(new.applies_from)
    if month >= filing_month:
        return []
    lookup = previous if callable(previous) else (lambda m: fee_for_month(previous, m))

    decreased: list[tuple[date, Decimal, Decimal]] = []
    guard = 0
    while month < filing_month and guard < 1200:  # at most 100 years back
        before = lookup(month)
        after = monthly_fee_for(new, ruleset, month)
        if before is not None and after < before:
            decreased.append((month, before, after))
        month = add_months(month, 1)
        guard += 1
    if not decreased:
        return []
    reason = (new.declaration.change_reason or "").strip().upper()
    if reason == DEATH and filed_day <= add_months(new.applies_from, ruleset.deadlines.death_decrease_months):
        return []
    first, last = decreased[0][0], decreased[-1][0]
    span = _ym(first) if first == last else f"{_ym(first)}–{_ym(last)}"
    _, before, after = decreased[0]
    if reason == DEATH:
        exception = (
            f"zgłoszenie śmierci mieszkańca później niż {ruleset.deadlines.death_decrease_months} miesięcy "
            "od zdarzenia nie uprawnia do obniżenia wstecz"
        )
    else:
        exception = (
            "obniżenie wstecz jest dopuszczalne tylko z powodu śmierci mieszkańca zgłoszonej w ciągu "
            f"{ruleset.deadlines.death_decrease_months} miesięcy"
        )
    return [
        finding(
            "RETROACTIVE_DECREASE",
            "cel.obowiazuje_od" if new.declaration.channel == PAPER else "CelZlozenia/ObowiazujeOd",
            f"Nowa deklaracja obniża opłatę wstecz za {span} (przed miesiącem złożenia {_ym(filing_month)}): "
            f"z {money(before)} na {money(after)} miesięcznie; {exception}.",
        )
    ]


def _ym(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


__all__ = [
    "FeePeriod",
    "PeriodInput",
    "check_retroactive_decrease",
    "compute_fee_periods",
    "correction_without_base",
    "fee_for_month",
    "month_start",
    "monthly_fee_for",
    "order_declarations",
    "select_correction_base",
]
