"""A hostile scan inbox (issue #9), on real folders and a real database: no single file can
stop the inbox or make a pass fail technically; each ends stored, archived or quarantined
with a reason, and nothing else is touched."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.db.tables import worker_document
from adapters.scans import scan_inbox
from tests.test_scans_inbox import cfg, intake, store  # noqa: F401  (the scan inbox's fixtures)

DATA = Path(__file__).parent / "data" / "scans"
XML = "skan-2025-02-03-0001-0007.xml"
PDF = "skan-2025-02-03-0001-0007.pdf"
GOOD_XML = (DATA / XML).read_bytes()
GOOD_PDF = (DATA / PDF).read_bytes()


def export(scan_id: str, image: str, image_bytes: bytes) -> bytes:
    xml = GOOD_XML.decode("utf-8").replace('id="2025-02-03-0001-0007"', f'id="{scan_id}"')
    xml = re.sub(r'<Obraz plik="[^"]*" sha256="[0-9a-f]*"', f'<Obraz plik="{image}" sha256="{hashlib.sha256(image_bytes).hexdigest()}"', xml)
    return xml.encode("utf-8")


def listing(folder: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(folder)))


def reason_texts(folder: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.reason.txt"))]


def stored(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(worker_document)).mappings().all()


def test_an_export_whose_image_names_another_export_is_quarantined_and_the_other_left_alone(cfg, intake, store, engine):
    other = export("2025-02-03-0001-0008", PDF, GOOD_PDF)
    (cfg.inbox / "b-inne.xml").write_bytes(other)
    (cfg.inbox / PDF).write_bytes(GOOD_PDF)
    (cfg.inbox / "a-zly.xml").write_bytes(export("2025-02-03-0001-0009", "b-inne.xml", other))
    (cfg.inbox / "c-docx.xml").write_bytes(export("2025-02-03-0001-0010", "c.docx", b"PK\x03\x04"))
    (cfg.inbox / "c.docx").write_bytes(b"PK\x03\x04")
    report = scan_inbox(cfg, intake, store)
    assert report.errors == 0 and report.quarantined == 2 and report.stored == 1
    assert sorted(p.name for p in cfg.quarantine.iterdir()) == ["a-zly.reason.txt", "a-zly.xml", "c-docx.reason.txt", "c-docx.xml"]
    assert all("reason: image_not_pdf" in t for t in reason_texts(cfg.quarantine))
    # the other export was stored and archived with its own image; the .docx stays where it was
    assert sorted(p.name for p in cfg.archive.iterdir()) == sorted(["b-inne.xml", PDF])
    assert (cfg.archive / "b-inne.xml").read_bytes() == other
    assert [p.name for p in cfg.inbox.iterdir()] == ["c.docx"]
    assert [d["source_ref"] for d in stored(engine)] == ["scan:2025-02-03-0001-0008"]


@pytest.mark.parametrize("image, key", [(b"", "image_empty"), (b"<html>to nie jest PDF</html>", "image_not_pdf")])
def test_a_zero_byte_or_non_pdf_image_is_quarantined_with_the_export(cfg, intake, store, engine, image, key):
    (cfg.inbox / "obraz.pdf").write_bytes(image)
    (cfg.inbox / "skan.xml").write_bytes(export("2025-02-03-0001-0011", "obraz.pdf", image))
    report = scan_inbox(cfg, intake, store)
    assert report.errors == 0 and report.quarantined == 1 and stored(engine) == []
    assert sorted(p.name for p in cfg.quarantine.iterdir()) == ["obraz.pdf", "skan.reason.txt", "skan.xml"]
    assert f"reason: {key}" in reason_texts(cfg.quarantine)[0]


@pytest.mark.parametrize("raw_name, problem, shown", [
    (b"skan-\xff\xfe.xml", "not_utf8", "skan-\\xff\\xfe.xml"),
    (b"skan-\x1b[31m-\n.xml", "control_characters", "skan-\\x1b[31m-\\x0a.xml"),
    (b"skan-" + "ż".encode() * 110 + b".pdf", "too_long", "skan-" + "ż" * 110 + ".pdf"),
])
def test_unsafe_file_names_are_quarantined_under_a_safe_name_with_the_original_escaped(cfg, intake, store, engine, raw_name, problem, shown):
    os.makedirs(os.fsencode(cfg.inbox), exist_ok=True)
    with open(os.path.join(os.fsencode(cfg.inbox), raw_name), "wb") as fh:
        fh.write(GOOD_XML if raw_name.endswith(b".xml") else GOOD_PDF)
    (cfg.inbox / XML).write_bytes(GOOD_XML)  # a good pair beside it goes on as usual
    (cfg.inbox / PDF).write_bytes(GOOD_PDF)
    report = scan_inbox(cfg, intake, store)
    assert report.errors == 0 and report.quarantined == 1 and report.stored == 1
    assert listing(cfg.inbox) == []
    names = [n.decode("ascii") for n in listing(cfg.quarantine)]  # safe names only
    safe = [n for n in names if not n.endswith(".reason.txt")]
    assert len(safe) == 1 and safe[0].startswith("niebezpieczna-nazwa-") and len(names) == 2
    (text,) = reason_texts(cfg.quarantine)
    assert "reason: unsafe_file_name" in text and f"problem: {problem}" in text
    assert f"original_name: {shown}\n" in text
    assert (cfg.quarantine / safe[0]).read_bytes() in (GOOD_XML, GOOD_PDF)  # moved, not changed
    assert [d["source_ref"] for d in stored(engine)] == ["scan:2025-02-03-0001-0007"]


def test_a_second_pass_over_a_stored_pair_never_quarantines_it(cfg, intake, store, engine):
    """What another pass (or a crash) left half-moved is finished, never quarantined."""
    (cfg.inbox / XML).write_bytes(GOOD_XML)
    (cfg.inbox / PDF).write_bytes(GOOD_PDF)
    assert scan_inbox(cfg, intake, store).stored == 1
    (cfg.inbox / XML).write_bytes(GOOD_XML)  # the same export again, its PDF already archived
    report = scan_inbox(cfg, intake, store)
    assert report.duplicates == 1 and report.quarantined == 0 and report.errors == 0
    assert list(cfg.quarantine.iterdir()) == []
