"""The ``fee_rules`` pipeline stage: membership, rates, amounts and the filing deadline.

Given ``ctx.declaration`` and the rule set (``ctx.settings.ruleset``; the packaged default
when none is configured) it

- sets ``ctx.gmina`` to the canonical gmina name when the gmina is a member on the day the
  declaration applies from (the loader creates properties only for those); otherwise adds
  ``GMINA_NOT_MEMBER`` (naming the membership dates of a former or later member) and leaves
  ``ctx.gmina`` unset;
- recomputes every line, the composting discount, each part and the total with the rates
  in force on ``ObowiazujeOd`` (:func:`rules.fees.compute_fee`) and compares them to the
  grosz with what was declared: ``RATE_MISMATCH`` for a declared rate that is not the rate
  in force, ``FEE_MISMATCH`` for a declared amount (or a missing line) that differs from the
  computed one, ``CONTAINER_UNKNOWN`` for a capacity not in the rate table; every message
  names the line, the declared and the computed amount;
- adds ``LATE_FILING`` when filed after the deadline (:mod:`rules.deadlines`; skipped when
  the filing time is unknown);
- sets ``ctx.computed_fee`` (``None`` when a part cannot be computed) and
  ``ctx.fee_explanation`` (Polish, line by line).

Declared residential lines are matched to tiers by the first number in their description
(``osoby 1-4`` → the tier from person 1, ``osoba 5``, ``osoby 6 i kolejne``); a line whose
description names no tier falls back to its position. Several declared lines of one tier
(e.g. one per flat) are added up before comparing. Lines of 0 persons and 0.00 zł are
ignored.

Findings name the e-form element (``CzescZamieszkala/Wyliczenie/Pozycja[2]/Kwota``) or, for
a paper declaration, the scan field (``wyliczenie.2.kwota``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from rules.deadlines import late_filing
from rules.fees import ZERO, FeeComputation, compute_fee, discount_applies, persons_text
from rules.ruleset import RuleSet, Tier, load_ruleset, money
from worker.domain.findings import Finding, finding
from worker.domain.model import PAPER, CalculationLine, Declaration
from worker.pipeline import Context, stage


@lru_cache(maxsize=1)
def default_ruleset() -> RuleSet:
    """The packaged rule set, loaded once (used when the settings carry none)."""
    return load_ruleset()


@dataclass
class FeeCheck:
    """The result of :func:`check_fee_rules`."""

    findings: list[Finding] = field(default_factory=list)
    computation: FeeComputation | None = None
    gmina: str | None = None

    @property
    def computed_fee(self) -> Decimal | None:
        return self.computation.total if self.computation else None

    @property
    def explanation(self) -> list[str]:
        return list(self.computation.explanation) if self.computation else []


class _Fields:
    """Field names of findings: e-form paths, or scan field names for paper."""

    _SUB = {"LiczbaOsob": "liczba_osob", "Stawka": "stawka", "Kwota": "kwota", "Pojemnosc": "pojemnosc"}

    def __init__(self, channel: str | None) -> None:
        self.paper = channel == PAPER

    def gmina(self) -> str:
        return "nieruchomosc.gmina" if self.paper else "Nieruchomosc/Gmina"

    def line(self, index: int | None, sub: str | None = None) -> str:
        if self.paper:
            base = f"wyliczenie.{index}" if index else "wyliczenie"
            return f"{base}.{self._SUB[sub]}" if sub and index else base
        base = "CzescZamieszkala/Wyliczenie/Pozycja" + (f"[{index}]" if index else "")
        return f"{base}/{sub}" if sub and index else base

    def discount(self) -> str:
        return "zwolnienie_kompostownik" if self.paper else "CzescZamieszkala/Wyliczenie/ZwolnienieKompostownik"

    def residential_fee(self) -> str:
        return "oplata_zamieszkala" if self.paper else "CzescZamieszkala/Wyliczenie/Oplata"

    def container(self, index: int, sub: str) -> str:
        if self.paper:
            return f"pojemniki.{index}.{self._SUB[sub]}"
        return f"CzescNiezamieszkala/Pojemnik[{index}]/{sub}"

    def non_residential_fee(self) -> str:
        return "oplata_niezamieszkala" if self.paper else "CzescNiezamieszkala/Oplata"

    def total(self) -> str:
        return "oplata_miesieczna" if self.paper else "OplataMiesieczna"


def check_fee_rules(
    declaration: Declaration,
    ruleset: RuleSet,
    *,
    filed_at: datetime | date | None = None,
    channel: str | None = None,
) -> FeeCheck:
    """All fee-rule findings of one declaration (pure; the stage is a thin wrapper).

    ``filed_at`` defaults to ``declaration.filed_at``; ``channel`` to ``declaration.channel``.
    """
    fields = _Fields(channel or declaration.channel)
    out = FeeCheck()
    out.gmina, membership = _membership(declaration, ruleset, fields)
    out.findings.extend(membership)
    comp = compute_fee(declaration, ruleset)
    out.computation = comp
    out.findings.extend(_compare(declaration, comp, fields))
    late = late_filing(
        declaration.purpose,
        declaration.applies_from,
        filed_at if filed_at is not None else declaration.filed_at,
        ruleset.deadlines,
    )
    if late is not None:
        out.findings.append(late)
    return out


@stage("fee_rules")
def fee_rules(ctx: Context) -> None:
    """Pipeline stage: see the module docstring."""
    decl = ctx.declaration
    if decl is None:
        return
    ruleset = ctx.settings.ruleset or default_ruleset()
    result = check_fee_rules(
        decl,
        ruleset,
        filed_at=decl.filed_at if decl.filed_at is not None else ctx.filed_at,
        channel=decl.channel or ctx.channel,
    )
    if result.gmina is not None:
        ctx.gmina = result.gmina
    ctx.add(*result.findings)
    ctx.computed_fee = result.computed_fee
    ctx.fee_explanation = result.explanation


# --------------------------------------------------------------------------- membership


def _membership(decl: Declaration, rs: RuleSet, fields: _Fields) -> tuple[str | None, list[Finding]]:
    raw = decl.property.gmina or ""
    on = decl.applies_from
    canonical = rs.canonical_gmina(raw)
    if canonical is None:
        return None, [
            finding(
                "GMINA_NOT_MEMBER",
                fields.gmina(),
                f"Gmina „{raw.strip()}” nie należy do Związku Międzygminnego „Czysty Region”; "
                "opłatę za nieruchomość w tej gminie pobiera sama gmina.",
            )
        ]
    if rs.is_member(canonical, on):
        return canonical, []
    periods = rs.memberships_of(canonical)
    notes = []
    for m in periods:
        if m.joined and on < m.joined:
            notes.append(f"członkiem od {m.joined.isoformat()}")
        if m.left and on >= m.left:
            notes.append(f"członkiem do {(m.left - timedelta(days=1)).isoformat()}")
    note = f" (była {', '.join(notes)})" if notes else ""
    return None, [
        finding(
            "GMINA_NOT_MEMBER",
            fields.gmina(),
            f"Gmina {canonical} nie należała do Związku Międzygminnego „Czysty Region” w dniu "
            f"{on.isoformat()}, od którego obowiązuje deklaracja{note}.",
        )
    ]


# --------------------------------------------------------------------------- comparison

_FIRST_NUMBER = re.compile(r"\d+")


def _match_tiers(lines: tuple[CalculationLine, ...], tiers: tuple[Tier, ...]) -> list[Tier | None]:
    """The tier each declared line belongs to (None: none)."""
    by_first = {t.first_person: t for t in tiers}
    matched: list[Tier | None] = []
    for line in lines:
        m = _FIRST_NUMBER.search(line.description or "")
        matched.append(by_first.get(int(m.group())) if m and len(m.group()) < 6 else None)
    claimed = {t.first_person for t in matched if t is not None}
    for i, t in enumerate(matched):
        if t is None and i < len(tiers) and tiers[i].first_person not in claimed:
            matched[i] = tiers[i]
            claimed.add(tiers[i].first_person)
    return matched


def _same(declared: Decimal | None, computed: Decimal | None) -> bool:
    return declared is not None and computed is not None and declared == computed


def _fmt(value: Decimal | None) -> str:
    return money(value) if value is not None else "brak"


def _compare(decl: Declaration, comp: FeeComputation, fields: _Fields) -> list[Finding]:
    out: list[Finding] = []
    part = decl.residential
    rates = comp.residential_rates
    if part is not None and rates is not None:
        out.extend(_compare_residential(decl, comp, fields))
    nr = decl.non_residential
    if nr is not None and comp.container_rates is not None:
        known = ", ".join(str(c) for c in comp.container_rates.capacities)
        for calc, line in zip(comp.container_lines, nr.containers, strict=False):
            i = calc.index
            name = f"Pojemnik {i} ({calc.capacity_l} l)"
            if calc.rate is None:
                out.append(
                    finding(
                        "CONTAINER_UNKNOWN",
                        fields.container(i, "Pojemnosc"),
                        f"{name}: związek nie odbiera odpadów w pojemnikach o pojemności {calc.capacity_l} l "
                        f"(dostępne pojemności: {known} l).",
                    )
                )
                continue
            if line.rate != calc.rate:
                out.append(
                    finding(
                        "RATE_MISMATCH",
                        fields.container(i, "Stawka"),
                        f"{name}: zadeklarowana stawka {_fmt(line.rate)}, a stawka obowiązująca od "
                        f"{comp.container_rates.valid_from.isoformat()} wynosi {money(calc.rate)} za opróżnienie.",
                    )
                )
            if calc.amount is not None and not _same(line.amount, calc.amount):
                out.append(
                    finding(
                        "FEE_MISMATCH",
                        fields.container(i, "Kwota"),
                        f"{name}: zadeklarowano {_fmt(line.amount)}, wyliczono {_fmt(calc.amount)} "
                        f"({calc.count} × {money(calc.rate)} × {calc.emptyings_per_year} opróżnień ÷ 12, "
                        "zaokrąglone do grosza).",
                    )
                )
        if comp.non_residential is not None and not _same(nr.fee, comp.non_residential):
            out.append(
                finding(
                    "FEE_MISMATCH",
                    fields.non_residential_fee(),
                    f"Opłata za część niezamieszkałą: zadeklarowano {_fmt(nr.fee)}, wyliczono "
                    f"{money(comp.non_residential)}.",
                )
            )
    if comp.total is not None and not _same(decl.monthly_fee, comp.total):
        out.append(
            finding(
                "FEE_MISMATCH",
                fields.total(),
                f"Opłata miesięczna: zadeklarowano {_fmt(decl.monthly_fee)}, wyliczono {money(comp.total)}; "
                "naliczona zostanie kwota wyliczona.",
            )
        )
    return out


def _compare_residential(decl: Declaration, comp: FeeComputation, fields: _Fields) -> list[Finding]:
    out: list[Finding] = []
    part = decl.residential
    rates = comp.residential_rates
    assert part is not None and rates is not None
    expected = {t.first_person: t for t in comp.tier_lines}
    matched = _match_tiers(part.lines, rates.tiers)
    since = rates.valid_from.isoformat()

    for tier in rates.tiers:
        exp = expected.get(tier.first_person)
        exp_persons = exp.persons if exp else 0
        exp_amount = exp.amount if exp else ZERO
        idx = [i for i, t in enumerate(matched) if t is tier]
        if not idx:
            if exp_persons:
                out.append(
                    finding(
                        "FEE_MISMATCH",
                        fields.line(None),
                        f"Brak pozycji „{tier.label}” w wyliczeniu: według liczby mieszkańców "
                        f"{exp_persons} × {money(tier.rate)} = {money(exp_amount)}.",
                    )
                )
            continue
        first = idx[0] + 1
        for i in idx:
            line = part.lines[i]
            if line.rate != tier.rate and not (line.persons == 0 and line.amount == 0):
                out.append(
                    finding(
                        "RATE_MISMATCH",
                        fields.line(i + 1, "Stawka"),
                        f"Pozycja „{line.description}”: zadeklarowana stawka {_fmt(line.rate)}, a stawka "
                        f"obowiązująca od {since} wynosi {money(tier.rate)} za osobę.",
                    )
                )
        declared_persons = sum(int(part.lines[i].persons or 0) for i in idx)
        amounts = [part.lines[i].amount for i in idx]
        declared_amount = sum(amounts, ZERO) if all(a is not None for a in amounts) else None
        if not _same(declared_amount, exp_amount):
            persons_note = ""
            if declared_persons != exp_persons:
                persons_note = (
                    f"; zadeklarowano {persons_text(declared_persons)}, a według liczby mieszkańców "
                    f"{'w lokalach ' if len(part.dwellings) > 1 else ''}w tym progu: {persons_text(exp_persons)}"
                )
            out.append(
                finding(
                    "FEE_MISMATCH",
                    fields.line(first, "Kwota"),
                    f"Pozycja „{tier.label}”: zadeklarowano {_fmt(declared_amount)}, wyliczono "
                    f"{money(exp_amount)} ({exp_persons} × {money(tier.rate)}){persons_note}.",
                )
            )
        elif declared_persons != exp_persons:
            out.append(
                finding(
                    "FEE_MISMATCH",
                    fields.line(first, "LiczbaOsob"),
                    f"Pozycja „{tier.label}”: zadeklarowano {persons_text(declared_persons)}, a według liczby "
                    f"mieszkańców w tym progu: {persons_text(exp_persons)}.",
                )
            )

    for i, t in enumerate(matched):
        line = part.lines[i]
        if t is None and not (line.persons == 0 and line.amount == 0):
            out.append(
                finding(
                    "FEE_MISMATCH",
                    fields.line(i + 1, "Kwota"),
                    f"Pozycja „{line.description}” nie odpowiada żadnemu progowi stawek od mieszkańca "
                    f"(zadeklarowano {_fmt(line.amount)}, wyliczono 0,00 zł).",
                )
            )

    declared_discount = part.composting_discount if part.composting_discount is not None else ZERO
    computed_discount = comp.composting_discount if comp.composting_discount is not None else ZERO
    if declared_discount != computed_discount:
        if discount_applies(decl):
            why = f"{decl.residents} × {money(rates.composting_discount)}"
        else:
            why = "zwolnienie przysługuje tylko za kompostownik przy zabudowie jednorodzinnej"
        out.append(
            finding(
                "FEE_MISMATCH",
                fields.discount(),
                f"Zwolnienie za kompostownik: zadeklarowano {money(declared_discount)}, wyliczono "
                f"{money(computed_discount)} ({why}).",
            )
        )
    if comp.residential is not None and not _same(part.fee, comp.residential):
        out.append(
            finding(
                "FEE_MISMATCH",
                fields.residential_fee(),
                f"Opłata za część zamieszkałą: zadeklarowano {_fmt(part.fee)}, wyliczono {money(comp.residential)}.",
            )
        )
    return out


__all__ = ["FeeCheck", "check_fee_rules", "default_ruleset", "fee_rules"]
