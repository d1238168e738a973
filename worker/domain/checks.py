"""Checks of a declaration's content that need nothing but the declaration itself.

Pure functions over :class:`~worker.domain.model.Declaration` (no I/O, no lxml), used for
every channel: the e-form mapper and the paper mapper produce the same model, so the
same checks apply. Every function returns *all* its findings; nothing stops at the first.

``field`` names the e-form element relative to ``Deklaracja`` (``Nieruchomosc/RodzajZabudowy``,
``Skladajacy/Osoba/IdOsoby/PESEL``) — the same for paper, where it names the form's box.

Decisions where the union's rules are silent (see ``spec/fee-rules.md``):

* A residential or mixed property needs ``RodzajZabudowy`` — without it neither the
  per-dwelling tiers nor the composting discount can be decided — reported as
  ``PART_MISSING`` on ``Nieruchomosc/RodzajZabudowy``. For a non-residential property
  a ``RodzajZabudowy`` is ignored.
* Composting is declared by ``Kompostownik`` true *or* a positive
  ``ZwolnienieKompostownik``; either one for anything but a single-family residential
  property is ``COMPOSTING_NOT_ALLOWED``.
* ``NO_RESIDENTS`` is judged only where the kind requires a residential part (a part
  the kind forbids is already ``PART_MISSING``).
* A person declares with a PESEL: none (even with ``InnyIdentyfikator``) is
  ``PESEL_INVALID``; an institution declares with a NIP: none is ``NIP_INVALID``. Any
  other identifier present (a REGON, an institution's PESEL read from paper…) is checked
  too.
* The form version is judged on the filing day in Polish time (Europe/Warsaw): a
  document sent at 00:30 on 1 January is filed in the new year.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from worker.domain.clock import filing_day
from worker.domain.findings import WARNING, Finding, finding
from worker.domain.identifiers import check_nip, check_pesel, check_postal_code, check_regon
from worker.domain.model import (
    EPUAP,
    INSTITUTION,
    MIXED,
    MULTI_FLAT,
    NON_RESIDENTIAL,
    PAPER,
    PERSON,
    RESIDENTIAL,
    SINGLE_FAMILY,
    Declaration,
)

#: a paper form may be filed this many days after its version ended (then: review)
PAPER_GRACE_DAYS = 30

POLISH_TZ = "Europe/Warsaw"  # the zone itself: worker.domain.clock.WARSAW

# e-form element paths (relative to Deklaracja) the findings point at
F_PESEL = "Skladajacy/Osoba/IdOsoby/PESEL"
F_PERSON_NIP = "Skladajacy/Osoba/NIP"
F_PERSON_REGON = "Skladajacy/Osoba/REGON"
F_NIP = "Skladajacy/Instytucja/IdInstytucji/NIP"
F_REGON = "Skladajacy/Instytucja/IdInstytucji/REGON"
F_INSTITUTION_PESEL = "Skladajacy/Instytucja/PESEL"
F_DECLARANT_POSTAL = "Skladajacy/AdresZamieszkania/Adres/KodPocztowy"
F_PROPERTY_POSTAL = "Nieruchomosc/Adres/KodPocztowy"
F_KIND = "Nieruchomosc/RodzajNieruchomosci"
F_BUILDING = "Nieruchomosc/RodzajZabudowy"
F_RESIDENTIAL = "CzescZamieszkala"
F_NON_RESIDENTIAL = "CzescNiezamieszkala"
F_RESIDENTS = "CzescZamieszkala/Lokal/LiczbaMieszkancow"
F_COMPOSTING = "CzescZamieszkala/Kompostownik"
F_COMPOSTING_DISCOUNT = "CzescZamieszkala/Wyliczenie/ZwolnienieKompostownik"

# "dla nieruchomości …" (genitive)
_KIND_NAMES = {
    RESIDENTIAL: "zamieszkałej",
    NON_RESIDENTIAL: "niezamieszkałej",
    MIXED: "mieszanej",
}



def check_identifiers(decl: Declaration, *, on: date | None = None) -> list[Finding]:
    """PESEL of a person, NIP of an institution (both required), any other identifier
    present, and the postal codes of the declarant's and the property's address."""
    d = decl.declarant
    out: list[Finding] = []
    if d.kind == PERSON:
        if not (d.pesel or "").strip() and d.other_id:
            out.append(
                finding(
                    "PESEL_INVALID",
                    F_PESEL,
                    "Brak numeru PESEL. Osoba fizyczna składa deklarację z numerem PESEL; "
                    "inny identyfikator (np. numer paszportu) nie wystarcza.",
                )
            )
        else:
            out += check_pesel(d.pesel, F_PESEL, on=on, required=True)
        out += check_nip(d.nip, F_PERSON_NIP, required=False)
        out += check_regon(d.regon, F_PERSON_REGON)
    elif d.kind == INSTITUTION:
        out += check_nip(d.nip, F_NIP, required=True)
        out += check_regon(d.regon, F_REGON)
        out += check_pesel(d.pesel, F_INSTITUTION_PESEL, on=on, required=False)
    out += check_postal_code(d.address.postal_code, F_DECLARANT_POSTAL)
    out += check_postal_code(decl.property.address.postal_code, F_PROPERTY_POSTAL)
    return out


def check_parts(decl: Declaration) -> list[Finding]:
    """``PART_MISSING``: the parts the property kind requires, and no part it forbids."""
    kind = decl.property.kind
    has_res = decl.residential is not None
    has_non = decl.non_residential is not None
    out: list[Finding] = []
    if kind not in _KIND_NAMES:
        return [finding("PART_MISSING", F_KIND, "Nie wskazano rodzaju nieruchomości (zamieszkała, niezamieszkała, mieszana).")]
    name = _KIND_NAMES[kind]
    if kind in (RESIDENTIAL, MIXED) and not has_res:
        out.append(
            finding(
                "PART_MISSING",
                F_RESIDENTIAL,
                f"Brak części zamieszkałej (liczba mieszkańców i wyliczenie opłaty), "
                f"wymaganej dla nieruchomości {name}.",
            )
        )
    if kind in (NON_RESIDENTIAL, MIXED) and not has_non:
        out.append(
            finding(
                "PART_MISSING",
                F_NON_RESIDENTIAL,
                f"Brak części niezamieszkałej (pojemniki i wyliczenie opłaty), wymaganej dla nieruchomości {name}.",
            )
        )
    if kind == RESIDENTIAL and has_non:
        out.append(
            finding(
                "PART_MISSING",
                F_NON_RESIDENTIAL,
                "Nieruchomość zamieszkała nie może mieć części niezamieszkałej (pojemników). "
                "Jeśli na nieruchomości są i mieszkańcy, i działalność, należy wybrać rodzaj „mieszana”.",
            )
        )
    if kind == NON_RESIDENTIAL and has_res:
        out.append(
            finding(
                "PART_MISSING",
                F_RESIDENTIAL,
                "Nieruchomość niezamieszkała nie może mieć części zamieszkałej (mieszkańców). "
                "Jeśli na nieruchomości są i mieszkańcy, i działalność, należy wybrać rodzaj „mieszana”.",
            )
        )
    if kind in (RESIDENTIAL, MIXED) and decl.property.building_type not in (SINGLE_FAMILY, MULTI_FLAT):
        out.append(
            finding(
                "PART_MISSING",
                F_BUILDING,
                f"Nie wskazano rodzaju zabudowy (jednorodzinna albo wielolokalowa), "
                f"wymaganego dla nieruchomości {name}.",
            )
        )
    return out


def check_residents(decl: Declaration) -> list[Finding]:
    """``NO_RESIDENTS``: a required residential part declares nobody at all."""
    if decl.residential is None or decl.property.kind not in (RESIDENTIAL, MIXED):
        return []
    if decl.residential.residents > 0:
        return []
    return [
        finding(
            "NO_RESIDENTS",
            F_RESIDENTS,
            "W części zamieszkałej nie zadeklarowano żadnego mieszkańca. Nieruchomość zamieszkała musi mieć "
            "co najmniej jednego mieszkańca (pojedynczy lokal może mieć 0 mieszkańców). Jeśli nikt nie mieszka "
            "na nieruchomości, należy złożyć deklarację dla nieruchomości niezamieszkałej.",
        )
    ]


def check_composting(decl: Declaration) -> list[Finding]:
    """``COMPOSTING_NOT_ALLOWED``: composting for anything but a single-family house."""
    res = decl.residential
    if res is None:
        return []
    discount = res.composting_discount or Decimal("0")
    if not res.composting and discount <= 0:
        return []
    kind, building = decl.property.kind, decl.property.building_type
    if kind == RESIDENTIAL and building == SINGLE_FAMILY:
        return []
    if kind == RESIDENTIAL and building is None:
        return []  # reported as PART_MISSING (RodzajZabudowy): nothing to judge by
    if kind == MIXED:
        what = "nieruchomości mieszanej"
    elif kind == NON_RESIDENTIAL:
        what = "nieruchomości niezamieszkałej"
    elif building == MULTI_FLAT:
        what = "budynku wielolokalowego"
    else:
        what = "tej nieruchomości"
    field = F_COMPOSTING if res.composting else F_COMPOSTING_DISCOUNT
    return [
        finding(
            "COMPOSTING_NOT_ALLOWED",
            field,
            "Zwolnienie z części opłaty za kompostowanie bioodpadów przysługuje tylko właścicielom "
            f"nieruchomości zamieszkałych zabudowanych budynkami jednorodzinnymi; nie dotyczy {what}.",
        )
    ]


def check_structure(decl: Declaration) -> list[Finding]:
    """``PART_MISSING``, ``NO_RESIDENTS`` and ``COMPOSTING_NOT_ALLOWED``."""
    return check_parts(decl) + check_residents(decl) + check_composting(decl)


def check_declaration(decl: Declaration, *, on: date | None = None) -> list[Finding]:
    """All content checks of one declaration (identifiers, postal codes, structure).

    ``on`` is the filing day (a PESEL's birth date must not be after it); ``None``
    leaves that comparison out.
    """
    return check_identifiers(decl, on=on) + check_structure(decl)


def check_form_version(
    form: str,
    filed_on: date,
    channel: str | None,
    *,
    filed_from: date | None,
    filed_until: date | None,
    grace_days: int = PAPER_GRACE_DAYS,
) -> list[Finding]:
    """``FORM_VERSION_EXPIRED`` when ``form`` was not in force on ``filed_on``.

    ePUAP (and any channel but paper): an error. Paper filed within ``grace_days`` after
    the version ended: a warning (the office decides); later, or before the version
    began: an error.

    >>> [f.severity for f in check_form_version("DO-1/2023", date(2025, 1, 30), "PAPER",
    ...                                          filed_from=date(2023, 1, 1), filed_until=date(2024, 12, 31))]
    ['warning']
    >>> [f.severity for f in check_form_version("DO-1/2023", date(2025, 1, 31), "PAPER",
    ...                                          filed_from=date(2023, 1, 1), filed_until=date(2024, 12, 31))]
    ['error']
    """
    shown = form.replace("/", " w wersji ", 1)
    if filed_from is not None and filed_on < filed_from:
        return [
            finding(
                "FORM_VERSION_EXPIRED",
                None,
                f"Formularz {shown} obowiązuje od {filed_from.isoformat()}; w dniu złożenia deklaracji "
                f"({filed_on.isoformat()}) nie był jeszcze w użyciu. Należy złożyć deklarację na formularzu "
                "obowiązującym w dniu jej złożenia.",
            )
        ]
    if filed_until is None or filed_on <= filed_until:
        return []
    late = (filed_on - filed_until).days
    ended = filed_until.isoformat()
    if channel == PAPER and late <= grace_days:
        return [
            finding(
                "FORM_VERSION_EXPIRED",
                None,
                f"Deklarację papierową złożono {filed_on.isoformat()} na formularzu {shown}, który obowiązywał "
                f"do {ended} ({late} dni po tym terminie, w okresie przejściowym {grace_days} dni). "
                "Biuro decyduje o jej przyjęciu.",
                severity=WARNING,
            )
        ]
    where = "papierową " if channel == PAPER else ("elektroniczną " if channel == EPUAP else "")
    return [
        finding(
            "FORM_VERSION_EXPIRED",
            None,
            f"Deklarację {where}złożono {filed_on.isoformat()} na formularzu {shown}, który obowiązywał do "
            f"{ended}. Należy złożyć deklarację na aktualnym wzorze formularza.",
        )
    ]


__all__ = [
    "PAPER_GRACE_DAYS",
    "check_composting",
    "check_declaration",
    "check_form_version",
    "check_identifiers",
    "check_parts",
    "check_residents",
    "check_structure",
    "filing_day",
]
