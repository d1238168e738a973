"""Correspondence reaches the office: letters pulled over real HTTP from the ePUAP double
are handed over to the outbox (one folder each, exactly once, also across a crash), listed,
shown and exported by the command line; attachments come from the verified content only,
under safe names; an unwritable outbox is a retried technical state shown by ``status``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, select

from adapters import outbox as outbox_mod
from adapters.db.tables import worker_correspondence, worker_document
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.sigtools.fixtures import SIGNED_AT
from tests.sigtools.pki import ALICJA, TestPKI
from tests.sigtools.xmlsig import ep_signature, pz_signature, sign
from worker import config as config_mod
from worker import correspondence
from worker.app import App
from worker.domain.attachments import MAX_NAME_CHARS, STR_NS, extract

FILED = "2025-03-10T10:00:00.000+01:00"  # 09:00 UTC, half an hour after SIGNED_AT
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
COMPLAINT = "Skarga: od trzech tygodni nie odebrano odpadów segregowanych spod budynku przy ul. Lipowej 7."


def letter(body: str, attachments: list[tuple[str, str, bytes]] = (), *, title: str = "Pismo ogólne do podmiotu publicznego") -> str:
    parts = "".join(
        f'<str:Zalacznik nazwaPliku="{name}" kodowanie="base64" format="{fmt}">'
        f"<str:DaneZalacznika>{base64.b64encode(data).decode()}</str:DaneZalacznika>"
        f"<str:OpisZalacznika>opis {i}</str:OpisZalacznika></str:Zalacznik>"
        for i, (name, fmt, data) in enumerate(attachments, start=1)
    )
    zal = f"<str:Zalaczniki>{parts}</str:Zalaczniki>" if attachments else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2009/11/16/1/" xmlns:str="{STR_NS}">
  <wnio:DaneDokumentu><str:Naglowek><str:NazwaDokumentu>{title}</str:NazwaDokumentu></str:Naglowek></wnio:DaneDokumentu>
  <wnio:TrescDokumentu format="text/xml" kodowanie="XML">
    <wnio:RodzajWniosku>Skarga</wnio:RodzajWniosku>
    <wnio:Wartosc>{body}</wnio:Wartosc>
    {zal}
  </wnio:TrescDokumentu>
</wnio:Dokument>"""


def signed_letter(pki: TestPKI, body: str, attachments=(), *, smuggled: bytes | None = None) -> bytes:
    raw = sign(letter(body, attachments), pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)
    if smuggled is not None:  # an attachment placed outside what the signature covers
        extra = (f'<ds:Object><str:Zalaczniki xmlns:str="{STR_NS}"><str:Zalacznik nazwaPliku="wstawiony.pdf" kodowanie="base64" '
                 f'format="application/pdf"><str:DaneZalacznika>{base64.b64encode(smuggled).decode()}</str:DaneZalacznika>'
                 f"</str:Zalacznik></str:Zalaczniki></ds:Object></ds:Signature>").encode()
        raw = raw.replace(b"</ds:Signature>", extra, 1)
    return raw


META = {
    "nadawca_uzytkownik": "mieszkaniec01",
    "dataNadania": FILED,
    "adresOdpowiedzi": "/mieszkaniec01/SkrytkaESP",
    "czyTestowe": False,
    "typPliku": "application/xml",
    "danePodmiotu": {"identyfikator": "mieszkaniec01", "typOsoby": "F", "imieSkrot": "Alicja", "nazwiskoNazwa": "Wróblewska", "zgoda": True},
}


@pytest.fixture
def letters(pki):
    general = signed_letter(pki, "Proszę o dodatkowy odbiór odpadów wielkogabarytowych.",
                            [("wniosek.pdf", "application/pdf", PDF), ("zdjecie.png", "image/png", PNG)],
                            smuggled=b"%PDF-1.4 smuggled")
    complaint = letter(COMPLAINT).encode()  # unsigned
    return general, complaint


@pytest.fixture
def setup(write_config, keys, epuap_double, tmp_path, pki, trust_files, letters):
    queue = tmp_path / "queue" / "czystyregion" / "korespondencja"
    queue.mkdir(parents=True)
    for name, raw in zip(("01-pismo.xml", "02-skarga.xml"), letters, strict=False):
        (queue / name).write_bytes(raw)
        (queue / f"{name}.meta.json").write_text(json.dumps(META), encoding="utf-8")
    server = epuap_double(tmp_path / "queue")
    anchors, seal = trust_files
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/korespondencja"),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
        correspondence={"outbox": "outbox"},
    )
    env = epuap_env(keys)
    return cfg, env, server, tmp_path


def cli(cfg, env, *args):
    return run_cli(cfg, *args, env=env)


def folders(outbox: Path) -> list[Path]:
    return sorted(p for day in outbox.iterdir() if day.is_dir() for p in day.iterdir())


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_letters_from_the_double_reach_the_outbox_once(setup, db_url, letters):
    cfg, env, server, tmp = setup
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    assert ALICJA.pesel not in r.stdout and "Wróblewska" not in r.stdout and "Lipowej" not in r.stdout
    outbox = tmp / "outbox"
    found = folders(outbox)
    assert [p.parent.name for p in found] == ["2025-03-10", "2025-03-10"]  # the filing day in Polish time
    engine = create_engine(db_url)
    with engine.connect() as conn:
        docs = conn.execute(select(worker_document.c.id, worker_document.c.sha256).order_by(worker_document.c.id)).all()
        rows = conn.execute(select(worker_correspondence).order_by(worker_correspondence.c.document_id)).mappings().all()
    assert [p.name for p in found] == [str(d.id) for d in docs]
    assert [(r["document_id"], r["folder"], r["handed_over_at"] is not None) for r in rows] == [
        (d.id, f"2025-03-10/{d.id}", True) for d in docs
    ]

    general, complaint = (files_of(p) for p in found)
    assert set(general) == {"dokument.xml", "metadane.json", "zalaczniki/wniosek.pdf", "zalaczniki/zdjecie.png"}
    assert general["dokument.xml"] == letters[0]  # the bytes exactly as received
    assert b"wstawiony.pdf" in letters[0]
    assert general["zalaczniki/wniosek.pdf"] == PDF and general["zalaczniki/zdjecie.png"] == PNG
    meta = json.loads(general["metadane.json"])
    assert meta["document_id"] == docs[0].id and meta["mailbox"] == "/czystyregion/korespondencja"
    assert meta["filed_at"] == "2025-03-10T10:00:00+01:00" and meta["adresOdpowiedzi"] == "/mieszkaniec01/SkrytkaESP"
    assert meta["danePodmiotu"]["nazwiskoNazwa"] == "Wróblewska" and meta["typPliku"] == "application/xml"
    assert meta["sha256"] == docs[0].sha256
    assert meta["signature"]["status"] == "VALID" and meta["signature"]["kind"] == "TRUSTED_PROFILE"
    assert meta["signature"]["signer"] == "Alicja Wróblewska"
    assert [(a["file"], a["declared_type"], a["detected_type"], a["size"]) for a in meta["attachments"]] == [
        ("zalaczniki/wniosek.pdf", "application/pdf", "application/pdf", len(PDF)),
        ("zalaczniki/zdjecie.png", "image/png", "image/png", len(PNG)),
    ]  # the attachment smuggled outside the signed content is not there
    assert set(complaint) == {"dokument.xml", "metadane.json"} and complaint["dokument.xml"] == letters[1]
    cmeta = json.loads(complaint["metadane.json"])
    assert cmeta["signature"]["status"] == "INVALID" and cmeta["attachments"] == []
    assert not [p for p in (outbox / "2025-03-10").iterdir() if p.name.startswith(".")]  # no temporary folders left

    # a re-run, and the same letters delivered again: nothing new, nothing rewritten
    before = {p: p.stat().st_mtime_ns for p in outbox.rglob("*")}
    server.load_tree(tmp / "queue")
    r2 = cli(cfg, env, "run", "--once")
    assert r2.returncode == 0, r2.stderr
    assert {p: p.stat().st_mtime_ns for p in outbox.rglob("*")} == before
    with engine.connect() as conn:
        assert len(conn.execute(select(worker_correspondence)).all()) == 2
        assert len(conn.execute(select(worker_document)).all()) == 2

    s = json.loads(cli(cfg, env, "status", "--json").stdout)
    assert s["correspondence"]["total"] == 2 and s["correspondence"]["pending"] == 0 and s["correspondence"]["handed_over"] == 2
    assert s["correspondence"]["outbox_error"] is None

    listed = cli(cfg, env, "correspondence", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [(i["document_id"], i["attachments"], i["folder"]) for i in items] == [
        (docs[0].id, 2, f"2025-03-10/{docs[0].id}"), (docs[1].id, 0, f"2025-03-10/{docs[1].id}")
    ]
    # --filed-since: the filing day (--since is the day the worker took it in, as in reprocess)
    human = cli(cfg, env, "correspondence", "list", "--filed-since", "2025-03-10").stdout
    assert "złożone 2025-03-10 10:00" in human and "przekazano" in human  # Polish local time
    assert "Brak korespondencji" in cli(cfg, env, "correspondence", "list", "--filed-since", "2025-03-11").stdout
    assert "złożone 2025-03-10 10:00" in cli(cfg, env, "correspondence", "list", "--since", "2025-03-11").stdout  # received today
    assert "Brak korespondencji" in cli(cfg, env, "correspondence", "list", "--until", "2025-03-11").stdout

    shown = cli(cfg, env, "correspondence", "show", str(docs[1].id))
    assert shown.returncode == 0, shown.stderr
    assert COMPLAINT in shown.stdout and "niepodpisana" in shown.stdout
    shown = cli(cfg, env, "correspondence", "show", str(docs[0].id)).stdout
    assert "Alicja Wróblewska" in shown and "wniosek.pdf — application/pdf" in shown and "Załączniki: 2" in shown

    unknown = cli(cfg, env, "correspondence", "show", "999")
    assert unknown.returncode == 2 and "nie ma dokumentu o id 999" in unknown.stderr

    export = cli(cfg, env, "correspondence", "export", str(docs[0].id), "--to", str(tmp / "eksport"))
    assert export.returncode == 0, export.stderr
    assert files_of(tmp / "eksport" / str(docs[0].id)) == general
    again = cli(cfg, env, "correspondence", "export", str(docs[0].id), "--to", str(tmp / "eksport"))
    assert again.returncode == 2 and "niczego nie nadpisano" in again.stderr
    engine.dispose()


def test_unwritable_outbox_is_a_retried_state_shown_by_status(setup):
    cfg, env, server, tmp = setup
    # the outbox refuses the items' day folder (taken by a file); an outbox path that is no
    # folder at all is refused at start-up instead (test_run_refuses_an_outbox_that_is_a_file)
    (tmp / "outbox").mkdir()
    (tmp / "outbox" / "2025-03-10").write_text("not a folder")
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 1
    assert "correspondence.outbox_error" in r.stdout
    s = json.loads(cli(cfg, env, "status", "--json").stdout)
    assert s["correspondence"]["pending"] == 2 and s["correspondence"]["handed_over"] == 0
    assert "nie można zapisać w folderze" in s["correspondence"]["outbox_error"] and "errno 17: plik już istnieje" in s["correspondence"]["outbox_error"]
    assert "UWAGA: nie można zapisać do skrzynki biura" in cli(cfg, env, "status").stdout
    assert "czeka na przekazanie" in cli(cfg, env, "correspondence", "list").stdout or "NIE przekazano" in cli(cfg, env, "correspondence", "list").stdout

    (tmp / "outbox" / "2025-03-10").unlink()
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 0, r.stderr
    assert len(folders(tmp / "outbox")) == 2
    s = json.loads(cli(cfg, env, "status", "--json").stdout)
    assert s["correspondence"]["pending"] == 0 and s["correspondence"]["handed_over"] == 2 and s["correspondence"]["outbox_error"] is None


def test_run_refuses_an_outbox_that_is_a_file(setup):
    cfg, env, server, tmp = setup
    (tmp / "outbox").write_text("not a folder")
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"ebok-worker: correspondence.outbox: {tmp / 'outbox'} nie jest folderem\n"
    assert server.pending("/czystyregion/korespondencja")  # nothing was pulled


# --- crashes: a real process killed (os._exit) at a named point ---------------------------

CRASHER = """
import os, sys
from adapters import outbox
from worker import config, correspondence
from worker.app import App
point = sys.argv[2]
correspondence._checkpoint = outbox._checkpoint = lambda name: os._exit(137) if name == point else None
correspondence.hand_over_pending(App(config.load(sys.argv[1])))
"""


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["folder_written", "folder_built"])
def test_a_crash_during_the_hand_over_leaves_exactly_one_folder(setup, db_url, checkpoint):
    cfg, env, server, tmp = setup
    assert cli(cfg, env, "pull").returncode == 0
    assert cli(cfg, env, "process").returncode == 0  # processing alone hands nothing over
    outbox = tmp / "outbox"
    assert not outbox.exists()
    crashed = subprocess.run([sys.executable, "-c", CRASHER, str(cfg), checkpoint], capture_output=True, text=True, env=env, timeout=300,
                             cwd=Path(__file__).resolve().parent.parent)
    assert crashed.returncode == 137, crashed.stderr
    day = outbox / "2025-03-10"
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(worker_correspondence)).all() == []  # nothing recorded
    if checkpoint == "folder_written":  # the first folder is complete, not recorded
        assert [p.name for p in day.iterdir()] == ["1"] and (day / "1" / "metadane.json").is_file()
    else:  # only a hidden temporary folder
        assert [p.name.startswith(".tmp-1-") for p in day.iterdir()] == [True]

    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    recognised = [e["recognised"] for e in events if e["event"] == "correspondence.handed_over"]
    assert recognised == ([True, False] if checkpoint == "folder_written" else [False, False])
    assert sorted(p.name for p in day.iterdir()) == ["1", "2"]  # exactly one folder each, no leftovers
    assert set(files_of(day / "1")) == {"dokument.xml", "metadane.json", "zalaczniki/wniosek.pdf", "zalaczniki/zdjecie.png"}
    with engine.connect() as conn:
        rows = conn.execute(select(worker_correspondence.c.document_id, worker_correspondence.c.handed_over_at)).all()
    assert sorted(r.document_id for r in rows if r.handed_over_at) == [1, 2]
    engine.dispose()


# --- in process -----------------------------------------------------------------------------


@pytest.fixture
def app(db_url, tmp_path, trust_files, pki, letters):
    anchors, seal = trust_files
    cfg = config_mod.from_dict(
        {
            "database": {"url": db_url},
            "storage": {"path": "documents"},
            "signatures": {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)]},
            "correspondence": {"outbox": "outbox"},
        },
        base=tmp_path,
    )
    application = App(cfg)
    for i, raw in enumerate(letters):
        application.intake.store(channel="EPUAP", source_ref=f"/czystyregion/korespondencja#{i}", raw=raw,
                                 filed_at=datetime.fromisoformat(FILED), metadata=dict(META), mailbox="/czystyregion/korespondencja")
    report = application.processor.run_pending()
    assert report.processed == 2
    yield application
    application.engine.dispose()


def test_a_folder_of_other_content_is_never_overwritten(app):
    with app.engine.connect() as conn:
        first = conn.execute(select(worker_document.c.id).order_by(worker_document.c.id)).scalars().first()
    clash = app.config.correspondence.outbox / "2025-03-10" / str(first)
    clash.mkdir(parents=True)
    (clash / "metadane.json").write_text('{"document_id": 999}')
    report = correspondence.hand_over_pending(app)
    assert report.failed == 1 and report.handed_over == 1 and "niczego nie nadpisano" in report.last_error
    assert (clash / "metadane.json").read_text() == '{"document_id": 999}'
    with app.engine.connect() as conn:
        s = correspondence.status_counts(app, conn)
    assert s["pending"] == 1 and s["handed_over"] == 1 and "niczego nie nadpisano" in s["outbox_error"]


# --- hostile attachment names ---------------------------------------------------------------

HOSTILE = ["../../etc/passwd", "CON", "x" * 300 + ".pdf", "list\nnowy.pdf", "..", "a/b\\c.pdf", "nul.txt", "wniosek.pdf", "WNIOSEK.pdf",
           "faktura\u202efdp.exe"]


def test_hostile_attachment_names_become_safe_names(tmp_path):
    root = etree.fromstring(letter("x", [(n.replace("\n", "&#10;"), "application/pdf", PDF) for n in HOSTILE]).encode())
    atts = extract(root)
    names = [a.name for a in atts]
    assert names[0] == "passwd" and names[1] == "_CON" and names[6] == "_nul.txt"
    assert names[3] == "list_nowy.pdf" and names[4] == "zalacznik-5" and names[5] == "c.pdf"
    assert len(names[2]) <= MAX_NAME_CHARS and names[2].endswith(".pdf")
    assert names[7:9] == ["wniosek.pdf", "WNIOSEK-2.pdf"]  # duplicates numbered, also by case
    assert names[9] == "faktura_fdp.exe"  # no right-to-left override hiding the real extension
    assert all("/" not in n and "\\" not in n and not any(ord(c) < 32 for c in n) and not n.startswith(".") for n in names)
    assert [a.original_name for a in atts][3] == "list\nnowy.pdf"
    written = outbox_mod.write_folder(tmp_path / "out", "2025-03-10/1", {f"zalaczniki/{n}": b"%PDF-" for n in names})
    assert written.created
    assert sorted(p.name for p in (tmp_path / "out" / "2025-03-10" / "1" / "zalaczniki").iterdir()) == sorted(names)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and "zalaczniki" not in p.parts] == []


def test_broken_attachments_are_findings_not_crashes():
    broken = letter("x", [("a.pdf", "application/pdf", PNG), ("b.pdf", "application/pdf", PDF)]).replace(
        base64.b64encode(PDF).decode(), "@@@ nie base64 @@@")
    atts = extract(etree.fromstring(broken.encode()))
    assert atts[0].data == PNG and atts[0].name == "a.png" and "nie zgadza się" in atts[0].problem
    assert atts[1].data is None and "base64" in atts[1].problem
    big = extract(etree.fromstring(letter("x", [("c.pdf", "application/pdf", PDF * 100)]).encode()), max_bytes=1000)
    assert big[0].data is None and "większy" in big[0].problem


@pytest.mark.parametrize("include", [False, True])
def test_test_submissions_are_handed_over_only_when_asked(db_url, tmp_path, include):
    cfg = config_mod.from_dict(
        {"database": {"url": db_url}, "storage": {"path": "documents"},
         "correspondence": {"outbox": "outbox", "include_test_documents": include}},
        base=tmp_path,
    )
    application = App(cfg)
    try:
        application.intake.store(channel="EPUAP", source_ref="/czystyregion/korespondencja#t", raw=letter("próba").encode(),
                                 filed_at=datetime.fromisoformat(FILED), metadata=dict(META, czyTestowe=True), mailbox="/czystyregion/korespondencja")
        application.processor.run_pending()
        report = correspondence.hand_over_pending(application)
        with application.engine.connect() as conn:
            counts = correspondence.status_counts(application, conn)
    finally:
        application.engine.dispose()
    assert report.handed_over == (1 if include else 0)
    assert (counts["pending"], counts["handed_over"]) == (0, 1 if include else 0)
    if include:
        (folder,) = folders(tmp_path / "outbox")
        assert json.loads((folder / "metadane.json").read_text(encoding="utf-8"))["test"] is True
    else:
        assert not (tmp_path / "outbox").exists()


@pytest.mark.parametrize("group_readable, dirs, files", [(False, 0o700, 0o600), (True, 0o750, 0o640)])
def test_outbox_folders_are_never_readable_by_others(tmp_path, group_readable, dirs, files):
    # the folders hold personal data: o-rwx whatever the umask (spec/operations.md; they
    # were 0755/0644 under a umask of 022), readable by the outbox folder's group only when
    # correspondence.outbox_group_readable says so (the office's document system)
    old = os.umask(0o022)
    try:
        written = outbox_mod.write_folder(tmp_path / "out", "2025-03-10/7", {"dokument.xml": b"<a/>", "zalaczniki/a.pdf": PDF},
                                          group_readable=group_readable)
    finally:
        os.umask(old)
    for folder in (tmp_path / "out", tmp_path / "out" / "2025-03-10", written.path, written.path / "zalaczniki"):
        assert (folder.stat().st_mode & 0o777) == dirs, folder
    for name in ("dokument.xml", "zalaczniki/a.pdf"):
        assert ((written.path / name).stat().st_mode & 0o777) == files, name
    old = os.umask(0o077)  # a stricter umask does not take the group's read away when it is wanted
    try:
        other = outbox_mod.write_folder(tmp_path / "out", "2025-03-11/8", {"dokument.xml": b"<a/>"}, group_readable=group_readable)
    finally:
        os.umask(old)
    assert (other.path.stat().st_mode & 0o777, (other.path / "dokument.xml").stat().st_mode & 0o777) == (dirs, files)
    again = outbox_mod.write_folder(tmp_path / "out", "2025-03-10/7", {"dokument.xml": b"other"})
    assert not again.created and (written.path / "dokument.xml").read_bytes() == b"<a/>"
    with pytest.raises(outbox_mod.OutboxError):
        outbox_mod.write_folder(tmp_path / "out", "../escape", {"x": b""})
    with pytest.raises(outbox_mod.OutboxError):
        outbox_mod.write_folder(tmp_path / "out", "2025-03-10/8", {"../x": b""})
