"""XSD validation: every error a SCHEMA_INVALID finding with its element path and a Polish message."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from worker.forms import registry as registry_module
from worker.forms.registry import DO1_2023, DO1_2025
from worker.forms.validation import MAX_FINDINGS, element_path, validate_document

DATA = Path(__file__).parent / "data" / "forms"
W = DO1_2025.namespace
ADR = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/"
OSO = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/"
DEKL = "/Dokument/TrescDokumentu/Deklaracja"
ENGLISH = ("value", "expected", "attribute", "not", "must", "tag", "invalid", "child")


@pytest.fixture
def doc() -> etree._Element:
    return etree.fromstring((DATA / "valid-do1-2025-jednorodzinna.xml").read_bytes())


def q(root: etree._Element, path: str) -> etree._Element:
    ns = {"w": W, "adr": ADR, "oso": OSO}
    steps = ["w:TrescDokumentu", "w:Deklaracja"] + [s if ":" in s else f"w:{s}" for s in path.split("/") if s]
    found = root.find("/".join(steps), ns)
    assert found is not None, path
    return found


def only(findings):
    assert len(findings) == 1, findings
    f = findings[0]
    assert f.code == "SCHEMA_INVALID" and f.severity == "error"
    assert not any(word in f.message.lower().split() for word in ENGLISH), f.message
    return f


def test_valid_documents_have_no_findings(doc):
    assert validate_document(doc, DO1_2025) == []
    root23 = etree.fromstring((DATA / "valid-do1-2023-jednorodzinna.xml").read_bytes())
    assert validate_document(root23, DO1_2023) == []


def test_signed_samples_are_valid(shared_dir):
    for path in sorted((shared_dir / "spec" / "samples" / "signed").glob("*.xml")):
        assert validate_document(etree.parse(str(path)).getroot(), DO1_2025) == [], path.name


def test_version_mismatch_is_invalid(doc):
    # a 2025 document checked against the 2023 form: wrong root namespace
    f = only(validate_document(doc, DO1_2023))
    assert f.field == "/Dokument"
    assert "DO-1/2023" in f.message


def test_postal_code_pattern(doc):
    q(doc, "Nieruchomosc/adr:Adres/adr:KodPocztowy").text = "47200"
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Nieruchomosc/Adres/KodPocztowy"
    assert "Kod pocztowy (nieruchomość)" in f.message and "NN-NNN" in f.message and "„47200”" in f.message


def test_empty_required_text(doc):
    q(doc, "Nieruchomosc/Gmina").text = ""
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Nieruchomosc/Gmina"
    assert "nie może być puste" in f.message


def test_enumeration_lists_the_allowed_values(doc):
    q(doc, "CelZlozenia/Rodzaj").text = "ZMIANA"
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/CelZlozenia/Rodzaj"
    assert "PIERWSZA, NOWA, KOREKTA" in f.message


@pytest.mark.parametrize(
    "path, value, words",
    [
        ("CelZlozenia/ObowiazujeOd", "20.01.2025", "RRRR-MM-DD"),
        ("CzescZamieszkala/Kompostownik", "tak", "true (tak) albo false (nie)"),
        ("CzescZamieszkala/Lokal/LiczbaMieszkancow", "-1", "liczba całkowita"),
        ("CzescZamieszkala/Lokal/LiczbaMieszkancow", "100", "za duża (najwyżej 99)"),
        ("OplataMiesieczna", "174,50", "kropką dziesiętną"),
        ("OplataMiesieczna", "174.505", "miejsc po przecinku (najwyżej 2)"),
        ("OplataMiesieczna", "-1.00", "za mała (najmniej 0)"),
        ("OplataMiesieczna", "12345678901", "za dużo cyfr (najwyżej 10)"),
    ],
)
def test_value_errors(doc, path, value, words):
    q(doc, path).text = value
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/{path.replace('adr:', '')}"
    assert words in f.message, f.message


def test_statement_must_be_confirmed(doc):
    q(doc, "Oswiadczenie").text = "false"
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Oswiadczenie"
    assert "musi zostać potwierdzone" in f.message


def test_missing_required_element_points_at_it(doc):
    wyl = q(doc, "CzescZamieszkala/Wyliczenie")
    wyl.remove(q(doc, "CzescZamieszkala/Wyliczenie/Oplata"))
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/CzescZamieszkala/Wyliczenie/Oplata"
    assert "brak wymaganego elementu „Oplata”" in f.message


def test_missing_element_in_the_middle(doc):
    skl = q(doc, "Skladajacy")
    skl.remove(q(doc, "Skladajacy/TytulPrawny"))
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Skladajacy/TytulPrawny"
    assert "TytulPrawny" in f.message and "tytuł prawny" in f.message


def test_unknown_element(doc):
    etree.SubElement(q(doc, "Nieruchomosc"), f"{{{W}}}Powierzchnia").text = "120"
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Nieruchomosc/Powierzchnia"
    assert "„Powierzchnia” nie występuje we wzorze formularza" in f.message


def test_repeated_element(doc):
    q(doc, "Oswiadczenie").addnext(copy.deepcopy(q(doc, "Oswiadczenie")))
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Oswiadczenie[2]"
    assert "więcej razy" in f.message


def test_attribute_errors(doc):
    tresc = doc.find(f"{{{W}}}TrescDokumentu")
    tresc.set("format", "application/pdf")
    f = only(validate_document(doc, DO1_2025))
    assert f.field == "/Dokument/TrescDokumentu/@format"
    assert "text/xml" in f.message
    tresc.set("format", "text/xml")
    tresc.set("podpis", "tak")
    f = only(validate_document(doc, DO1_2025))
    assert f.field == "/Dokument/TrescDokumentu/@podpis"
    assert "niedozwolony atrybut" in f.message


def test_personal_values_are_not_repeated(doc):
    q(doc, "Skladajacy/oso:Osoba/oso:IdOsoby/oso:PESEL").text = "4405140135"
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Skladajacy/Osoba/IdOsoby/PESEL"
    assert "11 cyfr" in f.message
    assert "4405140135" not in f.message


def test_every_error_is_reported_with_positions(doc):
    """libxml2 stops inside an element after a content error; the report must not."""
    skl = q(doc, "Skladajacy")
    skl.remove(q(doc, "Skladajacy/TytulPrawny"))
    q(doc, "Skladajacy/AdresZamieszkania/adr:Adres/adr:KodPocztowy").text = "1"
    lokal = q(doc, "CzescZamieszkala/Lokal")
    second = copy.deepcopy(lokal)
    second.find(f"{{{W}}}LiczbaMieszkancow").text = "x"
    lokal.addnext(second)
    fields = {f.field for f in validate_document(doc, DO1_2025)}
    assert fields == {
        f"{DEKL}/Skladajacy/TytulPrawny",
        f"{DEKL}/Skladajacy/AdresZamieszkania/Adres/KodPocztowy",
        f"{DEKL}/CzescZamieszkala/Lokal[2]/LiczbaMieszkancow",
    }


def test_findings_are_capped(doc):
    lokal = q(doc, "CzescZamieszkala/Lokal")
    for _ in range(MAX_FINDINGS + 9):
        bad = copy.deepcopy(lokal)
        bad.find(f"{{{W}}}LiczbaMieszkancow").text = "-5"
        lokal.addnext(bad)
    findings = validate_document(doc, DO1_2025)
    assert len(findings) == MAX_FINDINGS + 1
    assert findings[-1].field is None and "jeszcze 9 innych błędów" in findings[-1].message


def test_wrong_root_element(doc):
    dekl = q(doc, "")
    f = only(validate_document(dekl, DO1_2025))
    assert f.field == "/Deklaracja"
    assert "„Dokument”" in f.message


def test_fallback_to_libxml2_wording(doc, monkeypatch):
    class Silent:
        def iter_errors(self, root):
            return iter(())

    monkeypatch.setattr(registry_module, "_xmlschema_schema", lambda resource: Silent())
    q(doc, "Nieruchomosc/Gmina").text = ""
    f = only(validate_document(doc, DO1_2025))
    assert f.field == f"{DEKL}/Nieruchomosc/Gmina"
    assert f.message.startswith("Gmina")


def test_element_path_counts_only_repeated_siblings(doc):
    lokal = q(doc, "CzescZamieszkala/Lokal")
    assert element_path(lokal, doc) == f"{DEKL}/CzescZamieszkala/Lokal"
    lokal.addnext(copy.deepcopy(lokal))
    assert element_path(lokal.getnext(), doc) == f"{DEKL}/CzescZamieszkala/Lokal[2]"
    # relative to a subtree that is validated on its own
    assert element_path(lokal, q(doc, "")) == "/Deklaracja/CzescZamieszkala/Lokal[1]"


STR = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"


def _attached(encoding: str, data: str) -> etree._Element:
    root = etree.fromstring((DATA / "valid-do1-2025-z-zalacznikiem.xml").read_bytes())
    zal = root.find(f".//{{{STR}}}Zalacznik")
    zal.set("kodowanie", encoding)
    zal.find(f"{{{STR}}}DaneZalacznika").text = data
    return root


def test_an_attachment_by_reference_is_valid_and_broken_inline_base64_is_not():
    # the CRD structure allows kodowanie="URI" (a link to ePUAP's file repository) ...
    link = "https://epuap.gov.pl/file-download-servlet/DownloadServlet?fileId=123456"
    assert validate_document(_attached("URI", link), DO1_2025) == []
    assert validate_document(_attached("base64", "AAEC\nAwQF"), DO1_2025) == []
    # ... but an inline attachment whose data is not base64 is still SCHEMA_INVALID, naming it
    f = only(validate_document(_attached("base64", "@@@ to nie base64 @@@"), DO1_2025))
    assert f.field == "/Dokument/TrescDokumentu/Zalaczniki/Zalacznik/DaneZalacznika"
    assert "umowa.pdf" in f.message and "base64" in f.message
    # the same text with an encoding the structure does not know
    f = only(validate_document(_attached("hex", "00ff"), DO1_2025))
    assert f.field.endswith("Zalacznik") or "kodowanie" in f.message
