"""The scan inbox on real folders and a real database: store, archive, wait, quarantine,
recognise what is already stored, and process the stored pair into the eBOK tables."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.db.tables import ebok_declaration, worker_document
from adapters.scans import SOURCE, ensure_folders, inbox_counts, scan_inbox
from adapters.storage import DocumentStore
from worker.config import Config, ConfigError, ScansConfig
from worker.intake import Intake
from worker.pipeline import ProcessingSettings
from worker.processing import Processor
from worker.scans.export import filing_time

DATA = Path(__file__).parent / "data" / "scans"
XML = "skan-2025-02-03-0001-0007.xml"
PDF = "skan-2025-02-03-0001-0007.pdf"


@pytest.fixture
def cfg(tmp_path) -> ScansConfig:
    c = ScansConfig(
        enabled=True, inbox=tmp_path / "scans" / "inbox", archive=tmp_path / "scans" / "archive",
        quarantine=tmp_path / "scans" / "quarantine", incomplete_grace_s=600,
    )
    ensure_folders(c)
    return c


@pytest.fixture
def store(tmp_path) -> DocumentStore:
    return DocumentStore(tmp_path / "documents")


@pytest.fixture
def intake(engine, store) -> Intake:
    return Intake(engine, store)


def put_pair(cfg: ScansConfig, *, xml: bytes | None = None, pdf: bytes | None = None, with_pdf: bool = True) -> None:
    (cfg.inbox / XML).write_bytes(xml if xml is not None else (DATA / XML).read_bytes())
    if with_pdf:
        (cfg.inbox / PDF).write_bytes(pdf if pdf is not None else (DATA / PDF).read_bytes())


def docs(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(worker_document)).mappings().all()


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def later(cfg: ScansConfig, seconds: float) -> datetime:
    """A time ``seconds`` after the XML in the inbox was written."""
    return datetime.fromtimestamp((cfg.inbox / XML).stat().st_mtime + seconds, UTC)


def test_a_ready_pair_is_stored_then_moved_with_its_bytes_unchanged(cfg, intake, store, engine):
    put_pair(cfg)
    report = scan_inbox(cfg, intake, store)
    assert report.as_dict() == {"stored": 1, "duplicates": 0, "waiting": 0, "quarantined": 0, "errors": 0, "orphan_pdfs": 0}
    assert names(cfg.inbox) == [] and names(cfg.archive) == [PDF, XML]
    assert (cfg.archive / XML).read_bytes() == (DATA / XML).read_bytes()
    assert (cfg.archive / PDF).read_bytes() == (DATA / PDF).read_bytes()
    (doc,) = docs(engine)
    assert (doc["channel"], doc["source_ref"], doc["source"], doc["state"]) == ("PAPER", "scan:2025-02-03-0001-0007", SOURCE, "RECEIVED")
    assert store.get(doc["storage_key"]) == (DATA / XML).read_bytes()
    assert doc["filed_at"].replace(tzinfo=doc["filed_at"].tzinfo or UTC) == filing_time(datetime(2025, 1, 31).date())
    meta = doc["meta"]
    assert meta["xml_file"] == XML and meta["scan"]["id"] == "2025-02-03-0001-0007" and meta["scan"]["received_on"] == "2025-01-31"
    assert meta["pdf"]["name"] == PDF and meta["pdf"]["pages"] == 1
    assert meta["pdf"]["sha256"] == "4cbd93c94e49c407e84d5b489c327508a4f2deb0314772ba08d3f750810f341f"
    assert store.get(meta["pdf"]["storage_key"]) == (DATA / PDF).read_bytes()


def test_pdf_missing_waits_then_after_the_grace_is_quarantined_with_a_reason(cfg, intake, store, engine):
    put_pair(cfg, with_pdf=False)
    r = scan_inbox(cfg, intake, store, now=later(cfg, 5))
    assert (r.waiting, r.quarantined, r.stored) == (1, 0, 0) and names(cfg.inbox) == [XML]
    r = scan_inbox(cfg, intake, store, now=later(cfg, 601))
    assert (r.waiting, r.quarantined) == (0, 1)
    assert names(cfg.inbox) == [] and names(cfg.quarantine) == ["skan-2025-02-03-0001-0007.reason.txt", XML]
    reason = (cfg.quarantine / "skan-2025-02-03-0001-0007.reason.txt").read_text(encoding="utf-8")
    assert "reason: pdf_missing" in reason and "Brak pliku obrazu" in reason
    assert (cfg.quarantine / XML).read_bytes() == (DATA / XML).read_bytes()
    assert docs(engine) == []


def test_pdf_with_another_hash_is_not_ready_then_quarantined_as_a_pair(cfg, intake, store, engine):
    put_pair(cfg, pdf=b"%PDF-1.4 still being written")
    assert scan_inbox(cfg, intake, store, now=later(cfg, 1)).waiting == 1
    # the station finishes the PDF: the pair is taken in
    (cfg.inbox / PDF).write_bytes((DATA / PDF).read_bytes())
    assert scan_inbox(cfg, intake, store, now=later(cfg, 2)).stored == 1
    # another pair whose PDF never matches
    put_pair(cfg, xml=(DATA / XML).read_bytes().replace(b'id="2025-02-03-0001-0007"', b'id="2025-02-03-0001-0008"'), pdf=b"other")
    r = scan_inbox(cfg, intake, store, now=later(cfg, 3600))
    assert r.quarantined == 1 and len(docs(engine)) == 1
    assert names(cfg.quarantine) == [PDF, "skan-2025-02-03-0001-0007.reason.txt", XML]
    assert "reason: pdf_hash_mismatch" in (cfg.quarantine / "skan-2025-02-03-0001-0007.reason.txt").read_text(encoding="utf-8")
    assert (cfg.quarantine / PDF).read_bytes() == b"other"


def test_the_same_pair_again_is_recognised_and_moved_never_overwriting(cfg, intake, store, engine):
    put_pair(cfg)
    assert scan_inbox(cfg, intake, store).stored == 1
    put_pair(cfg)
    r = scan_inbox(cfg, intake, store)
    assert (r.stored, r.duplicates) == (0, 1)
    assert names(cfg.archive) == ["skan-2025-02-03-0001-0007.1.pdf", "skan-2025-02-03-0001-0007.1.xml", PDF, XML]
    assert len(docs(engine)) == 1


def test_crash_between_store_and_move_is_finished_by_the_next_pass(cfg, intake, store, engine):
    put_pair(cfg)
    raw = (cfg.inbox / XML).read_bytes()
    # the previous pass stored the document, then died before moving the files
    first = intake.store(channel="PAPER", source_ref="scan:2025-02-03-0001-0007", raw=raw, filed_at=filing_time(datetime(2025, 1, 31).date()), metadata={}, mailbox=SOURCE)
    assert first.created
    r = scan_inbox(cfg, intake, store)
    assert (r.stored, r.duplicates, r.errors) == (0, 1, 0)
    assert names(cfg.inbox) == [] and names(cfg.archive) == [PDF, XML] and len(docs(engine)) == 1


def test_crash_between_the_two_moves_is_finished_by_the_next_pass(cfg, intake, store, engine):
    put_pair(cfg)
    assert scan_inbox(cfg, intake, store).stored == 1
    # as if the PDF had been moved but not yet the XML
    shutil.move(str(cfg.archive / XML), str(cfg.inbox / XML))
    r = scan_inbox(cfg, intake, store, now=later(cfg, 10_000))  # long after the grace: still no quarantine
    assert (r.duplicates, r.quarantined, r.waiting) == (1, 0, 0)
    assert names(cfg.inbox) == [] and names(cfg.archive) == [PDF, XML] and len(docs(engine)) == 1


def test_the_same_scan_id_with_other_content_is_quarantined_not_dropped(cfg, intake, store, engine):
    put_pair(cfg)
    scan_inbox(cfg, intake, store)
    put_pair(cfg, xml=(DATA / XML).read_bytes().replace(b">114.00</Pole>\n    <Pole nazwa=\"oplata_miesieczna\"", b">104.00</Pole>\n    <Pole nazwa=\"oplata_miesieczna\""))
    r = scan_inbox(cfg, intake, store)
    assert r.quarantined == 1 and len(docs(engine)) == 1
    assert "reason: scan_id_conflict" in (cfg.quarantine / "skan-2025-02-03-0001-0007.reason.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "xml, key",
    [
        (b"<Skan xmlns='urn:czystyregion:skan:1'><Partia>", "xml_not_well_formed"),
        (b"<Pismo/>", "not_scan_export"),
        ((DATA / XML).read_bytes().replace(b"<DataWplywu>2025-01-31", b"<DataWplywu>31.01.2025"), "no_receipt_date"),
        ((DATA / XML).read_bytes().replace(b'plik="skan-2025-02-03-0001-0007.pdf"', b'plik="../../etc/passwd"'), "unsafe_image_name"),
    ],
)
def test_an_export_whose_header_cannot_be_read_is_quarantined_at_once(cfg, intake, store, engine, xml, key):
    put_pair(cfg, xml=xml)
    r = scan_inbox(cfg, intake, store)
    assert r.quarantined == 1 and docs(engine) == []
    assert names(cfg.inbox) == [] and names(cfg.quarantine) == [PDF, "skan-2025-02-03-0001-0007.reason.txt", XML]
    reason = (cfg.quarantine / "skan-2025-02-03-0001-0007.reason.txt").read_text(encoding="utf-8")
    assert f"reason: {key}\n" in reason and "powód: " in reason


def test_temporary_names_and_pdfs_without_an_xml_are_left_alone(cfg, intake, store, engine):
    (cfg.inbox / "skan-9.pdf").write_bytes(b"%PDF being written")
    (cfg.inbox / "skan-9.xml.tmp").write_bytes(b"<Skan")
    (cfg.inbox / ".skan-9.xml").write_bytes(b"<Skan")
    r = scan_inbox(cfg, intake, store, now=datetime.now(UTC) + timedelta(hours=2))
    assert r.as_dict() == {"stored": 0, "duplicates": 0, "waiting": 0, "quarantined": 0, "errors": 0, "orphan_pdfs": 1}
    assert names(cfg.inbox) == [".skan-9.xml", "skan-9.pdf", "skan-9.xml.tmp"]
    assert inbox_counts(cfg) == {"inbox_xml": 0, "inbox_pdf": 1, "quarantined": 0}


def test_a_database_failure_moves_nothing_and_counts_an_error(cfg, store, tmp_path):
    from sqlalchemy import create_engine

    broken = Intake(create_engine(f"sqlite:///{tmp_path / 'nothing-here' / 'x.db'}"), store)
    put_pair(cfg)
    r = scan_inbox(cfg, broken, store)
    assert (r.errors, r.stored) == (1, 0) and not r.ok
    assert names(cfg.inbox) == [PDF, XML]


def test_start_up_creates_the_folders_and_refuses_an_inbox_that_is_a_file(tmp_path):
    from worker.app import check_scans

    scans = ScansConfig(enabled=True, inbox=tmp_path / "a" / "in", archive=tmp_path / "a" / "arch", quarantine=tmp_path / "a" / "q")
    check_scans(Config(scans=scans))
    assert all(p.is_dir() for p in (scans.inbox, scans.archive, scans.quarantine))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^scans\.inbox: "):
        check_scans(Config(scans=replace(scans, inbox=tmp_path / "file")))
    check_scans(Config(scans=replace(scans, enabled=False, inbox=tmp_path / "file")))  # disabled: not looked at


def test_processing_a_stored_pair_loads_a_paper_declaration(cfg, intake, store, engine):
    put_pair(cfg)
    scan_inbox(cfg, intake, store)
    processor = Processor(engine, store, ProcessingSettings(min_confidence=Decimal("0.90")))
    report = processor.run_pending()
    assert (report.processed, report.failed, dict(report.outcomes)) == (1, 0, {"NEEDS_REVIEW": 1})
    with engine.connect() as conn:
        (row,) = conn.execute(select(ebok_declaration)).mappings().all()
    assert (row["channel"], row["source_ref"], row["form"], row["purpose"], row["status"]) == (
        "PAPER", "scan:2025-02-03-0001-0007", "DO-1/2025", "CHANGE", "NEEDS_REVIEW")
    assert (row["signature"], row["signature_status"], row["signer"]) == ("HANDWRITTEN", "NOT_APPLICABLE", None)
    assert row["declared_fee"] == Decimal("114.00") and row["computed_fee"] == Decimal("114.00")
    assert row["residents"] == 3 and row["composting"] is False and row["payer_id"] and row["property_id"]
    assert [(f["code"], f["field"]) for f in row["findings"]] == [("LOW_CONFIDENCE", "skladajacy.pesel")]
    filed = row["filed_at"] if row["filed_at"].tzinfo else row["filed_at"].replace(tzinfo=UTC)
    assert filed == datetime(2025, 1, 30, 23, 0, tzinfo=UTC)
    (doc,) = docs(engine)
    assert (doc["state"], doc["outcome"]) == ("DONE", "NEEDS_REVIEW")
    assert doc["evidence"]["signature"]["handwritten_signature_seen"] is True
    # reprocessing from the raw bytes updates the same row
    assert processor.process(doc["id"], force=True) == "NEEDS_REVIEW"
    with engine.connect() as conn:
        assert len(conn.execute(select(ebok_declaration)).all()) == 1


def test_the_inbox_never_deletes_a_file(cfg, intake, store):
    put_pair(cfg)
    (cfg.inbox / "other.xml").write_bytes(b"not xml at all")
    before = sorted(os.path.getsize(p) for p in cfg.inbox.iterdir())
    scan_inbox(cfg, intake, store)
    after = sorted(os.path.getsize(p) for folder in (cfg.inbox, cfg.archive, cfg.quarantine) for p in folder.iterdir() if not p.name.endswith(".reason.txt"))
    assert before == after
