"""Mapper of the union's DO-1 e-form (versions 2023 and 2025) to the declaration model.

The input is the schema-valid ``Dokument`` element: for an ePUAP document the content the
signature covers (``ctx.content_root``), never the original tree. Only the declared
structure is read — ``Dokument/TrescDokumentu/Deklaracja`` by exact child steps, never a
``//`` search — so an element smuggled elsewhere is never picked up.

Version 2023 lacks ``PrzyczynaZmiany``, ``Skladajacy/Kontakt`` and
``ZgodaNaKorespondencjeElektroniczna``: they map to ``None`` / nothing. The e-form's
Polish enumerations are translated to the model's English names.

Values are as on the form with surrounding whitespace removed, each the element's whole
string value (:mod:`worker.domain.xmlvalue`: what the schema check validated, never only
the text before a comment or a processing instruction). ``ImieDrugie`` is not
part of the model (the contract keeps first and last name only).
Attachment sizes are computed from the base64 text without decoding it.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from worker.domain import model as m
from worker.domain.xmlvalue import string_value, stripped_value

if TYPE_CHECKING:  # pragma: no cover
    from worker.forms.registry import FormSpec

NS_META = "http://crd.gov.pl/xml/schematy/meta/2009/11/16/"
NS_STR = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
NS_OSO = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/"
NS_INST = "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/"
NS_ADR = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/"

PURPOSES = {"PIERWSZA": m.FIRST, "NOWA": m.CHANGE, "KOREKTA": m.CORRECTION}
PROPERTY_KINDS = {"ZAMIESZKALA": m.RESIDENTIAL, "NIEZAMIESZKALA": m.NON_RESIDENTIAL, "MIESZANA": m.MIXED}
BUILDING_TYPES = {"JEDNORODZINNA": m.SINGLE_FAMILY, "WIELOLOKALOWA": m.MULTI_FLAT}

_XS_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?\s*")
_WS = re.compile(r"\s+")


class MappingError(ValueError):
    """The document cannot be read into the model (a value the XSD let through but the
    model cannot hold). ``field`` is the element path relative to ``Deklaracja``;
    ``message`` is Polish."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Reader:
    """Namespace-aware, exact-step access to one form version's elements."""

    def __init__(self, namespace: str) -> None:
        self.w = namespace
        self._namespaces = {"": namespace, "str": NS_STR, "oso": NS_OSO, "inst": NS_INST, "adr": NS_ADR, "meta": NS_META}
        self._tags: dict[str, str] = {}

    def q(self, step: str) -> str:
        tag = self._tags.get(step)
        if tag is None:
            prefix, _, name = step.rpartition(":")
            tag = self._tags[step] = f"{{{self._namespaces[prefix]}}}{name}"
        return tag

    def child(self, elem: Any, *steps: str) -> Any:
        node = elem
        for step in steps:
            if node is None:
                return None
            # the first child element of that name (what ``find`` gives, without its path parsing)
            node = next(node.iterchildren(self.q(step)), None)
        return node

    def children(self, elem: Any, step: str) -> list[Any]:
        return [] if elem is None else list(elem.iterchildren(self.q(step)))

    def text(self, elem: Any, *steps: str) -> str | None:
        return stripped_value(self.child(elem, *steps))


def _date(value: str | None, field: str) -> date:
    match = _XS_DATE.fullmatch(value or "")
    if match is None:
        raise MappingError(field, f"Nieprawidłowa data „{value or ''}”.")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise MappingError(field, f"Nieprawidłowa data „{value}”.") from None


def _decimal(value: str | None, field: str) -> Decimal:
    try:
        result = Decimal((value or "").strip())
    except InvalidOperation:
        raise MappingError(field, f"Nieprawidłowa kwota „{value or ''}”.") from None
    if not result.is_finite():
        raise MappingError(field, f"Nieprawidłowa kwota „{value}”.")
    return result


def _int(value: str | None, field: str) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        raise MappingError(field, f"Nieprawidłowa liczba „{value or ''}”.") from None


def _bool(value: str | None, field: str) -> bool:
    v = (value or "").strip()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise MappingError(field, f"Nieprawidłowa wartość logiczna „{value or ''}” (wymagane true albo false).")


def _enum(value: str | None, table: dict[str, str], field: str) -> str:
    if value not in table:
        raise MappingError(field, f"Niedozwolona wartość „{value or ''}”.")
    return table[value]


def base64_decoded_size(text: str | None) -> int:
    """Decoded length of base64 ``text`` without decoding it (whitespace ignored).

    >>> base64_decoded_size("aGVsbG8=\\n"), base64_decoded_size("aGk="), base64_decoded_size("")
    (5, 2, 0)
    """
    if not text:
        return 0
    compact = _WS.sub("", text)
    padding = len(compact) - len(compact.rstrip("="))
    return max(0, len(compact) // 4 * 3 - min(padding, 2))


def _address(r: _Reader, adres: Any, field: str) -> m.Address:
    if adres is None:
        raise MappingError(field, "Brak adresu.")
    return m.Address(
        postal_code=r.text(adres, "adr:KodPocztowy") or "",
        town=r.text(adres, "adr:Miejscowosc") or "",
        building=r.text(adres, "adr:Budynek") or "",
        street=r.text(adres, "adr:Ulica"),
        flat=r.text(adres, "adr:Lokal"),
        post_office=r.text(adres, "adr:Poczta"),
    )


def _contacts(r: _Reader, *kontakty: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    emails: list[str] = []
    phones: list[str] = []
    for kontakt in kontakty:
        for e in r.children(kontakt, "adr:Email"):
            v = (string_value(e) or "").strip()
            if v and v not in emails:
                emails.append(v)
        for p in r.children(kontakt, "adr:Telefon"):
            v = (string_value(p) or "").strip()
            if v and v not in phones:
                phones.append(v)
    return tuple(emails), tuple(phones)


def _declarant(r: _Reader, skl: Any) -> m.Declarant:
    base = "Skladajacy"
    legal_title = r.text(skl, "TytulPrawny") or ""
    address = _address(r, r.child(skl, "AdresZamieszkania", "adr:Adres"), f"{base}/AdresZamieszkania/Adres")
    osoba = r.child(skl, "oso:Osoba")
    inst = r.child(skl, "inst:Instytucja")
    if osoba is not None:
        emails, phones = _contacts(r, r.child(skl, "adr:Kontakt"), r.child(osoba, "adr:Kontakt"))
        other = r.child(osoba, "oso:IdOsoby", "oso:InnyIdentyfikator")
        other_id = None
        if other is not None:
            other_id = f"{r.text(other, 'oso:TypIdentyfikatora') or ''}:{r.text(other, 'oso:WartoscIdentyfikatora') or ''}"
        return m.Declarant(
            kind=m.PERSON,
            legal_title=legal_title,
            address=address,
            pesel=r.text(osoba, "oso:IdOsoby", "oso:PESEL"),
            first_name=r.text(osoba, "oso:Imie"),
            last_name=r.text(osoba, "oso:Nazwisko"),
            other_id=other_id,
            emails=emails,
            phones=phones,
        )
    if inst is not None:
        emails, phones = _contacts(r, r.child(skl, "adr:Kontakt"), r.child(inst, "adr:Kontakt"))
        return m.Declarant(
            kind=m.INSTITUTION,
            legal_title=legal_title,
            address=address,
            institution_name=r.text(inst, "inst:NazwaInstytucji"),
            nip=r.text(inst, "inst:IdInstytucji", "inst:NIP"),
            regon=r.text(inst, "inst:IdInstytucji", "inst:REGON"),
            emails=emails,
            phones=phones,
        )
    raise MappingError(base, "Brak danych składającego (osoby albo instytucji).")


def _property(r: _Reader, nier: Any) -> m.Property:
    base = "Nieruchomosc"
    if nier is None:
        raise MappingError(base, "Brak danych nieruchomości.")
    zabudowa = r.text(nier, "RodzajZabudowy")
    return m.Property(
        gmina=r.text(nier, "Gmina") or "",
        address=_address(r, r.child(nier, "adr:Adres"), f"{base}/Adres"),
        kind=_enum(r.text(nier, "RodzajNieruchomosci"), PROPERTY_KINDS, f"{base}/RodzajNieruchomosci"),
        building_type=None if zabudowa is None else _enum(zabudowa, BUILDING_TYPES, f"{base}/RodzajZabudowy"),
        parcel=r.text(nier, "NrDzialki"),
        precinct=r.text(nier, "Obreb"),
    )


def _residential(r: _Reader, czesc: Any) -> m.ResidentialPart | None:
    if czesc is None:
        return None
    base = "CzescZamieszkala"
    dwellings = tuple(
        m.Dwelling(
            residents=_int(r.text(lokal, "LiczbaMieszkancow"), f"{base}/Lokal/LiczbaMieszkancow"),
            number=r.text(lokal, "NrLokalu"),
        )
        for lokal in r.children(czesc, "Lokal")
    )
    wyl = r.child(czesc, "Wyliczenie")
    lines = tuple(
        m.CalculationLine(
            description=r.text(poz, "Opis") or "",
            persons=_int(r.text(poz, "LiczbaOsob"), f"{base}/Wyliczenie/Pozycja/LiczbaOsob"),
            rate=_decimal(r.text(poz, "Stawka"), f"{base}/Wyliczenie/Pozycja/Stawka"),
            amount=_decimal(r.text(poz, "Kwota"), f"{base}/Wyliczenie/Pozycja/Kwota"),
        )
        for poz in r.children(wyl, "Pozycja")
    )
    discount = r.text(wyl, "ZwolnienieKompostownik")
    return m.ResidentialPart(
        dwellings=dwellings,
        composting=_bool(r.text(czesc, "Kompostownik"), f"{base}/Kompostownik"),
        lines=lines,
        fee=_decimal(r.text(wyl, "Oplata"), f"{base}/Wyliczenie/Oplata"),
        composting_discount=None if discount is None else _decimal(discount, f"{base}/Wyliczenie/ZwolnienieKompostownik"),
    )


def _non_residential(r: _Reader, czesc: Any) -> m.NonResidentialPart | None:
    if czesc is None:
        return None
    base = "CzescNiezamieszkala/Pojemnik"
    containers = tuple(
        m.ContainerLine(
            capacity_l=_int(r.text(p, "Pojemnosc"), f"{base}/Pojemnosc"),
            count=_int(r.text(p, "Liczba"), f"{base}/Liczba"),
            emptyings_per_year=_int(r.text(p, "OproznienWRoku"), f"{base}/OproznienWRoku"),
            rate=_decimal(r.text(p, "Stawka"), f"{base}/Stawka"),
            amount=_decimal(r.text(p, "Kwota"), f"{base}/Kwota"),
        )
        for p in r.children(czesc, "Pojemnik")
    )
    return m.NonResidentialPart(
        containers=containers, fee=_decimal(r.text(czesc, "Oplata"), "CzescNiezamieszkala/Oplata")
    )


def _attachments(r: _Reader, tresc: Any) -> tuple[m.Attachment, ...]:
    out = []
    for zal in r.children(r.child(tresc, "str:Zalaczniki"), "str:Zalacznik"):
        data = r.child(zal, "str:DaneZalacznika")
        out.append(
            m.Attachment(
                filename=(zal.get("nazwaPliku") or "").strip(),
                format=(zal.get("format") or "").strip(),
                size=base64_decoded_size(string_value(data)),
                description=r.text(zal, "str:OpisZalacznika"),
            )
        )
    return tuple(out)


def map_do1(root: Any, spec: FormSpec) -> m.Declaration:
    """Map a schema-valid DO-1 ``Dokument`` (any registered version) to a ``Declaration``.

    ``filed_at`` and ``channel`` are left empty: the pipeline sets them from the channel.
    Raises :class:`MappingError` when a value cannot be represented.
    """
    r = _Reader(spec.namespace)
    if root is None or root.tag != spec.root_tag:
        raise MappingError(None, f"Dokument nie jest formularzem {spec.form}.")
    tresc = r.child(root, "TrescDokumentu")
    dekl = r.child(tresc, "Deklaracja")
    if dekl is None:
        raise MappingError(None, "Dokument nie zawiera deklaracji.")
    cel = r.child(dekl, "CelZlozenia")
    skl = r.child(dekl, "Skladajacy")
    if skl is None:
        raise MappingError("Skladajacy", "Brak danych składającego.")
    zgoda = r.text(dekl, "ZgodaNaKorespondencjeElektroniczna")
    oswiadczenie = r.text(dekl, "Oswiadczenie")
    return m.Declaration(
        form=spec.form,
        purpose=_enum(r.text(cel, "Rodzaj"), PURPOSES, "CelZlozenia/Rodzaj"),
        applies_from=_date(r.text(cel, "ObowiazujeOd"), "CelZlozenia/ObowiazujeOd"),
        declarant=_declarant(r, skl),
        property=_property(r, r.child(dekl, "Nieruchomosc")),
        monthly_fee=_decimal(r.text(dekl, "OplataMiesieczna"), "OplataMiesieczna"),
        residential=_residential(r, r.child(dekl, "CzescZamieszkala")),
        non_residential=_non_residential(r, r.child(dekl, "CzescNiezamieszkala")),
        change_reason=r.text(cel, "PrzyczynaZmiany"),
        justification=r.text(cel, "Uzasadnienie"),
        e_correspondence=None if zgoda is None else _bool(zgoda, "ZgodaNaKorespondencjeElektroniczna"),
        statement=False if oswiadczenie is None else _bool(oswiadczenie, "Oswiadczenie"),
        attachments=_attachments(r, tresc),
    )


__all__ = ["BUILDING_TYPES", "MappingError", "PROPERTY_KINDS", "PURPOSES", "base64_decoded_size", "map_do1"]
