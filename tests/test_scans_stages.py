"""Paper declarations through the real PAPER stages: the sample scan export and variants
of it (fields changed, confidence, signature, form version, unreadable values)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from worker.domain import model as m
from worker.forms.safe_xml import parse_untrusted
from worker.pipeline import CORRESPONDENCE, ProcessingSettings
from worker.processing import analyse
from worker.scans.export import SCAN_NS, is_scan_export, read_export, validate_export
from worker.scans.mapper import ScanMappingError, map_scan

DATA = Path(__file__).parent / "data" / "scans"
SAMPLE = DATA / "skan-2025-02-03-0001-0007.xml"
NS = {"s": SCAN_NS}


def q(name: str) -> str:
    return f"{{{SCAN_NS}}}{name}"


def variant(
    *,
    fields: dict[str, str | tuple[str, str] | tuple[str, str, bool] | None] | None = None,
    received: str | None = None,
    form: tuple[str, str] | None = None,
    signature: str | None = None,
) -> bytes:
    """The sample with fields set (``name: value`` or ``(value, pewnosc[, verified])``) or
    removed (``None``), and header values replaced."""
    root = etree.fromstring(SAMPLE.read_bytes())
    pola = root.find(q("Pola"))
    for name, spec in (fields or {}).items():
        existing = pola.find(f"s:Pole[@nazwa='{name}']", NS)
        if spec is None:
            if existing is not None:
                pola.remove(existing)
            continue
        if isinstance(spec, str):
            spec = (spec, existing.get("pewnosc") if existing is not None else "0.99")
        if existing is None:
            existing = etree.SubElement(pola, q("Pole"), nazwa=name)
        existing.text = spec[0]
        existing.set("pewnosc", spec[1])
        if len(spec) > 2:
            existing.set("zweryfikowane", "true" if spec[2] else "false")
    if received is not None:
        root.find(q("DataWplywu")).text = received
    if form is not None:
        root.find(q("Formularz")).set("kod", form[0])
        root.find(q("Formularz")).set("wersja", form[1])
    if signature is not None:
        root.find(q("PodpisWlasnoreczny")).text = signature
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def run(raw: bytes, *, min_confidence: str = "0.90", filed_at: datetime | None = None):
    return analyse(raw, channel=m.PAPER, filed_at=filed_at, settings=ProcessingSettings(min_confidence=Decimal(min_confidence)))


def codes(ctx) -> list[tuple[str, str | None]]:
    return [(f.code, f.field) for f in ctx.findings]


# --- the sample ------------------------------------------------------------------------


def test_sample_export_is_valid_and_its_header_is_read():
    root = parse_untrusted(SAMPLE.read_bytes(), max_bytes=1 << 20)
    assert is_scan_export(root) and validate_export(root) == []
    export = read_export(root)
    h = export.header
    assert (h.scan_id, h.batch, h.operator, h.form) == ("2025-02-03-0001-0007", "2025-02-03-0001", "akowalska", "DO-1/2025")
    assert h.received_on == date(2025, 1, 31) and h.handwritten_signature is True
    assert (h.image_file, h.image_pages) == ("skan-2025-02-03-0001-0007.pdf", 1)
    assert h.image_sha256 == "4cbd93c94e49c407e84d5b489c327508a4f2deb0314772ba08d3f750810f341f"
    assert h.filed_at == datetime(2025, 1, 31, tzinfo=ZoneInfo("Europe/Warsaw"))
    assert h.filed_at.astimezone(UTC) == datetime(2025, 1, 30, 23, 0, tzinfo=UTC)
    by_name = {f.name: f for f in export.fields}
    assert len(by_name) == 26
    assert by_name["skladajacy.pesel"].confidence == Decimal("0.83") and not by_name["skladajacy.pesel"].verified
    assert by_name["skladajacy.nazwisko"].verified and by_name["skladajacy.nazwisko"].value == "Przykładowa"


def test_sample_maps_to_the_declaration_model():
    export = read_export(parse_untrusted(SAMPLE.read_bytes(), max_bytes=1 << 20))
    d = map_scan(export.fields, export.header.form)
    assert (d.form, d.purpose, d.applies_from, d.change_reason) == ("DO-1/2025", m.CHANGE, date(2025, 1, 1), "ZMIANA_STAWKI")
    p = d.declarant
    assert (p.kind, p.legal_title, p.pesel, p.first_name, p.last_name) == (m.PERSON, "WSPOLWLASCICIEL", "02211307589", "Anna", "Przykładowa")
    assert p.address == m.Address(postal_code="47-330", town="Zdzieszowice", building="7", street="Leśna")
    assert d.property == m.Property(
        gmina="Zdzieszowice", address=m.Address(postal_code="47-330", town="Zdzieszowice", building="7", street="Leśna"),
        kind=m.RESIDENTIAL, building_type=m.SINGLE_FAMILY,
    )
    assert d.residential == m.ResidentialPart(
        dwellings=(m.Dwelling(residents=3),), composting=False,
        lines=(m.CalculationLine("osoby 1-4", 3, Decimal("38.00"), Decimal("114.00")),), fee=Decimal("114.00"),
    )
    assert d.non_residential is None and d.monthly_fee == Decimal("114.00") and d.e_correspondence is None
    assert d.statement is True and d.attachments == ()


def test_sample_goes_to_review_for_the_pesel_read_with_low_confidence():
    ctx = run(SAMPLE.read_bytes())
    assert ctx.outcome == "NEEDS_REVIEW"
    assert codes(ctx) == [("LOW_CONFIDENCE", "skladajacy.pesel")]
    msg = ctx.findings[0].message
    assert "0,83" in msg and "0,90" in msg and "02211307589" not in msg
    assert ctx.computed_fee == Decimal("114.00") and ctx.gmina == "Zdzieszowice"
    assert (ctx.signature.kind, ctx.signature.status, ctx.signature.signer_name) == ("HANDWRITTEN", "NOT_APPLICABLE", None)
    assert ctx.declaration.channel == m.PAPER
    assert ctx.declaration.filed_at == datetime(2025, 1, 31, tzinfo=ZoneInfo("Europe/Warsaw"))


# --- LOW_CONFIDENCE ----------------------------------------------------------------------


def test_low_confidence_field_verified_by_the_operator_is_certain():
    ctx = run(variant(fields={"skladajacy.pesel": ("02211307589", "0.40", True)}))
    assert ctx.findings == [] and ctx.outcome == "ACCEPTED"


def test_low_confidence_one_finding_per_needed_field_and_none_for_contact_data():
    raw = variant(fields={
        "oplata_miesieczna": ("114.00", "0.50"),
        "nieruchomosc.gmina": ("Zdzieszowice", "0.899"),
        "skladajacy.email": ("anna@example.pl", "0.10"),
        "skladajacy.telefon": ("600100200", "0.10"),
        "cel.uzasadnienie": ("zmiana stawki", "0.10"),
    })
    ctx = run(raw)
    low = sorted(f.field for f in ctx.findings if f.code == "LOW_CONFIDENCE")
    assert low == ["nieruchomosc.gmina", "oplata_miesieczna", "skladajacy.pesel"]
    assert ctx.outcome == "NEEDS_REVIEW"
    assert ctx.declaration.declarant.emails == ("anna@example.pl",) and ctx.declaration.declarant.phones == ("600100200",)


def test_the_threshold_comes_from_the_settings_and_equal_is_enough():
    assert run(SAMPLE.read_bytes(), min_confidence="0.83").findings == []
    strict = run(SAMPLE.read_bytes(), min_confidence="0.95")
    low = {f.field for f in strict.findings if f.code == "LOW_CONFIDENCE"}
    assert "skladajacy.pesel" in low and "oplata_miesieczna" not in low  # 0.95 is not below 0.95
    assert "wyliczenie.1.kwota" in low and "skladajacy.nazwisko" not in low  # 0.92; verified


# --- NO_HANDWRITTEN_SIGNATURE ------------------------------------------------------------


def test_no_handwritten_signature_rejects_and_records_none():
    ctx = run(variant(signature="false", fields={"skladajacy.pesel": ("02211307589", "0.99")}))
    assert codes(ctx) == [("NO_HANDWRITTEN_SIGNATURE", "PodpisWlasnoreczny")]
    assert ctx.outcome == "REJECTED"
    assert (ctx.signature.kind, ctx.signature.status) == ("NONE", "NOT_APPLICABLE")
    assert ctx.declaration is not None and ctx.computed_fee == Decimal("114.00")  # still read and checked


# --- FORM_VERSION_EXPIRED on paper -------------------------------------------------------

OLD_FORM = {"cel.przyczyna": None, "skladajacy.pesel": ("02211307589", "0.99")}


@pytest.mark.parametrize(
    "received, severity, outcome",
    [
        ("2024-12-31", None, "ACCEPTED"),  # the last day of DO-1/2023
        ("2025-01-30", "warning", "NEEDS_REVIEW"),  # 30 days after: the office decides
        ("2025-01-31", "error", "REJECTED"),  # 31 days after
        ("2025-03-01", "error", "REJECTED"),
    ],
)
def test_old_paper_form_within_and_after_the_30_days(received, severity, outcome):
    ctx = run(variant(fields=OLD_FORM, form=("DO-1", "2023"), received=received))
    expired = [f for f in ctx.findings if f.code == "FORM_VERSION_EXPIRED"]
    assert [f.severity for f in expired] == ([severity] if severity else [])
    assert ctx.outcome == outcome
    assert ctx.declaration.form == "DO-1/2023" and ctx.form.form == "DO-1/2023"


def test_reason_of_change_on_a_2023_paper_form_is_not_a_box_of_that_form():
    ctx = run(variant(form=("DO-1", "2023"), received="2024-12-20", fields={"skladajacy.pesel": ("02211307589", "0.99")}))
    assert codes(ctx) == [("SCHEMA_INVALID", "cel.przyczyna")] and ctx.outcome == "REJECTED"


def test_unknown_version_of_a_known_form_is_read_and_expired():
    ctx = run(variant(form=("DO-1", "2019"), fields={"skladajacy.pesel": ("02211307589", "0.99")}))
    assert codes(ctx) == [("FORM_VERSION_EXPIRED", None)] and ctx.outcome == "REJECTED"
    assert ctx.declaration.form == "DO-1/2019"


def test_a_form_that_is_no_declaration_is_correspondence():
    ctx = run(variant(form=("PISMO", "1")))
    assert codes(ctx) == [("FORM_UNKNOWN", "Formularz")]
    assert ctx.kind == CORRESPONDENCE and ctx.outcome == "REJECTED" and ctx.declaration is None


# --- unreadable values -------------------------------------------------------------------


def test_every_unreadable_value_is_a_finding_naming_the_field():
    raw = variant(fields={
        "oplata_miesieczna": "114,00",
        "cel.obowiazuje_od": "2025-02-30",
        "nieruchomosc.rodzaj": "ZAMIESZKALY",
        "kompostownik": "tak",
        "skladajacy.tytul_prawny": "WLASCICIELKA",
        "wyliczenie.1.liczba_osob": "-3",
        "nieruchomosc.adres.budynek": None,
    })
    ctx = run(raw)
    invalid = sorted(f.field for f in ctx.findings if f.code == "SCHEMA_INVALID")
    assert invalid == sorted([
        "oplata_miesieczna", "cel.obowiazuje_od", "nieruchomosc.rodzaj", "kompostownik",
        "skladajacy.tytul_prawny", "wyliczenie.1.liczba_osob", "nieruchomosc.adres.budynek",
    ])
    assert ("LOW_CONFIDENCE", "skladajacy.pesel") in codes(ctx)  # reported all the same
    assert ctx.outcome == "REJECTED" and ctx.declaration is None and ctx.halted
    by_field = {f.field: f.message for f in ctx.findings}
    assert "„114,00”" in by_field["oplata_miesieczna"] and "ZAMIESZKALA" in by_field["nieruchomosc.rodzaj"]


def test_a_value_read_with_low_confidence_that_cannot_be_read_goes_to_review():
    """The station could not read it for sure: the office reads the paper. Only a confident
    (or operator-verified) unreadable value rejects."""
    doubtful = run(variant(fields={"cel.obowiazuje_od": ("2025-02-30", "0.41")}))
    assert ("LOW_CONFIDENCE", "cel.obowiazuje_od") in codes(doubtful)
    assert "SCHEMA_INVALID" not in {f.code for f in doubtful.findings}
    assert doubtful.outcome == "NEEDS_REVIEW" and doubtful.declaration is None and doubtful.halted
    confident = run(variant(fields={"cel.obowiazuje_od": ("2025-02-30", "0.95")}))
    assert ("SCHEMA_INVALID", "cel.obowiazuje_od") in codes(confident) and confident.outcome == "REJECTED"
    verified = run(variant(fields={"cel.obowiazuje_od": ("2025-02-30", "0.41", True)}))
    assert ("SCHEMA_INVALID", "cel.obowiazuje_od") in codes(verified) and verified.outcome == "REJECTED"
    # a doubtful field does not excuse another, confidently unreadable one
    both = run(variant(fields={"cel.obowiazuje_od": ("2025-02-30", "0.41"), "oplata_miesieczna": ("114,00", "0.99")}))
    assert [f.field for f in both.findings if f.code == "SCHEMA_INVALID"] == ["oplata_miesieczna"] and both.outcome == "REJECTED"


def test_a_pesel_read_with_low_confidence_that_is_not_one_goes_to_review():
    doubtful = run(variant(fields={"skladajacy.pesel": ("02211307580", "0.83")}))  # checksum wrong: misread?
    by_code = {f.code: f for f in doubtful.findings}
    assert set(by_code) == {"LOW_CONFIDENCE", "PESEL_INVALID"}
    assert by_code["PESEL_INVALID"].field == "skladajacy.pesel" and by_code["PESEL_INVALID"].severity == "warning"
    assert doubtful.outcome == "NEEDS_REVIEW"
    confident = run(variant(fields={"skladajacy.pesel": ("02211307580", "0.97")}))
    assert codes(confident) == [("PESEL_INVALID", "skladajacy.pesel")] and confident.findings[0].severity == "error"
    assert confident.outcome == "REJECTED"


def test_rows_without_gaps_and_fields_given_once():
    ctx = run(variant(fields={"lokale.1.liczba_mieszkancow": None, "lokale.2.liczba_mieszkancow": "3"}))
    assert ("SCHEMA_INVALID", "lokale.1") in codes(ctx)
    root = etree.fromstring(SAMPLE.read_bytes())
    pole = root.find(".//s:Pole[@nazwa='oplata_miesieczna']", NS)
    pole.addnext(etree.fromstring(etree.tostring(pole)))
    ctx = run(etree.tostring(root))
    assert ("SCHEMA_INVALID", "oplata_miesieczna") in codes(ctx) and ctx.outcome == "REJECTED"


def test_mapper_collects_findings_and_never_raises_anything_else():
    export = read_export(parse_untrusted(variant(fields={"lokale.1.liczba_mieszkancow": "100"}), max_bytes=1 << 20))
    with pytest.raises(ScanMappingError) as err:
        map_scan(export.fields, "DO-1/2025")
    assert [f.field for f in err.value.findings] == ["lokale.1.liczba_mieszkancow"]


# --- the export itself ---------------------------------------------------------------------


def test_export_against_its_xsd():
    raw = (
        SAMPLE.read_bytes().replace(b'pewnosc="0.83"', b'pewnosc="1.5"').replace(b"<Operator>akowalska</Operator>", b"")
        .replace(b'zweryfikowane="true"', b'zweryfikowane="tak"')
    )
    ctx = run(raw)
    assert {f.code for f in ctx.findings} == {"SCHEMA_INVALID"} and ctx.halted
    fields = {f.field for f in ctx.findings}
    assert {"/Skan/Pola/Pole[5]/@pewnosc", "/Skan/Pola/Pole[7]/@zweryfikowane", "/Skan/Operator"} == fields
    # the recognised values (a PESEL, a name) are never repeated in a message
    assert not any("02211307589" in f.message or "Przykładowa" in f.message for f in ctx.findings)
    assert "skladajacy.pesel" in next(f.message for f in ctx.findings if f.field.endswith("@pewnosc"))
    assert (ctx.signature.kind, ctx.signature.status) == ("NONE", "NOT_APPLICABLE")


def test_malformed_export():
    ctx = run(b"<Skan xmlns='urn:czystyregion:skan:1'><Partia>")
    assert codes(ctx) == [("XML_MALFORMED", None)] and ctx.outcome == "REJECTED"


# --- the same checks as an e-form, with the scan's field names --------------------------


def test_institution_and_its_nip_checked_under_the_scan_field_name():
    raw = variant(fields={
        "skladajacy.pesel": None, "skladajacy.imie": None, "skladajacy.nazwisko": None,
        "skladajacy.nazwa": "Wspólnota Mieszkaniowa Leśna 7", "skladajacy.nip": "1234567890",
        "skladajacy.tytul_prawny": "WSPOLNOTA_MIESZKANIOWA",
    })
    ctx = run(raw)
    assert ctx.declaration.declarant.kind == m.INSTITUTION
    assert codes(ctx) == [("NIP_INVALID", "skladajacy.nip")]


def test_fee_rules_on_paper_name_the_scan_fields():
    ctx = run(variant(fields={
        "skladajacy.pesel": ("02211307589", "0.99"), "wyliczenie.1.kwota": "104.00",
        "oplata_zamieszkala": "104.00", "oplata_miesieczna": "104.00",
    }))
    mismatch = {f.field for f in ctx.findings if f.code == "FEE_MISMATCH"}
    assert "wyliczenie.1.kwota" in mismatch and "oplata_miesieczna" in mismatch
    assert ctx.computed_fee == Decimal("114.00") and ctx.outcome == "NEEDS_REVIEW"


def test_mixed_property_with_containers():
    raw = variant(fields={
        "skladajacy.pesel": ("02211307589", "0.99"),
        "nieruchomosc.rodzaj": "MIESZANA",
        "pojemniki.1.pojemnosc": "240", "pojemniki.1.liczba": "1", "pojemniki.1.oproznien_w_roku": "26",
        "pojemniki.1.stawka": "40.00", "pojemniki.1.kwota": "86.67", "oplata_niezamieszkala": "86.67",
        "oplata_miesieczna": "200.67",
    })
    ctx = run(raw)
    assert ctx.declaration.non_residential == m.NonResidentialPart(
        containers=(m.ContainerLine(240, 1, 26, Decimal("40.00"), Decimal("86.67")),), fee=Decimal("86.67")
    )
    assert ctx.findings == [] and ctx.computed_fee == Decimal("200.67")


def test_late_paper_filing_is_judged_on_the_receipt_date():
    ctx = run(variant(received="2025-02-11", fields={"skladajacy.pesel": ("02211307589", "0.99")}))
    assert codes(ctx) == [("LATE_FILING", None)] and ctx.outcome == "NEEDS_REVIEW"  # NOWA: due by 10 February
    on_time = run(variant(received="2025-02-10", fields={"skladajacy.pesel": ("02211307589", "0.99")}))
    assert on_time.findings == []


def test_an_explicit_filing_time_wins_over_the_receipt_date():
    ctx = run(SAMPLE.read_bytes(), filed_at=datetime(2025, 3, 1, 12, tzinfo=UTC))
    assert "LATE_FILING" in {f.code for f in ctx.findings}
    assert ctx.declaration.filed_at - datetime(2025, 3, 1, 12, tzinfo=UTC) == timedelta(0)
