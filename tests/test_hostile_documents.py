"""Issue #20, "bounded work for every document": shapes that made ``check`` run for minutes
are refused with ``DOCUMENT_TOO_COMPLEX`` before anything is canonicalised; a document within
the structural limits that still uses up its CPU budget is refused the same way, decided once
(never a technical failure to retry); the documents behind it go on. The costs themselves
are measured in ``bench/bench_hostile.py``, not here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from adapters.db.tables import worker_document
from rules.ruleset import load_ruleset
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.filings import declarations_by_file, file_document
from tests.sigtools import hostile, xmlsig
from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, TestPKI
from worker.forms.structure import StructureLimits
from worker.pipeline import UNREADABLE, ProcessingSettings
from worker.processing import analyse


@pytest.fixture(scope="module")
def untrusted_signature(pki: TestPKI) -> bytes:
    return hostile.signature_of(pki.untrusted_person)


@pytest.fixture(scope="module")
def trusted_signature(pki: TestPKI) -> bytes:
    return hostile.signature_of(pki.alicja)


def shapes(untrusted: bytes) -> dict[str, tuple[bytes, str]]:
    """name → (document, the limit it is refused by)."""
    return {
        "namespace-flood": (hostile.namespace_flood(untrusted), "max_namespace_declarations"),  # the document
        "element-flood": (hostile.element_flood(1_000_000), "max_elements"),
        "attributes": (hostile.attribute_flood(30_000), "max_attributes"),  # counted on the parsed tree
        "attribute-flood": (hostile.attribute_flood(200_000), "max_attributes"),  # counted on the bytes
        "deeper-than-the-limit": (hostile.deep(65), "max_depth"),
        "deeper-than-the-parser": (hostile.deep(300), "parser"),
        "markup-flood": (hostile.markup_flood(100_000), "max_elements"),
    }


def settings(trust, **kw) -> ProcessingSettings:
    return ProcessingSettings(ruleset=load_ruleset(), trust=trust, **kw)


def codes(ctx) -> list[str]:
    return [f.code for f in ctx.findings]


def test_each_shape_is_refused_before_anything_is_canonicalised(trust, untrusted_signature, monkeypatch):
    from worker.signatures import xades

    def never(*args, **kwargs):
        raise AssertionError("reached the signature")

    monkeypatch.setattr(xades, "verify_crypto", never)
    monkeypatch.setattr(xades, "precheck", never)
    for name, (raw, limit) in shapes(untrusted_signature).items():
        ctx = analyse(raw, channel="EPUAP", filed_at=FILED_AT, settings=settings(trust))
        assert codes(ctx) == ["DOCUMENT_TOO_COMPLEX"], name
        assert ctx.kind == UNREADABLE and ctx.halted and ctx.signed_root is None and ctx.declaration is None, name
        message = ctx.findings[0].message
        assert "nie może zostać bezpiecznie sprawdzony" in message, name
        if limit != "parser":
            assert str(getattr(StructureLimits(), limit)) in message, (name, message)


def test_a_long_text_node_is_refused_by_the_parser(trust):
    ctx = analyse(hostile.long_text(10_000_001), channel="EPUAP", filed_at=FILED_AT, settings=settings(trust))
    assert codes(ctx) == ["DOCUMENT_TOO_COMPLEX"]
    shorter = analyse(hostile.long_text(1000), channel="EPUAP", filed_at=FILED_AT, settings=settings(trust, limits=StructureLimits(max_text_chars=999)))
    assert codes(shorter) == ["DOCUMENT_TOO_COMPLEX"] and "999 znaków" in shorter.findings[0].message


def test_an_untrusted_key_is_refused_without_canonicalising_even_a_flood(trust, untrusted_signature, monkeypatch):
    # cheap refusals first: with the structural limits opened wide, the document is
    # refused for its self-made key, and its content is never canonicalised
    from worker.signatures import xades

    def never(*args, **kwargs):
        raise AssertionError("canonicalised")

    monkeypatch.setattr(xades, "verify_crypto", never)
    monkeypatch.setattr(xades, "document_content", never)
    wide = StructureLimits(max_namespace_declarations=200_000, max_elements=100_000, max_attributes=500_000)
    ctx = analyse(hostile.namespace_flood(untrusted_signature), channel="EPUAP", filed_at=FILED_AT, settings=settings(trust, limits=wide))
    assert codes(ctx) == ["SIGNATURE_UNTRUSTED"]


def test_the_cpu_budget_refuses_what_the_structural_limits_let_through(trust, trusted_signature):
    # within every limit, 20 signatures of a trusted key with a wrong digest: each makes the
    # whole document be canonicalised again
    raw = hostile.many_signatures(trusted_signature, copies=20, namespaces=60, elements=5000)
    full = analyse(raw, channel="EPUAP", filed_at=FILED_AT, settings=settings(trust))
    assert codes(full) == ["SIGNATURE_INVALID"]  # the default budget is enough to find out
    tight = analyse(raw, channel="EPUAP", filed_at=FILED_AT, settings=settings(trust, max_document_seconds=0.2))
    assert codes(tight) == ["DOCUMENT_TOO_COMPLEX"]
    assert "czas pracy procesora (0.2 s)" in tight.findings[0].message
    assert tight.kind == UNREADABLE and tight.signed_root is None and tight.declaration is None


def test_a_budget_used_up_between_stages_rejects_what_was_read_so_far(trust, pki):
    raw = xmlsig.sign(xmlsig.declaration(ALICJA), xmlsig.pz_signature(pki.seal, SIGNED_AT, xmlsig.ep_signature(ALICJA)), pki.seal)
    assert analyse(raw, channel="EPUAP", filed_at=FILED_AT, settings=settings(trust)).outcome == "ACCEPTED"
    ctx = analyse(raw, channel="EPUAP", filed_at=FILED_AT, settings=settings(trust, max_document_seconds=1e-9))
    assert codes(ctx) == ["DOCUMENT_TOO_COMPLEX"] and ctx.outcome == "REJECTED"
    assert ctx.declaration is None and ctx.computed_fee is None and ctx.signed_root is None


# --- through check and run --once ---------------------------------------------------------

MAILBOX = "/czystyregion/deklaracje"
FILED = datetime(2025, 3, 10, 9, 5, tzinfo=UTC)


def test_hostile_documents_then_an_honest_one_through_check_and_run_once(write_config, keys, epuap_double, trust_files, pki,
                                                                          untrusted_signature, trusted_signature, db_url, tmp_path):
    anchors, seal = trust_files
    server = epuap_double(mailboxes=[MAILBOX])
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje"),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
        processing={"max_document_seconds": 0.2, "batch_size": 3},  # the budget case within a short test
    )
    env = epuap_env(keys)
    docs = {name: raw for name, (raw, _) in shapes(untrusted_signature).items()}
    docs["budget"] = hostile.many_signatures(trusted_signature, copies=20, namespaces=60, elements=5000)
    docs["honest"] = xmlsig.sign(xmlsig.declaration(ALICJA), xmlsig.pz_signature(pki.seal, SIGNED_AT, xmlsig.ep_signature(ALICJA)), pki.seal)
    for n, (name, raw) in enumerate(docs.items()):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(raw)
        r = run_cli(cfg, "check", str(path), "--json", "--filed-at", FILED.isoformat(), env=env)
        assert r.returncode == 0, r.stderr
        (out,) = json.loads(r.stdout)
        expected = ("ACCEPTED", []) if name == "honest" else ("REJECTED", ["DOCUMENT_TOO_COMPLEX"])
        assert (out["status"], [f["code"] for f in out["findings"]]) == expected, name
        file_document(server, MAILBOX, name, raw, FILED + timedelta(minutes=n), order=n)  # the honest one last
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stdout[-3000:]
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert not [e for e in events if e["event"] == "document.failed"]  # decided, never a technical failure
    assert not re.search(r"\d{11}", r.stdout)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(worker_document)).mappings().all()
    engine.dispose()
    declarations = declarations_by_file(db_url)
    assert len(stored) == len(docs) and {d["state"] for d in stored} == {"DONE"}
    assert {d["attempts"] for d in stored} == {1} and all(d["last_error"] is None for d in stored)
    assert all(not m.queue for m in server.mailboxes.values())
    for name in docs:
        row = declarations[name]
        if name == "honest":
            assert (row["status"], row["findings"]) == ("ACCEPTED", [])
        else:
            assert (row["status"], [f["code"] for f in row["findings"]]) == ("REJECTED", ["DOCUMENT_TOO_COMPLEX"]), name
            assert row["payer_id"] is None and row["signature_status"] == "INVALID", name


def test_a_letter_within_the_budget_is_correspondence_and_one_beyond_it_rejected_everywhere(write_config, keys, epuap_double, trust_files,
                                                                                           trusted_signature, db_url, tmp_path):
    """#20 meets #23: a letter (no declaration form) is correspondence in every report —
    check, processing, reprocess, correspondence list, the counters; a letter that uses up
    its CPU budget is a document that could not be checked (REJECTED with
    DOCUMENT_TOO_COMPLEX, as the contract says: kind UNREADABLE, never handed over), the same
    in every report too."""
    anchors, seal = trust_files
    server = epuap_double(mailboxes=[MAILBOX])
    cfg = write_config(epuap=epuap_section(server, keys, "czystyregion/deklaracje"), signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
                       processing={"max_document_seconds": 0.6}, correspondence={"outbox": "outbox"})  # fmt: skip
    # (0.6 s: the first document of a process also pays its one-time start, about 0.2 s of CPU; 40 copies cost seconds)
    env = epuap_env(keys)
    letter_ns = b"urn:ebok-test:pismo-ogolne"  # no form of the rule set: a letter
    docs = {"pismo": hostile.many_signatures(trusted_signature, copies=1).replace(xmlsig.DO1_2025_NS.encode(), letter_ns),
            "pismo-zlozone": hostile.many_signatures(trusted_signature, copies=40, namespaces=60, elements=5000).replace(xmlsig.DO1_2025_NS.encode(), letter_ns)}
    expected = {"pismo": ("CORRESPONDENCE", ["FORM_UNKNOWN"]), "pismo-zlozone": ("REJECTED", ["FORM_UNKNOWN", "DOCUMENT_TOO_COMPLEX"])}
    for n, (name, raw) in enumerate(docs.items()):
        (tmp_path / f"{name}.xml").write_bytes(raw)
        r = run_cli(cfg, "check", str(tmp_path / f"{name}.xml"), "--json", "--filed-at", FILED.isoformat(), env=env)
        (out,) = json.loads(r.stdout)
        assert (out["status"], [f["code"] for f in out["findings"]]) == expected[name], name
        file_document(server, MAILBOX, name, raw, FILED + timedelta(minutes=n), order=n)
    assert run_cli(cfg, "run", "--once", env=env).returncode == 0
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = {d["meta"]["nazwaPliku"].removesuffix(".xml"): d for d in conn.execute(select(worker_document)).mappings()}
    engine.dispose()
    assert {k: (d["kind"], d["outcome"]) for k, d in stored.items()} == {"pismo": ("CORRESPONDENCE", "CORRESPONDENCE"),
                                                                         "pismo-zlozone": ("UNREADABLE", "REJECTED")}
    assert set(declarations_by_file(db_url)) == {"pismo-zlozone"}  # the contract's REJECTED row; the letter has none
    listed = json.loads(run_cli(cfg, "correspondence", "list", "--json", env=env).stdout)
    assert [i["document_id"] for i in listed] == [stored["pismo"]["id"]] and listed[0]["handed_over_at"] is not None
    status = json.loads(run_cli(cfg, "status", "--json", env=env).stdout)
    assert status["processed"] == {"CORRESPONDENCE": 1, "REJECTED": 1} and status["counters"]["processed"] == {"CORRESPONDENCE": 1, "REJECTED": 1}
    r = run_cli(cfg, "reprocess", "--id", str(stored["pismo"]["id"]), "--id", str(stored["pismo-zlozone"]["id"]), "--dry-run", "--json", env=env)
    previews = {d["document_id"]: d for d in json.loads(r.stdout)["documents"]}
    assert previews[stored["pismo"]["id"]]["new_outcome"] == "CORRESPONDENCE"
    assert previews[stored["pismo-zlozone"]["id"]]["new_outcome"] == "REJECTED" and "DOCUMENT_TOO_COMPLEX" in previews[stored["pismo-zlozone"]["id"]]["new_codes"]
    r = run_cli(cfg, "reprocess", "--id", str(stored["pismo"]["id"]), env=env)
    assert r.returncode == 0 and "korespondencja (CORRESPONDENCE)" in r.stdout and "odrzucon" not in r.stdout, r.stdout
