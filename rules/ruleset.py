"""The union's rule set: member gminas, dated rate tables, statutory maxima, deadlines.

The facts live in a TOML file (``rules/czysty-region.toml`` is the packaged default); this
module reads it into an immutable :class:`RuleSet` and validates it. A rule set that cannot
be trusted stops the worker at start-up with :class:`RuleSetError` — a one-line message
naming the table and the rate — never a traceback:

- unknown or missing keys, values of the wrong type, money with more than two decimals;
- two tables of the same kind in force from the same day, overlapping membership periods
  of one gmina, duplicate statutory bases;
- residential tiers that do not run contiguously from person 1 to an open last tier;
- a rate above its statutory maximum (art. 6k ust. 2a u.c.p.g.) on the day the rate
  applies from: per resident 2 %, per 120 l container 1.3 % (other capacities
  proportionally to the capacity) of the GUS base in force on that day, truncated to
  the grosz; a rate table with no base in force on its first day is refused as well;
- a rate table that does not start on the first day of a month (the fee is monthly, and
  fee periods are split at rate changes month by month);
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

import tomllib
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from worker.domain.text import fold

DEFAULT_RESOURCE = "czysty-region.toml"
GROSZ = Decimal("0.01")
BASE_CONTAINER_L = 120


class RuleSetError(ValueError):
    """The rule set is unusable; ``str(err)`` is one line naming the table and the value."""


# --------------------------------------------------------------------------- name folding

def fold_name(name: str) -> str:
    """Fold a gmina name for matching (:func:`worker.domain.text.fold`).

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
class RuleSet:
    """The union's rules, validated. Look-ups by date pick the table in force on it."""

    name: str
    memberships: tuple[Membership, ...]
    residential: tuple[ResidentialRates, ...]  # sorted by valid_from
    containers: tuple[ContainerRates, ...]  # sorted by valid_from
    statutory: StatutoryMaxima
    deadlines: Deadlines = field(default_factory=Deadlines)
    source: str = "<rules>"

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

    def rate_change_dates(self) -> tuple[date, ...]:
        """Every day on which some rate table starts (sorted): fee periods split there."""
        return tuple(sorted({t.valid_from for t in self.residential} | {t.valid_from for t in self.containers}))


def _in_force(tables: tuple[Any, ...], on: date) -> Any:
    i = bisect_right([t.valid_from for t in tables], on)
    return tables[i - 1] if i else None


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
    return _Parser(source).ruleset(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> RuleSetError:
        return RuleSetError(f"{self.source}: {where}: {what}")

    # -- primitive readers
    def keys(self, table: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table")
        unknown = sorted(set(table) - required - optional)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}")
        missing = sorted(required - set(table))
        if missing:
            raise self.fail(where, f"missing key {missing[0]!r}")
        return table

    def day(self, value: Any, where: str) -> date:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise self.fail(where, f"expected a date (YYYY-MM-DD), got {value!r}")
        return value

    def integer(self, value: Any, where: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def decimal(self, value: Any, where: str, *, places: int | None = 2, positive: bool = False) -> Decimal:
        if isinstance(value, bool):
            raise self.fail(where, f"expected a number, got {value!r}")
        try:
            dec = Decimal(value) if isinstance(value, (int, str, Decimal)) else None
        except InvalidOperation:
            dec = None
        if dec is None or not dec.is_finite() or dec < 0 or (positive and dec == 0):
            raise self.fail(where, f"expected a {'positive' if positive else 'non-negative'} number, got {value!r}")
        if places is not None and dec.as_tuple().exponent < -places:  # type: ignore[operator]
            raise self.fail(where, f"{dec} has more than {places} decimal places")
        return dec

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def array(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.fail(where, "expected an array of tables")
        return value

    # -- tables
    def ruleset(self, data: dict) -> RuleSet:
        self.keys(data, "top level", {"union", "gminas", "residential", "containers", "statutory"}, {"deadlines"})
        union = self.keys(data["union"], "[union]", {"name"})
        statutory = self.statutory(data["statutory"])
        memberships = self.gminas(self.array(data["gminas"], "[[gminas]]"))
        residential = self.residential(self.array(data["residential"], "[[residential]]"), statutory)
        containers = self.containers(self.array(data["containers"], "[[containers]]"), statutory)
        deadlines = self.deadlines(data.get("deadlines", {}))
        return RuleSet(
            name=self.text(union["name"], "[union] name"),
            memberships=memberships,
            residential=residential,
            containers=containers,
            statutory=statutory,
            deadlines=deadlines,
            source=self.source,
        )

    def gminas(self, items: list) -> tuple[Membership, ...]:
        if not items:
            raise self.fail("[[gminas]]", "no member gminas")
        out: list[Membership] = []
        for i, raw in enumerate(items, 1):
            where = f"gminas[{i}]"
            t = self.keys(raw, where, {"name"}, {"joined", "left"})
            name = self.text(t["name"], f"{where} name")
            where = f"gmina {name!r}"
            joined = self.day(t["joined"], f"{where} joined") if "joined" in t else None
            left = self.day(t["left"], f"{where} left") if "left" in t else None
            if joined and left and left <= joined:
                raise self.fail(where, f"left ({left}) is not after joined ({joined})")
            m = Membership(name, joined, left)
            for other in out:
                if fold_name(other.name) != fold_name(name):
                    continue
                if other.name != name:
                    raise self.fail(where, f"spelled differently from {other.name!r}")
                if _overlap(other, m):
                    raise self.fail(where, "overlapping membership periods")
            out.append(m)
        return tuple(out)

    def statutory(self, raw: Any) -> StatutoryMaxima:
        where = "[statutory]"
        t = self.keys(
            raw,
            where,
            {"per_resident_percent", "per_120l_container_percent", "bases"},
            {"per_household_percent", "per_m3_water_percent", "summer_house_yearly_percent"},
        )

        def pct(key: str) -> Decimal | None:
            return self.decimal(t[key], f"{where} {key}", places=None, positive=True) if key in t else None

        bases: list[StatutoryBase] = []
        for i, rb in enumerate(self.array(t["bases"], "[[statutory.bases]]"), 1):
            bw = f"statutory.bases[{i}]"
            b = self.keys(rb, bw, {"year", "value", "in_force_from"})
            base = StatutoryBase(
                year=self.integer(b["year"], f"{bw} year", 1990),
                value=self.decimal(b["value"], f"{bw} value", positive=True),
                in_force_from=self.day(b["in_force_from"], f"{bw} in_force_from"),
            )
            for other in bases:
                if other.year == base.year:
                    raise self.fail(f"statutory base of {base.year}", "listed twice")
                if other.in_force_from == base.in_force_from:
                    raise self.fail(
                        f"statutory base of {base.year}",
                        f"in force from {base.in_force_from}, the same day as the base of {other.year}",
                    )
            bases.append(base)
        if not bases:
            raise self.fail("[[statutory.bases]]", "no statutory base")
        bases.sort(key=lambda b: b.in_force_from)
        return StatutoryMaxima(
            per_resident_percent=pct("per_resident_percent"),  # type: ignore[arg-type]
            per_120l_container_percent=pct("per_120l_container_percent"),  # type: ignore[arg-type]
            bases=tuple(bases),
            per_household_percent=pct("per_household_percent"),
            per_m3_water_percent=pct("per_m3_water_percent"),
            summer_house_yearly_percent=pct("summer_house_yearly_percent"),
        )

    def valid_from(self, t: dict, where: str) -> date:
        d = self.day(t["valid_from"], f"{where} valid_from")
        if d.day != 1:
            raise self.fail(where, f"valid_from {d} is not the first day of a month (the fee is monthly)")
        return d

    def base_for(self, statutory: StatutoryMaxima, on: date, where: str) -> StatutoryBase:
        base = statutory.base_on(on)
        if base is None:
            raise self.fail(where, f"no statutory base (GUS) in force on {on} to check the rates against")
        return base

    def residential(self, items: list, statutory: StatutoryMaxima) -> tuple[ResidentialRates, ...]:
        if not items:
            raise self.fail("[[residential]]", "no residential rate table")
        out: list[ResidentialRates] = []
        for i, raw in enumerate(items, 1):
            t = self.keys(raw, f"residential[{i}]", {"valid_from", "tiers", "composting_discount"}, {"resolution"})
            vf = self.valid_from(t, f"residential[{i}]")
            where = f"residential table valid from {vf}"
            tiers = self.tiers(self.array(t["tiers"], f"{where} tiers"), where)
            discount = self.decimal(t["composting_discount"], f"{where} composting_discount")
            lowest = min(tier.rate for tier in tiers)
            if discount > lowest:
                raise self.fail(where, f"composting discount {discount} exceeds the lowest rate {lowest}")
            base = self.base_for(statutory, vf, where)
            maximum = statutory.max_per_resident(vf)
            for tier in tiers:
                if maximum is not None and tier.rate > maximum:
                    raise self.fail(
                        where,
                        f"rate {tier.rate} for {tier.label} exceeds the statutory maximum {maximum} "
                        f"({statutory.per_resident_percent}% of {base.value}, GUS base of {base.year} "
                        f"in force from {base.in_force_from})",
                    )
            if any(r.valid_from == vf for r in out):
                raise self.fail(where, "two residential tables valid from the same day (overlapping periods)")
            out.append(ResidentialRates(vf, tiers, discount, self.opt_text(t, "resolution", where)))
        out.sort(key=lambda r: r.valid_from)
        return tuple(out)

    def tiers(self, items: list, where: str) -> tuple[Tier, ...]:
        if not items:
            raise self.fail(where, "no tiers")
        tiers: list[Tier] = []
        for j, raw in enumerate(items, 1):
            tw = f"{where} tier {j}"
            t = self.keys(raw, tw, {"first_person", "rate"}, {"last_person"})
            first = self.integer(t["first_person"], f"{tw} first_person", 1)
            last = self.integer(t["last_person"], f"{tw} last_person", 1) if "last_person" in t else None
            if last is not None and last < first:
                raise self.fail(tw, f"last_person {last} is before first_person {first}")
            tiers.append(Tier(first, last, self.decimal(t["rate"], f"{tw} rate")))
        tiers.sort(key=lambda x: x.first_person)
        expected = 1
        for j, tier in enumerate(tiers):
            if tier.first_person != expected:
                what = "missing tier" if tier.first_person > expected else "overlapping tiers"
                raise self.fail(where, f"{what}: expected a tier starting at person {expected}, found {tier.label}")
            if tier.last_person is None:
                if j != len(tiers) - 1:
                    raise self.fail(where, f"overlapping tiers: {tier.label} is open but further tiers follow")
                return tuple(tiers)
            expected = tier.last_person + 1
        raise self.fail(where, f"missing tier: no open last tier for person {expected} and further")

    def containers(self, items: list, statutory: StatutoryMaxima) -> tuple[ContainerRates, ...]:
        if not items:
            raise self.fail("[[containers]]", "no container rate table")
        out: list[ContainerRates] = []
        for i, raw in enumerate(items, 1):
            t = self.keys(raw, f"containers[{i}]", {"valid_from", "rates"}, {"resolution"})
            vf = self.valid_from(t, f"containers[{i}]")
            where = f"container table valid from {vf}"
            raw_rates = t["rates"]
            if not isinstance(raw_rates, dict) or not raw_rates:
                raise self.fail(where, "rates must be a non-empty table {capacity_l = rate}")
            base = self.base_for(statutory, vf, where)
            rates: dict[int, Decimal] = {}
            for key, value in raw_rates.items():
                if not key.isdigit() or int(key) <= 0:
                    raise self.fail(where, f"capacity {key!r} is not a positive number of litres")
                cap = int(key)
                if cap in rates:
                    raise self.fail(where, f"capacity {cap} l listed twice")
                rate = self.decimal(value, f"{where} rate for {cap} l")
                maximum = statutory.max_per_container(cap, vf)
                if maximum is not None and rate > maximum:
                    raise self.fail(
                        where,
                        f"rate {rate} for a {cap} l container exceeds the statutory maximum {maximum} "
                        f"({statutory.per_120l_container_percent}% of {base.value} per 120 l, proportional; "
                        f"GUS base of {base.year} in force from {base.in_force_from})",
                    )
                rates[cap] = rate
            if any(c.valid_from == vf for c in out):
                raise self.fail(where, "two container tables valid from the same day (overlapping periods)")
            out.append(ContainerRates(vf, MappingProxyType(dict(sorted(rates.items()))), self.opt_text(t, "resolution", where)))
        out.sort(key=lambda c: c.valid_from)
        return tuple(out)

    def deadlines(self, raw: Any) -> Deadlines:
        where = "[deadlines]"
        t = self.keys(raw, where, set(), {"first_declaration_days", "change_day_of_next_month", "death_decrease_months"})
        d = Deadlines()
        day = t.get("change_day_of_next_month", d.change_day_of_next_month)
        day = self.integer(day, f"{where} change_day_of_next_month", 1)
        if day > 28:
            raise self.fail(where, f"change_day_of_next_month {day} must be 1..28 (a day every month has)")
        return Deadlines(
            first_declaration_days=self.integer(
                t.get("first_declaration_days", d.first_declaration_days), f"{where} first_declaration_days", 0
            ),
            change_day_of_next_month=day,
            death_decrease_months=self.integer(
                t.get("death_decrease_months", d.death_decrease_months), f"{where} death_decrease_months", 0
            ),
        )

    def opt_text(self, t: dict, key: str, where: str) -> str | None:
        return self.text(t[key], f"{where} {key}") if key in t else None


def _overlap(a: Membership, b: Membership) -> bool:
    a_start, b_start = a.joined or date.min, b.joined or date.min
    a_end, b_end = a.left or date.max, b.left or date.max
    return a_start < b_end and b_start < a_end


__all__ = [
    "ContainerRates",
    "Deadlines",
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
