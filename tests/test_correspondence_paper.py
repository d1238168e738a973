"""A paper letter: the capture station names no declaration form (``Formularz kod="PISMO"``),
so the scan is correspondence and is handed over with its page images, through the
command line in its own processes."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import create_engine, select

from adapters.db.tables import ebok_declaration, worker_document
from tests.clitools import run_cli

PDF = b"%PDF-1.4\n% pismo papierowe: skarga\n%%EOF\n"


def export(pdf_name: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Skan xmlns="urn:czystyregion:skan:1" id="2025-02-03-0001-0009" wersja="1">
  <Partia>2025-02-03-0001</Partia>
  <DataSkanowania>2025-02-03T09:20:00+01:00</DataSkanowania>
  <DataWplywu>2025-02-03</DataWplywu>
  <Operator>akowalska</Operator>
  <Formularz kod="PISMO" wersja="1"/>
  <Obraz plik="{pdf_name}" sha256="{hashlib.sha256(PDF).hexdigest()}" strony="1"/>
  <PodpisWlasnoreczny>true</PodpisWlasnoreczny>
  <Pola><Pole nazwa="pismo.rodzaj" pewnosc="1">SKARGA</Pole></Pola>
</Skan>""".encode()


def test_a_scanned_letter_is_handed_over_with_its_images(db_url, tmp_path, write_config):
    cfg = write_config(scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"}, correspondence={"outbox": "outbox"})
    inbox = tmp_path / "scans" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "pismo-0009.pdf").write_bytes(PDF)
    (inbox / "pismo-0009.xml").write_bytes(export("pismo-0009.pdf"))

    def cli(*args):
        return run_cli(cfg, *args)

    r = cli("run", "--once")
    assert r.returncode == 0, r.stderr + r.stdout[-2000:]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        doc = conn.execute(select(worker_document)).mappings().one()
        assert conn.execute(select(ebok_declaration)).all() == []  # never shown in the eBOK as a declaration
    engine.dispose()
    assert doc["kind"] == "CORRESPONDENCE" and doc["channel"] == "PAPER"
    folder = tmp_path / "outbox" / "2025-02-03" / str(doc["id"])
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "dokument.xml", "metadane.json", "zalaczniki/pismo-0009.pdf"]
    assert (folder / "dokument.xml").read_bytes() == export("pismo-0009.pdf")
    assert (folder / "zalaczniki" / "pismo-0009.pdf").read_bytes() == PDF
    meta = json.loads((folder / "metadane.json").read_text(encoding="utf-8"))
    assert meta["channel"] == "PAPER" and meta["scan"]["id"] == "2025-02-03-0001-0009" and meta["scan"]["form"] == "PISMO/1"
    assert meta["filed_at"] == "2025-02-03T00:00:00+01:00"
    assert meta["attachments"][0]["file"] == "zalaczniki/pismo-0009.pdf" and meta["attachments"][0]["size"] == len(PDF)

    listed = cli("correspondence", "list").stdout
    assert f"#{doc['id']}" in listed and "pismo papierowe (skan 2025-02-03-0001-0009)" in listed and "przekazano" in listed
    shown = cli("correspondence", "show", str(doc["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "w obrazie skanu" in shown.stdout and "pismo-0009.pdf — application/pdf" in shown.stdout
