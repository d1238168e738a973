"""Recognised scan fields → the same :class:`~worker.domain.model.Declaration` as the e-form.

The field names are the union's table in ``spec/scans.md``; the values use the e-form's
vocabulary, translated to the model's English names with the e-form mapper's own tables
(:data:`worker.forms.do1.PURPOSES`, ``PROPERTY_KINDS``, ``BUILDING_TYPES``). The
enumerations the model keeps in Polish (``TytulPrawny``, ``PrzyczynaZmiany``) are checked
against the form version's own XSD, so a paper form can carry exactly what its e-form can.

Every value that cannot be read is one ``SCHEMA_INVALID`` finding naming the scan field
(a bad number, date, boolean or vocabulary word, a required box left empty, a field given
twice, a gap in the numbered rows); all of them are collected and :class:`ScanMappingError`
carries them. Values of personal fields are never repeated in messages.

Decisions where the union's table is silent:

* The declarant is an institution when ``skladajacy.nazwa`` is given, a person when a
  first name, last name or PESEL is; both at once is unreadable. A person's NIP/REGON and
  an institution's PESEL are kept and checked like on the e-form.
* Rows (``lokale.N``, ``wyliczenie.N``, ``pojemniki.N``) are numbered 1, 2, 3… without
  gaps, so that findings of the fee rules (``wyliczenie.2.kwota``) name the box on paper.
* The residential part exists when any of its fields is given (``lokale.*``,
  ``kompostownik``, ``wyliczenie.*``, ``zwolnienie_kompostownik``, ``oplata_zamieszkala``);
  the non-residential part when ``pojemniki.*`` or ``oplata_niezamieszkala`` is. A part the
  property kind requires but nobody filled in is then ``PART_MISSING`` (the checks).
* A box left empty (an empty value) is a box not filled in.
* Field names outside the table are ignored (the station may export more than the form).
* A paper form carries its signed statement on the paper: ``statement`` is True.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from worker.domain import model as m
from worker.domain.findings import Finding, finding
from worker.forms.do1 import BUILDING_TYPES, PROPERTY_KINDS, PURPOSES
from worker.forms.registry import DEFAULT_REGISTRY, FormRegistry, FormSpec
from worker.scans.export import ScanField, parse_xs_boolean, parse_xs_date

# --- the field table -------------------------------------------------------------------

_ADDRESS = ("kod_pocztowy", "miejscowosc", "ulica", "budynek", "lokal")
_SIMPLE = {
    "cel.rodzaj", "cel.obowiazuje_od", "cel.przyczyna", "cel.uzasadnienie",
    "skladajacy.tytul_prawny", "skladajacy.pesel", "skladajacy.imie", "skladajacy.nazwisko",
    "skladajacy.nazwa", "skladajacy.nip", "skladajacy.regon", "skladajacy.email", "skladajacy.telefon",
    *(f"skladajacy.adres.{a}" for a in _ADDRESS),
    "nieruchomosc.gmina", *(f"nieruchomosc.adres.{a}" for a in _ADDRESS),
    "nieruchomosc.nr_dzialki", "nieruchomosc.obreb", "nieruchomosc.rodzaj", "nieruchomosc.zabudowa",
    "kompostownik", "zwolnienie_kompostownik", "oplata_zamieszkala", "oplata_niezamieszkala",
    "oplata_miesieczna", "zgoda_ekorespondencja",
}
#: numbered rows: prefix → the fields of one row, and the most rows the e-form allows
ROWS: dict[str, tuple[tuple[str, ...], int]] = {
    "lokale": (("nr_lokalu", "liczba_mieszkancow"), 500),
    "wyliczenie": (("opis", "liczba_osob", "stawka", "kwota"), 100),
    "pojemniki": (("pojemnosc", "liczba", "oproznien_w_roku", "stawka", "kwota"), 20),
}
_ROW = re.compile(r"(lokale|wyliczenie|pojemniki)\.([1-9][0-9]{0,5})\.([a-z_]+)")

#: fields whose reading does not decide the outcome, the fee or who and what it is charged
#: to: contact data, the consent to e-mail correspondence, the free-text justification
#: (read by a person anyway) and the optional cadastral data (not used to identify the
#: property). A low OCR confidence in these is no ``LOW_CONFIDENCE`` finding.
NOT_NEEDED_FOR_OUTCOME = frozenset(
    {"skladajacy.email", "skladajacy.telefon", "zgoda_ekorespondencja", "cel.uzasadnienie",
     "nieruchomosc.nr_dzialki", "nieruchomosc.obreb"}
)

# personal data: a finding names the field but never repeats its value
_PERSONAL = re.compile(r"skladajacy\.|nieruchomosc\.adres\.(ulica|budynek|lokal)|nieruchomosc\.nr_dzialki|lokale\.\d+\.nr_lokalu")

_AMOUNT = re.compile(r"[0-9]{1,8}(\.[0-9]{1,2})?")
_INTEGER = re.compile(r"[0-9]{1,6}")


def known_field(name: str) -> bool:
    """Whether ``name`` is a field of the union's table.

    >>> known_field("skladajacy.pesel"), known_field("lokale.2.liczba_mieszkancow"), known_field("lokale.0.liczba_mieszkancow")
    (True, True, False)
    """
    if name in _SIMPLE:
        return True
    match = _ROW.fullmatch(name)
    return match is not None and match.group(3) in ROWS[match.group(1)][0]


def needed_for_outcome(name: str) -> bool:
    """Whether a low confidence in field ``name`` needs a person (``LOW_CONFIDENCE``).

    >>> needed_for_outcome("skladajacy.pesel"), needed_for_outcome("skladajacy.email"), needed_for_outcome("foo.bar")
    (True, False, False)
    """
    return known_field(name) and name not in NOT_NEEDED_FOR_OUTCOME


# --- reading values --------------------------------------------------------------------


class ScanMappingError(ValueError):
    """The fields cannot be read into the model; ``findings`` are all the reasons."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("; ".join(f"{f.field}: {f.message}" for f in findings))
        self.findings = findings


def _bad(name: str, message: str) -> Finding:
    return finding("SCHEMA_INVALID", name, message)


def _shown(name: str, value: str) -> str:
    if _PERSONAL.match(name):
        return ""
    v = value if len(value) <= 40 else value[:39] + "…"
    return f" „{v}”"


class _Fields:
    """The export's fields by name, with typed readers that collect their findings."""

    def __init__(self, fields: Iterable[ScanField], form: str, enums: dict[str, frozenset[str] | None]) -> None:
        self.form = form
        self.enums = enums
        self.findings: list[Finding] = []
        self.values: dict[str, str] = {}
        seen: set[str] = set()
        for f in fields:
            if not known_field(f.name):
                continue
            if f.name in seen:
                if f.name not in {x.field for x in self.findings}:
                    self.findings.append(_bad(f.name, f"Pole „{f.name}” występuje w eksporcie skanu więcej niż raz."))
                continue
            seen.add(f.name)
            if f.value:
                self.values[f.name] = f.value

    def has(self, name: str) -> bool:
        return name in self.values

    def any_with_prefix(self, *prefixes: str) -> bool:
        return any(n.startswith(prefixes) for n in self.values)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None and required:
            self.findings.append(_bad(name, f"Nie wypełniono wymaganego pola „{name}”."))
        return value

    def _typed(self, name: str, required: bool, parse, hint: str):
        value = self.text(name, required=required)
        if value is None:
            return None
        result = parse(value)
        if result is None:
            self.findings.append(_bad(name, f"Pole „{name}”: nieprawidłowa wartość{_shown(name, value)} — {hint}."))
        return result

    def amount(self, name: str, *, required: bool = True) -> Decimal | None:
        return self._typed(
            name, required, lambda v: Decimal(v) if _AMOUNT.fullmatch(v) else None,
            "wymagana kwota w złotych z kropką dziesiętną, najwyżej dwa miejsca po kropce, np. 38.00",
        )

    def integer(self, name: str, *, minimum: int = 0, maximum: int | None = None, required: bool = True) -> int | None:
        def parse(v: str) -> int | None:
            if not _INTEGER.fullmatch(v):
                return None
            n = int(v)
            return n if n >= minimum and (maximum is None or n <= maximum) else None

        span = f"od {minimum}" + (f" do {maximum}" if maximum is not None else "")
        return self._typed(name, required, parse, f"wymagana liczba całkowita {span}")

    def day(self, name: str, *, required: bool = True) -> date | None:
        return self._typed(
            name, required, lambda v: parse_xs_date(v) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) else None,
            "wymagana data w postaci RRRR-MM-DD, np. 2025-01-31",
        )

    def boolean(self, name: str, *, required: bool = True) -> bool | None:
        return self._typed(name, required, parse_xs_boolean, "wymagana wartość true (tak) albo false (nie)")

    def choice(self, name: str, table: dict[str, str], *, required: bool = True) -> str | None:
        allowed = ", ".join(table)
        return self._typed(name, required, table.get, f"dozwolone wartości: {allowed}")

    def vocabulary(self, name: str, element: str, *, required: bool = False) -> str | None:
        """A value the model keeps as on the form, checked against the form's XSD."""
        allowed = self.enums.get(element)
        value = self.text(name, required=required)
        if value is None:
            return None
        if allowed is None:
            self.findings.append(_bad(name, f"Formularz {self.form} nie ma pola „{name}”."))
            return None
        if value not in allowed:
            self.findings.append(
                _bad(name, f"Pole „{name}”: niedozwolona wartość{_shown(name, value)} — dozwolone wartości: {', '.join(sorted(allowed))}.")
            )
            return None
        return value

    def rows(self, prefix: str) -> list[int]:
        """The row numbers given for ``prefix``: 1..n, a gap is a finding."""
        numbers = sorted({int(mt.group(2)) for n in self.values if (mt := _ROW.fullmatch(n)) and mt.group(1) == prefix})
        limit = ROWS[prefix][1]
        for expected, got in enumerate(numbers, start=1):
            if got != expected:
                self.findings.append(
                    _bad(f"{prefix}.{expected}", f"Brak wiersza „{prefix}.{expected}”: wiersze „{prefix}” muszą być numerowane kolejno od 1.")
                )
                return []
        if len(numbers) > limit:
            self.findings.append(_bad(prefix, f"Za dużo wierszy „{prefix}” ({len(numbers)}); formularz ma ich najwyżej {limit}."))
            return []
        return numbers


# --- the form's vocabularies -------------------------------------------------------------

#: e-form elements whose values the model keeps as written: checked against the form's XSD
_VOCABULARIES = {
    "TytulPrawny": "Deklaracja/Skladajacy/TytulPrawny",
    "PrzyczynaZmiany": "Deklaracja/CelZlozenia/PrzyczynaZmiany",
}


@functools.cache
def form_vocabularies(spec: FormSpec) -> dict[str, frozenset[str] | None]:
    """The enumerations of ``spec``'s XSD for the fields the model keeps in Polish
    (``None``: the version has no such field)."""
    schema = spec.xmlschema_schema()
    out: dict[str, frozenset[str] | None] = {}
    for key, path in _VOCABULARIES.items():
        steps = "/".join(f"w:{s}" for s in path.split("/"))
        element = schema.find(steps, namespaces={"w": spec.namespace})
        enum = getattr(getattr(element, "type", None), "enumeration", None) if element is not None else None
        out[key] = frozenset(str(v) for v in enum) if enum else None
    return out


def _spec_for(form: str, registry: FormRegistry) -> FormSpec | None:
    """The form's spec; for a version the registry does not know, the newest version of
    the same code (its vocabulary reads the fields; the version itself is a finding of
    the declaration checks)."""
    spec = registry.by_form(form)
    if spec is not None:
        return spec
    code = form.split("/", 1)[0]
    same = [s for s in registry if s.code == code]
    return max(same, key=lambda s: (s.filed_from or date.min)) if same else None


# --- the mapping -----------------------------------------------------------------------


def _address(f: _Fields, base: str) -> m.Address:
    return m.Address(
        postal_code=f.text(f"{base}.kod_pocztowy", required=True) or "",
        town=f.text(f"{base}.miejscowosc", required=True) or "",
        building=f.text(f"{base}.budynek", required=True) or "",
        street=f.text(f"{base}.ulica"),
        flat=f.text(f"{base}.lokal"),
    )


def _declarant(f: _Fields) -> m.Declarant | None:
    legal_title = f.vocabulary("skladajacy.tytul_prawny", "TytulPrawny", required=True) or ""
    address = _address(f, "skladajacy.adres")
    emails = tuple(v for v in (f.text("skladajacy.email"),) if v)
    phones = tuple(v for v in (f.text("skladajacy.telefon"),) if v)
    person = any(f.has(n) for n in ("skladajacy.imie", "skladajacy.nazwisko", "skladajacy.pesel"))
    institution = f.has("skladajacy.nazwa")
    if person and institution:
        f.findings.append(
            _bad("skladajacy.nazwa", "Wypełniono jednocześnie dane osoby (imię, nazwisko, PESEL) i nazwę instytucji; "
                 "nie wiadomo, kto składa deklarację.")
        )
        return None
    if institution or (not person and f.has("skladajacy.nip")):
        return m.Declarant(
            kind=m.INSTITUTION, legal_title=legal_title, address=address,
            institution_name=f.text("skladajacy.nazwa", required=True),
            nip=f.text("skladajacy.nip"), regon=f.text("skladajacy.regon"), pesel=f.text("skladajacy.pesel"),
            emails=emails, phones=phones,
        )
    if person:
        return m.Declarant(
            kind=m.PERSON, legal_title=legal_title, address=address,
            pesel=f.text("skladajacy.pesel"),
            first_name=f.text("skladajacy.imie", required=True),
            last_name=f.text("skladajacy.nazwisko", required=True),
            nip=f.text("skladajacy.nip"), regon=f.text("skladajacy.regon"),
            emails=emails, phones=phones,
        )
    f.findings.append(
        _bad("skladajacy.nazwisko", "Nie wypełniono danych składającego: imienia, nazwiska i numeru PESEL osoby "
             "albo nazwy i numeru NIP instytucji.")
    )
    return None


def _property(f: _Fields) -> m.Property:
    return m.Property(
        gmina=f.text("nieruchomosc.gmina", required=True) or "",
        address=_address(f, "nieruchomosc.adres"),
        kind=f.choice("nieruchomosc.rodzaj", PROPERTY_KINDS) or "",
        building_type=f.choice("nieruchomosc.zabudowa", BUILDING_TYPES, required=False),
        parcel=f.text("nieruchomosc.nr_dzialki"),
        precinct=f.text("nieruchomosc.obreb"),
    )


def _residential(f: _Fields) -> m.ResidentialPart | None:
    if not (f.any_with_prefix("lokale.", "wyliczenie.") or any(f.has(n) for n in ("kompostownik", "zwolnienie_kompostownik", "oplata_zamieszkala"))):
        return None
    dwellings = []
    rows = f.rows("lokale")
    if not rows and not any(x.field and x.field.startswith("lokale") for x in f.findings):
        f.text("lokale.1.liczba_mieszkancow", required=True)
    for n in rows:
        dwellings.append(
            m.Dwelling(
                residents=f.integer(f"lokale.{n}.liczba_mieszkancow", maximum=99) or 0,
                number=f.text(f"lokale.{n}.nr_lokalu"),
            )
        )
    lines = []
    rows = f.rows("wyliczenie")
    if not rows and not any(x.field and x.field.startswith("wyliczenie") for x in f.findings):
        f.text("wyliczenie.1.kwota", required=True)
    for n in rows:
        base = f"wyliczenie.{n}"
        lines.append(
            m.CalculationLine(
                description=f.text(f"{base}.opis", required=True) or "",
                persons=f.integer(f"{base}.liczba_osob") or 0,
                rate=f.amount(f"{base}.stawka") or Decimal(0),
                amount=f.amount(f"{base}.kwota") or Decimal(0),
            )
        )
    return m.ResidentialPart(
        dwellings=tuple(dwellings),
        composting=bool(f.boolean("kompostownik")),
        lines=tuple(lines),
        fee=f.amount("oplata_zamieszkala") or Decimal(0),
        composting_discount=f.amount("zwolnienie_kompostownik", required=False),
    )


def _non_residential(f: _Fields) -> m.NonResidentialPart | None:
    if not (f.any_with_prefix("pojemniki.") or f.has("oplata_niezamieszkala")):
        return None
    containers = []
    rows = f.rows("pojemniki")
    if not rows and not any(x.field and x.field.startswith("pojemniki") for x in f.findings):
        f.text("pojemniki.1.pojemnosc", required=True)
    for n in rows:
        base = f"pojemniki.{n}"
        containers.append(
            m.ContainerLine(
                capacity_l=f.integer(f"{base}.pojemnosc", minimum=1, maximum=10000) or 0,
                count=f.integer(f"{base}.liczba", minimum=1) or 0,
                emptyings_per_year=f.integer(f"{base}.oproznien_w_roku", minimum=1, maximum=365) or 0,
                rate=f.amount(f"{base}.stawka") or Decimal(0),
                amount=f.amount(f"{base}.kwota") or Decimal(0),
            )
        )
    return m.NonResidentialPart(containers=tuple(containers), fee=f.amount("oplata_niezamieszkala") or Decimal(0))


def map_scan(fields: Iterable[ScanField], form: str, *, registry: FormRegistry = DEFAULT_REGISTRY) -> m.Declaration:
    """Map the recognised fields of a paper ``form`` (``DO-1/2025``) to a ``Declaration``.

    ``filed_at`` and ``channel`` are left empty (the stage sets them). Raises
    :class:`ScanMappingError` with every unreadable value; raises ``LookupError`` when the
    registry knows no form with this code at all.
    """
    spec = _spec_for(form, registry)
    if spec is None:
        raise LookupError(form)
    f = _Fields(fields, form, form_vocabularies(spec))
    purpose = f.choice("cel.rodzaj", PURPOSES)
    applies_from = f.day("cel.obowiazuje_od")
    change_reason = f.vocabulary("cel.przyczyna", "PrzyczynaZmiany")
    declarant = _declarant(f)
    prop = _property(f)
    residential = _residential(f)
    non_residential = _non_residential(f)
    monthly_fee = f.amount("oplata_miesieczna")
    consent = f.boolean("zgoda_ekorespondencja", required=False)
    if f.findings or declarant is None or purpose is None or applies_from is None or monthly_fee is None:
        raise ScanMappingError(f.findings)
    return m.Declaration(
        form=form,
        purpose=purpose,
        applies_from=applies_from,
        declarant=declarant,
        property=prop,
        monthly_fee=monthly_fee,
        residential=residential,
        non_residential=non_residential,
        change_reason=change_reason,
        justification=f.text("cel.uzasadnienie"),
        e_correspondence=consent,
        statement=True,
        attachments=(),
    )


__all__ = ["NOT_NEEDED_FOR_OUTCOME", "ROWS", "ScanMappingError", "form_vocabularies", "known_field", "map_scan", "needed_for_outcome"]
