"""Attachments sent by reference, over real HTTP: the zeep client against the double's file
repository (WS-Security both ways, a file handed out once). A declaration and a letter that
link files: each file downloaded once and stored before the document is confirmed, handed
over and exported byte-equal, marked as fetched by reference; a file that cannot be had is
``ATTACHMENT_UNAVAILABLE`` and never blocks the mailbox; a second run downloads nothing; a
process killed at the named points between download, record and confirmation loses nothing
and fetches nothing twice when it runs again."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from adapters.db.tables import ebok_declaration, worker_document, worker_remote_file
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.sigtools import xmlsig
from tests.sigtools.pki import ALICJA
from tests.sigtools.xmlsig import ep_signature, pz_signature, sign
from tests.test_correspondence import META, letter
from worker.domain.clock import WARSAW

ROOT = Path(__file__).resolve().parent.parent
DEED = b"%PDF-1.7\n% pelnomocnictwo\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"  # 16 KiB
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(200)) * 10
SCAN = b"%PDF-1.4\n% skan skargi\n" + b"x" * 5000 + b"\n%%EOF\n"
FILED = "2025-03-10T10:00:00.000+01:00"
DECL_MAILBOX, LETTER_MAILBOX = "czystyregion/deklaracje", "czystyregion/korespondencja"


def by_reference(name: str, fmt: str, file_id: str, opis: str = "") -> str:
    link = f"https://epuap.gov.pl/file-download-servlet/DownloadServlet?fileId={file_id}"
    return (f'<str:Zalacznik nazwaPliku="{name}" kodowanie="URI" format="{fmt}"><str:DaneZalacznika>{link}</str:DaneZalacznika>'
            f"<str:OpisZalacznika>{opis or name}</str:OpisZalacznika></str:Zalacznik>")


def declaration_linking(pki, *file_refs: str) -> bytes:
    doc = xmlsig.declaration(ALICJA)  # 2 residents, 76.00: accepted on its own
    doc = doc.replace("</wnio:Deklaracja>", f"</wnio:Deklaracja><str:Zalaczniki>{''.join(file_refs)}</str:Zalaczniki>")
    signed_at = xmlsig_filed() - timedelta(minutes=20)
    return sign(doc, pz_signature(pki.seal, signed_at, ep_signature(ALICJA)), pki.seal)


def xmlsig_filed():
    from datetime import datetime

    return datetime.fromisoformat(FILED)


def letter_linking(pki, inline: list[tuple[str, str, bytes]], *file_refs: str) -> bytes:
    text = letter("Skarga na nieodebranie odpadów, w załączeniu zdjęcia i skan.", inline)
    refs = "".join(file_refs)
    if "<str:Zalaczniki>" in text:
        text = text.replace("</str:Zalaczniki>", refs + "</str:Zalaczniki>")
    else:
        text = text.replace("</wnio:TrescDokumentu>", f"<str:Zalaczniki>{refs}</str:Zalaczniki></wnio:TrescDokumentu>")
    signed_at = xmlsig_filed() - timedelta(minutes=30)
    return sign(text, pz_signature(pki.seal, signed_at, ep_signature(ALICJA)), pki.seal)


def write_queue(folder: Path, docs: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in docs.items():
        (folder / name).write_bytes(raw)
        (folder / f"{name}.meta.json").write_text(json.dumps({**META, "dataNadania": FILED}), encoding="utf-8")


@pytest.fixture
def setup(write_config, keys, epuap_double, tmp_path, pki, trust_files):
    queue = tmp_path / "queue"
    decl = declaration_linking(pki, by_reference("pelnomocnictwo.pdf", "application/pdf", "F-DEED", "Pełnomocnictwo"))
    complaint = letter_linking(pki, [("wniosek.pdf", "application/pdf", b"%PDF-1.4 inline\n%%EOF\n")],
                               by_reference("zdjecie.png", "image/png", "F-PHOTO"),
                               by_reference("skan.pdf", "application/pdf", "F-SCAN"),
                               by_reference("brakujacy.pdf", "application/pdf", "F-MISSING"))
    write_queue(queue / DECL_MAILBOX, {"01-deklaracja.xml": decl})
    write_queue(queue / LETTER_MAILBOX, {"01-skarga.xml": complaint})
    server = epuap_double(queue)
    server.add_file("F-DEED", DEED, "pelnomocnictwo.pdf", "application/pdf")
    server.add_file("F-PHOTO", PHOTO, "zdjecie.png", "image/png")
    server.add_file("F-SCAN", SCAN, "skan.pdf", "application/pdf")
    anchors, seal = trust_files
    cfg = write_config(
        epuap=epuap_section(server, keys, DECL_MAILBOX, LETTER_MAILBOX),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
        correspondence={"outbox": "outbox"},
    )
    return cfg, epuap_env(keys), server, tmp_path, {"decl": decl, "letter": complaint}


def remote_files(db_url) -> dict[str, dict]:
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        return {r["file_id"]: dict(r) for r in conn.execute(select(worker_remote_file)).mappings()}


def documents(db_url) -> list[dict]:
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        return [dict(r) for r in conn.execute(select(worker_document).order_by(worker_document.c.id)).mappings()]


def test_referenced_files_are_fetched_once_handed_over_and_exported(setup, db_url):
    cfg, env, server, tmp, raw = setup
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    # both mailboxes drained, each document confirmed once
    assert server.pending(f"/{DECL_MAILBOX}") == [] and server.pending(f"/{LETTER_MAILBOX}") == []
    assert [d.name for d in server.confirmed(f"/{LETTER_MAILBOX}")] == ["01-skarga.xml"]
    # each existing file downloaded once; the missing one asked for (retries) and recorded unavailable
    assert server.downloaded == {"F-DEED": 1, "F-PHOTO": 1, "F-SCAN": 1}
    assert sorted(set(server.download_requests)) == ["F-DEED", "F-MISSING", "F-PHOTO", "F-SCAN"]
    assert [f for f in server.download_requests if f != "F-MISSING"].count("F-DEED") == 1
    files = remote_files(db_url)
    assert {k: v["state"] for k, v in files.items()} == {"F-DEED": "FETCHED", "F-PHOTO": "FETCHED", "F-SCAN": "FETCHED",
                                                        "F-MISSING": "UNAVAILABLE"}
    assert files["F-MISSING"]["reason"] == "fault" and "Nie znaleziono" in files["F-MISSING"]["last_error"]
    assert (files["F-DEED"]["size"], files["F-DEED"]["detected_type"]) == (len(DEED), "application/pdf")

    docs = {d["source"]: d for d in documents(db_url)}
    decl_doc, letter_doc = docs[f"/{DECL_MAILBOX}"], docs[f"/{LETTER_MAILBOX}"]
    assert decl_doc["state"] == letter_doc["state"] == "DONE"
    assert (letter_doc["kind"], letter_doc["outcome"]) == ("CORRESPONDENCE", "CORRESPONDENCE")  # a letter, never a rejected declaration
    assert decl_doc["meta"]["files_by_reference"] == ["F-DEED"]
    assert letter_doc["meta"]["referenced_files"]["F-MISSING"]["state"] == "UNAVAILABLE"

    # the declaration: accepted (its file is there), the attachment listed as fetched by reference
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        decl = conn.execute(select(ebok_declaration)).mappings().one()
    assert decl["status"] == "ACCEPTED", decl["findings"]
    (att,) = decl_doc["evidence"]["attachments"]
    assert (att["file"], att["size"], att["by_reference"], att["file_id"], att["unavailable"]) == (
        "pelnomocnictwo.pdf", len(DEED), True, "F-DEED", False)
    shown = run_cli(cfg, "review", "show", str(decl["id"]), env=env).stdout
    assert "1. pelnomocnictwo.pdf — application/pdf, 16,0 KiB — Pełnomocnictwo" in shown
    assert "przekazany przez odniesienie (repozytorium plików ePUAP, pobrany; fileId F-DEED)" in shown
    assert "nie jest objęty podpisem" in shown
    r = run_cli(cfg, "review", "export-attachments", str(decl["id"]), "--to", str(tmp / "export"), env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp / "export" / f"deklaracja-{decl['id']}" / "zalaczniki" / "pelnomocnictwo.pdf").read_bytes() == DEED

    # the letter: handed over with every file it could get, byte-equal; the missing one named
    folder = tmp / "outbox" / "2025-03-10" / str(letter_doc["id"])
    assert (folder / "dokument.xml").read_bytes() == raw["letter"]
    assert (folder / "zalaczniki" / "zdjecie.png").read_bytes() == PHOTO
    assert (folder / "zalaczniki" / "skan.pdf").read_bytes() == SCAN
    assert (folder / "zalaczniki" / "wniosek.pdf").is_file()
    assert sorted(p.name for p in (folder / "zalaczniki").iterdir()) == ["skan.pdf", "wniosek.pdf", "zdjecie.png"]
    meta = json.loads((folder / "metadane.json").read_text(encoding="utf-8"))
    by_name = {a["original_name"]: a for a in meta["attachments"]}
    assert by_name["zdjecie.png"]["by_reference"] is True and "by_reference" not in by_name["wniosek.pdf"]
    assert by_name["brakujacy.pdf"]["unavailable"] is True and by_name["brakujacy.pdf"]["file"] is None
    (missing,) = [f for f in meta["findings"] if f["code"] == "ATTACHMENT_UNAVAILABLE"]
    assert missing["severity"] == "info" and "brakujacy.pdf" in missing["message"] and "F-MISSING" in missing["message"]
    assert missing["field"] == "Zalaczniki/Zalacznik[4]"
    r = run_cli(cfg, "correspondence", "export", str(letter_doc["id"]), "--to", str(tmp / "export2"), env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp / "export2" / str(letter_doc["id"]) / "zalaczniki" / "skan.pdf").read_bytes() == SCAN

    # the same documents delivered again (a crash before confirming, as ePUAP sees it): a
    # second run recognises them and downloads nothing
    requests_before = list(server.download_requests)
    server.enqueue(f"/{LETTER_MAILBOX}", raw["letter"], {**META, "dataNadania": FILED}, name="01-skarga.xml")
    server.enqueue(f"/{DECL_MAILBOX}", raw["decl"], {**META, "dataNadania": FILED}, name="01-deklaracja.xml")
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    assert server.download_requests == requests_before
    assert server.pending(f"/{LETTER_MAILBOX}") == [] and len(documents(db_url)) == 2
    # a reprocess reads what was stored: nothing is asked for either
    r = run_cli(cfg, "reprocess", "--id", str(decl_doc["id"]), "--id", str(letter_doc["id"]), env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "korespondencja (CORRESPONDENCE)" in r.stdout and "odrzucona" not in r.stdout, r.stdout
    assert server.download_requests == requests_before
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        assert conn.execute(select(ebok_declaration.c.status)).scalar_one() == "ACCEPTED"


def test_a_second_document_linking_the_same_file_gets_it_without_a_request(setup, db_url, pki):
    cfg, env, server, tmp, raw = setup
    assert run_cli(cfg, "run", "--once", env=env).returncode == 0
    requests_before = list(server.download_requests)
    again = letter_linking(pki, [], by_reference("to-samo-zdjecie.png", "image/png", "F-PHOTO"))
    server.enqueue(f"/{LETTER_MAILBOX}", again, {**META, "dataNadania": FILED}, name="02-ponownie.xml")
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    assert server.download_requests == requests_before  # the repository would refuse it anyway
    second = documents(db_url)[-1]
    folder = tmp / "outbox" / "2025-03-10" / str(second["id"])
    assert (folder / "zalaczniki" / "to-samo-zdjecie.png").read_bytes() == PHOTO
    assert not [f for f in second["findings"] if f["code"] == "ATTACHMENT_UNAVAILABLE"]


def test_a_declaration_whose_file_cannot_be_had_goes_to_review_and_the_mailbox_drains(setup, db_url, pki):
    cfg, env, server, tmp, raw = setup
    server.downloaded["F-DEED"] = 1  # already taken (e.g. by another system with the same keys)
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    assert server.pending(f"/{DECL_MAILBOX}") == []
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        decl = conn.execute(select(ebok_declaration)).mappings().one()
    assert decl["status"] == "NEEDS_REVIEW"
    (f,) = [f for f in decl["findings"] if f["code"] == "ATTACHMENT_UNAVAILABLE"]
    assert f["severity"] == "warning" and "pelnomocnictwo.pdf" in f["message"] and "już pobrany" in f["message"]
    shown = run_cli(cfg, "review", "show", str(decl["id"]), env=env).stdout
    assert "[ATTACHMENT_UNAVAILABLE]" in shown and "nie pobrano" in shown


def test_a_repository_down_keeps_the_document_in_the_mailbox_for_a_few_passes_then_gives_up(setup, db_url, keys, write_config):
    cfg, env, server, tmp, raw = setup
    server.faults.add("http500", "downloadFile", times=-1)
    text = cfg.read_text(encoding="utf-8").replace("[epuap]\n", "[epuap]\nfilerepo_max_passes = 2\n", 1)
    cfg.write_text(text, encoding="utf-8")
    r = run_cli(cfg, "pull", "--mailbox", f"/{DECL_MAILBOX}", env=env)
    assert r.returncode == 1  # the pass ended early: the document waits, unconfirmed
    assert [d.name for d in server.pending(f"/{DECL_MAILBOX}")] == ["01-deklaracja.xml"]
    (doc,) = documents(db_url)
    assert doc["state"] == "FETCHING"
    assert remote_files(db_url)["F-DEED"]["failed_passes"] == 1
    r = run_cli(cfg, "status", env=env)
    assert "czekają na załączniki z repozytorium ePUAP (FETCHING): 1" in r.stdout and "do pobrania 1" in r.stdout
    assert run_cli(cfg, "process", env=env).returncode == 0
    assert documents(db_url)[0]["state"] == "FETCHING"  # not processed while it waits
    # the second pass gives the file up: the document is released, confirmed and reviewed
    r = run_cli(cfg, "pull", "--mailbox", f"/{DECL_MAILBOX}", env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert server.pending(f"/{DECL_MAILBOX}") == [] and documents(db_url)[0]["state"] == "RECEIVED"
    assert remote_files(db_url)["F-DEED"]["state"] == "UNAVAILABLE" and remote_files(db_url)["F-DEED"]["reason"] == "unreachable"
    assert run_cli(cfg, "process", env=env).returncode == 0
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        decl = conn.execute(select(ebok_declaration)).mappings().one()
    assert decl["status"] == "NEEDS_REVIEW" and "ATTACHMENT_UNAVAILABLE" in {f["code"] for f in decl["findings"]}
    assert server.downloaded == {}  # the repository never handed it out


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["file_downloaded", "file_recorded", "released"])
def test_killed_between_download_store_and_confirm_then_restart_loses_nothing_and_fetches_nothing_twice(setup, db_url, checkpoint):
    cfg, env, server, tmp, raw = setup
    crashed = subprocess.run([sys.executable, str(ROOT / "tests" / "crash_cli.py"), checkpoint, "--config", str(cfg),
                              "pull", "--mailbox", f"/{DECL_MAILBOX}"], capture_output=True, text=True, env=env, timeout=120)
    assert crashed.returncode == 137, crashed.stderr[-3000:]
    assert server.downloaded == {"F-DEED": 1} and server.pending(f"/{DECL_MAILBOX}")  # handed out, not confirmed
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    assert server.download_requests.count("F-DEED") == 1  # never asked for again
    assert server.pending(f"/{DECL_MAILBOX}") == [] and len(server.confirmed(f"/{DECL_MAILBOX}")) == 1
    files = remote_files(db_url)
    assert files["F-DEED"]["state"] == "FETCHED" and files["F-DEED"]["attempts"] == 1
    decl_docs = [d for d in documents(db_url) if d["source"] == f"/{DECL_MAILBOX}"]
    assert len(decl_docs) == 1 and decl_docs[0]["state"] == "DONE"
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        assert conn.execute(select(ebok_declaration.c.status)).scalar_one() == "ACCEPTED"
    assert not list((tmp / "documents" / "notes").glob("*.json"))  # the crash's note was taken up and dropped
    key = files["F-DEED"]["storage_key"]
    assert (tmp / "documents" / key).read_bytes() == DEED


@pytest.fixture
def repository(epuap_double, keys, monkeypatch):
    """The double with one file ``X1`` in its repository, and the configuration of a client for it."""
    from worker.config import EpuapConfig

    server = epuap_double(None, mailboxes=["/czystyregion/deklaracje"])
    server.add_file("X1", b"%PDF-1.4 x", "x.pdf")
    monkeypatch.setenv("TEST_EPUAP_KEY_PASSWORD", keys.system_key_password)
    cfg = EpuapConfig(enabled=True, endpoint=server.url, filerepo_endpoint=server.filerepo_url, certificate=keys.system_certificate,
                      private_key=keys.system_key, private_key_password_env="TEST_EPUAP_KEY_PASSWORD",
                      response_certificate=keys.double_certificate, timeout_s=5.0)
    return server, cfg


def test_the_double_hands_a_file_out_once_and_refuses_unknown_ones(repository):
    from adapters.epuap.errors import EpuapFault
    from adapters.epuap.filerepo import FileRepoClient

    server, cfg = repository
    with FileRepoClient.for_config(cfg) as client:
        got = client.download("X1", "czystyregion")
        assert (got.content, got.filename, got.mime_type) == (b"%PDF-1.4 x", "x.pdf", "application/pdf")
        with pytest.raises(EpuapFault, match="już pobrany") as again:
            client.download("X1", "czystyregion")
        assert again.value.kod == -10 and again.value.operation == "downloadFile"
        with pytest.raises(EpuapFault, match="Nie znaleziono"):
            client.download("NOPE", "czystyregion")
        assert client.round_trips == 3
    # requests are signed with the system key, answers verified against the pinned certificate
    assert all(b"BinarySecurityToken" in r.body for r in server.requests if r.operation == "downloadFile")


def windows_zip(entries: dict[str, bytes]) -> bytes:
    """A ZIP as Windows' own tools write it: names in CP852 without the UTF-8 flag."""
    buf = io.BytesIO()
    placeholders = {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, (name, data) in enumerate(entries.items()):
            encoded = name.encode("cp852")
            placeholder = (f"~{i:03d}" + "_" * len(encoded))[: len(encoded)] if len(encoded) >= 4 else name
            placeholders[placeholder.encode()] = encoded
            z.writestr(placeholder, data)
    raw = buf.getvalue()
    for placeholder, encoded in placeholders.items():
        raw = raw.replace(placeholder, encoded)
    return raw


def test_zip_attachments_come_out_unpacked_with_their_polish_names(setup, db_url, pki):
    cfg, env, server, tmp, raw = setup
    inline_zip = windows_zip({"Oświadczenie żółte.pdf": DEED, "skany/strona ąę 1.png": PHOTO, "../poza.txt": b"x"})
    fetched_zip = windows_zip({"Pełnomocnictwo ŁÓDŹ.pdf": SCAN})
    server.add_file("F-ZIP", fetched_zip, "dokumenty.zip", "application/zip")
    complaint = letter_linking(pki, [("załączniki.zip", "application/zip", inline_zip)],
                               by_reference("dokumenty.zip", "application/zip", "F-ZIP"))
    server.enqueue(f"/{LETTER_MAILBOX}", complaint, {**META, "dataNadania": FILED}, name="02-zip.xml")
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    doc = next(d for d in documents(db_url) if d["sha256"] == hashlib.sha256(complaint).hexdigest())
    folder = tmp / "outbox" / "2025-03-10" / str(doc["id"]) / "zalaczniki"
    assert (folder / "załączniki.zip").read_bytes() == inline_zip
    assert (folder / "załączniki-rozpakowany" / "Oświadczenie żółte.pdf").read_bytes() == DEED
    assert (folder / "załączniki-rozpakowany" / "skany" / "strona ąę 1.png").read_bytes() == PHOTO
    assert (folder / "dokumenty-rozpakowany" / "Pełnomocnictwo ŁÓDŹ.pdf").read_bytes() == SCAN
    assert not list(tmp.rglob("poza.txt"))
    meta = json.loads((folder.parent / "metadane.json").read_text(encoding="utf-8"))
    unpacked = {u["name"]: u for a in meta["attachments"] for u in a.get("unpacked") or []}
    assert "zawiera „..”" in unpacked["../poza.txt"]["problem"] and unpacked["../poza.txt"]["file"] is None
    assert unpacked["Oświadczenie żółte.pdf"]["file"] == "zalaczniki/załączniki-rozpakowany/Oświadczenie żółte.pdf"
    shown = run_cli(cfg, "correspondence", "show", str(doc["id"]), env=env).stdout
    assert "w archiwum: Oświadczenie żółte.pdf → załączniki-rozpakowany/Oświadczenie żółte.pdf" in shown
    assert "w archiwum: ../poza.txt → (nie rozpakowano) — pominięto: nazwa wychodzi poza archiwum" in shown
    r = run_cli(cfg, "correspondence", "export", str(doc["id"]), "--to", str(tmp / "eksport"), env=env)
    assert r.returncode == 0, r.stderr
    out = tmp / "eksport" / str(doc["id"]) / "zalaczniki"
    assert (out / "dokumenty-rozpakowany" / "Pełnomocnictwo ŁÓDŹ.pdf").read_bytes() == SCAN


def export_package(mailbox: str, name: str, raw: bytes) -> bytes:
    """ePUAP's mailbox export package holding one document ``name`` of ``mailbox``
    (``podmiot/skrytka``), filed when the signed samples are."""
    when = xmlsig_filed().astimezone(WARSAW)
    desc = ('<Dokumenty><Dokument><DanePodmiotu><Identyfikator>mieszkaniec01</Identyfikator><TypOsoby>F</TypOsoby>'
            "<ImieSkrot/><NazwiskoNazwa/><Nip/><Pesel/><Regon/><Zgoda>true</Zgoda></DanePodmiotu>"
            "<DaneNadawcy><Uzytkownik>mieszkaniec01</Uzytkownik><System/></DaneNadawcy>"
            f"<DataNadania>{when:%d.%m.%YT%H:%M:%S}.000</DataNadania><NazwaSkrytki>{mailbox.rsplit('/', 1)[-1]}</NazwaSkrytki>"
            f"<AdresSkrytki>/{mailbox}</AdresSkrytki><AdresOdpowiedzi>/mieszkaniec01/SkrytkaESP</AdresOdpowiedzi>"
            f"<DaneDodatkowe/><NazwaPliku>{name}</NazwaPliku><SciezkaWArchiwum>{name}</SciezkaWArchiwum>"
            "</Dokument></Dokumenty>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("Deskryptor.xml", desc)
        z.writestr(name, raw)
    return buf.getvalue()


def test_an_imported_document_gets_its_files_and_the_pull_delivering_it_fetches_nothing_again(setup, db_url):
    cfg, env, server, tmp, raw = setup
    (tmp / "paczka.zip").write_bytes(export_package(DECL_MAILBOX, "deklaracja.xml", raw["decl"]))
    r = run_cli(cfg, "import-package", str(tmp / "paczka.zip"), "--mailbox", f"/{DECL_MAILBOX}", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "zapisano jako dokument #1" in r.stdout and "załączniki przekazane przez odniesienie: 1" in r.stdout
    assert server.downloaded == {"F-DEED": 1} and documents(db_url)[0]["state"] == "RECEIVED"
    assert documents(db_url)[0]["filed_at"] == xmlsig_filed()
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    assert server.download_requests.count("F-DEED") == 1
    assert server.pending(f"/{DECL_MAILBOX}") == [] and len(server.confirmed(f"/{DECL_MAILBOX}")) == 1
    decl_docs = [d for d in documents(db_url) if d["source"] == f"/{DECL_MAILBOX}"]
    assert len(decl_docs) == 1 and decl_docs[0]["state"] == "DONE"
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        assert conn.execute(select(ebok_declaration.c.status)).scalars().all() == ["ACCEPTED"]


def test_a_dropped_answer_is_retried_within_the_pass_and_the_file_fetched_once(setup, db_url):
    cfg, env, server, tmp, raw = setup
    server.faults.add("drop", "downloadFile", times=1)  # the connection cut before any answer: not handed out
    r = run_cli(cfg, "pull", "--mailbox", f"/{DECL_MAILBOX}", env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert [r.fault for r in server.requests if r.operation == "downloadFile"] == ["drop", None]
    assert server.download_requests == ["F-DEED"] and server.downloaded == {"F-DEED": 1}
    f = remote_files(db_url)["F-DEED"]
    assert (f["state"], f["attempts"], f["failed_passes"]) == ("FETCHED", 2, 0)
    assert server.pending(f"/{DECL_MAILBOX}") == []


def test_a_file_above_the_size_limit_is_unavailable_without_blocking(setup, db_url):
    cfg, env, server, tmp, raw = setup
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[epuap]\n", "[epuap]\nfilerepo_max_file_bytes = 4096\n", 1),
                   encoding="utf-8")
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    f = remote_files(db_url)["F-DEED"]
    assert (f["state"], f["reason"], f["attempts"]) == ("UNAVAILABLE", "too_large", 1)  # not asked for again
    assert "filerepo_max_file_bytes" in f["last_error"]
    assert server.pending(f"/{DECL_MAILBOX}") == []
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        decl = conn.execute(select(ebok_declaration)).mappings().one()
    assert decl["status"] == "NEEDS_REVIEW"
    (finding,) = [x for x in decl["findings"] if x["code"] == "ATTACHMENT_UNAVAILABLE"]
    assert "większy niż dopuszczalny" in finding["message"]


def test_requests_answers_and_descriptors_match_the_published_schemas(repository, shared_dir):
    """The project writes its own WSDL/XSD; what it sends and what the double answers are
    valid against the union's reference copies of ePUAP's published files."""
    from lxml import etree

    from adapters.epuap.filerepo import FileRepoClient
    from adapters.epuap.wssec import SOAP11

    reference = shared_dir / "reference" / "epuap"
    filerepo = etree.XMLSchema(etree.parse(str(reference / "filerepocore.xsd")))
    server, cfg = repository
    answers = []
    with FileRepoClient.for_config(cfg) as client:
        post = client.transport.post
        client.transport.post = lambda *a: answers.append(post(*a)) or answers[-1]  # type: ignore[method-assign]
        client.download("X1", "czystyregion")
    (request,) = [r for r in server.requests if r.operation == "downloadFile"]
    payload = etree.fromstring(request.body).find(f"{{{SOAP11}}}Body")[0]
    assert filerepo.validate(payload), filerepo.error_log
    (answer,) = answers
    data_document = etree.fromstring(answer.content).find(f"{{{SOAP11}}}Body")[0]
    assert etree.QName(data_document).localname == "DataDocument" and filerepo.validate(data_document), filerepo.error_log
    package = etree.XMLSchema(etree.parse(str(reference / "EmergencyDownload.xsd")))
    ours = etree.XMLSchema(etree.parse(str(ROOT / "schemas" / "epuap" / "EmergencyDownload.xsd")))
    from tests.test_import_package import descriptor, dokument

    good = etree.fromstring(descriptor(dokument("a.xml", {"dataNadania": FILED})))
    bad = etree.fromstring(descriptor(dokument("a.xml", {"dataNadania": FILED}, drop="NazwaPliku")))
    assert package.validate(good) and ours.validate(good)
    assert not package.validate(bad) and not ours.validate(bad)


def test_an_imported_letter_with_files_by_reference_is_correspondence(setup, db_url):
    """#21's import-package path meets #23's outcome: a letter imported from the mailbox
    export package gets its files and is reported as correspondence — processing, the
    counters, correspondence list, the hand-over."""
    cfg, env, server, tmp, raw = setup
    (tmp / "paczka.zip").write_bytes(export_package(LETTER_MAILBOX, "skarga.xml", raw["letter"]))
    r = run_cli(cfg, "import-package", str(tmp / "paczka.zip"), "--mailbox", f"/{LETTER_MAILBOX}", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli(cfg, "process", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "Przetworzono: 1, błędy techniczne: 0", r.stdout + r.stderr
    r = run_cli(cfg, "run", "--once", env=env)  # the pull delivering the same letter (one document) and the hand-over
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    (doc,) = [d for d in documents(db_url) if d["source"] == f"/{LETTER_MAILBOX}"]
    assert (doc["kind"], doc["outcome"]) == ("CORRESPONDENCE", "CORRESPONDENCE") and doc["meta"]["import"]["package"] == "paczka.zip"
    status = json.loads(run_cli(cfg, "status", "--json", env=env).stdout)
    assert status["processed"]["CORRESPONDENCE"] == 1 and status["counters"]["processed"]["CORRESPONDENCE"] == 1
    assert "REJECTED" not in status["processed"] and status["correspondence"]["total"] == 1
    listed = json.loads(run_cli(cfg, "correspondence", "list", "--json", env=env).stdout)
    assert [i["document_id"] for i in listed] == [doc["id"]] and listed[0]["handed_over_at"] is not None
