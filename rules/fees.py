"""The fee calculator: what a declaration's facts cost under the rates in force on a day.

Pure and exact: ``Decimal`` only, nothing rounded to whole złoty (art. 6q ust. 2
u.c.p.g.).

- Residential part: each resident pays the rate of their tier, the tier being the person's
  number *in the dwelling*. A single-family house is one dwelling (all its ``Lokal``
  residents count together); in a multi-flat building each ``Lokal`` starts again at
  person 1. A property without a building type is counted flat by flat. The expected
  calculation has one line per tier with the persons of that tier summed over all
  dwellings — the form's ``Wyliczenie`` has the same shape.
- Composting discount: ``residents × discount``, only for a residential single-family
  house (never multi-flat, mixed or non-residential; declaring it elsewhere is the
  ``COMPOSTING_NOT_ALLOWED`` check's business — here it is simply not granted).
- Non-residential part: per container line ``count × rate × emptyings per year ÷ 12``,
  rounded half-up to the grosz per line; a capacity not in the rate table makes the part
  (and the total) not computable.
- Total: the sum of the parts present. A part the property kind requires but which is
  missing is ``PART_MISSING``'s business; the calculator prices what is there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from rules.ruleset import GROSZ, ContainerRates, ResidentialRates, RuleSet, money
from worker.domain.model import RESIDENTIAL, SINGLE_FAMILY, Declaration

ZERO = Decimal("0.00")
MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class TierLine:
    """One expected line of the residential calculation (persons summed over dwellings)."""

    label: str  # "osoby 1-4", "osoba 5", "osoby 6 i kolejne"
    first_person: int
    last_person: int | None
    persons: int
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class ContainerCalc:
    """One declared container line, priced. ``rate``/``amount`` are None for a capacity the
    rate table does not know."""

    index: int  # 1-based, in the declared order
    capacity_l: int
    count: int
    emptyings_per_year: int
    rate: Decimal | None
    amount: Decimal | None


@dataclass(frozen=True)
class FeeComputation:
    """The computed fee of a declaration and how it was arrived at."""

    on: date
    residential_rates: ResidentialRates | None
    container_rates: ContainerRates | None
    tier_lines: tuple[TierLine, ...] = ()
    residential_gross: Decimal | None = None  # tiers before the discount
    composting_discount: Decimal | None = None  # 0.00 when not granted; None without a residential part
    residential: Decimal | None = None  # residential part after the discount
    container_lines: tuple[ContainerCalc, ...] = ()
    non_residential: Decimal | None = None
    total: Decimal | None = None
    explanation: tuple[str, ...] = field(default_factory=tuple)

    @property
    def unknown_capacities(self) -> tuple[int, ...]:
        return tuple(c.capacity_l for c in self.container_lines if c.rate is None)

    @property
    def discount_allowed(self) -> bool:
        return self.composting_discount is not None and self.composting_discount > 0


def container_amount(count: int, rate: Decimal, emptyings_per_year: int) -> Decimal:
    """Monthly amount of one container line, half-up to the grosz.

    >>> container_amount(2, Decimal("40.00"), 52)
    Decimal('346.67')
    >>> container_amount(1, Decimal("183.00"), 26), container_amount(1, Decimal("20.00"), 26)
    (Decimal('396.50'), Decimal('43.33'))
    """
    with localcontext() as ctx:
        ctx.prec = 50
        exact = Decimal(count) * rate * Decimal(emptyings_per_year) / MONTHS_PER_YEAR
        return exact.quantize(GROSZ, rounding=ROUND_HALF_UP)


def dwelling_sizes(declaration: Declaration) -> list[int]:
    """Residents per dwelling for tiering: one dwelling for a single-family house, one per
    ``Lokal`` otherwise. Negative counts (never valid) are taken as 0."""
    part = declaration.residential
    if part is None:
        return []
    sizes = [d.residents if isinstance(d.residents, int) and d.residents > 0 else 0 for d in part.dwellings]
    if declaration.property.building_type == SINGLE_FAMILY:
        return [sum(sizes)]
    return sizes


def discount_applies(declaration: Declaration) -> bool:
    """The composting discount is granted only to a residential single-family house that
    declares composting."""
    return (
        declaration.composting
        and declaration.property.kind == RESIDENTIAL
        and declaration.property.building_type == SINGLE_FAMILY
    )


def compute_fee(declaration: Declaration, ruleset: RuleSet, on: date | None = None) -> FeeComputation:
    """Compute the monthly fee of ``declaration`` with the rates in force on ``on``
    (default: the day it applies from). Never raises for odd facts: what cannot be
    computed is ``None`` and the explanation says why."""
    on = on or declaration.applies_from
    res_rates = ruleset.residential_rates(on)
    cont_rates = ruleset.container_rates(on)
    lines: list[str] = []
    multi = declaration.property.building_type != SINGLE_FAMILY

    tier_lines: tuple[TierLine, ...] = ()
    gross = discount = residential = None
    if declaration.residential is not None:
        if res_rates is None:
            lines.append(f"Brak stawek od mieszkańca obowiązujących w dniu {on.isoformat()}: części zamieszkałej nie wyliczono.")
        else:
            lines.append(
                f"Stawki od mieszkańca obowiązujące od {res_rates.valid_from.isoformat()} "
                f"(na dzień {on.isoformat()})."
            )
            sizes = dwelling_sizes(declaration)
            if multi and len(sizes) > 1:
                for d, size in zip(declaration.residential.dwellings, sizes, strict=False):
                    name = f"Lokal {d.number}" if d.number else "Lokal"
                    parts = [
                        f"{t.label}: {t.persons_of(size)}" for t in res_rates.tiers if t.persons_of(size) > 0
                    ]
                    lines.append(f"{name}: {persons_text(size)}" + (f" ({'; '.join(parts)})" if parts else "") + ".")
            built: list[TierLine] = []
            for t in res_rates.tiers:
                persons = sum(t.persons_of(s) for s in sizes)
                if persons == 0:
                    continue
                amount = (t.rate * persons).quantize(GROSZ)
                built.append(TierLine(t.label, t.first_person, t.last_person, persons, t.rate, amount))
                lines.append(f"{_cap(t.label)}: {persons} × {money(t.rate)} = {money(amount)}.")
            tier_lines = tuple(built)
            gross = sum((t.amount for t in tier_lines), ZERO)
            residents = sum(sizes)
            if discount_applies(declaration):
                discount = (res_rates.composting_discount * residents).quantize(GROSZ)
                lines.append(
                    f"Zwolnienie za kompostownik: {residents} × {money(res_rates.composting_discount)} "
                    f"= −{money(discount)}."
                )
            else:
                discount = ZERO
                if declaration.composting:
                    lines.append("Zwolnienie za kompostownik nie przysługuje (tylko zabudowa jednorodzinna).")
            residential = max(ZERO, gross - discount)
            lines.append(f"Część zamieszkała: {money(residential)}.")

    container_lines: tuple[ContainerCalc, ...] = ()
    non_residential: Decimal | None = None
    if declaration.non_residential is not None:
        calcs: list[ContainerCalc] = []
        if cont_rates is None:
            lines.append(f"Brak stawek za pojemniki obowiązujących w dniu {on.isoformat()}: części niezamieszkałej nie wyliczono.")
        else:
            lines.append(
                f"Stawki za pojemnik obowiązujące od {cont_rates.valid_from.isoformat()} (na dzień {on.isoformat()})."
            )
        for i, c in enumerate(declaration.non_residential.containers, 1):
            rate = cont_rates.rate_for(c.capacity_l) if cont_rates is not None else None
            container_sum = None
            countable = all(isinstance(v, int) and v >= 0 for v in (c.count, c.emptyings_per_year))
            if rate is not None and not countable:
                lines.append(f"Pojemnik {i}: brak poprawnej liczby pojemników lub opróżnień — nie wyliczono.")
            elif rate is not None:
                container_sum = container_amount(c.count, rate, c.emptyings_per_year)
                lines.append(
                    f"Pojemnik {i}: {c.count} × {c.capacity_l} l × {money(rate)} × {c.emptyings_per_year} "
                    f"opróżnień w roku ÷ 12 = {money(container_sum)}."
                )
            elif cont_rates is not None:
                lines.append(f"Pojemnik {i}: pojemność {c.capacity_l} l nie występuje w stawkach — nie wyliczono.")
            calcs.append(ContainerCalc(i, c.capacity_l, c.count, c.emptyings_per_year, rate, container_sum))
        container_lines = tuple(calcs)
        if cont_rates is not None and all(c.amount is not None for c in calcs):
            non_residential = sum((c.amount for c in calcs if c.amount is not None), ZERO)
            lines.append(f"Część niezamieszkała: {money(non_residential)}.")

    parts_present = [p for p in (declaration.residential, declaration.non_residential) if p is not None]
    computed = [x for x in (residential, non_residential) if x is not None]
    total = None
    if parts_present and len(computed) == len(parts_present):
        total = sum(computed, ZERO)
        lines.append(f"Opłata miesięczna: {money(total)}.")
    elif not parts_present:
        lines.append("Deklaracja nie zawiera ani części zamieszkałej, ani niezamieszkałej: brak podstaw do wyliczenia opłaty.")
    else:
        lines.append("Opłaty miesięcznej nie można wyliczyć.")

    return FeeComputation(
        on=on,
        residential_rates=res_rates,
        container_rates=cont_rates,
        tier_lines=tier_lines,
        residential_gross=gross,
        composting_discount=discount,
        residential=residential,
        container_lines=container_lines,
        non_residential=non_residential,
        total=total,
        explanation=tuple(lines),
    )


def persons_text(n: int) -> str:
    """Polish plural of 'osoba'.

    >>> persons_text(1), persons_text(3), persons_text(5), persons_text(22), persons_text(12)
    ('1 osoba', '3 osoby', '5 osób', '22 osoby', '12 osób')
    """
    if n == 1:
        return "1 osoba"
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return f"{n} osoby"
    return f"{n} osób"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


__all__ = ["ContainerCalc", "FeeComputation", "TierLine", "compute_fee", "container_amount", "discount_applies", "dwelling_sizes", "persons_text"]
