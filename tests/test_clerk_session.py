"""A clerk's session at the review queue, as the office runs it: the sample paper form
(received 2025-01-31, Polish time) scanned, processed, listed, shown, dry-run reprocessed,
accepted; `status` and `check`. Everything printed is Polish, with Polish dates, and never
``None``; mistakes are answered in Polish with exit status 2."""

from __future__ import annotations

import json
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


def _review_id(office, capsys) -> int:
    assert run(office, capsys, "scan")[0] == 0 and run(office, capsys, "process")[0] == 0
    _, out, _ = run(office, capsys, "review", "list")
    (decl_id,) = map(int, re.findall(r"#(\d+)", out))
    return decl_id


def test_a_paper_declaration_in_review_shows_what_was_read_and_where_the_image_is(office, capsys, tmp_path):
    decl_id = _review_id(office, capsys)
    code, out, err = run(office, capsys, "review", "show", str(decl_id))
    assert code == 0, err
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "[LOW_CONFIDENCE] skladajacy.pesel:" in line)
    # the finding, then the value the capture station read, its confidence, and that no one checked it
    assert lines[at + 1].strip() == "odczytano: „02211307589”, pewność odczytu 0,83, operator stanowiska nie sprawdził"
    assert "Skan: 2025-02-03-0001-0007 (partia 2025-02-03-0001, zeskanowano 2025-02-03 09:12, operator akowalska); podpis własnoręczny: stwierdzony" in out
    archived = tmp_path / "scans" / "archive" / "skan-2025-02-03-0001-0007.pdf"
    assert f"Obraz skanu (PDF, stron: 1): {archived}" in out
    assert f"ebok-worker review export-scan {decl_id} --to FOLDER" in out
    assert "podpis nieważny" not in out and "niepotwierdzona" not in out
    clean(out)

    # the image and the station's export, exactly as stored
    code, out, err = run(office, capsys, "review", "export-scan", str(decl_id), "--to", str(tmp_path / "do-sprawdzenia"))
    assert code == 0, err
    folder = tmp_path / "do-sprawdzenia" / f"skan-deklaracji-{decl_id}"
    assert (folder / "skan-2025-02-03-0001-0007.pdf").read_bytes() == (DEMO_SCANS / "skan-2025-02-03-0001-0007.pdf").read_bytes()
    assert (folder / XML).read_bytes() == (DEMO_SCANS / XML).read_bytes()
    assert out.startswith(f"Zapisano obraz skanu deklaracji #{decl_id} w {folder}:")
    code, _, err = run(office, capsys, "review", "export-scan", str(decl_id), "--to", str(tmp_path / "do-sprawdzenia"))
    assert code == 2 and f"folder {folder} już istnieje; niczego nie nadpisano" in err

    # the image among the attachments, in words that fit a handwritten form
    code, out, err = run(office, capsys, "review", "export-attachments", str(decl_id), "--to", str(tmp_path / "zalaczniki"))
    assert code == 0, err
    assert "jest papierowa: jej załącznikiem jest obraz skanu formularza" in out and "podpis" not in out
    attached = tmp_path / "zalaczniki" / f"deklaracja-{decl_id}" / "zalaczniki" / "skan-2025-02-03-0001-0007.pdf"
    assert attached.read_bytes() == (DEMO_SCANS / "skan-2025-02-03-0001-0007.pdf").read_bytes()


def test_the_image_of_a_scan_moved_away_from_the_archive_is_still_exported_from_storage(office, capsys, tmp_path):
    decl_id = _review_id(office, capsys)
    (tmp_path / "scans" / "archive" / "skan-2025-02-03-0001-0007.pdf").unlink()
    _, out, _ = run(office, capsys, "review", "show", str(decl_id))
    assert "Obraz skanu (PDF, stron: 1): w archiwum skanów go nie ma (przeniesiony?); kopia jest w magazynie dokumentów" in out
    assert run(office, capsys, "review", "export-scan", str(decl_id), "--to", str(tmp_path / "x"))[0] == 0
    assert (tmp_path / "x" / f"skan-deklaracji-{decl_id}" / "skan-2025-02-03-0001-0007.pdf").is_file()


def test_mistakes_of_the_clerk_are_answered_in_polish_with_exit_2(office, capsys, tmp_path):
    decl_id = _review_id(office, capsys)
    app = App(config_mod.load(office))
    with app.engine.connect() as conn:
        doc_id = conn.execute(select(ebok_declaration.c.document_id).where(ebok_declaration.c.id == decl_id)).scalar_one()
    app.engine.dispose()
    expected = [
        (("reprocess", "--code", "FOO"), "ebok-worker: --code: nie ma kodu ustalenia 'FOO' (kody i ich znaczenie: docs/obsluga.md, rozdział 3; "
                                         "np. FEE_MISMATCH, LOW_CONFIDENCE, SIGNATURE_UNTRUSTED)"),
        (("reprocess", "--id", "999"), "ebok-worker: --id: nie ma dokumentu o id 999 (id dokumentu z logów i „status”; id deklaracji z „review list” podaje się w --declaration)"),
        (("reprocess", "--since", "2025-09-10", "--until", "2025-09-01"),
         "ebok-worker: --since 2025-09-10 jest później niż --until 2025-09-01: żaden dokument nie może pasować (zamień daty miejscami?)"),
        (("reprocess", "--filed-since", "2025-09-10", "--filed-until", "2025-09-01"),
         "ebok-worker: --filed-since 2025-09-10 jest później niż --filed-until 2025-09-01: żaden dokument nie może pasować (zamień daty miejscami?)"),
        (("reprocess", "--status", "ZAGINIONA"), "ebok-worker: --status: nie ma statusu 'ZAGINIONA' (dozwolone: ACCEPTED, NEEDS_REVIEW, REJECTED, SUPERSEDED, FAILED, "
                                                 "CORRESPONDENCE, DECLARATION, TEST, UNREADABLE)"),
        (("correspondence", "show", "999"), "ebok-worker: nie ma dokumentu o id 999 (podaj id dokumentu z „correspondence list”)"),
        (("correspondence", "show", str(doc_id)),
         f"ebok-worker: dokument {doc_id} nie jest korespondencją, tylko deklaracją (jego deklarację pokazuje review show, id deklaracji z „review list”)"),
        (("correspondence", "export", str(doc_id), "--to", str(tmp_path / "x")), f"ebok-worker: dokument {doc_id} nie jest korespondencją"),
        (("correspondence", "list", "--since", "2025-09-10", "--until", "2025-09-01"), "ebok-worker: --since 2025-09-10 jest później niż --until 2025-09-01"),
        (("review", "export-attachments", "999", "--to", str(tmp_path / "x")), "ebok-worker: nie ma deklaracji o id 999 (podaj id deklaracji z „review list”, nie id dokumentu)"),
        (("review", "export-scan", "999", "--to", str(tmp_path / "x")), "ebok-worker: nie ma deklaracji o id 999"),
        (("review", "accept", str(decl_id), "--note", "  "), "ebok-worker: --note: decyzja wymaga uzasadnienia"),
    ]
    for argv, message in expected:
        code, out, err = run(office, capsys, *argv)
        assert code == 2 and out == "", argv
        assert err.startswith(message) and err.count("\n") == 1, (argv, err)
    # a valid selection that matches nothing is no mistake
    code, out, _ = run(office, capsys, "reprocess", "--code", "fee_mismatch", "--dry-run")
    assert code == 0 and out == "Żaden zapisany dokument nie spełnia podanych warunków; nic nie zrobiono.\n"


def test_check_takes_the_filing_time_from_the_meta_json_beside_a_stored_document(office, capsys, tmp_path):
    demo = Path(__file__).resolve().parent.parent / "demo" / "epuap" / "czystyregion"
    letter = demo / "korespondencja" / "pismo-ogolne.xml"
    code, out, _ = run(office, capsys, "check", str(letter))
    assert code == 0
    assert out.startswith(f"{letter}: korespondencja (CORRESPONDENCE) — to nie jest deklaracja, lecz pismo dla biura")
    assert "odrzucona" not in out and "REJECTED" not in out
    assert "dataNadania z pliku meta.json obok dokumentu" in out

    # without the metadata beside it: said plainly that it is checked as if filed now
    alone = tmp_path / "pismo.xml"
    alone.write_bytes(letter.read_bytes())
    _, out, _ = run(office, capsys, "check", str(alone))
    assert "sprawdzono jak złożoną teraz (brak --filed-at i pliku PLIK.meta.json obok)" in out
    (tmp_path / "pismo.xml.meta.json").write_text("{nie json", encoding="utf-8")
    _, out, _ = run(office, capsys, "check", str(alone))
    assert "sprawdzono jak złożoną teraz (plik pismo.xml.meta.json jest nieczytelny" in out
    code, out, _ = run(office, capsys, "check", str(alone), "--json")
    assert json.loads(out)[0]["status"] == "CORRESPONDENCE"


def test_a_declaration_checked_with_its_meta_json_is_not_late(write_config, capsys, tmp_path):
    demo = Path(__file__).resolve().parent.parent / "demo"
    office = write_config(signatures={"trust_anchors": demo / "trust" / "test-anchors.pem", "trusted_profile_seals": [demo / "trust" / "test-pz-seal.pem"]})
    declaration = demo / "epuap" / "czystyregion" / "deklaracje" / "do1-2025-pz-nowy-jednorodzinna.xml"
    _, out, _ = run(office, capsys, "check", str(declaration), "--json")
    assert "LATE_FILING" not in [f["code"] for f in json.loads(out)[0]["findings"]]
    alone = tmp_path / declaration.name
    alone.write_bytes(declaration.read_bytes())
    _, out, _ = run(office, capsys, "check", str(alone), "--json")
    assert "LATE_FILING" in [f["code"] for f in json.loads(out)[0]["findings"]]  # as if filed now: months late
    _, out, _ = run(office, capsys, "check", str(alone), "--filed-at", "2025-03-10T09:41:07+01:00")
    assert "LATE_FILING" not in out and "podano w --filed-at" in out


def test_check_of_an_epuap_document_without_trust_anchors_names_the_key(office, capsys):
    declaration = Path(__file__).resolve().parent.parent / "demo" / "epuap" / "czystyregion" / "deklaracje" / "do1-2025-pz-nowy-jednorodzinna.xml"
    code, out, err = run(office, capsys, "check", str(declaration))
    assert code == 2 and out == "" and err.startswith("ebok-worker: signatures.trust_anchors: do sprawdzenia podpisu dokumentu z ePUAP")


def test_logs_go_where_the_configuration_says(write_config, tmp_path, capsys):
    cfg = write_config(scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"},
                       logging={"file": "log/worker.log", "format": "json"})
    (tmp_path / "scans" / "inbox").mkdir(parents=True)
    (tmp_path / "log").mkdir()
    for f in DEMO_SCANS.iterdir():
        shutil.copyfile(f, tmp_path / "scans" / "inbox" / f.name)
    code, out, err = run(cfg, capsys, "scan")
    assert code == 0 and out.startswith("Skany: przyjęte 1") and err == ""  # the result alone; the log in its file
    events = [json.loads(line)["event"] for line in (tmp_path / "log" / "worker.log").read_text(encoding="utf-8").splitlines()]
    assert "scan.stored" in events and "scan.pass" in events
