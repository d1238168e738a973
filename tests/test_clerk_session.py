"""A clerk's session at the review queue, as the office runs it: the sample paper form
(received 2025-01-31, Polish time) scanned, processed, listed, shown, dry-run reprocessed,
accepted; `status` and `check`. Everything printed is Polish, with Polish dates, and never
``None``; mistakes are answered in Polish with exit status 2."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.db.tables import ebok_declaration, worker_document
from worker import cli
from worker import config as config_mod
from worker.app import App

DEMO_SCANS = Path(__file__).resolve().parent.parent / "demo" / "scans"
XML = "skan-2025-02-03-0001-0007.xml"


@pytest.fixture
def office(write_config, tmp_path):
    cfg = write_config(scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"})
    (tmp_path / "scans" / "inbox").mkdir(parents=True)
    for f in DEMO_SCANS.iterdir():
        shutil.copyfile(f, tmp_path / "scans" / "inbox" / f.name)
    return cfg


def run(cfg, capsys, *args):
    code = cli.main(["--config", str(cfg), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def clean(text: str) -> None:
    assert "None" not in text
    assert "+00:00" not in text and "2025-01-30" not in text  # no UTC instants, no UTC dates
    assert not re.search(r"\] :", text)  # no empty field paths


def test_clerk_session_is_polish_with_local_dates(office, capsys):
    code, out, err = run(office, capsys, "scan")
    assert code == 0 and out.startswith("Skany: przyjęte 1") and out.count("\n") == 1  # the summary alone; logs on stderr
    assert '"event": "scan.stored"' in err
    assert run(office, capsys, "process")[0] == 0

    code, out, _ = run(office, capsys, "review", "list")
    assert code == 0 and "Deklaracje do weryfikacji: 1" in out
    (decl_id,) = map(int, re.findall(r"#(\d+)", out))
    assert "złożona 2025-01-31" in out and "LOW_CONFIDENCE" in out
    clean(out)

    code, out, _ = run(office, capsys, "review", "show", str(decl_id))
    assert code == 0
    assert "złożona: 2025-01-31 00:00 (czas polski)" in out and "kanał: papier (skan)" in out and "do weryfikacji (NEEDS_REVIEW)" in out
    assert "podpis odręczny" in out and " zł" in out
    clean(out)

    app = App(config_mod.load(office))
    with app.engine.connect() as conn:
        doc_id = conn.execute(select(ebok_declaration.c.document_id).where(ebok_declaration.c.id == decl_id)).scalar_one()
        assert conn.execute(select(worker_document.c.id)).all() == [(doc_id,)]
    app.engine.dispose()

    code, out, _ = run(office, capsys, "reprocess", "--declaration", str(decl_id), "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"dokument {doc_id} (deklaracja #{decl_id}): do weryfikacji (NEEDS_REVIEW) → do weryfikacji (NEEDS_REVIEW)")
    assert lines[-1].startswith("Próba, nic nie zapisano: 1 dokument; zmieniłby się wynik lub ustalenia: 0")
    clean(out)

    code, _, err = run(office, capsys, "reprocess", "--declaration", "99999", "--dry-run")
    assert code == 2 and "nie ma deklaracji o id 99999" in err
    code, _, err = run(office, capsys, "review", "show", "99999")
    assert code == 2 and err.strip() == "ebok-worker: nie ma deklaracji o id 99999 (podaj id deklaracji z „review list”, nie id dokumentu)"

    code, out, _ = run(office, capsys, "review", "accept", str(decl_id), "--note", "PESEL sprawdzony z oryginałem.", "--user", "akowalska")
    assert code == 0 and out.startswith(f"Deklaracja #{decl_id}: przyjęta (akowalska, ")
    code, _, err = run(office, capsys, "review", "reject", str(decl_id), "--note", "x")
    assert code == 2 and f"deklaracja #{decl_id} ma status przyjęta (ACCEPTED)" in err and "Traceback" not in err

    code, out, _ = run(office, capsys, "review", "show", str(decl_id))
    assert code == 0 and "Decyzja biura (akowalska, " in out and "przyjęta (ACCEPTED)" in out
    clean(out)

    code, out, _ = run(office, capsys, "reprocess", "--id", str(doc_id))
    assert code == 0 and out.splitlines()[0].startswith(f"dokument {doc_id} (deklaracja #{decl_id}): przyjęta (ACCEPTED) → przyjęta (ACCEPTED)")
    assert out.splitlines()[-1].startswith("Przetworzono ponownie: 1 dokument;")
    clean(out)

    code, out, _ = run(office, capsys, "status")
    assert code == 0 and "Kolejka dokumentów:" in out and "przyjęte (ACCEPTED): 1" in out and "czas polski" in out
    clean(out)


def test_check_prints_polish_without_none(office, capsys, tmp_path):
    code, out, _ = run(office, capsys, "check", str(tmp_path / "scans" / "inbox" / XML))
    assert code == 0
    assert "do weryfikacji (NEEDS_REVIEW)" in out and "kanał papier (skan)" in out and "obraz skanu: zgodny z eksportem" in out
    assert "opłata miesięczna zadeklarowana:" in out
    clean(out)
    letter = tmp_path / "pismo.xml"
    letter.write_text("<pismo>Proszę o informację.</pismo>", encoding="utf-8")
    code, out, _ = run(office, capsys, "check", str(letter))
    assert code == 0 and "opłata miesięczna zadeklarowana: —, wyliczona: —" in out
    clean(out)
