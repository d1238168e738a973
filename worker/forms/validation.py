"""XSD validation of a form document, reported as ``SCHEMA_INVALID`` findings in Polish.

Two engines, each for what it does best:

* **lxml** (libxml2) decides *whether* a document is valid. It is fast even for documents
  with megabytes of base64 attachments, so a valid document costs next to nothing.
* **xmlschema** explains *why* an invalid one is not: it keeps validating after a content
  error (libxml2 skips the rest of that element) and gives structured errors (the facet,
  the expected elements), which are translated into sentences an office worker
  understands. Should it find nothing where libxml2 did, libxml2's errors are reported.

Each finding's ``field`` is the element path from the document root with namespace
prefixes removed, e.g. ``/Dokument/TrescDokumentu/Deklaracja/Nieruchomosc/Gmina``;
a repeated element carries its position (``Lokal[2]``). At most :data:`MAX_FINDINGS`
findings are reported per document, then one more that says how many were left out —
a hostile document cannot flood the office with thousands of lines.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from worker.domain.budget import BudgetExceeded, CpuBudget
from worker.domain.findings import Finding, finding
from worker.domain.xmlvalue import string_value

if TYPE_CHECKING:  # pragma: no cover
    from worker.forms.registry import FormSpec

log = logging.getLogger(__name__)

MAX_FINDINGS = 50
_MAX_VALUE_CHARS = 40

# Polish names of the form's elements, as printed on the paper DO-1.
LABELS: dict[str, str] = {
    "Dokument": "dokument",
    "OpisDokumentu": "opis dokumentu",
    "DaneDokumentu": "dane dokumentu",
    "TrescDokumentu": "treść dokumentu",
    "Naglowek": "nagłówek",
    "NazwaDokumentu": "nazwa dokumentu",
    "Data": "data dokumentu",
    "Czas": "data",
    "Adresaci": "adresat",
    "Nadawcy": "nadawca",
    "Podmiot": "podmiot",
    "Deklaracja": "deklaracja",
    "CelZlozenia": "cel złożenia deklaracji (część A)",
    "Rodzaj": "cel złożenia deklaracji",
    "ObowiazujeOd": "data, od której obowiązuje deklaracja",
    "PrzyczynaZmiany": "przyczyna zmiany",
    "Uzasadnienie": "uzasadnienie",
    "Skladajacy": "składający (części B–C)",
    "TytulPrawny": "tytuł prawny do nieruchomości",
    "Osoba": "dane osoby składającej",
    "Instytucja": "dane instytucji",
    "IdOsoby": "identyfikator osoby",
    "PESEL": "numer PESEL",
    "InnyIdentyfikator": "inny identyfikator",
    "TypIdentyfikatora": "rodzaj identyfikatora",
    "WartoscIdentyfikatora": "numer identyfikatora",
    "Imie": "imię",
    "ImieDrugie": "drugie imię",
    "Nazwisko": "nazwisko",
    "NazwaInstytucji": "nazwa instytucji",
    "IdInstytucji": "identyfikatory instytucji",
    "NIP": "numer NIP",
    "REGON": "numer REGON",
    "KRS": "numer KRS",
    "AdresZamieszkania": "adres zamieszkania lub siedziby",
    "Adres": "adres",
    "KodPocztowy": "kod pocztowy",
    "Poczta": "poczta",
    "Miejscowosc": "miejscowość",
    "Ulica": "ulica",
    "Budynek": "numer budynku",
    "Wojewodztwo": "województwo",
    "Powiat": "powiat",
    "Gmina": "gmina",
    "Kraj": "kraj",
    "Kontakt": "dane kontaktowe",
    "Telefon": "telefon",
    "Email": "adres e-mail",
    "Nieruchomosc": "nieruchomość (część D)",
    "NrDzialki": "numer działki",
    "Obreb": "obręb",
    "RodzajNieruchomosci": "rodzaj nieruchomości",
    "RodzajZabudowy": "rodzaj zabudowy",
    "CzescZamieszkala": "część zamieszkała (części E–G)",
    "Lokal": "lokal",
    "NrLokalu": "numer lokalu",
    "LiczbaMieszkancow": "liczba mieszkańców",
    "Kompostownik": "kompostownik",
    "Wyliczenie": "wyliczenie opłaty",
    "Pozycja": "pozycja wyliczenia",
    "Opis": "opis pozycji",
    "LiczbaOsob": "liczba osób",
    "Stawka": "stawka",
    "Kwota": "kwota",
    "ZwolnienieKompostownik": "zwolnienie za kompostownik",
    "Oplata": "opłata",
    "CzescNiezamieszkala": "część niezamieszkała (część H)",
    "Pojemnik": "pojemnik",
    "Pojemnosc": "pojemność pojemnika",
    "Liczba": "liczba pojemników",
    "OproznienWRoku": "liczba opróżnień w roku",
    "OplataMiesieczna": "miesięczna opłata razem (część I)",
    "ZgodaNaKorespondencjeElektroniczna": "zgoda na korespondencję elektroniczną",
    "Oswiadczenie": "oświadczenie o prawdziwości danych",
    "Zalaczniki": "załączniki",
    "Zalacznik": "załącznik",
    "DaneZalacznika": "treść załącznika",
    "OpisZalacznika": "opis załącznika",
}

# The sections a label is qualified with, so "kod pocztowy" says whose it is.
_SECTIONS = {
    "Skladajacy": "składający",
    "Nieruchomosc": "nieruchomość",
    "CzescZamieszkala": "część zamieszkała",
    "CzescNiezamieszkala": "część niezamieszkała",
    "Adresaci": "adresat",
    "Zalaczniki": "załączniki",
}

# Elements whose name alone does not say whose they are: qualified with their section.
_AMBIGUOUS = {
    "Adres", "KodPocztowy", "Poczta", "Miejscowosc", "Ulica", "Budynek", "Lokal", "Wojewodztwo", "Powiat",
    "Gmina", "Kraj", "Kontakt", "Telefon", "Email", "Oplata", "Stawka", "Kwota", "Opis", "NIP", "REGON", "KRS",
    "NazwaInstytucji", "Imie", "ImieDrugie", "Nazwisko", "PESEL", "Osoba", "Instytucja", "IdInstytucji",
}

# Personal data: a finding names the field, but does not repeat the value.
_PERSONAL = {
    "PESEL", "NIP", "REGON", "KRS", "WartoscIdentyfikatora", "Imie", "ImieDrugie", "Nazwisko", "NazwaInstytucji",
    "Email", "Telefon", "Ulica", "Budynek", "Lokal", "NrLokalu", "Miejscowosc", "Uzasadnienie", "NrDzialki",
    "DaneZalacznika",
}

# Hints for the patterns the form uses, by element name.
_PATTERN_HINTS = {
    "KodPocztowy": "kod pocztowy ma postać NN-NNN, np. 47-200",
    "PESEL": "PESEL składa się z 11 cyfr",
    "NIP": "NIP składa się z 10 cyfr, bez kresek i spacji",
    "REGON": "REGON składa się z 9 albo 14 cyfr",
    "KRS": "KRS składa się z 10 cyfr",
    "Email": "wymagany adres e-mail w postaci nazwa@domena.pl",
    "NrDzialki": "numer działki to liczba lub ułamek, np. 123 albo 123/4",
}

_TYPE_HINTS = {
    "date": "wymagana data w postaci RRRR-MM-DD, np. 2025-01-31",
    "boolean": "wymagana wartość true (tak) albo false (nie)",
    "decimal": "wymagana liczba z kropką dziesiętną, np. 38.00",
    "integer": "wymagana liczba całkowita",
    "nonNegativeInteger": "wymagana liczba całkowita, 0 lub większa",
    "positiveInteger": "wymagana liczba całkowita większa od zera",
    "base64Binary": "treść załącznika musi być zakodowana w base64",
}


def local_name(tag: Any) -> str:
    """``{ns}Name`` → ``Name``; comments and other non-elements → ``""``."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def element_path(elem: Any, root: Any) -> str:
    """The path of ``elem`` from ``root`` with local names; positions only where an element
    repeats under its parent (``/Dokument/…/Lokal[2]/LiczbaMieszkancow``)."""
    parts: list[str] = []
    node = elem
    while node is not None:
        name = local_name(node.tag)
        parent = node.getparent() if node is not root else None
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        if node is root:
            break
        node = parent
    return "/" + "/".join(reversed(parts))


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _qualified_label(elem: Any, root: Any) -> str:
    """``kod pocztowy (nieruchomość)``: the element's Polish name and its section."""
    name = local_name(elem.tag)
    section = None
    node = elem.getparent() if elem is not root else None
    while node is not None:
        section = _SECTIONS.get(local_name(node.tag), section)
        if node is root:
            break
        node = node.getparent()
    label = _label(name)
    if section and name in _AMBIGUOUS:
        return f"{label} ({section})"
    return label


def _value(text: Any) -> str:
    value = "" if text is None else str(text).strip()
    if len(value) > _MAX_VALUE_CHARS:
        value = value[: _MAX_VALUE_CHARS - 1] + "…"
    return value


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _schema_finding(field: str | None, message: str) -> Finding:
    return finding("SCHEMA_INVALID", field, message)


def _translate_children(err: Any, root: Any) -> Finding:
    parent = err.elem
    parent_path = element_path(parent, root)
    parent_label = _qualified_label(parent, root)
    expected = [x for x in (err.expected or []) if getattr(x, "local_name", None)]
    expected_names = [x.local_name for x in expected]
    expected_text = ", ".join(f"„{n}” ({_label(n)})" for n in expected_names)
    child = err.invalid_child
    if err.invalid_tag is None or child is None:
        # the content ended before a required element
        field = parent_path + (f"/{expected_names[0]}" if len(expected_names) == 1 else "")
        if expected_names:
            msg = f"{_cap(parent_label)}: brak wymaganego elementu {expected_text}."
        else:
            msg = f"{_cap(parent_label)}: brak wymaganych danych."
        return _schema_finding(field, msg)
    child_name = local_name(child.tag)
    field = element_path(child, root)
    declared_here = False
    try:
        declared_here = any(getattr(e, "name", None) == child.tag for e in err.validator.iter_elements())
    except Exception:  # a wildcard-only model or an unusual validator: treat as undeclared
        declared_here = False
    if expected_names and declared_here:
        msg = (
            f"{_cap(parent_label)}: brak wymaganego elementu {expected_text} przed elementem "
            f"„{child_name}” albo elementy są w niewłaściwej kolejności."
        )
        field = parent_path + (f"/{expected_names[0]}" if len(expected_names) == 1 else "")
    elif declared_here:
        msg = (
            f"{_cap(parent_label)}: element „{child_name}” ({_label(child_name)}) występuje "
            "więcej razy, niż pozwala wzór formularza, albo w niewłaściwym miejscu."
        )
    elif expected_names:
        msg = (
            f"{_cap(parent_label)}: element „{child_name}” nie występuje we wzorze formularza; "
            f"w tym miejscu oczekiwano {expected_text}."
        )
    else:
        msg = f"{_cap(parent_label)}: element „{child_name}” nie występuje we wzorze formularza w tym miejscu."
    return _schema_finding(field, msg)


def _translate_value(err: Any, root: Any) -> Finding:
    """Errors about an element's text: facets, types, fixed values."""
    elem = err.elem
    field = element_path(elem, root)
    name = local_name(elem.tag)
    what = _cap(_qualified_label(elem, root))
    raw = string_value(elem)
    value = _value(raw)
    # identifiers, names and contact data are not repeated in the message
    shown = "" if name in _PERSONAL else f" „{value}”"
    kind = type(err.validator).__name__
    facet_value = getattr(err.validator, "value", None)
    if not value and kind in ("XsdMinLengthFacet", "XsdPatternFacets", "XsdAtomicBuiltin", "XsdAtomicRestriction"):
        return _schema_finding(field, f"{what}: pole nie może być puste.")
    if kind == "XsdPatternFacets":
        hint = _PATTERN_HINTS.get(name, "wartość ma niedozwoloną postać")
        return _schema_finding(field, f"{what}: nieprawidłowa wartość{shown} — {hint}.")
    if kind == "XsdEnumerationFacets":
        allowed = ", ".join(str(v) for v in (getattr(err.validator, "enumeration", None) or []))
        tail = f" Dozwolone wartości: {allowed}." if allowed else ""
        return _schema_finding(field, f"{what}: wartość{shown} jest niedozwolona.{tail}")
    if kind == "XsdMinLengthFacet":
        return _schema_finding(field, f"{what}: wartość jest za krótka (co najmniej {facet_value} znaków).")
    if kind == "XsdMaxLengthFacet":
        return _schema_finding(field, f"{what}: wartość jest za długa (najwyżej {facet_value} znaków).")
    if kind == "XsdLengthFacet":
        return _schema_finding(field, f"{what}: wartość musi mieć dokładnie {facet_value} znaków.")
    if kind in ("XsdMinInclusiveFacet", "XsdMinExclusiveFacet"):
        return _schema_finding(field, f"{what}: wartość{shown} jest za mała (najmniej {facet_value}).")
    if kind in ("XsdMaxInclusiveFacet", "XsdMaxExclusiveFacet"):
        return _schema_finding(field, f"{what}: wartość{shown} jest za duża (najwyżej {facet_value}).")
    if kind == "XsdFractionDigitsFacet":
        return _schema_finding(
            field, f"{what}: wartość{shown} ma za dużo miejsc po przecinku (najwyżej {facet_value})."
        )
    if kind == "XsdTotalDigitsFacet":
        return _schema_finding(field, f"{what}: wartość{shown} ma za dużo cyfr (najwyżej {facet_value}).")
    if kind == "XsdElement":
        fixed = getattr(err.validator, "fixed", None)
        if name == "Oswiadczenie":
            return _schema_finding(field, "Oświadczenie o prawdziwości danych musi zostać potwierdzone (wartość true).")
        if fixed is not None:
            return _schema_finding(field, f"{what}: wymagana wartość „{fixed}”, podano{shown}.")
        if len(elem):
            return _schema_finding(field, f"{what}: to pole nie może zawierać innych elementów.")
    # a value of the wrong type (date, number, boolean…) or a restriction we have no words for
    hint = _type_hint(err.validator)
    return _schema_finding(field, f"{what}: nieprawidłowa wartość{shown} — {hint}.")


# xmlschema checks some built-in types with plain functions
_FUNCTION_TYPES = {
    "non_negative_int_validator": "nonNegativeInteger",
    "positive_int_validator": "positiveInteger",
    "int_validator": "integer",
    "long_validator": "integer",
    "decimal_validator": "decimal",
    "base64_binary_validator": "base64Binary",
}


def _type_hint(validator: Any) -> str:
    function_type = _FUNCTION_TYPES.get(getattr(validator, "__name__", ""))
    if function_type:
        return _TYPE_HINTS[function_type]
    names: list[str] = []
    node = validator
    for _ in range(8):  # walk up from the facet or restriction to the built-in type
        if node is None:
            break
        local = getattr(node, "local_name", None)
        if local:
            names.append(local)
        primitive = getattr(node, "primitive_type", None)
        if primitive is not None and getattr(primitive, "local_name", None):
            names.append(primitive.local_name)
        node = getattr(node, "base_type", None) or getattr(node, "parent", None)
    for n in names:
        if n in _TYPE_HINTS:
            return _TYPE_HINTS[n]
    return "wartość nie jest zgodna ze wzorem formularza"


def _translate_attribute(err: Any, root: Any) -> Finding:
    elem = err.elem
    field = element_path(elem, root)
    what = _cap(_qualified_label(elem, root))
    attr = getattr(err.validator, "local_name", None)
    reason = str(getattr(err, "reason", "") or "")
    if attr:
        fixed = getattr(err.validator, "fixed", None)
        if fixed is not None:
            return _schema_finding(f"{field}/@{attr}", f"{what}: atrybut „{attr}” musi mieć wartość „{fixed}”.")
        return _schema_finding(f"{field}/@{attr}", f"{what}: atrybut „{attr}” ma nieprawidłową wartość.")
    if "missing required attribute" in reason:
        name = reason.split("'")[1] if reason.count("'") >= 2 else ""
        return _schema_finding(f"{field}/@{name}" if name else field, f"{what}: brak wymaganego atrybutu „{name}”.")
    if "not allowed" in reason:
        name = reason.split("'")[1] if reason.count("'") >= 2 else ""
        return _schema_finding(f"{field}/@{name}" if name else field, f"{what}: niedozwolony atrybut „{name}”.")
    return _schema_finding(field, f"{what}: atrybuty elementu nie są zgodne ze wzorem formularza.")


def translate_error(err: Any, root: Any) -> Finding:
    """One xmlschema validation error → one ``SCHEMA_INVALID`` finding in Polish."""
    from xmlschema.validators.exceptions import XMLSchemaChildrenValidationError

    elem = getattr(err, "elem", None)
    if elem is None or not isinstance(getattr(elem, "tag", None), str):
        return _schema_finding(None, "Dokument nie jest zgodny ze wzorem formularza.")
    if isinstance(err, XMLSchemaChildrenValidationError):
        return _translate_children(err, root)
    kind = type(err.validator).__name__
    if kind in ("XsdAttribute", "XsdAttributeGroup"):
        return _translate_attribute(err, root)
    if kind == "XsdGroup":
        return _schema_finding(
            element_path(elem, root),
            f"{_cap(_qualified_label(elem, root))}: zawartość nie jest zgodna ze wzorem formularza.",
        )
    return _translate_value(err, root)


_LIBXML_HINTS = {
    "SCHEMAV_CVC_PATTERN_VALID": "wartość ma niedozwoloną postać",
    "SCHEMAV_CVC_ENUMERATION_VALID": "wartość spoza listy dozwolonych",
    "SCHEMAV_CVC_MINLENGTH_VALID": "wartość jest za krótka",
    "SCHEMAV_CVC_MAXLENGTH_VALID": "wartość jest za długa",
    "SCHEMAV_ELEMENT_CONTENT": "brak wymaganego elementu albo element w niewłaściwym miejscu",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4": "brak wymaganego elementu albo element w niewłaściwym miejscu",
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_1": "wartość niezgodna z typem pola",
}


def _from_libxml(entry: Any) -> Finding:
    """Fallback wording from a libxml2 error entry (used only if xmlschema saw nothing)."""
    parts = [p.split(":", 1)[-1].split("[", 1)[0] for p in (entry.path or "").split("/") if p]
    field = "/" + "/".join(parts) if parts else None
    what = _cap(_label(parts[-1])) if parts else "Dokument"
    hint = _LIBXML_HINTS.get(entry.type_name, "zawartość niezgodna ze wzorem formularza")
    return _schema_finding(field, f"{what}: {hint}.")


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str | None, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.field, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def validate_document(root: Any, spec: FormSpec, *, max_findings: int = MAX_FINDINGS, budget: CpuBudget | None = None) -> list[Finding]:
    """Validate ``root`` (the form's ``Dokument`` element) against ``spec``'s XSD.

    Returns no findings for a valid document, otherwise one ``SCHEMA_INVALID`` per error
    (capped at ``max_findings`` plus one summary finding). ``budget`` is checked while the
    errors are explained (:class:`~worker.domain.budget.BudgetExceeded` when used up).
    """
    if root is None or root.tag != spec.root_tag:
        got = local_name(getattr(root, "tag", "")) or "brak"
        return [
            _schema_finding(
                "/" + got if got != "brak" else None,
                f"Element główny dokumentu to „{got}”, a formularz {spec.form} wymaga elementu "
                f"„{spec.root_element}” w przestrzeni nazw formularza.",
            )
        ]
    lxml_schema = spec.lxml_schema()
    if lxml_schema.validate(root):
        return inline_attachment_findings(root)[:max_findings]
    libxml_errors = list(lxml_schema.error_log)
    findings: list[Finding] = []
    more = 0
    try:
        for err in spec.xmlschema_schema().iter_errors(root):
            if budget is not None:
                budget.check("validate")
            if len(findings) >= max_findings:
                more += 1
                continue
            findings.append(translate_error(err, root))
    except BudgetExceeded:
        raise
    except Exception as exc:  # never let the explaining engine turn a finding into a traceback
        log.warning("explaining schema errors failed", extra={"event": "schema.explain_failed", "form": spec.form, "error": type(exc).__name__})
        findings = []
        more = 0
    if not findings:
        findings = [_from_libxml(e) for e in libxml_errors[:max_findings]]
        more = max(0, len(libxml_errors) - max_findings)
    findings = _dedupe(findings + inline_attachment_findings(root))
    if len(findings) > max_findings:
        more += len(findings) - max_findings
        findings = findings[:max_findings]
    if more:
        findings.append(
            _schema_finding(None, f"Dokument zawiera jeszcze {more} innych błędów zgodności ze wzorem formularza.")
        )
    return findings


_STR_NS = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
_ZALACZNIK = f"{{{_STR_NS}}}Zalacznik"
_DANE = f"{{{_STR_NS}}}DaneZalacznika"


def inline_attachment_findings(root: Any) -> list[Finding]:
    """``SCHEMA_INVALID`` for each attachment carried inside the document
    (``kodowanie="base64"``) whose data is not valid base64. The CRD structure types
    ``DaneZalacznika`` as text, since with ``kodowanie="URI"`` it holds a link to ePUAP's file
    repository; with base64 it must still be ``xs:base64Binary``.

    >>> from lxml import etree
    >>> doc = etree.fromstring(f'<d xmlns:str="{_STR_NS}"><str:Zalacznik kodowanie="base64" nazwaPliku="a.pdf">'
    ...     '<str:DaneZalacznika>@@</str:DaneZalacznika></str:Zalacznik>'
    ...     '<str:Zalacznik kodowanie="URI"><str:DaneZalacznika>https://x/?fileId=1</str:DaneZalacznika></str:Zalacznik></d>')
    >>> [(f.code, f.field) for f in inline_attachment_findings(doc)]
    [('SCHEMA_INVALID', '/d/Zalacznik[1]/DaneZalacznika')]
    """
    out: list[Finding] = []
    for index, zal in enumerate(root.iter(_ZALACZNIK), start=1):
        if (zal.get("kodowanie") or "").strip() != "base64":
            continue
        dane = zal.find(_DANE)
        if dane is None:
            continue  # the schema reports the missing element
        text = "".join((dane.text or "").split())
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            name = _value(zal.get("nazwaPliku")) or "bez nazwy"
            out.append(_schema_finding(element_path(dane, root), f"Załącznik {index} („{name}”): dane załącznika nie są "
                                       "poprawnym zapisem base64 (kodowanie=\"base64\").",))
    return out


__all__ = ["LABELS", "MAX_FINDINGS", "element_path", "inline_attachment_findings", "local_name", "translate_error",
           "validate_document"]
