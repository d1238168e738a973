"""Content that does not fit a column (issue #9): never a technical failure, the same on
SQLite and PostgreSQL. Over-long names, streets and parcel numbers and contact data that is
not one become SCHEMA_INVALID findings naming the field and the limit; what is loaded fits
its column; the values never reach the logs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select

from adapters.db import tables
from adapters.db.tables import ebok_declaration, ebok_payer, ebok_property, worker_document
from tests.clitools import run_cli
from worker.domain import limits

ROOT = Path(__file__).resolve().parent.parent
SCAN = ROOT / "tests/data/scans/skan-2025-02-03-0001-0007.xml"
PDF = ROOT / "tests/data/scans/skan-2025-02-03-0001-0007.pdf"
LONG_SURNAME = "Przykładowa-" + "Długonazwiskowa" * 12
LONG_STREET = "Aleja " + "Bardzo Długiej Nazwy Ulicy " * 5
LONG_PARCEL = "123/" + "4" * 80


def test_the_limits_are_the_column_lengths():
    for column, length in [*limits.PAYER_LIMITS.values(), *limits.PROPERTY_LIMITS.values()]:
        table, name = column.split(".")
        assert getattr(tables, table).c[name].type.length == length, column
    from worker.processing import SIGNER_LIMIT

    assert tables.ebok_declaration.c.signer.type.length == SIGNER_LIMIT
    for table in (tables.ebok_payer, tables.ebok_property):
        for attr, length in limits.ADDRESS_LIMITS.items():
            assert table.c[attr].type.length == length, (table.name, attr)


def test_over_long_and_invalid_values_from_a_paper_export_are_findings_not_failures(db_url, tmp_path, write_config):
    xml = SCAN.read_text(encoding="utf-8")
    xml = xml.replace('id="2025-02-03-0001-0007"', 'id="2025-02-03-0001-0099"')
    xml = xml.replace(">Przykładowa<", f">{LONG_SURNAME}<")
    xml = xml.replace('<Pole nazwa="skladajacy.adres.ulica" pewnosc="0.94">Leśna</Pole>',
                      f'<Pole nazwa="skladajacy.adres.ulica" pewnosc="0.94">{LONG_STREET}</Pole>'
                      '<Pole nazwa="skladajacy.email" pewnosc="0.80">anna.przykladowa malpa poczta</Pole>'
                      '<Pole nazwa="skladajacy.telefon" pewnosc="0.80">tel. domowy po 16</Pole>')
    xml = xml.replace('<Pole nazwa="nieruchomosc.rodzaj"', f'<Pole nazwa="nieruchomosc.nr_dzialki" pewnosc="0.9">{LONG_PARCEL}</Pole><Pole nazwa="nieruchomosc.rodzaj"')
    inbox = tmp_path / "scans/inbox"
    inbox.mkdir(parents=True)
    (inbox / PDF.name).write_bytes(PDF.read_bytes())
    (inbox / "skan-99.xml").write_text(xml, encoding="utf-8")
    cfg = write_config(scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"}, payments={"bank_branch": "10901014"})
    r = run_cli(cfg, "run", "--once")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    for secret in (LONG_SURNAME[:30], LONG_STREET[:30], LONG_PARCEL[:20], "malpa poczta"):
        assert secret not in r.stdout and secret not in r.stderr
    engine = create_engine(db_url)
    with engine.connect() as conn:
        (doc,) = conn.execute(select(worker_document)).mappings().all()
        (decl,) = conn.execute(select(ebok_declaration)).mappings().all()
        payers = conn.execute(select(ebok_payer)).mappings().all()
        props = conn.execute(select(ebok_property)).mappings().all()
    engine.dispose()
    assert doc["state"] == "DONE" and doc["last_error"] is None and doc["attempts"] == 1
    assert decl["status"] == "REJECTED"
    found = {(f["code"], f["field"]): f["message"] for f in decl["findings"]}
    assert "100 znaków" in found[("SCHEMA_INVALID", "skladajacy.nazwisko")]
    assert "100 znaków" in found[("SCHEMA_INVALID", "skladajacy.adres.ulica")]
    assert "50 znaków" in found[("SCHEMA_INVALID", "nieruchomosc.nr_dzialki")]
    assert ("CONTACT_INVALID", "skladajacy.email") in found and ("CONTACT_INVALID", "skladajacy.telefon") in found
    assert all(LONG_SURNAME[:20] not in m for m in found.values())  # the value is never repeated
    (payer,) = payers
    assert payer["last_name"] == LONG_SURNAME[:100] and payer["street"] == LONG_STREET[:100]
    assert payer["email"] is None and payer["phone"] is None
    assert [p["parcel"] for p in props] == [LONG_PARCEL[:50]]


def test_an_e_form_declaration_is_fitted_with_its_element_paths_and_a_fitting_one_untouched():
    import dataclasses

    from tests import factories
    from worker.domain.model import EPUAP

    decl = factories.declaration()
    assert limits.fit_declaration(decl, EPUAP) == (decl, [])
    long = dataclasses.replace(decl, declarant=dataclasses.replace(
        decl.declarant, last_name="N" * 150, emails=("jan@example.pl", "nie-email"), phones=("+48 601 234 567",)))
    fitted, found = limits.fit_declaration(long, EPUAP)
    assert [(f.code, f.field, f.outcome) for f in found] == [
        ("SCHEMA_INVALID", "Skladajacy/Osoba/Nazwisko", "REJECTED"), ("CONTACT_INVALID", "Skladajacy/Kontakt/Email", None)]
    assert fitted.declarant.last_name == "N" * 100
    assert fitted.declarant.emails == ("jan@example.pl",) and fitted.declarant.phones == ("+48 601 234 567",)
    # a bad e-mail alone does not reject: contact data is not part of the fee
    only_contact = dataclasses.replace(decl, declarant=dataclasses.replace(decl.declarant, emails=("nie-email",), phones=("tel. po 16",)))
    fitted, found = limits.fit_declaration(only_contact, EPUAP)
    assert [(f.code, f.outcome, f.severity) for f in found] == [("CONTACT_INVALID", None, "info")] * 2
    assert fitted.declarant.emails == () and fitted.declarant.phones == ()
