"""The union's rule set: member gminas, dated rate tables, statutory maxima, deadlines.

The facts live in a TOML file (``rules/czysty-region.toml`` is the packaged default); this
module reads it into an immutable :class:`RuleSet` and validates it. A rule set that cannot
be trusted stops the worker at start-up with :class:`RuleSetError` — a one-line message
naming the table and the rate — never a traceback:

- unknown or missing keys, values of the wrong type or out of range, money with more than
  two decimals: the file's schema (pydantic models ``_Document`` …), reported as
  ``<file>: <dotted.key>: <what>`` with tables in arrays counted from 0
  (``residential[1].tiers[0].rate``);
- two tables of the same kind in force from the same day, overlapping membership periods
  of one gmina, duplicate statutory bases;
- residential tiers that do not run contiguously from person 1 to an open last tier;
- a rate above its statutory maximum (art. 6k ust. 2a u.c.p.g.) on the day the rate
  applies from: per resident 2 %, per 120 l container 1.3 % (other capacities
  proportionally to the capacity) of the GUS base in force on that day, truncated to
  the grosz; a rate table with no base in force on its first day is refused as well;
- a rate table that does not start on the first day of a month (the fee is monthly, and
  fee periods are split at rate changes month by month);
- two due-day rules (``[[due_dates]]``: the day of the month the fee is due, from a month
  on) in force from the same month; a month charged with no rule in force is refused where
  the charges are derived (:func:`rules.duedates.require_due_days`);

the checks across values (all but the first item) run on the validated document in
:func:`_build`, with the table named by its first day.
- a composting discount larger than the lowest residential rate (the fee could go
  below zero).

Money and percentages are read as :class:`~decimal.Decimal` (the TOML numbers are parsed
directly into Decimal, never through float).

>>> rs = load_ruleset()
>>> rs.canonical_gmina("  KEDZIERZYN-kozle ")
'Kędzierzyn-Koźle'
>>> rs.is_member("Zawadzkie", date(2023, 11, 30)), rs.is_member("Zawadzkie", date(2023, 12, 1))
(False, True)
>>> [str(t.rate) for t in rs.residential_rates(date(2025, 3, 3)).tiers]
['38.00', '32.50', '26.50']
>>> rs.statutory.max_per_resident(date(2023, 1, 1))
Decimal('41.23')
"""

from __future__ import annotations

import functools
import tomllib
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints, ValidationError

from worker.config import describe, dotted
from worker.domain.text import fold

DEFAULT_RESOURCE = "czysty-region.toml"
GROSZ = Decimal("0.01")
BASE_CONTAINER_L = 120


class RuleSetError(ValueError):
    """The rule set is unusable; ``str(err)`` is one line naming the table and the value."""


# --------------------------------------------------------------------------- name folding

@functools.lru_cache(maxsize=4096)
def fold_name(name: str) -> str:
    """Fold a gmina name for matching (:func:`worker.domain.text.fold`); remembered, as
    every document folds the rule set's gmina names again.

    >>> fold_name("Kedzierzyn-Kozle") == fold_name("Kędzierzyn-Koźle")
    True
    """
    return fold(name)


def truncate_to_grosz(value: Decimal) -> Decimal:
    """Drop the third and further decimals (the statutory maxima are truncated).

    >>> truncate_to_grosz(Decimal("26.80509"))
    Decimal('26.80')
    """
    return value.quantize(GROSZ, rounding=ROUND_DOWN)


def money(value: Decimal) -> str:
    """Polish money text: ``174,50 zł``.

    >>> money(Decimal("1234.5"))
    '1234,50 zł'
    """
    return f"{value.quantize(GROSZ):.2f}".replace(".", ",") + " zł"


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Membership:
    """One membership period of a gmina: ``joined`` inclusive, ``left`` exclusive."""

    name: str
    joined: date | None = None
    left: date | None = None

    def covers(self, on: date) -> bool:
        return (self.joined is None or self.joined <= on) and (self.left is None or on < self.left)


@dataclass(frozen=True)
class Tier:
    """Residential tier: the persons ``first_person``…``last_person`` (None: and every
    further one) of a dwelling pay ``rate`` each."""

    first_person: int
    last_person: int | None
    rate: Decimal

    @property
    def label(self) -> str:
        """The line's description as the form writes it (``osoby 1-4``, ``osoba 5``,
        ``osoby 6 i kolejne``)."""
        if self.last_person is None:
            return f"osoby {self.first_person} i kolejne"
        if self.last_person == self.first_person:
            return f"osoba {self.first_person}"
        return f"osoby {self.first_person}-{self.last_person}"

    def persons_of(self, residents: int) -> int:
        """How many of a dwelling's ``residents`` fall into this tier.

        >>> Tier(1, 4, Decimal("38.00")).persons_of(6), Tier(5, 5, Decimal("32.50")).persons_of(6)
        (4, 1)
        >>> Tier(6, None, Decimal("26.50")).persons_of(9), Tier(6, None, Decimal("26.50")).persons_of(3)
        (4, 0)
        """
        upper = residents if self.last_person is None else min(residents, self.last_person)
        return max(0, upper - self.first_person + 1)


@dataclass(frozen=True)
class ResidentialRates:
    valid_from: date
    tiers: tuple[Tier, ...]
    composting_discount: Decimal
    resolution: str | None = None


@dataclass(frozen=True)
class ContainerRates:
    valid_from: date
    rates: Mapping[int, Decimal]  # capacity in litres -> rate per container per emptying
    resolution: str | None = None

    def rate_for(self, capacity_l: int) -> Decimal | None:
        return self.rates.get(capacity_l)

    @property
    def capacities(self) -> tuple[int, ...]:
        return tuple(sorted(self.rates))


@dataclass(frozen=True)
class StatutoryBase:
    """GUS's average monthly disposable income per person of ``year``, used for the maxima
    from ``in_force_from``."""

    year: int
    value: Decimal
    in_force_from: date


@dataclass(frozen=True)
class StatutoryMaxima:
    per_resident_percent: Decimal
    per_120l_container_percent: Decimal
    bases: tuple[StatutoryBase, ...]  # sorted by in_force_from
    per_household_percent: Decimal | None = None
    per_m3_water_percent: Decimal | None = None
    summer_house_yearly_percent: Decimal | None = None

    def base_on(self, on: date) -> StatutoryBase | None:
        """The base in force on ``on`` (the latest one published by then)."""
        i = bisect_right([b.in_force_from for b in self.bases], on)
        return self.bases[i - 1] if i else None

    def max_per_resident(self, on: date) -> Decimal | None:
        base = self.base_on(on)
        if base is None:
            return None
        return truncate_to_grosz(base.value * self.per_resident_percent / 100)

    def max_per_container(self, capacity_l: int, on: date) -> Decimal | None:
        """Maximum rate per container of ``capacity_l`` per emptying (proportional to the
        120 l maximum, computed exactly and truncated once).

        >>> m = load_ruleset().statutory
        >>> m.max_per_container(120, date(2023, 1, 1)), m.max_per_container(240, date(2023, 1, 1))
        (Decimal('26.80'), Decimal('53.61'))
        """
        base = self.base_on(on)
        if base is None:
            return None
        return truncate_to_grosz(base.value * self.per_120l_container_percent / 100 * capacity_l / BASE_CONTAINER_L)


@dataclass(frozen=True)
class Deadlines:
    first_declaration_days: int = 14
    change_day_of_next_month: int = 10
    death_decrease_months: int = 6


@dataclass(frozen=True)
class DueDay:
    """The due day of the monthly fee: day ``day`` of each month charged from the month
    ``valid_from`` on, until the next rule's ``valid_from`` (payments: ``rules.duedates``)."""

    valid_from: date
    day: int
    resolution: str | None = None


@dataclass(frozen=True)
class RuleSet:
    """The union's rules, validated. Look-ups by date pick the table in force on it."""

    name: str
    memberships: tuple[Membership, ...]
    residential: tuple[ResidentialRates, ...]  # sorted by valid_from
    containers: tuple[ContainerRates, ...]  # sorted by valid_from
    statutory: StatutoryMaxima
    deadlines: Deadlines = field(default_factory=Deadlines)
    source: str = "<rules>"
    due_days: tuple[DueDay, ...] = ()  # sorted by valid_from

    # -- gminas
    def canonical_gmina(self, name: str | None) -> str | None:
        """The canonical name of a gmina the union knows (a member now or once), matching
        without regard to case, surrounding spaces and Polish diacritics; None otherwise."""
        if not name:
            return None
        key = fold_name(name)
        for m in self.memberships:
            if fold_name(m.name) == key:
                return m.name
        return None

    def memberships_of(self, canonical: str) -> tuple[Membership, ...]:
        key = fold_name(canonical)
        return tuple(m for m in self.memberships if fold_name(m.name) == key)

    def is_member(self, canonical: str, on: date) -> bool:
        """Whether the gmina belongs to the union on ``on``."""
        return any(m.covers(on) for m in self.memberships_of(canonical))

    # -- rates
    def residential_rates(self, on: date) -> ResidentialRates | None:
        return _in_force(self.residential, on)

    def container_rates(self, on: date) -> ContainerRates | None:
        return _in_force(self.containers, on)

    def due_day(self, month: date) -> DueDay | None:
        """The due-day rule in force for the month of ``month`` (None: none is)."""
        return _in_force(self.due_days, month.replace(day=1))

    def rate_change_dates(self) -> tuple[date, ...]:
        """Every day on which some rate table starts (sorted): fee periods split there."""
        return tuple(sorted({t.valid_from for t in self.residential} | {t.valid_from for t in self.containers}))


class _Dated(Protocol):
    @property
    def valid_from(self) -> date: ...


_T = TypeVar("_T", bound=_Dated)


def _in_force(tables: tuple[_T, ...], on: date) -> _T | None:
    i = bisect_right([t.valid_from for t in tables], on)
    return tables[i - 1] if i else None


# --------------------------------------------------------------------------- the file's schema
# What the TOML file may say, checked by pydantic: unknown and missing keys, types, ranges,
# money with at most two decimals. The rules that relate one value to another (tiers, periods,
# statutory maxima) are checked by _build below, on the validated document.


def _month_start(day: date) -> date:
    if day.day != 1:
        raise ValueError(f"valid_from {day} is not the first day of a month (the fee is monthly)")
    return day


def _capacity(key: str) -> str:
    if not key.isdigit() or int(key) <= 0:
        raise ValueError(f"capacity {key!r} is not a positive number of litres")
    return key


Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)]
Day = Annotated[date, Strict()]  # a TOML local date; a date-time is refused
MonthStart = Annotated[Day, AfterValidator(_month_start)]
Money = Annotated[Decimal, Field(ge=0, decimal_places=2, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Persons = Annotated[int, Strict(), Field(ge=1)]
Days = Annotated[int, Strict(), Field(ge=0)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Union(_Table):
    name: Text


class _Gmina(_Table):
    name: Text
    joined: Day | None = None
    left: Day | None = None


class _Base(_Table):
    year: Annotated[int, Strict(), Field(ge=1990)]
    value: Annotated[Money, Field(gt=0)]
    in_force_from: Day


class _Statutory(_Table):
    per_resident_percent: Percent
    per_120l_container_percent: Percent
    bases: Annotated[list[_Base], Field(min_length=1)]
    per_household_percent: Percent | None = None
    per_m3_water_percent: Percent | None = None
    summer_house_yearly_percent: Percent | None = None


class _Tier(_Table):
    first_person: Persons
    last_person: Persons | None = None
    rate: Money


class _Residential(_Table):
    valid_from: MonthStart
    tiers: Annotated[list[_Tier], Field(min_length=1)]
    composting_discount: Money
    resolution: Text | None = None


class _Containers(_Table):
    valid_from: MonthStart
    rates: Annotated[dict[Annotated[str, AfterValidator(_capacity)], Money], Field(min_length=1)]  # litres = rate
    resolution: Text | None = None


class _Deadlines(_Table):
    first_declaration_days: Days = 14
    change_day_of_next_month: Annotated[int, Strict(), Field(ge=1, le=28)] = 10  # a day every month has
    death_decrease_months: Days = 6


class _DueDay(_Table):
    valid_from: MonthStart
    day: Annotated[int, Strict(), Field(ge=1, le=28)]  # a day every month has
    resolution: Text | None = None


class _Document(_Table):
    union: _Union
    gminas: Annotated[list[_Gmina], Field(min_length=1)]
    residential: Annotated[list[_Residential], Field(min_length=1)]
    containers: Annotated[list[_Containers], Field(min_length=1)]
    statutory: _Statutory
    deadlines: _Deadlines = _Deadlines()
    due_dates: list[_DueDay] = []


# pydantic's error types → the message after "<file>: <dotted.key>: " ({…}: the error's context)
_MESSAGES: dict[str, str] = {
    "missing": "missing key {key!r}",
    "extra_forbidden": "unknown key {key!r}",
    "model_type": "expected a table",
    "dict_type": "expected a table",
    "list_type": "expected an array of tables",
    "too_short": "must not be empty",
    "date_type": "expected a date (YYYY-MM-DD), got {input!r}",
    "int_type": "expected an integer, got {input!r}",
    "string_type": "expected a non-empty string, got {input!r}",
    "string_too_short": "expected a non-empty string, got {input!r}",
    "decimal_type": "expected a non-negative number, got {input!r}",
    "decimal_parsing": "expected a non-negative number, got {input!r}",
    "finite_number": "expected a finite number, got {input!r}",
    "greater_than": "expected a positive number, got {input!r}",
    "greater_than_equal": "expected a number >= {ge}, got {input!r}",
    "less_than_equal": "expected a number <= {le}, got {input!r}",
    "decimal_max_places": "{input} has more than {decimal_places} decimal places",
    "value_error": "{error}",
}


# --------------------------------------------------------------------------- loading


def load_ruleset(path: Path | str | None = None) -> RuleSet:
    """Read and validate a rule set; ``None`` reads the packaged default.

    Raises :class:`RuleSetError` (one line) when the file is missing, not TOML, or breaks
    a rule listed in the module docstring.
    """
    if path is None:
        source = f"rules/{DEFAULT_RESOURCE}"
        try:
            text = resources.files("rules").joinpath(DEFAULT_RESOURCE).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # pragma: no cover - broken installation
            raise RuleSetError(f"{source}: cannot read the packaged rule set ({exc})") from None
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RuleSetError(f"{source}: rule set file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleSetError(f"{source}: cannot read the rule set ({exc.__class__.__name__}: {exc})") from None
    return loads_ruleset(text, source=source)


def loads_ruleset(text: str, source: str = "<string>") -> RuleSet:
    """Parse and validate a rule set from TOML text (see :func:`load_ruleset`)."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError(f"{source}: not valid TOML ({exc})") from None
    try:
        doc = _Document.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RuleSetError(f"{source}: {dotted(err['loc']) or 'top level'}: {describe(err, _MESSAGES, '{msg}')}") from None
    return _build(doc, source)


def _build(doc: _Document, source: str) -> RuleSet:
    """The value model from a validated document, with the checks across values."""

    def fail(where: str, what: str) -> RuleSetError:
        return RuleSetError(f"{source}: {where}: {what}")

    memberships: list[Membership] = []
    for g in doc.gminas:
        where = f"gmina {g.name!r}"
        if g.joined and g.left and g.left <= g.joined:
            raise fail(where, f"left ({g.left}) is not after joined ({g.joined})")
        m = Membership(g.name, g.joined, g.left)
        for other in memberships:
            if fold_name(other.name) != fold_name(m.name):
                continue
            if other.name != m.name:
                raise fail(where, f"spelled differently from {other.name!r}")
            if _overlap(other, m):
                raise fail(where, "overlapping membership periods")
        memberships.append(m)

    bases: list[StatutoryBase] = []
    for b in doc.statutory.bases:
        for earlier in bases:
            if earlier.year == b.year:
                raise fail(f"statutory base of {b.year}", "listed twice")
            if earlier.in_force_from == b.in_force_from:
                raise fail(f"statutory base of {b.year}", f"in force from {b.in_force_from}, the same day as the base of {earlier.year}")
        bases.append(StatutoryBase(b.year, b.value, b.in_force_from))
    s = doc.statutory
    statutory = StatutoryMaxima(
        per_resident_percent=s.per_resident_percent,
        per_120l_container_percent=s.per_120l_container_percent,
        bases=tuple(sorted(bases, key=lambda b: b.in_force_from)),
        per_household_percent=s.per_household_percent,
        per_m3_water_percent=s.per_m3_water_percent,
        summer_house_yearly_percent=s.summer_house_yearly_percent,
    )

    def base_for(on: date, where: str) -> StatutoryBase:
        base = statutory.base_on(on)
        if base is None:
            raise fail(where, f"no statutory base (GUS) in force on {on} to check the rates against")
        return base

    residential: list[ResidentialRates] = []
    for r in doc.residential:
        where = f"residential table valid from {r.valid_from}"
        tiers = _tiers(r.tiers, where, fail)
        lowest = min(tier.rate for tier in tiers)
        if r.composting_discount > lowest:
            raise fail(where, f"composting discount {r.composting_discount} exceeds the lowest rate {lowest}")
        base = base_for(r.valid_from, where)
        maximum = statutory.max_per_resident(r.valid_from)
        for tier in tiers:
            if maximum is not None and tier.rate > maximum:
                raise fail(
                    where,
                    f"rate {tier.rate} for {tier.label} exceeds the statutory maximum {maximum} "
                    f"({statutory.per_resident_percent}% of {base.value}, GUS base of {base.year} "
                    f"in force from {base.in_force_from})",
                )
        if any(t.valid_from == r.valid_from for t in residential):
            raise fail(where, "two residential tables valid from the same day (overlapping periods)")
        residential.append(ResidentialRates(r.valid_from, tiers, r.composting_discount, r.resolution))

    containers: list[ContainerRates] = []
    for c in doc.containers:
        where = f"container table valid from {c.valid_from}"
        base = base_for(c.valid_from, where)
        rates: dict[int, Decimal] = {}
        for key, rate in c.rates.items():
            cap = int(key)
            if cap in rates:
                raise fail(where, f"capacity {cap} l listed twice")
            maximum = statutory.max_per_container(cap, c.valid_from)
            if maximum is not None and rate > maximum:
                raise fail(
                    where,
                    f"rate {rate} for a {cap} l container exceeds the statutory maximum {maximum} "
                    f"({statutory.per_120l_container_percent}% of {base.value} per 120 l, proportional; "
                    f"GUS base of {base.year} in force from {base.in_force_from})",
                )
            rates[cap] = rate
        if any(t.valid_from == c.valid_from for t in containers):
            raise fail(where, "two container tables valid from the same day (overlapping periods)")
        containers.append(ContainerRates(c.valid_from, MappingProxyType(dict(sorted(rates.items()))), c.resolution))

    due_days: list[DueDay] = []
    for u in doc.due_dates:
        if any(other.valid_from == u.valid_from for other in due_days):
            raise fail(f"due-day rule valid from {u.valid_from}", "two due-day rules valid from the same month")
        due_days.append(DueDay(u.valid_from, u.day, u.resolution))

    d = doc.deadlines
    return RuleSet(
        name=doc.union.name,
        memberships=tuple(memberships),
        residential=tuple(sorted(residential, key=lambda r: r.valid_from)),
        containers=tuple(sorted(containers, key=lambda c: c.valid_from)),
        statutory=statutory,
        deadlines=Deadlines(d.first_declaration_days, d.change_day_of_next_month, d.death_decrease_months),
        source=source,
        due_days=tuple(sorted(due_days, key=lambda u: u.valid_from)),
    )


def _tiers(items: list[_Tier], where: str, fail: Any) -> tuple[Tier, ...]:
    """The tiers sorted, running contiguously from person 1 to an open last tier."""
    tiers = sorted((Tier(t.first_person, t.last_person, t.rate) for t in items), key=lambda t: t.first_person)
    for tier in tiers:
        if tier.last_person is not None and tier.last_person < tier.first_person:
            raise fail(f"{where} tier {tier.first_person}", f"last_person {tier.last_person} is before first_person {tier.first_person}")
    expected = 1
    for j, tier in enumerate(tiers):
        if tier.first_person != expected:
            what = "missing tier" if tier.first_person > expected else "overlapping tiers"
            raise fail(where, f"{what}: expected a tier starting at person {expected}, found {tier.label}")
        if tier.last_person is None:
            if j != len(tiers) - 1:
                raise fail(where, f"overlapping tiers: {tier.label} is open but further tiers follow")
            return tuple(tiers)
        expected = tier.last_person + 1
    raise fail(where, f"missing tier: no open last tier for person {expected} and further")


def _overlap(a: Membership, b: Membership) -> bool:
    a_start, b_start = a.joined or date.min, b.joined or date.min
    a_end, b_end = a.left or date.max, b.left or date.max
    return a_start < b_end and b_start < a_end


__all__ = [
    "ContainerRates",
    "Deadlines",
    "DueDay",
    "Membership",
    "ResidentialRates",
    "RuleSet",
    "RuleSetError",
    "StatutoryBase",
    "StatutoryMaxima",
    "Tier",
    "fold_name",
    "load_ruleset",
    "loads_ruleset",
    "money",
    "truncate_to_grosz",
]
