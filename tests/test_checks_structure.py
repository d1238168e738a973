"""Declaration checks on the model: parts, residents, composting, identifiers, postal codes, form version."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from worker.domain import model as m
from worker.domain.checks import (
    check_composting,
    check_declaration,
    check_form_version,
    check_identifiers,
    check_parts,
    check_residents,
    filing_day,
)
from worker.domain.findings import outcome_of
from worker.forms.registry import DO1_2025

DATA = Path(__file__).parent / "data" / "forms"


@pytest.fixture(scope="module")
def house() -> m.Declaration:
    """Single-family house, 5 residents, composting (the union's sample)."""
    return DO1_2025.map(etree.parse(str(DATA / "valid-do1-2025-jednorodzinna.xml")).getroot())


@pytest.fixture(scope="module")
def institution() -> m.Declaration:
    return DO1_2025.map(etree.parse(str(DATA / "valid-do1-2025-instytucja-wielolokalowa.xml")).getroot())


CONTAINERS = m.NonResidentialPart(
    containers=(m.ContainerLine(120, 1, 26, Decimal("20.00"), Decimal("43.33")),), fee=Decimal("43.33")
)


def prop(d: m.Declaration, **kw) -> m.Declaration:
    return replace(d, property=replace(d.property, **kw))


def codes(findings) -> list[str]:
    return sorted(f.code for f in findings)


def test_valid_declarations_have_no_findings(house, institution):
    assert check_declaration(house, on=date(2025, 2, 3)) == []
    assert check_declaration(institution, on=date(2025, 2, 3)) == []


def test_parts_by_kind(house):
    res, non = house.residential, CONTAINERS
    cases = [
        (m.RESIDENTIAL, res, None, []),
        (m.RESIDENTIAL, None, None, ["CzescZamieszkala"]),
        (m.RESIDENTIAL, res, non, ["CzescNiezamieszkala"]),
        (m.NON_RESIDENTIAL, None, non, []),
        (m.NON_RESIDENTIAL, res, non, ["CzescZamieszkala"]),
        (m.NON_RESIDENTIAL, None, None, ["CzescNiezamieszkala"]),
        (m.MIXED, res, non, []),
        (m.MIXED, None, non, ["CzescZamieszkala"]),
        (m.MIXED, res, None, ["CzescNiezamieszkala"]),
        (m.MIXED, None, None, ["CzescNiezamieszkala", "CzescZamieszkala"]),
    ]
    for kind, r, n, fields in cases:
        d = replace(prop(house, kind=kind), residential=r, non_residential=n)
        found = check_parts(d)
        assert sorted(f.field for f in found) == fields, (kind, r is not None, n is not None)
        assert all(f.code == "PART_MISSING" and f.severity == "error" for f in found)


def test_building_type_required_for_residential_and_mixed(house):
    for kind in (m.RESIDENTIAL, m.MIXED):
        d = replace(prop(house, kind=kind, building_type=None), non_residential=CONTAINERS if kind == m.MIXED else None)
        found = check_parts(d)
        assert [(f.code, f.field) for f in found] == [("PART_MISSING", "Nieruchomosc/RodzajZabudowy")]
        assert "rodzaju zabudowy" in found[0].message
    d = replace(prop(house, kind=m.NON_RESIDENTIAL, building_type=m.SINGLE_FAMILY), residential=None,
                non_residential=CONTAINERS)
    assert check_parts(d) == []


def test_unknown_property_kind(house):
    assert [f.field for f in check_parts(prop(house, kind="GARAZ"))] == ["Nieruchomosc/RodzajNieruchomosci"]


def test_no_residents(house):
    empty = replace(house.residential, dwellings=(m.Dwelling(0),), composting=False)
    d = replace(house, residential=empty)
    assert [(f.code, f.field) for f in check_residents(d)] == [
        ("NO_RESIDENTS", "CzescZamieszkala/Lokal/LiczbaMieszkancow")
    ]
    # no dwelling at all (paper) is no resident either
    assert codes(check_residents(replace(house, residential=replace(empty, dwellings=())))) == ["NO_RESIDENTS"]
    # one empty flat among others is fine
    flats = replace(empty, dwellings=(m.Dwelling(0, "1"), m.Dwelling(1, "2")))
    assert check_residents(replace(prop(house, building_type=m.MULTI_FLAT), residential=flats)) == []
    # a forbidden residential part is PART_MISSING, not also NO_RESIDENTS
    d = replace(prop(house, kind=m.NON_RESIDENTIAL), residential=empty, non_residential=CONTAINERS)
    assert check_residents(d) == [] and codes(check_parts(d)) == ["PART_MISSING"]


def test_composting_only_for_single_family_residential(house):
    assert check_composting(house) == []
    multi = prop(house, building_type=m.MULTI_FLAT)
    mixed = replace(prop(house, kind=m.MIXED), non_residential=CONTAINERS)
    for d, words in ((multi, "budynku wielolokalowego"), (mixed, "nieruchomości mieszanej")):
        found = check_composting(d)
        assert [(f.code, f.field) for f in found] == [("COMPOSTING_NOT_ALLOWED", "CzescZamieszkala/Kompostownik")]
        assert words in found[0].message
    non = replace(prop(house, kind=m.NON_RESIDENTIAL, building_type=None), non_residential=CONTAINERS)
    assert codes(check_composting(non)) == ["COMPOSTING_NOT_ALLOWED"]
    # a discount claimed without ticking the box is composting declared too
    claimed = replace(multi, residential=replace(multi.residential, composting=False))
    assert [f.field for f in check_composting(claimed)] == ["CzescZamieszkala/Wyliczenie/ZwolnienieKompostownik"]
    # no composting, no discount: nothing to say
    plain = replace(claimed, residential=replace(claimed.residential, composting_discount=None))
    assert check_composting(plain) == []
    zero = replace(claimed, residential=replace(claimed.residential, composting_discount=Decimal("0.00")))
    assert check_composting(zero) == []
    # residential without a building type: PART_MISSING says it, composting is not judged
    assert check_composting(prop(house, building_type=None)) == []


def test_person_identifiers(house):
    d = replace(house, declarant=replace(house.declarant, pesel="44051401358"))
    assert [(f.code, f.field) for f in check_identifiers(d)] == [("PESEL_INVALID", "Skladajacy/Osoba/IdOsoby/PESEL")]
    assert codes(check_identifiers(replace(house, declarant=replace(house.declarant, pesel=None)))) == ["PESEL_INVALID"]
    other = replace(house.declarant, pesel=None, other_id="PASZPORT:AB1")
    found = check_identifiers(replace(house, declarant=other))
    assert codes(found) == ["PESEL_INVALID"] and "inny identyfikator" in found[0].message
    # born after the filing day: not a real PESEL for this declaration
    assert codes(check_identifiers(house, on=date(1944, 5, 1))) == ["PESEL_INVALID"]
    assert check_identifiers(house, on=date(1944, 5, 14)) == []
    # any other identifier present is checked too
    d = replace(house, declarant=replace(house.declarant, nip="1234563219", regon="123456784"))
    assert codes(check_identifiers(d)) == ["NIP_INVALID", "REGON_INVALID"]


def test_institution_identifiers(institution):
    d = institution
    assert codes(check_identifiers(replace(d, declarant=replace(d.declarant, nip=None)))) == ["NIP_INVALID"]
    assert codes(check_identifiers(replace(d, declarant=replace(d.declarant, nip="7492045955")))) == ["NIP_INVALID"]
    assert check_identifiers(replace(d, declarant=replace(d.declarant, regon=None))) == []
    assert codes(check_identifiers(replace(d, declarant=replace(d.declarant, regon="12345678512346")))) == [
        "REGON_INVALID"
    ]
    assert check_identifiers(replace(d, declarant=replace(d.declarant, regon="12345678512347"))) == []
    found = check_identifiers(replace(d, declarant=replace(d.declarant, pesel="44051401358")))
    assert [(f.code, f.field) for f in found] == [("PESEL_INVALID", "Skladajacy/Instytucja/PESEL")]


def test_postal_codes(house):
    d = replace(
        house,
        declarant=replace(house.declarant, address=replace(house.declarant.address, postal_code="47200")),
        property=replace(house.property, address=replace(house.property.address, postal_code="")),
    )
    found = check_identifiers(d)
    assert [(f.code, f.field) for f in found] == [
        ("POSTAL_CODE_INVALID", "Skladajacy/AdresZamieszkania/Adres/KodPocztowy"),
        ("POSTAL_CODE_INVALID", "Nieruchomosc/Adres/KodPocztowy"),
    ]
    assert outcome_of(found) == "REJECTED"


def test_everything_is_collected(house):
    d = replace(
        prop(house, building_type=m.MULTI_FLAT),
        declarant=replace(house.declarant, pesel="00000000000"),
        residential=replace(house.residential, dwellings=(m.Dwelling(0, "1"),)),
        non_residential=CONTAINERS,
    )
    assert codes(check_declaration(d)) == ["COMPOSTING_NOT_ALLOWED", "NO_RESIDENTS", "PART_MISSING", "PESEL_INVALID"]


WINDOW_2023 = dict(filed_from=date(2023, 1, 1), filed_until=date(2024, 12, 31))


@pytest.mark.parametrize(
    "filed_on, channel, expected",
    [
        (date(2023, 1, 1), "EPUAP", []),
        (date(2024, 12, 31), "EPUAP", []),
        (date(2025, 1, 1), "EPUAP", ["error"]),
        (date(2022, 12, 31), "EPUAP", ["error"]),
        (date(2024, 12, 31), "PAPER", []),
        (date(2025, 1, 1), "PAPER", ["warning"]),
        (date(2025, 1, 30), "PAPER", ["warning"]),
        (date(2025, 1, 31), "PAPER", ["error"]),
        (date(2022, 12, 31), "PAPER", ["error"]),
        (date(2025, 1, 2), None, ["error"]),
    ],
)
def test_form_version_window(filed_on, channel, expected):
    found = check_form_version("DO-1/2023", filed_on, channel, **WINDOW_2023)
    assert [f.severity for f in found] == expected
    assert all(f.code == "FORM_VERSION_EXPIRED" and f.field is None for f in found)
    if found:
        assert "DO-1 w wersji 2023" in found[0].message and filed_on.isoformat() in found[0].message


def test_open_ended_version():
    assert check_form_version("DO-1/2025", date(2040, 1, 1), "EPUAP", filed_from=date(2025, 1, 1), filed_until=None) == []


def test_filing_day_in_polish_time():
    assert filing_day(datetime(2024, 12, 31, 23, 0, tzinfo=UTC)) == date(2025, 1, 1)  # 00:00 CET
    assert filing_day(datetime(2024, 12, 31, 22, 59, tzinfo=UTC)) == date(2024, 12, 31)
    assert filing_day(datetime(2025, 6, 30, 22, 0, tzinfo=UTC)) == date(2025, 7, 1)  # CEST
    assert filing_day(datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=5)))) == date(2024, 12, 31)
    assert filing_day(datetime(2025, 1, 1, 0, 30)) == date(2025, 1, 1)
