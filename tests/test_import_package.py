"""``import-package``: ePUAP's mailbox export package (a ZIP with ``Deskryptor.xml``) taken
in through the durable intake. A package built from the double's mailbox: every document
stored once with its filing time and who imported it; a second import imports nothing; the
pull delivering the same documents (after, or before) stores and loads nothing twice and
confirms them. A hostile package: each bad entry refused with its reason, nothing written
outside storage, the rest imported, exit 1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from adapters.db.tables import ebok_declaration, worker_audit, worker_document
from adapters.epuap.double import load_folder
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from worker.domain.clock import WARSAW

DEMO = Path(__file__).resolve().parent.parent / "demo"
MAILBOX = "/czystyregion/deklaracje"
SAMPLES = DEMO / "epuap" / "czystyregion" / "deklaracje"


def filed(meta: dict) -> str:
    when = datetime.fromisoformat(meta["dataNadania"]).astimezone(WARSAW)
    return when.strftime("%d.%m.%Y") + "T" + when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def dokument(path: str, meta: dict, *, mailbox: str = MAILBOX, date: str | None = None, drop: str | None = None) -> str:
    fields = {
        "DanePodmiotu": "<DanePodmiotu><Identyfikator>mieszkaniec01</Identyfikator><TypOsoby>F</TypOsoby><ImieSkrot>Jan</ImieSkrot>"
                        "<NazwiskoNazwa>Testowy</NazwiskoNazwa><Nip></Nip><Pesel>44051401458</Pesel><Regon></Regon><Zgoda>true</Zgoda>"
                        "</DanePodmiotu>",
        "DaneNadawcy": "<DaneNadawcy><Uzytkownik>mieszkaniec01</Uzytkownik><System></System></DaneNadawcy>",
        "DataNadania": f"<DataNadania>{date or filed(meta)}</DataNadania>",
        "NazwaSkrytki": f"<NazwaSkrytki>{mailbox.split('/')[-1]}</NazwaSkrytki>",
        "AdresSkrytki": f"<AdresSkrytki>{mailbox}</AdresSkrytki>",
        "AdresOdpowiedzi": "<AdresOdpowiedzi>/mieszkaniec01/SkrytkaESP</AdresOdpowiedzi>",
        "DaneDodatkowe": "<DaneDodatkowe></DaneDodatkowe>",
        "NazwaPliku": f"<NazwaPliku>{path.rsplit('/', 1)[-1]}</NazwaPliku>",
        "SciezkaWArchiwum": f"<SciezkaWArchiwum>{path}</SciezkaWArchiwum>",
    }
    return "<Dokument>" + "".join(v for k, v in fields.items() if k != drop) + "</Dokument>"


def descriptor(*dokumenty: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><Dokumenty>' + "".join(dokumenty) + "</Dokumenty>").encode("utf-8")


def package_of(docs, *, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Deskryptor.xml", descriptor(*(dokument(f"dokumenty/{d.name}", d.meta) for d in docs)))
        for d in docs:
            z.writestr(f"dokumenty/{d.name}", d.content)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def setup(write_config, keys, epuap_double, tmp_path, trust_files):
    queue = tmp_path / "queue" / "czystyregion" / "deklaracje"
    queue.mkdir(parents=True)
    for p in SAMPLES.iterdir():
        (queue / p.name).write_bytes(p.read_bytes())
    server = epuap_double(tmp_path / "queue")
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje"),
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
    )
    return cfg, epuap_env(keys), server, tmp_path


def rows(db_url) -> list[dict]:
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        return [dict(r) for r in conn.execute(select(worker_document).order_by(worker_document.c.id)).mappings()]


def declarations(db_url) -> int:
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        return conn.execute(select(func.count()).select_from(ebok_declaration)).scalar_one()


def test_a_package_from_the_mailbox_is_imported_once_and_the_pull_delivering_it_changes_nothing(setup, db_url):
    cfg, env, server, tmp = setup
    docs = load_folder(SAMPLES)
    assert len(docs) == 6
    package = tmp / "eksport-skrytki.zip"
    package.write_bytes(package_of(docs[:4]))  # four of the six waiting documents
    r = run_cli(cfg, "import-package", str(package), "--mailbox", MAILBOX, "--user", "jkowalska", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("zapisano jako dokument #") == 4
    assert "Podsumowanie (/czystyregion/deklaracje): zapisane 4, już znane 0, odrzucone dokumenty 0" in r.stdout
    stored = rows(db_url)
    assert [(d["channel"], d["source"], d["state"]) for d in stored] == [("EPUAP", MAILBOX, "RECEIVED")] * 4
    by_sha = {d["sha256"]: d for d in stored}
    for doc in docs[:4]:
        row = by_sha[hashlib.sha256(doc.content).hexdigest()]
        assert row["filed_at"] == datetime.fromisoformat(doc.meta["dataNadania"])  # DataNadania, Polish time
        assert row["meta"]["import"]["user"] == "jkowalska" and row["meta"]["import"]["package"] == "eksport-skrytki.zip"
        assert (tmp / "documents" / row["storage_key"]).read_bytes() == doc.content
    with create_engine(db_url, poolclass=NullPool).connect() as conn:
        audit = conn.execute(select(worker_audit.c.actor, worker_audit.c.action).where(worker_audit.c.action == "IMPORTED")).all()
    assert audit == [("jkowalska", "IMPORTED")] * 4

    # the same package again: nothing new
    again = run_cli(cfg, "import-package", str(package), "--mailbox", MAILBOX, "--user", "jkowalska", env=env)
    assert again.returncode == 0 and again.stdout.count("już znany (dokument #") == 4
    assert "zapisane 0, już znane 4" in again.stdout and len(rows(db_url)) == 4

    # the pull delivers all six: the four are recognised and confirmed, two are new
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-2000:]
    assert server.pending(MAILBOX) == [] and len(server.confirmed(MAILBOX)) == 6
    assert len(rows(db_url)) == 6 and declarations(db_url) == 6
    assert {d["state"] for d in rows(db_url)} == {"DONE"}

    # a package of documents the pull delivered before: recognised, nothing stored or loaded twice
    late = tmp / "pozniej.zip"
    late.write_bytes(package_of(docs[4:]))
    r = run_cli(cfg, "import-package", str(late), "--mailbox", MAILBOX, env=env)
    assert r.returncode == 0 and "zapisane 0, już znane 2" in r.stdout
    assert len(rows(db_url)) == 6 and declarations(db_url) == 6


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info, target.encode()


def test_a_hostile_package_is_refused_entry_by_entry_and_the_rest_imported(setup, db_url, write_config, tmp_path):
    cfg, env, server, tmp = setup
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[epuap]\n", "[epuap]\npackage_max_entry_bytes = 4194304\n", 1),
                   encoding="utf-8")
    good, second, third = load_folder(SAMPLES)[:3]
    desc = descriptor(
        dokument("ok/" + good.name, good.meta),
        dokument("../poza.xml", good.meta),
        dokument("/etc/bezwzgledna.xml", good.meta),
        dokument("C:\\Windows\\dysk.xml", good.meta),
        dokument("link.xml", good.meta),
        dokument("dwa.xml", good.meta),
        dokument("bomba.xml", good.meta),
        dokument("duzy.xml", good.meta),
        dokument("brak.xml", good.meta),
        dokument("data.xml", second.meta, date="2025-03-10 10:00"),
        dokument("schemat.xml", second.meta, drop="DataNadania"),
        dokument("inna-skrytka.xml", third.meta, mailbox="/czystyregion/inne"),
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Deskryptor.xml", desc)
        z.writestr("ok/" + good.name, good.content)
        z.writestr("../poza.xml", good.content)
        z.writestr("/etc/bezwzgledna.xml", good.content)
        z.writestr("C:\\Windows\\dysk.xml", good.content)
        z.writestr(*_symlink("link.xml", "/etc/passwd"))
        z.writestr("dwa.xml", good.content)
        z.writestr("DWA.xml", second.content)
        z.writestr("bomba.xml", b"\0" * (3 * 1024 * 1024))  # 3 MiB of zeros: a ratio of ≈ 1000:1
        z.writestr("duzy.xml", os.urandom(5 * 1024 * 1024))  # above package_max_entry_bytes
        z.writestr("data.xml", second.content)
        z.writestr("schemat.xml", second.content)
        z.writestr("inna-skrytka.xml", third.content)
        z.writestr("../../poza-deskryptorem.sh", b"#!/bin/sh\nrm -rf /\n")
        z.writestr("notatka.txt", b"nie dokument")
    package = tmp / "wrogi.zip"
    package.write_bytes(buf.getvalue())
    before = {p for p in tmp_path.rglob("*")}
    r = run_cli(cfg, "import-package", str(package), "--mailbox", MAILBOX, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    lines = {line.split(":", 1)[0].strip(): line for line in out.splitlines() if line.startswith("  [")}
    assert "zapisano jako dokument #" in lines["[1] ok/" + good.name]
    expected = {
        "[2] ../poza.xml": "zawiera „..”",
        "[3] /etc/bezwzgledna.xml": "bezwzględna",
        "[4] C": "bezwzględna",
        "[5] link.xml": "dowiązanie symboliczne",
        "[6] dwa.xml": "powtórzona",
        "[7] bomba.xml": "bomba ZIP",
        "[8] duzy.xml": "package_max_entry_bytes",
        "[9] brak.xml": "nie ma pliku",
        "[10] data.xml": "DataNadania",
        "[11] schemat.xml": "EmergencyDownload.xsd",
        "[12] inna-skrytka.xml": "ze skrytki /czystyregion/inne",
    }
    for key, reason in expected.items():
        assert "ODRZUCONO" in lines[key] and reason in lines[key], (key, lines[key])
    assert "pozycja archiwum ../../poza-deskryptorem.sh: ODRZUCONO" in out
    assert "pozycja archiwum notatka.txt: pominięto" in out
    assert "zapisane 1, już znane 0, odrzucone dokumenty 11, odrzucone pozycje archiwum 1, pominięte pozycje 1" in out
    # one document stored; nothing written anywhere but the storage folder and the database
    assert [d["sha256"] for d in rows(db_url)] == [hashlib.sha256(good.content).hexdigest()]
    created = {p for p in tmp_path.rglob("*")} - before
    docs_dir = tmp / "documents"
    assert all(p == docs_dir or docs_dir in p.parents or "sqlite" in p.name for p in created), sorted(created)
    assert not (tmp.parent / "poza.xml").exists() and not Path("/etc/bezwzgledna.xml").exists()


@pytest.mark.parametrize("content, reason", [
    (b"to nie jest zip", "nie jest poprawnym archiwum ZIP"),
    (None, "nie ma pliku Deskryptor.xml"),
    (b"descriptor:<Dokumenty><Dokument>", "nie jest poprawnym plikiem XML"),
    (b"descriptor:<Inne/>", "a powinien być „Dokumenty”"),
])
def test_a_package_without_a_usable_descriptor_is_refused_whole(setup, db_url, content, reason):
    cfg, env, server, tmp = setup
    package = tmp / "paczka.zip"
    if content is not None and not content.startswith(b"descriptor:"):
        package.write_bytes(content)
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            if content is not None:
                z.writestr("Deskryptor.xml", content.removeprefix(b"descriptor:"))
            z.writestr("dokument.xml", b"<a/>")
        package.write_bytes(buf.getvalue())
    r = run_cli(cfg, "import-package", str(package), "--mailbox", MAILBOX, env=env)
    assert r.returncode == 1 and "ODRZUCONO całą paczkę" in r.stdout and reason in r.stdout, r.stdout
    assert rows(db_url) == []


def test_usage_errors_are_polish_and_exit_2(setup):
    cfg, env, server, tmp = setup
    r = run_cli(cfg, "import-package", str(tmp / "brak.zip"), "--mailbox", MAILBOX, env=env)
    assert r.returncode == 2 and "nie ma pliku" in r.stderr
    (tmp / "p.zip").write_bytes(b"")
    r = run_cli(cfg, "import-package", str(tmp / "p.zip"), "--mailbox", "/inny/podmiot", env=env)
    assert r.returncode == 2 and "nie jest skonfigurowaną skrytką" in r.stderr and "/podmiot/skrytka" in r.stderr


def test_cp852_names_come_out_with_their_polish_letters():
    from adapters.ziparchive import SafeZip

    name = "Oświadczenie żółte.pdf"
    placeholder = "X" * len(name.encode("cp852"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(placeholder, b"%PDF-1.4")
        z.writestr("zaświadczenie.txt", b"utf-8 flagged")  # zipfile flags non-ASCII names as UTF-8
    raw = buf.getvalue().replace(placeholder.encode(), name.encode("cp852"))
    archive = SafeZip(io.BytesIO(raw))
    assert [e.name for e in archive.entries] == [name, "zaświadczenie.txt"]
    assert archive.read(archive.entries[0]) == b"%PDF-1.4"
    assert json.dumps([e.name for e in archive.entries], ensure_ascii=False)
