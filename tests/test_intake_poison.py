"""Poison documents at the head of a mailbox (issue #9): real processes, the real ePUAP
double over HTTP, the real database. Whatever a sender put into a document, it is stored
exactly as received, confirmed with the ``skrot`` ePUAP expects for what it holds and
rejected with its finding; the declaration queued behind it is taken in and ACCEPTED."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from adapters.db.tables import ebok_declaration, worker_document, worker_mailbox
from adapters.epuap import devkeys
from adapters.epuap.client import skrot_of
from adapters.storage import DocumentStore
from tests.clitools import run_cli
from tests.conftest import epuap_section
from worker import fmt

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
DEKL = "/czystyregion/deklaracje"
NORMAL = DEMO / "epuap/czystyregion/deklaracje/do1-2025-pz-nowy-jednorodzinna.xml"
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


def big_attachment_letter() -> bytes:
    """A letter carrying a scanned attachment: 12.5 MB of XML, a 16 MB base64 text node on the wire."""
    scan = hashlib.shake_256(b"skan").digest(9_400_000)
    return (b"<?xml version='1.0' encoding='UTF-8'?><Pismo><Tresc>W zalaczeniu skan.</Tresc><Zalacznik nazwa='skan.pdf'>"
            + base64.b64encode(scan) + b"</Zalacznik></Pismo>")


def pdf_scan() -> bytes:
    """A 9 MB PDF sent as the document itself: a 12 MB base64 text node on the wire."""
    return b"%PDF-1.4\n" + hashlib.shake_256(b"pdf").digest(9_000_000) + b"\n%%EOF\n"


POISONS = {
    # name: (meta for the double, content the double holds, expected stored bytes, finding)
    "empty": ({"zawartosc_text": ""}, b"", b"", "XML_MALFORMED"),
    "not_base64": ({"zawartosc_text": "<to nie jest base64!>"}, b"", b"<to nie jest base64!>", "XML_MALFORMED"),
    "not_xml": ({}, b"Szanowni Panstwo, prosze o zwrot nadplaty.", b"Szanowni Panstwo, prosze o zwrot nadplaty.", "XML_MALFORMED"),
    "pdf_12mb_text_node": ({}, None, None, "XML_MALFORMED"),
    "too_large_attachment": ({}, None, None, "DOCUMENT_TOO_LARGE"),
}


def poison_config(write_config, server, keys, **epuap) -> Path:
    return write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje", timeout_s=60, **epuap),
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
        payments={"bank_branch": "10901014"},
        processing={"max_document_bytes": MAX_DOCUMENT_BYTES},
    )


def cli(cfg: Path, env: dict, *args: str):
    return run_cli(cfg, *args, env=env)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def keys(tmp_path_factory):
    return devkeys.ensure(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def server(epuap_double):
    return epuap_double(mailboxes=[DEKL])


@pytest.fixture
def env(keys):
    return dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)


def enqueue_normal(server) -> None:
    meta = json.loads(Path(str(NORMAL) + ".meta.json").read_text(encoding="utf-8"))
    server.enqueue(DEKL, NORMAL.read_bytes(), meta, NORMAL.name)


@pytest.mark.parametrize("kind", sorted(POISONS))
def test_a_poison_document_at_the_head_is_stored_confirmed_rejected_and_the_next_one_accepted(kind, server, keys, env, db_url, tmp_path, write_config):
    meta, content, stored, code = POISONS[kind]
    if kind == "pdf_12mb_text_node":
        content = stored = pdf_scan()
    elif kind == "too_large_attachment":
        content = stored = big_attachment_letter()
        assert len(content) > MAX_DOCUMENT_BYTES
    poison = server.enqueue(DEKL, content, {"dataNadania": "2025-03-10T08:00:00+01:00", **meta}, f"{kind}.xml")
    enqueue_normal(server)
    cfg = poison_config(write_config, server, keys)

    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]

    # both confirmed, in order, with the skrot of what the double holds
    assert server.pending(DEKL) == []
    assert [d.name for d in server.confirmed(DEKL)] == [f"{kind}.xml", NORMAL.name]
    assert poison.skrot == skrot_of(stored)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        docs = conn.execute(select(worker_document).order_by(worker_document.c.id)).mappings().all()
        decls = {d["document_id"]: d for d in conn.execute(select(ebok_declaration)).mappings()}
        mailbox = conn.execute(select(worker_mailbox)).mappings().one()
    engine.dispose()
    assert len(docs) == 2 and {d["state"] for d in docs} == {"DONE"}
    first, second = docs
    # stored exactly as received
    raw = DocumentStore(tmp_path / "documents").get(first["storage_key"])
    assert raw == stored and first["size"] == len(stored)
    assert first["outcome"] == "REJECTED"
    assert [f["code"] for f in first["findings"]] == [code]
    assert decls[first["id"]]["status"] == "REJECTED"
    assert second["outcome"] == "ACCEPTED" and decls[second["id"]]["status"] == "ACCEPTED"
    assert mailbox["blocked_since"] is None and mailbox["blocked_reason"] is None
    evs = events(r.stdout)
    assert not [e for e in evs if e["level"] in ("ERROR", "CRITICAL")], [e for e in evs if e["level"] == "ERROR"]


def test_an_unattributable_head_blocks_the_mailbox_loudly_and_status_shows_it(server, keys, env, db_url, tmp_path, write_config):
    """Answers that are not signed by ePUAP are retried, never acted upon; after the retries the
    mailbox is reported blocked (event, status, JSON) until a pass succeeds again."""
    enqueue_normal(server)
    server.faults.add("unsigned", "pobierzNastepny", times=-1)
    cfg = poison_config(write_config, server, keys)
    r = cli(cfg, env, "pull")
    assert r.returncode == 1
    blocked = [e for e in events(r.stdout) if e["event"] == "epuap.mailbox_blocked"]
    assert len(blocked) == 1 and blocked[0]["mailbox"] == DEKL and blocked[0]["level"] == "ERROR"
    assert "pobierzNastepny" in blocked[0]["reason"]
    assert server.confirmed(DEKL) == []

    s = json.loads(cli(cfg, env, "status", "--json").stdout)
    (mb,) = s["mailboxes"]
    assert mb["blocked_since"] and mb["blocked_reason"].startswith("pobierzNastepny")
    since = mb["blocked_since"]
    human = cli(cfg, env, "status").stdout
    assert "ZABLOKOWANA od " + fmt.datetime_local(since) in human

    cli(cfg, env, "pull")  # still blocked: the first moment is kept
    assert json.loads(cli(cfg, env, "status", "--json").stdout)["mailboxes"][0]["blocked_since"] == since

    server.faults.clear()
    assert cli(cfg, env, "pull").returncode == 0
    mb = json.loads(cli(cfg, env, "status", "--json").stdout)["mailboxes"][0]
    assert mb["blocked_since"] is None and mb["blocked_reason"] is None
    assert [d.name for d in server.confirmed(DEKL)] == [NORMAL.name]


def test_an_answer_over_the_size_limit_is_refused_after_decompression(server, keys, env, db_url, tmp_path, write_config):
    """A gzip bomb: a small compressed answer that inflates over ``epuap.max_response_bytes``."""
    server.enqueue(DEKL, pdf_scan(), {}, "duzy.pdf")
    server.gzip_responses = True
    cfg = poison_config(write_config, server, keys, max_response_bytes=4000000)
    r = cli(cfg, env, "pull")
    assert r.returncode == 1
    blocked = [e for e in events(r.stdout) if e["event"] == "epuap.mailbox_blocked"]
    assert len(blocked) == 1 and "max_response_bytes" in blocked[0]["reason"]
    assert server.confirmed(DEKL) == []
    assert server.gzipped_responses >= 1
