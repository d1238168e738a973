"""DO-1 mapper: the union's samples map to the declaration model with the values they show."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from worker.domain import model as m
from worker.forms.do1 import MappingError, base64_decoded_size, map_do1
from worker.forms.registry import DO1_2023, DO1_2025

DATA = Path(__file__).parent / "data" / "forms"


def mapped(path: Path, spec=DO1_2025) -> m.Declaration:
    return spec.map(etree.parse(str(path)).getroot())


def test_unsigned_sample(shared_dir):
    d = mapped(shared_dir / "spec" / "samples" / "do1-2025-pierwsza-jednorodzinna.unsigned.xml")
    assert d.form == "DO-1/2025" and d.form_code == "DO-1" and d.form_version == "2025"
    assert d.purpose == m.FIRST
    assert d.applies_from == date(2025, 1, 20)
    assert d.monthly_fee == Decimal("174.50")
    p = d.declarant
    assert (p.kind, p.pesel, p.first_name, p.last_name, p.legal_title) == (
        m.PERSON, "44051401359", "Jan", "Testowy", "WLASCICIEL",
    )
    assert p.address == m.Address(postal_code="47-200", town="Kędzierzyn-Koźle", building="12", street="Piastowska")
    assert p.emails == ("jan.testowy@example.org",) and p.phones == ()
    assert d.property.gmina == "Kędzierzyn-Koźle"
    assert d.property.address == p.address
    assert (d.property.kind, d.property.building_type) == (m.RESIDENTIAL, m.SINGLE_FAMILY)
    res = d.residential
    assert res.dwellings == (m.Dwelling(residents=5, number=None),)
    assert d.residents == 5 and d.composting is True
    assert res.lines == (
        m.CalculationLine("osoby 1-4", 4, Decimal("38.00"), Decimal("152.00")),
        m.CalculationLine("osoba 5", 1, Decimal("32.50"), Decimal("32.50")),
    )
    assert res.composting_discount == Decimal("10.00") and res.fee == Decimal("174.50")
    assert d.non_residential is None
    assert d.e_correspondence is True and d.statement is True
    assert d.change_reason is None and d.justification is None and d.attachments == ()
    assert d.filed_at is None and d.channel is None  # set by the pipeline


# what the README of samples/signed shows beyond expected.json: residents per dwelling,
# composting, container lines (capacity, count, emptyings per year)
SHOWN = {
    "do1-2025-pz-nowy-jednorodzinna.xml": ((4,), True, ()),
    "do1-2025-pz-stary-jednorodzinna.xml": ((2,), False, ()),
    "do1-2025-kwalifikowany-jednorodzinna.xml": ((6,), False, ()),
    "do1-2025-pz-nowy-wielolokalowa.xml": ((5, 2, 0), False, ()),
    "do1-2025-kwalifikowany-niezamieszkala.xml": (None, False, ((240, 2, 52), (1100, 1, 26))),
    "do1-2025-pz-stary-mieszana.xml": ((3,), False, ((120, 1, 26),)),
}
KINDS = {
    "do1-2025-kwalifikowany-niezamieszkala.xml": m.NON_RESIDENTIAL,
    "do1-2025-pz-stary-mieszana.xml": m.MIXED,
}


def _expected(shared_dir):
    return json.loads((shared_dir / "spec" / "samples" / "signed" / "expected.json").read_text(encoding="utf-8"))


def test_every_signed_sample_is_covered(shared_dir):
    assert sorted(e["file"] for e in _expected(shared_dir)) == sorted(SHOWN)


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_signed_samples(shared_dir, name):
    exp = next(e for e in _expected(shared_dir) if e["file"] == name)
    d = mapped(shared_dir / "spec" / "samples" / "signed" / name)
    assert d.form == exp["form"]
    assert d.purpose == exp["purpose"]
    assert d.applies_from == date.fromisoformat(exp["applies_from"])
    assert d.monthly_fee == Decimal(exp["declared_fee"])
    assert d.declarant.kind == m.PERSON
    assert d.declarant.pesel == exp["pesel_or_nip"] == exp["signer_pesel"]
    prop = exp["property"]
    assert d.property.gmina == prop["gmina"]
    assert (d.property.address.town, d.property.address.street, d.property.address.building,
            d.property.address.flat) == (prop["town"], prop["street"], prop["building"], prop["flat"])
    assert d.property.kind == KINDS.get(name, m.RESIDENTIAL)
    residents, composting, containers = SHOWN[name]
    if residents is None:
        assert d.residential is None and d.residents == 0
    else:
        assert tuple(x.residents for x in d.residential.dwellings) == residents
        assert d.residents == sum(residents)
    assert d.composting is composting
    got = tuple((c.capacity_l, c.count, c.emptyings_per_year) for c in d.non_residential.containers) if containers else ()
    assert got == containers
    # the declared parts add up to the declared total, as on the forms
    parts = (d.residential.fee if d.residential else 0) + (d.non_residential.fee if d.non_residential else 0)
    assert parts == d.monthly_fee


def test_multi_flat_numbers_and_signer_data_not_read(shared_dir):
    d = mapped(shared_dir / "spec" / "samples" / "signed" / "do1-2025-pz-nowy-wielolokalowa.xml")
    assert [x.number for x in d.residential.dwellings] == ["1", "2", "3"]
    assert d.property.building_type == m.MULTI_FLAT
    assert d.declarant.address.flat == "12"


def test_do1_2023_lacks_the_2025_fields():
    d = mapped(DATA / "valid-do1-2023-jednorodzinna.xml", DO1_2023)
    assert d.form == "DO-1/2023"
    assert d.change_reason is None and d.e_correspondence is None
    assert d.declarant.emails == () and d.declarant.phones == ()
    assert d.residential.lines[0].rate == Decimal("32.00")
    assert d.monthly_fee == Decimal("144.50")


def test_change_reason_justification_and_contacts():
    root = etree.parse(str(DATA / "valid-do1-2025-jednorodzinna.xml")).getroot()
    w = DO1_2025.namespace
    cel = root.find(f"{{{w}}}TrescDokumentu/{{{w}}}Deklaracja/{{{w}}}CelZlozenia")
    cel.find(f"{{{w}}}Rodzaj").text = "KOREKTA"
    cel.find(f"{{{w}}}ObowiazujeOd").text = "2025-01-20+01:00"
    etree.SubElement(cel, f"{{{w}}}PrzyczynaZmiany").text = "INNA"
    etree.SubElement(cel, f"{{{w}}}Uzasadnienie").text = "  Błędnie podana liczba osób.  "
    osoba = root.find(".//{http://crd.gov.pl/xml/schematy/osoba/2009/11/16/}Osoba")
    kontakt = etree.SubElement(osoba, "{http://crd.gov.pl/xml/schematy/adres/2009/11/09/}Kontakt")
    etree.SubElement(kontakt, "{http://crd.gov.pl/xml/schematy/adres/2009/11/09/}Telefon").text = "77 000 00 00"
    etree.SubElement(kontakt, "{http://crd.gov.pl/xml/schematy/adres/2009/11/09/}Email").text = "jan.testowy@example.org"
    assert DO1_2025.lxml_schema().validate(root), DO1_2025.lxml_schema().error_log
    d = DO1_2025.map(root)
    assert d.purpose == m.CORRECTION
    assert d.applies_from == date(2025, 1, 20)
    assert d.change_reason == "INNA" and d.justification == "Błędnie podana liczba osób."
    assert d.declarant.emails == ("jan.testowy@example.org",)  # the same address once
    assert d.declarant.phones == ("77 000 00 00",)


def test_institution():
    d = mapped(DATA / "valid-do1-2025-instytucja-wielolokalowa.xml")
    p = d.declarant
    assert (p.kind, p.institution_name, p.nip, p.regon, p.pesel) == (
        m.INSTITUTION, "Wspólnota Mieszkaniowa Testowa 7", "1234563218", "123456785", None,
    )
    assert p.name == "Wspólnota Mieszkaniowa Testowa 7" and p.legal_title == "WSPOLNOTA_MIESZKANIOWA"
    assert [(x.number, x.residents) for x in d.residential.dwellings] == [("1", 3), ("2", 1)]


def test_other_identifier():
    d = mapped(DATA / "pesel-brak-inny-identyfikator.xml")
    assert d.declarant.pesel is None and d.declarant.other_id == "PASZPORT:AB1234567"


def test_attachment_size_without_decoding():
    d = mapped(DATA / "valid-do1-2025-z-zalacznikiem.xml")
    (a,) = d.attachments
    assert (a.filename, a.format, a.description) == ("umowa.pdf", "application/pdf", "Umowa najmu lokalu")
    assert a.size == 256 * 4 + len(b"koniec")


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"\x00" * 1000, bytes(range(256)) * 3])
def test_base64_size(data):
    import base64

    assert base64_decoded_size(base64.encodebytes(data).decode()) == len(data)
    assert base64_decoded_size(base64.b64encode(data).decode()) == len(data)


def test_wrong_root_is_a_mapping_error():
    with pytest.raises(MappingError):
        map_do1(etree.fromstring(b"<Pismo/>"), DO1_2025)
