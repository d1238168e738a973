"""Builders for the fee-rule tests: declarations made directly in the domain model.

Not a test module of its own (it holds no tests); the ``test_rules_*`` modules import it.
``declaration_from_sample`` reads the few DO-1 elements the fee rules need from a sample
document of ``../shared`` (by local name, namespace-agnostic), so the fee rules can be
checked against the union's samples independently of the form mapper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from lxml import etree

from worker.domain.model import (
    EPUAP,
    FIRST,
    MULTI_FLAT,
    NON_RESIDENTIAL,
    PERSON,
    RESIDENTIAL,
    SINGLE_FAMILY,
    Address,
    CalculationLine,
    ContainerLine,
    Declarant,
    Declaration,
    Dwelling,
    NonResidentialPart,
    Property,
    ResidentialPart,
)

D = Decimal
ADDRESS = Address(postal_code="47-200", town="Kędzierzyn-Koźle", building="1", street="Testowa")

Line = tuple[str, int, str, str]  # description, persons, rate, amount
Container = tuple[int, int, int, str, str]  # capacity, count, emptyings/year, rate, amount


def declaration(
    *,
    residents: Sequence[int] | None = (4,),
    building: str | None = SINGLE_FAMILY,
    kind: str | None = None,
    composting: bool = False,
    lines: Iterable[Line] = (),
    discount: str | None = None,
    res_fee: str | None = None,
    containers: Iterable[Container] | None = None,
    nonres_fee: str | None = None,
    monthly: str | None = None,
    applies_from: date = date(2025, 3, 3),
    purpose: str = FIRST,
    gmina: str = "Kędzierzyn-Koźle",
    reason: str | None = None,
    channel: str | None = EPUAP,
    filed_at: datetime | None = None,
    flat_numbers: bool | None = None,
) -> Declaration:
    """A declaration with the given facts and declared figures. Omitted part totals are
    the sums of the declared lines (what a careful declarant writes)."""
    lines = tuple(CalculationLine(d, p, D(r), D(a)) for d, p, r, a in lines)
    residential = None
    if residents is not None:
        numbered = flat_numbers if flat_numbers is not None else building == MULTI_FLAT
        dwellings = tuple(Dwelling(n, str(i) if numbered else None) for i, n in enumerate(residents, 1))
        disc = D(discount) if discount is not None else None
        fee = D(res_fee) if res_fee is not None else sum((line.amount for line in lines), D("0.00")) - (disc or 0)
        residential = ResidentialPart(dwellings, composting, lines, fee, disc)
    non_residential = None
    if containers is not None:
        cl = tuple(ContainerLine(c, n, e, D(r), D(a)) for c, n, e, r, a in containers)
        fee = D(nonres_fee) if nonres_fee is not None else sum((c.amount for c in cl), D("0.00"))
        non_residential = NonResidentialPart(cl, fee)
    if kind is None:
        kind = NON_RESIDENTIAL if residential is None else RESIDENTIAL
    total = (
        D(monthly)
        if monthly is not None
        else (residential.fee if residential else 0) + (non_residential.fee if non_residential else 0)
    )
    return Declaration(
        form="DO-1/2025",
        purpose=purpose,
        applies_from=applies_from,
        declarant=Declarant(kind=PERSON, legal_title="WLASCICIEL", address=ADDRESS, pesel="44051401359"),
        property=Property(gmina=gmina, address=ADDRESS, kind=kind, building_type=building),
        monthly_fee=D(total),
        residential=residential,
        non_residential=non_residential,
        change_reason=reason,
        filed_at=filed_at,
        channel=channel,
    )


# --------------------------------------------------------------------------- samples

_KIND = {"ZAMIESZKALA": RESIDENTIAL, "NIEZAMIESZKALA": NON_RESIDENTIAL, "MIESZANA": "MIXED"}
_BUILDING = {"JEDNORODZINNA": SINGLE_FAMILY, "WIELOLOKALOWA": MULTI_FLAT}
_PURPOSE = {"PIERWSZA": "FIRST", "NOWA": "CHANGE", "KOREKTA": "CORRECTION"}


def _one(node, name: str):
    found = node.xpath(f".//*[local-name()='{name}']")
    return found[0] if found else None


def _text(node, name: str) -> str | None:
    el = _one(node, name)
    return el.text.strip() if el is not None and el.text else None


def declaration_from_sample(path: Path, filed_at: datetime | None = None) -> Declaration:
    """The fee-relevant facts of a DO-1 sample document (test helper, not the mapper)."""
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    decl = _one(root, "Deklaracja")
    prop = _one(decl, "Nieruchomosc")
    residential = None
    cz = _one(decl, "CzescZamieszkala")
    if cz is not None:
        dwellings = tuple(
            Dwelling(int(_text(lokal, "LiczbaMieszkancow")), _text(lokal, "NrLokalu"))
            for lokal in cz.xpath("./*[local-name()='Lokal']")
        )
        w = _one(cz, "Wyliczenie")
        lines = tuple(
            CalculationLine(_text(p, "Opis"), int(_text(p, "LiczbaOsob")), D(_text(p, "Stawka")), D(_text(p, "Kwota")))
            for p in w.xpath("./*[local-name()='Pozycja']")
        )
        disc = _text(w, "ZwolnienieKompostownik")
        residential = ResidentialPart(
            dwellings,
            _text(cz, "Kompostownik") == "true",
            lines,
            D(w.xpath("./*[local-name()='Oplata']")[0].text),
            D(disc) if disc else None,
        )
    non_residential = None
    cn = _one(decl, "CzescNiezamieszkala")
    if cn is not None:
        containers = tuple(
            ContainerLine(
                int(_text(p, "Pojemnosc")),
                int(_text(p, "Liczba")),
                int(_text(p, "OproznienWRoku")),
                D(_text(p, "Stawka")),
                D(_text(p, "Kwota")),
            )
            for p in cn.xpath("./*[local-name()='Pojemnik']")
        )
        non_residential = NonResidentialPart(containers, D(cn.xpath("./*[local-name()='Oplata']")[0].text))
    return Declaration(
        form="DO-1/2025",
        purpose=_PURPOSE[_text(decl, "Rodzaj")],
        applies_from=date.fromisoformat(_text(decl, "ObowiazujeOd")),
        declarant=Declarant(kind=PERSON, legal_title="WLASCICIEL", address=ADDRESS),
        property=Property(
            gmina=prop.xpath("./*[local-name()='Gmina']")[0].text,
            address=ADDRESS,
            kind=_KIND[_text(prop, "RodzajNieruchomosci")],
            building_type=_BUILDING.get(_text(prop, "RodzajZabudowy") or ""),
        ),
        monthly_fee=D(_text(decl, "OplataMiesieczna")),
        residential=residential,
        non_residential=non_residential,
        change_reason=_text(decl, "PrzyczynaZmiany"),
        filed_at=filed_at,
        channel=EPUAP,
    )
