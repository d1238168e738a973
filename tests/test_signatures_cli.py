"""Issue #10 through the command line: each attack (back-dated signing time, a
certificate not meant for signing, a replayed correction) ends with the spec's outcome
through `check FILE --filed-at` and through a full `run --once` pulling from the local
ePUAP double (documents signed by xmlsec1 with the test PKI, filing times in the
double's `dataNadania`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select

from adapters.db.tables import ebok_fee_period, worker_document
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.filings import declarations_by_file
from tests.sigtools import xmlsig
from tests.sigtools.pki import ALICJA, TestPKI, utc

MAILBOX = "/czystyregion/deklaracje"
FIRST_FILED = datetime(2025, 3, 10, 9, tzinfo=UTC)
K1_FILED = datetime(2025, 7, 1, 9, tzinfo=UTC)
K2_FILED = datetime(2025, 9, 1, 9, tzinfo=UTC)
REPLAY_FILED = datetime(2026, 1, 12, 9, tzinfo=UTC)


INSTITUTION = """<inst:Instytucja>
          <inst:NazwaInstytucji>Firma Testowa sp. z o.o.</inst:NazwaInstytucji>
          <inst:IdInstytucji><inst:NIP>1111111111</inst:NIP></inst:IdInstytucji>
        </inst:Instytucja>"""


def declaration(purpose: str = "PIERWSZA", residents: int = 2, institution: bool = False) -> str:
    doc = xmlsig.declaration(ALICJA, fee=f"{Decimal('38.00') * residents:.2f}", residents=residents)
    if institution:  # the same property declared by a company (its seal signs)
        doc = re.sub(r"<oso:Osoba>.*?</oso:Osoba>", INSTITUTION, doc, flags=re.S)
    doc = doc.replace("<wnio:Rodzaj>PIERWSZA</wnio:Rodzaj>", f"<wnio:Rodzaj>{purpose}</wnio:Rodzaj>")
    if purpose == "KOREKTA":
        doc = doc.replace("</wnio:ObowiazujeOd>", "</wnio:ObowiazujeOd><wnio:Uzasadnienie>Błędna liczba mieszkańców.</wnio:Uzasadnienie>")
    return doc


def profile(pki: TestPKI, filed: datetime, **kw) -> bytes:
    return xmlsig.sign(declaration(**kw), xmlsig.pz_signature(pki.seal, filed - timedelta(minutes=20), xmlsig.ep_signature(ALICJA)), pki.seal)


def qualified(signer, signing_time: datetime, *, institution: bool = False) -> bytes:
    return xmlsig.sign(declaration(institution=institution), xmlsig.qualified_signature(signer, signing_time), signer)


# name → (bytes, filing time, expected status, expected codes)
def attack_documents(pki: TestPKI) -> dict[str, tuple[bytes, datetime, str, list[str]]]:
    filed = datetime(2025, 3, 10, 9, 5, tzinfo=UTC)
    return {
        "a1-expired-back-dated": (qualified(pki.expired, utc(2020, 6, 1)), filed, "REJECTED", ["SIGNATURE_CERT_EXPIRED"]),
        "a1-expired-honest": (qualified(pki.expired, utc(2021, 12, 1)), filed, "REJECTED", ["SIGNATURE_CERT_EXPIRED"]),
        "a2-tls-server": (qualified(pki.tls_server, filed - timedelta(minutes=5)), filed, "REJECTED", ["SIGNATURE_UNTRUSTED"]),
        "a2-email-encryption": (qualified(pki.email_encryption, filed - timedelta(minutes=5)), filed, "REJECTED", ["SIGNATURE_UNTRUSTED"]),
        "a2-no-qc-statements": (qualified(pki.no_qc_statements, filed - timedelta(minutes=5)), filed, "REJECTED", ["SIGNATURE_UNTRUSTED"]),
        "a2-person-eseal": (qualified(pki.person_eseal, filed - timedelta(minutes=5)), filed, "REJECTED", ["SIGNATURE_UNTRUSTED"]),
        "a2-tls-server-institution": (
            qualified(pki.tls_server, filed - timedelta(minutes=5), institution=True), filed, "REJECTED", ["SIGNATURE_UNTRUSTED"],
        ),
        "ok-person-esign": (qualified(pki.person_esign, filed - timedelta(minutes=5)), filed, "ACCEPTED", []),
        "ok-institution-eseal": (qualified(pki.company_eseal, filed - timedelta(minutes=5), institution=True), filed, "ACCEPTED", []),
    }


def meta(filed: datetime) -> dict:
    return {"dataNadania": filed.isoformat(timespec="milliseconds"), "czyTestowe": False, "typPliku": "application/xml",
            "danePodmiotu": {"identyfikator": "awroblewska", "typOsoby": "F", "zgoda": True}}


@pytest.fixture
def env_setup(write_config, keys, epuap_double, tmp_path, pki, trust_files):
    anchors, seal = trust_files
    queue = tmp_path / "queue"
    queue.mkdir()
    server = epuap_double(load={MAILBOX: queue})
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje", max_attempts=5, backoff_initial_s=1.0, backoff_max_s=60.0),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
    )
    return cfg, epuap_env(keys), server, tmp_path


def cli(cfg, env, *args):
    return run_cli(cfg, *args, env=env)


def by_ref(db_url) -> dict[str, dict]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            fees = conn.execute(select(ebok_fee_period).order_by(ebok_fee_period.c.valid_from)).mappings().all()
    finally:
        engine.dispose()
    out: dict = declarations_by_file(db_url, suffix=True)
    out["_fees"] = [(f["valid_from"].isoformat(), f["valid_to"].isoformat() if f["valid_to"] else None, f"{f['monthly_fee']:.2f}") for f in fees]
    return out


def enqueue(server, name: str, raw: bytes, filed: datetime) -> None:
    m = meta(filed)
    m["nazwaPliku"] = name
    server.enqueue(MAILBOX, raw, m, name=name)


def test_attacks_through_check_and_run_once(env_setup, pki, db_url):
    cfg, env, server, tmp = env_setup
    docs = attack_documents(pki)
    for name, (raw, filed, status, codes) in docs.items():
        path = tmp / f"{name}.xml"
        path.write_bytes(raw)
        r = cli(cfg, env, "check", str(path), "--json", "--filed-at", filed.isoformat())
        assert r.returncode == 0, r.stderr
        (out,) = json.loads(r.stdout)
        assert (out["status"], [f["code"] for f in out["findings"]]) == (status, codes), name
        enqueue(server, f"{name}.xml", raw, filed)
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 0, r.stderr
    rows = by_ref(db_url)
    for name, (_, _, status, codes) in docs.items():
        row = rows[f"{name}.xml"]
        assert (row["status"], [f["code"] for f in row["findings"]]) == (status, codes), name
    # the back-dated signature was checked at the filing time, and the evidence says why
    engine = create_engine(db_url)
    with engine.connect() as conn:
        evidence = [
            e for (e,) in conn.execute(select(worker_document.c.evidence))
            if e and e.get("signature", {}).get("signing_time", "").startswith("2020-06-01")
        ]  # fmt: skip
    engine.dispose()
    (ev,) = evidence
    assert ev["signature"]["validation_time_source"] == "filing_time"
    assert ev["signature"]["validation_time"].startswith("2025-03-10T09:05")
    # the check of a file without --filed-at validates at the time of the check: an expired certificate fails
    r = cli(cfg, env, "check", str(tmp / "a1-expired-honest.xml"), "--json")
    (out,) = json.loads(r.stdout)
    assert [f["code"] for f in out["findings"]] == ["SIGNATURE_CERT_EXPIRED"]


def test_replayed_correction_through_run_once(env_setup, pki, db_url):
    cfg, env, server, tmp = env_setup
    k1 = profile(pki, K1_FILED, purpose="KOREKTA", residents=1)
    enqueue(server, "first.xml", profile(pki, FIRST_FILED, residents=2), FIRST_FILED)
    enqueue(server, "k1.xml", k1, K1_FILED)
    assert cli(cfg, env, "run", "--once").returncode == 0
    enqueue(server, "k2.xml", profile(pki, K2_FILED, purpose="KOREKTA", residents=2), K2_FILED)
    assert cli(cfg, env, "run", "--once").returncode == 0
    before = by_ref(db_url)
    assert before["_fees"] == [("2025-03-01", None, "76.00")]
    # somebody else files the payer's old correction again, a comment added
    enqueue(server, "replay.xml", k1 + b"\n<!-- kopia -->", REPLAY_FILED)
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 0, r.stderr
    after = by_ref(db_url)
    replay = after["replay.xml"]
    assert (replay["status"], [f["code"] for f in replay["findings"]]) == ("REJECTED", ["DUPLICATE_SIGNATURE"])
    assert f"dokumencie nr {after['k1.xml']['document_id']}" in replay["findings"][0]["message"]
    assert after["_fees"] == before["_fees"] == [("2025-03-01", None, "76.00")]  # no fee period changed
    assert (after["k1.xml"]["status"], after["k2.xml"]["status"]) == ("SUPERSEDED", "ACCEPTED")
    # check of the copy alone (offline, no database): the signature itself is valid
    path = tmp / "replay.xml"
    path.write_bytes(k1 + b"\n<!-- kopia -->")
    (out,) = json.loads(cli(cfg, env, "check", str(path), "--json", "--filed-at", REPLAY_FILED.isoformat()).stdout)
    assert out["signature_status"] == "VALID" and "DUPLICATE_SIGNATURE" not in [f["code"] for f in out["findings"]]
