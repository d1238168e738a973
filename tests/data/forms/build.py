"""Builds the test documents in this folder from ``valid-do1-2025-jednorodzinna.xml``.

Each document is the valid unsigned DO-1 2025 sample changed by a few lxml edits so that
it shows one problem (or, for ``valid-*``, none). ``expected.json`` lists, for each
document and the filing context it is checked in, the outcome and the finding codes the
form stages (parse, identify, validate, map, declaration checks) must produce. The fee
rules and signatures add their own findings on top; the declared amounts here follow the
rates in force, so they add nothing for these documents.

Run from the project root to regenerate: ``python tests/data/forms/build.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
BASE = HERE / "valid-do1-2025-jednorodzinna.xml"

W25 = "http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2025/"
W23 = "http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2023/"
OSO = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/"
INST = "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/"
ADR = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/"
STR = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"

FILED = "2025-02-03T10:00:00+01:00"  # the sample's creation day; applies from 2025-01-20


def load(text: bytes | None = None) -> etree._Element:
    return etree.fromstring(text if text is not None else BASE.read_bytes())


def w(root: etree._Element) -> str:
    return etree.QName(root).namespace


def find(root: etree._Element, path: str) -> etree._Element:
    """``path`` in the form's own steps, e.g. ``Deklaracja/Nieruchomosc/RodzajZabudowy``;
    ``adr:``, ``oso:``, ``inst:`` prefixes for the CRD elements."""
    ns = {"w": w(root), "adr": ADR, "oso": OSO, "inst": INST, "str": STR}
    steps = ["TrescDokumentu"] + path.split("/")
    xpath = "/".join(s if ":" in s else f"w:{s}" for s in steps)
    found = root.find(xpath, ns)
    if found is None:
        raise KeyError(path)
    return found


def el(root: etree._Element, name: str, text: str | None = None, children: list | None = None) -> etree._Element:
    ns = {"adr": ADR, "oso": OSO, "inst": INST, "str": STR}
    prefix, _, local = name.rpartition(":")
    e = etree.Element(f"{{{ns[prefix] if prefix else w(root)}}}{local}")
    e.text = text
    for c in children or []:
        e.append(c)
    return e


def set_text(root: etree._Element, path: str, text: str) -> None:
    find(root, path).text = text


def remove(root: etree._Element, path: str) -> None:
    e = find(root, path)
    e.getparent().remove(e)


def residential(root: etree._Element, flats: list[tuple[str | None, int]], composting: bool,
                lines: list[tuple[str, int, str, str]], discount: str | None, fee: str) -> etree._Element:
    part = el(root, "CzescZamieszkala")
    for number, residents in flats:
        lokal = el(root, "Lokal")
        if number is not None:
            lokal.append(el(root, "NrLokalu", number))
        lokal.append(el(root, "LiczbaMieszkancow", str(residents)))
        part.append(lokal)
    part.append(el(root, "Kompostownik", "true" if composting else "false"))
    wyl = el(root, "Wyliczenie")
    for opis, persons, rate, amount in lines:
        wyl.append(el(root, "Pozycja", children=[
            el(root, "Opis", opis), el(root, "LiczbaOsob", str(persons)),
            el(root, "Stawka", rate), el(root, "Kwota", amount),
        ]))
    if discount is not None:
        wyl.append(el(root, "ZwolnienieKompostownik", discount))
    wyl.append(el(root, "Oplata", fee))
    part.append(wyl)
    return part


def containers(root: etree._Element, lines: list[tuple[int, int, int, str, str]], fee: str) -> etree._Element:
    part = el(root, "CzescNiezamieszkala")
    for capacity, count, emptyings, rate, amount in lines:
        part.append(el(root, "Pojemnik", children=[
            el(root, "Pojemnosc", str(capacity)), el(root, "Liczba", str(count)),
            el(root, "OproznienWRoku", str(emptyings)), el(root, "Stawka", rate), el(root, "Kwota", amount),
        ]))
    part.append(el(root, "Oplata", fee))
    return part


def replace_parts(root: etree._Element, *parts: etree._Element, monthly: str) -> None:
    dekl = find(root, "Deklaracja")
    for name in ("CzescZamieszkala", "CzescNiezamieszkala"):
        old = dekl.find(f"{{{w(root)}}}{name}")
        if old is not None:
            dekl.remove(old)
    anchor = dekl.find(f"{{{w(root)}}}OplataMiesieczna")
    for p in parts:
        anchor.addprevious(p)
    anchor.text = monthly


def five_no_composting(root: etree._Element) -> etree._Element:
    return residential(root, [(None, 5)], False,
                       [("osoby 1-4", 4, "38.00", "152.00"), ("osoba 5", 1, "32.50", "32.50")], None, "184.50")


def as_institution(root: etree._Element, nip: str | None = "1234563218", regon: str | None = "123456785") -> None:
    set_text(root, "Deklaracja/Skladajacy/TytulPrawny", "WSPOLNOTA_MIESZKANIOWA")
    osoba = find(root, "Deklaracja/Skladajacy/oso:Osoba")
    inst = el(root, "inst:Instytucja", children=[el(root, "inst:NazwaInstytucji", "Wspólnota Mieszkaniowa Testowa 7")])
    if nip is not None or regon is not None:
        ids = el(root, "inst:IdInstytucji")
        if nip is not None:
            ids.append(el(root, "inst:NIP", nip))
        if regon is not None:
            ids.append(el(root, "inst:REGON", regon))
        inst.append(ids)
    osoba.addprevious(inst)
    osoba.getparent().remove(osoba)
    set_text(root, "Deklaracja/Nieruchomosc/RodzajZabudowy", "WIELOLOKALOWA")
    replace_parts(root, residential(root, [("1", 3), ("2", 1)], False,
                                    [("osoby 1-4", 4, "38.00", "152.00")], None, "152.00"), monthly="152.00")


def to_2023(root: etree._Element) -> etree._Element:
    """The same document in the DO-1 2023 form (no Kontakt, no consent)."""
    remove(root, "Deklaracja/Skladajacy/adr:Kontakt")
    remove(root, "Deklaracja/ZgodaNaKorespondencjeElektroniczna")
    text = etree.tostring(root, encoding="UTF-8", xml_declaration=True).replace(W25.encode(), W23.encode())
    return load(text)


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


# ---------------------------------------------------------------- the documents

DOCS: dict[str, Callable[[], bytes]] = {}
EXPECTED: list[dict] = []


def doc(name: str, *checks: dict) -> Callable[[Callable[[], bytes | etree._Element]], None]:
    def register(build: Callable[[], bytes | etree._Element]) -> None:
        def produce() -> bytes:
            out = build()
            return out if isinstance(out, bytes) else serialize(out)

        DOCS[name] = produce
        for c in checks:
            EXPECTED.append({"file": name, "channel": "EPUAP", "filed_at": FILED, **c})

    return register


def ok(**kw) -> dict:
    return {"status": "ACCEPTED", "codes": [], **kw}


@doc("valid-do1-2025-bom.xml", ok())
def _():
    return b"\xef\xbb\xbf" + BASE.read_bytes()


@doc("valid-do1-2025-instytucja-wielolokalowa.xml", ok())
def _():
    r = load()
    as_institution(r)
    return r


@doc("valid-do1-2025-z-zalacznikiem.xml", ok())
def _():
    r = load()
    zal = el(r, "str:Zalacznik", children=[
        el(r, "str:DaneZalacznika", base64.encodebytes(bytes(range(256)) * 4 + b"koniec").decode()),
        el(r, "str:OpisZalacznika", "Umowa najmu lokalu"),
    ])
    zal.set("nazwaPliku", "umowa.pdf")
    zal.set("kodowanie", "base64")
    zal.set("format", "application/pdf")
    find(r, "Deklaracja").addnext(el(r, "str:Zalaczniki", children=[zal]))
    return r


@doc("valid-do1-2023-jednorodzinna.xml", ok(filed_at="2024-06-10T12:00:00+02:00"))
def _():
    r = load()
    set_text(r, "Deklaracja/CelZlozenia/ObowiazujeOd", "2024-06-03")
    replace_parts(r, residential(r, [(None, 5)], True,
                                 [("osoby 1-4", 4, "32.00", "128.00"), ("osoba 5", 1, "26.50", "26.50")],
                                 "10.00", "144.50"), monthly="144.50")
    return to_2023(r)


@doc(
    "form-version-expired-do1-2023.xml",
    {"filed_at": "2025-01-15T09:00:00+01:00", "status": "REJECTED", "codes": ["FORM_VERSION_EXPIRED"]},
    {"filed_at": "2025-01-15T09:00:00+01:00", "channel": "PAPER", "status": "NEEDS_REVIEW",
     "codes": ["FORM_VERSION_EXPIRED"], "severities": ["warning"]},
    {"filed_at": "2025-01-30T09:00:00+01:00", "channel": "PAPER", "status": "NEEDS_REVIEW",
     "codes": ["FORM_VERSION_EXPIRED"], "severities": ["warning"]},
    {"filed_at": "2025-01-31T09:00:00+01:00", "channel": "PAPER", "status": "REJECTED",
     "codes": ["FORM_VERSION_EXPIRED"], "severities": ["error"]},
    ok(filed_at="2024-12-31T23:30:00+01:00"),
    {"filed_at": "2024-12-31T23:30:00-01:00", "status": "REJECTED", "codes": ["FORM_VERSION_EXPIRED"]},
)
def _():
    r = load()
    set_text(r, "Deklaracja/CelZlozenia/ObowiazujeOd", "2025-01-10")
    return to_2023(r)


@doc(
    "form-version-expired-do1-2025-przed-terminem.xml",
    {"filed_at": "2024-12-20T09:00:00+01:00", "status": "REJECTED", "codes": ["FORM_VERSION_EXPIRED"]},
)
def _():
    r = load()
    set_text(r, "Deklaracja/CelZlozenia/ObowiazujeOd", "2024-12-16")
    replace_parts(r, residential(r, [(None, 5)], True,
                                 [("osoby 1-4", 4, "32.00", "128.00"), ("osoba 5", 1, "26.50", "26.50")],
                                 "10.00", "144.50"), monthly="144.50")
    return r


@doc("xml-malformed-pusty.xml", {"status": "REJECTED", "codes": ["XML_MALFORMED"], "kind": "UNREADABLE"})
def _():
    return b""


@doc("xml-malformed-niedomkniety.xml", {"status": "REJECTED", "codes": ["XML_MALFORMED"], "kind": "UNREADABLE"})
def _():
    data = BASE.read_bytes()
    return data[: data.index(b"</wnio:Deklaracja>")]


@doc("xml-malformed-doctype-encja.xml", {"status": "REJECTED", "codes": ["XML_MALFORMED"], "kind": "UNREADABLE"})
def _():
    data = BASE.read_bytes()
    head, body = data.split(b"\n", 1)
    body = body.replace(b"<wnio:Gmina>K\xc4\x99dzierzyn-Ko\xc5\xbale</wnio:Gmina>", b"<wnio:Gmina>&gmina;</wnio:Gmina>")
    return head + b'\n<!DOCTYPE wnio:Dokument [ <!ENTITY gmina "K\xc4\x99dzierzyn-Ko\xc5\xbale"> ]>\n' + body


@doc("xml-malformed-kodowanie.xml", {"status": "REJECTED", "codes": ["XML_MALFORMED"], "kind": "UNREADABLE"})
def _():
    # the same document in ISO-8859-2 bytes, without saying so: invalid UTF-8
    text = BASE.read_bytes().decode("utf-8")
    return text.encode("iso-8859-2", errors="replace")


@doc("form-unknown-pismo-ogolne.xml", {"status": "REJECTED", "codes": ["FORM_UNKNOWN"], "kind": "CORRESPONDENCE"})
def _():
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">\n'
        "  <wnio:TrescDokumentu>\n"
        "    <wnio:Tytul>Skarga na nieodebrane odpady</wnio:Tytul>\n"
        "    <wnio:Tresc>Od dwóch tygodni nie odebrano pojemnika na odpady zmieszane.</wnio:Tresc>\n"
        "  </wnio:TrescDokumentu>\n"
        "</wnio:Dokument>\n"
    ).encode()


@doc("form-unknown-bez-przestrzeni-nazw.xml", {"status": "REJECTED", "codes": ["FORM_UNKNOWN"], "kind": "CORRESPONDENCE"})
def _():
    return '<?xml version="1.0" encoding="UTF-8"?>\n<Pismo><Tresc>Proszę o duplikat decyzji.</Tresc></Pismo>\n'.encode()


@doc(
    "schema-invalid-kod-pocztowy.xml",
    {"status": "REJECTED", "codes": ["SCHEMA_INVALID"],
     "fields": ["/Dokument/TrescDokumentu/Deklaracja/Nieruchomosc/Adres/KodPocztowy"]},
)
def _():
    r = load()
    set_text(r, "Deklaracja/Nieruchomosc/adr:Adres/adr:KodPocztowy", "47200")
    return r


@doc(
    "schema-invalid-wiele-bledow.xml",
    {"status": "REJECTED", "codes": ["SCHEMA_INVALID"] * 6,
     "fields": [
         "/Dokument/TrescDokumentu/Deklaracja/CelZlozenia/ObowiazujeOd",
         "/Dokument/TrescDokumentu/Deklaracja/Skladajacy/TytulPrawny",
         "/Dokument/TrescDokumentu/Deklaracja/Skladajacy/AdresZamieszkania/Adres/KodPocztowy",
         "/Dokument/TrescDokumentu/Deklaracja/Nieruchomosc/RodzajNieruchomosci",
         "/Dokument/TrescDokumentu/Deklaracja/CzescZamieszkala/Kompostownik",
         "/Dokument/TrescDokumentu/Deklaracja/Oswiadczenie",
     ]},
)
def _():
    r = load()
    set_text(r, "Deklaracja/CelZlozenia/ObowiazujeOd", "2025-02-30")
    remove(r, "Deklaracja/Skladajacy/TytulPrawny")
    set_text(r, "Deklaracja/Skladajacy/AdresZamieszkania/adr:Adres/adr:KodPocztowy", "47 200")
    set_text(r, "Deklaracja/Nieruchomosc/RodzajNieruchomosci", "DOM")
    set_text(r, "Deklaracja/CzescZamieszkala/Kompostownik", "tak")
    set_text(r, "Deklaracja/Oswiadczenie", "false")
    return r


@doc(
    "schema-invalid-do1-2023-z-elementem-2025.xml",
    {"filed_at": "2024-06-10T12:00:00+02:00", "status": "REJECTED", "codes": ["SCHEMA_INVALID"],
     "fields": ["/Dokument/TrescDokumentu/Deklaracja/ZgodaNaKorespondencjeElektroniczna"]},
)
def _():
    r = load()
    set_text(r, "Deklaracja/CelZlozenia/ObowiazujeOd", "2024-06-03")
    remove(r, "Deklaracja/Skladajacy/adr:Kontakt")
    return load(serialize(r).replace(W25.encode(), W23.encode()))


@doc(
    "schema-invalid-deklaracja-bez-dokumentu.xml",
    {"status": "REJECTED", "codes": ["SCHEMA_INVALID"], "fields": ["/Deklaracja"]},
)
def _():
    r = load()
    dekl = find(r, "Deklaracja")
    return etree.tostring(dekl, encoding="UTF-8", xml_declaration=True)


@doc("pesel-invalid.xml", {"status": "REJECTED", "codes": ["PESEL_INVALID"],
                           "fields": ["Skladajacy/Osoba/IdOsoby/PESEL"]})
def _():
    r = load()
    set_text(r, "Deklaracja/Skladajacy/oso:Osoba/oso:IdOsoby/oso:PESEL", "44051401358")
    return r


@doc("pesel-invalid-data-urodzenia.xml", {"status": "REJECTED", "codes": ["PESEL_INVALID"]})
def _():
    # checksum right, month 13 does not exist
    r = load()
    set_text(r, "Deklaracja/Skladajacy/oso:Osoba/oso:IdOsoby/oso:PESEL", "44131401350")
    return r


@doc("pesel-brak-inny-identyfikator.xml", {"status": "REJECTED", "codes": ["PESEL_INVALID"]})
def _():
    r = load()
    ido = find(r, "Deklaracja/Skladajacy/oso:Osoba/oso:IdOsoby")
    for c in list(ido):
        ido.remove(c)
    ido.append(el(r, "oso:InnyIdentyfikator", children=[
        el(r, "oso:TypIdentyfikatora", "PASZPORT"), el(r, "oso:WartoscIdentyfikatora", "AB1234567")]))
    return r


@doc("pesel-brak.xml", {"status": "REJECTED", "codes": ["PESEL_INVALID"]})
def _():
    r = load()
    remove(r, "Deklaracja/Skladajacy/oso:Osoba/oso:IdOsoby")
    return r


@doc("nip-invalid.xml", {"status": "REJECTED", "codes": ["NIP_INVALID"],
                         "fields": ["Skladajacy/Instytucja/IdInstytucji/NIP"]})
def _():
    r = load()
    as_institution(r, nip="1234563219")
    return r


@doc("nip-brak.xml", {"status": "REJECTED", "codes": ["NIP_INVALID"]})
def _():
    r = load()
    as_institution(r, nip=None, regon=None)
    return r


@doc("regon-invalid.xml", {"status": "REJECTED", "codes": ["REGON_INVALID"],
                           "fields": ["Skladajacy/Instytucja/IdInstytucji/REGON"]})
def _():
    r = load()
    as_institution(r, regon="123456784")
    return r


@doc("part-missing-zamieszkala-z-pojemnikami.xml", {"status": "REJECTED", "codes": ["PART_MISSING"],
                                                     "fields": ["CzescNiezamieszkala"]})
def _():
    r = load()
    replace_parts(r, residential(r, [(None, 5)], True,
                                 [("osoby 1-4", 4, "38.00", "152.00"), ("osoba 5", 1, "32.50", "32.50")],
                                 "10.00", "174.50"),
                  containers(r, [(120, 1, 26, "20.00", "43.33")], "43.33"), monthly="217.83")
    return r


@doc("part-missing-mieszana-bez-pojemnikow.xml", {"status": "REJECTED", "codes": ["PART_MISSING"],
                                                  "fields": ["CzescNiezamieszkala"]})
def _():
    r = load()
    set_text(r, "Deklaracja/Nieruchomosc/RodzajNieruchomosci", "MIESZANA")
    replace_parts(r, five_no_composting(r), monthly="184.50")
    return r


@doc("part-missing-niezamieszkala-z-mieszkancami.xml",
     {"status": "REJECTED", "codes": ["PART_MISSING", "PART_MISSING"],
      "fields": ["CzescNiezamieszkala", "CzescZamieszkala"]})
def _():
    r = load()
    set_text(r, "Deklaracja/Nieruchomosc/RodzajNieruchomosci", "NIEZAMIESZKALA")
    remove(r, "Deklaracja/Nieruchomosc/RodzajZabudowy")
    replace_parts(r, five_no_composting(r), monthly="184.50")
    return r


@doc("part-missing-rodzaj-zabudowy.xml", {"status": "REJECTED", "codes": ["PART_MISSING"],
                                          "fields": ["Nieruchomosc/RodzajZabudowy"]})
def _():
    r = load()
    remove(r, "Deklaracja/Nieruchomosc/RodzajZabudowy")
    replace_parts(r, five_no_composting(r), monthly="184.50")
    return r


@doc("no-residents.xml", {"status": "REJECTED", "codes": ["NO_RESIDENTS"]})
def _():
    r = load()
    replace_parts(r, residential(r, [(None, 0)], False, [("osoby 1-4", 0, "38.00", "0.00")], None, "0.00"),
                  monthly="0.00")
    return r


@doc("no-residents-wielolokalowa-jeden-pusty-lokal.xml", ok())
def _():
    # a single flat may have nobody: flats 2 and 0 are fine
    r = load()
    set_text(r, "Deklaracja/Nieruchomosc/RodzajZabudowy", "WIELOLOKALOWA")
    replace_parts(r, residential(r, [("1", 2), ("2", 0)], False, [("osoby 1-4", 2, "38.00", "76.00")], None, "76.00"),
                  monthly="76.00")
    return r


@doc("composting-wielolokalowa.xml", {"status": "REJECTED", "codes": ["COMPOSTING_NOT_ALLOWED"],
                                      "fields": ["CzescZamieszkala/Kompostownik"]})
def _():
    r = load()
    set_text(r, "Deklaracja/Nieruchomosc/RodzajZabudowy", "WIELOLOKALOWA")
    replace_parts(r, residential(r, [("1", 2), ("2", 1)], True, [("osoby 1-4", 3, "38.00", "114.00")], "6.00",
                                 "108.00"), monthly="108.00")
    return r


@doc("composting-mieszana.xml", {"status": "REJECTED", "codes": ["COMPOSTING_NOT_ALLOWED"]})
def _():
    r = load()
    set_text(r, "Deklaracja/Nieruchomosc/RodzajNieruchomosci", "MIESZANA")
    replace_parts(r, residential(r, [(None, 3)], True, [("osoby 1-4", 3, "38.00", "114.00")], "6.00", "108.00"),
                  containers(r, [(120, 1, 26, "20.00", "43.33")], "43.33"), monthly="151.33")
    return r


@doc("wiele-bledow.xml", {"status": "REJECTED",
                          "codes": ["PESEL_INVALID", "COMPOSTING_NOT_ALLOWED", "NO_RESIDENTS"]})
def _():
    r = load()
    set_text(r, "Deklaracja/Skladajacy/oso:Osoba/oso:IdOsoby/oso:PESEL", "44051401350")
    set_text(r, "Deklaracja/Nieruchomosc/RodzajZabudowy", "WIELOLOKALOWA")
    replace_parts(r, residential(r, [("1", 0), ("2", 0)], True, [("osoby 1-4", 0, "38.00", "0.00")], None, "0.00"),
                  monthly="0.00")
    return r


def main() -> None:
    EXPECTED.insert(0, {"file": BASE.name, "channel": "EPUAP", "filed_at": FILED, **ok()})
    for name, produce in DOCS.items():
        (HERE / name).write_bytes(produce())
    (HERE / "expected.json").write_text(json.dumps(EXPECTED, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(DOCS)} documents, {len(EXPECTED)} expectations")


if __name__ == "__main__":
    main()
