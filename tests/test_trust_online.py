"""Issue #22: trust as Europe publishes it, and revocation the worker fetches itself — with
real servers on 127.0.0.1 (``tests/sigtools/online.py``: an OCSP responder, CRL distribution
points, a LOTL and a national trusted list signed by xmlsec1). Every case ends as the spec
says through ``check --filed-at`` and through ``run --once`` pulling from the local ePUAP
double: a good certificate, one revoked before and one after the filing time, one under a
CA withdrawn from the list before the filing time (and a declaration filed while it was
still granted), the responder down with an empty cache (and with a warm one), a tampered
list, a stale list."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import create_engine, select

from adapters.db.tables import ebok_declaration, worker_document
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.sigtools import xmlsig
from tests.sigtools.online import FILED, SIGNED, WITHDRAWN_AT, OnlinePKI, TrustServer
from tests.sigtools.pki import ALICJA, BOGDAN, CELINA, utc
from tests.sigtools.tl import GRANTED, WITHDRAWN, Service, lotl, national_tl, sign_list

MAILBOX = "/czystyregion/deklaracje"
BEFORE_WITHDRAWAL = datetime(2025, 2, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def trust_server():
    server = TrustServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def online(trust_server) -> OnlinePKI:
    return OnlinePKI(trust_server)


def services(online: OnlinePKI) -> list[Service]:
    return [
        Service("TEST Online Kwalifikowane CA", online.qca.ca, GRANTED, utc(2020)),
        Service("TEST Online CA wycofane", online.wca.ca, WITHDRAWN, WITHDRAWN_AT, history=[(GRANTED, utc(2020))]),
    ]


def publish(online: OnlinePKI, *, sequence: int = 7, next_update: datetime | None = None, tamper: bool = False,
            lotl_sequence: int = 3) -> dict[str, str]:  # fmt: skip
    """Serve the national list PL and the LOTL pointing to it; their URLs and the PL list's SHA-256."""
    server, now = online.server, datetime.now(UTC)
    pl = sign_list(national_tl("PL", sequence, now - timedelta(days=1), next_update or now + timedelta(days=180), services(online)),
                   online.tl_signer, now)  # fmt: skip
    if tamper:  # a service's status changed after signing: the signature no longer verifies
        pl = pl.replace(WITHDRAWN.encode(), GRANTED.encode(), 1)
    pl_url = server.serve("/tl/pl.xml", pl)
    eu = sign_list(lotl(lotl_sequence, now - timedelta(days=1), now + timedelta(days=180), [(pl_url, "PL", online.tl_signer)]),
                   online.lotl_signer, now)  # fmt: skip
    return {"lotl": server.serve("/tl/eu-lotl.xml", eu), "pl": pl_url, "pl_sha256": hashlib.sha256(pl).hexdigest()}


def documents(online: OnlinePKI) -> dict[str, tuple[bytes, datetime, str, list[str]]]:
    """name → (signed declaration, filing time, expected status, expected codes)."""

    def signed(person, who, when=SIGNED) -> bytes:
        return xmlsig.sign(xmlsig.declaration(who), xmlsig.qualified_signature(person, when), person)

    return {
        "good": (signed(online.good, ALICJA), FILED, "ACCEPTED", []),
        "revoked-before": (signed(online.revoked_before, BOGDAN), FILED, "REJECTED", ["SIGNATURE_UNTRUSTED"]),
        "revoked-after": (signed(online.revoked_after, CELINA), FILED, "ACCEPTED", []),
        "crl-only": (signed(online.crl_only, ALICJA), FILED, "ACCEPTED", []),
        "withdrawn-ca": (signed(online.under_withdrawn, ALICJA), FILED, "REJECTED", ["SIGNATURE_UNTRUSTED"]),
        "withdrawn-ca-filed-before": (
            signed(online.under_withdrawn, ALICJA, BEFORE_WITHDRAWAL - timedelta(minutes=20)), BEFORE_WITHDRAWAL, "ACCEPTED", [],
        ),
    }


@pytest.fixture
def setup(online, trust_server, tmp_path, write_config, keys, epuap_double, pki):
    """The configuration: trusted lists from the LOTL (signers pinned), revocation required
    and fetched, the trust anchors of another PKI (the qualified CAs come from the list)."""
    trust_server.reset()
    online.qca.stale_crl = False
    urls = publish(online)
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "anchors.pem").write_bytes(pki.root.cert_pem)
    (trust / "lotl-signers.pem").write_bytes(online.lotl_signer.cert_pem)
    queue = tmp_path / "queue"
    queue.mkdir()
    server = epuap_double(load={MAILBOX: queue})

    def config(cache: str = "cache", *, epuap: bool = True, **signatures):
        return write_config(
            path=tmp_path / ("config.toml" if epuap else "config-no-epuap.toml"),
            epuap=epuap_section(server, keys, "czystyregion/deklaracje") if epuap else None,
            signatures={"trust_anchors": trust / "anchors.pem", "trusted_lists": [urls["lotl"]], "trusted_list_signers": trust / "lotl-signers.pem",
                        "revocation": "required", "revocation_fetch": True, "fetch_timeout_s": 5, "cache": cache, **signatures},
            monitoring={"pending_warn_s": 3600, "pull_stale_s": 3600},
        )  # fmt: skip

    return config, server, urls, epuap_env(keys)


def check(cfg, env, path, filed: datetime) -> dict:
    r = run_cli(cfg, "check", str(path), "--json", "--filed-at", filed.isoformat(), env=env)
    assert r.returncode == 0, r.stderr
    (out,) = json.loads(r.stdout)
    return out


def outcome(out: dict) -> tuple[str, list[str]]:
    return out["status"], [f["code"] for f in out["findings"]]


def enqueue(server, name: str, raw: bytes, filed: datetime) -> None:
    server.enqueue(MAILBOX, raw, {"dataNadania": filed.isoformat(timespec="milliseconds"), "czyTestowe": False, "typPliku": "application/xml",
                                  "nazwaPliku": name, "danePodmiotu": {"identyfikator": "x", "typOsoby": "F", "zgoda": True}}, name=name)  # fmt: skip


def rows(db_url) -> dict[str, dict]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(ebok_declaration.c.status, ebok_declaration.c.findings, worker_document.c.meta, worker_document.c.evidence)
                .join(worker_document, worker_document.c.id == ebok_declaration.c.document_id)
            ).mappings().all()  # fmt: skip
    finally:
        engine.dispose()
    return {r["meta"]["nazwaPliku"]: dict(r) for r in found}


def test_every_case_through_check_and_run_once(setup, online, tmp_path, db_url):
    config, server, urls, env = setup
    cfg = config()
    r = run_cli(cfg, "trust", "update", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PL (lista krajowa)" in r.stdout and "przyjęta nowa wersja" in r.stdout and "lista list (LOTL)" in r.stdout
    docs = documents(online)
    for name, (raw, filed, status, codes) in docs.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(raw)
        assert outcome(check(cfg, env, path, filed)) == (status, codes), name
        enqueue(server, f"{name}.xml", raw, filed)
    # the same documents through the daemon's pass, with a cache of its own (its refresh fetches the lists: never fetched)
    run_cfg = config(cache="cache-run")
    r = run_cli(run_cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr
    found = rows(db_url)
    for name, (_, _, status, codes) in docs.items():
        row = found[f"{name}.xml"]
        assert (row["status"], [f["code"] for f in row["findings"]]) == (status, codes), name
    # what decided is kept with the document's evidence: the list (by digest) and the OCSP answer
    sig = found["good.xml"]["evidence"]["signature"]["signatures"][0]
    assert sig["trusted_list"]["status"] == "granted" and sig["trusted_list"]["list"]["sha256"] == urls["pl_sha256"]
    assert sig["trusted_list"]["list"]["territory"] == "PL" and sig["trusted_list"]["service"] == "TEST Online Kwalifikowane CA"
    (answer,) = sig["revocation_answers"]  # the leaf; its CA is the anchor the list gives
    assert (answer["source"], answer["status"], answer["url"]) == ("ocsp", "good", online.qca.ocsp_url) and answer["answer"]
    later = found["revoked-after.xml"]["evidence"]["signature"]["signatures"][0]["revocation_answers"][0]
    assert later["status"] == "good" and later["revoked_at"].startswith("2025-06-01")
    assert found["crl-only.xml"]["evidence"]["signature"]["signatures"][0]["revocation_answers"][0]["source"] == "crl"
    withdrawn = found["withdrawn-ca.xml"]
    assert "nie był w chwili złożenia dokumentu" in withdrawn["findings"][0]["message"]
    assert withdrawn["evidence"]["signature"]["signatures"][0]["trusted_list"]["status"] == "not_granted"


def test_responder_down_with_an_empty_cache_and_with_a_warm_one(setup, online, trust_server, tmp_path, db_url):
    config, server, urls, env = setup
    cfg = config()
    assert run_cli(cfg, "trust", "update", env=env).returncode == 0
    raw, filed, _, _ = documents(online)["good"]
    path = tmp_path / "good.xml"
    path.write_bytes(raw)
    assert outcome(check(cfg, env, path, filed)) == ("ACCEPTED", [])  # the answer is now cached
    trust_server.failing |= {"/ocsp/qca", "/crl/qca.crl"}
    assert outcome(check(cfg, env, path, filed)) == ("ACCEPTED", [])  # from the cache, until its nextUpdate
    cold = config(cache="cache-cold")
    assert run_cli(cold, "trust", "update", env=env).returncode == 0
    status, codes = outcome(out := check(cold, env, path, filed))
    assert (status, codes) == ("NEEDS_REVIEW", ["SIGNATURE_INDETERMINATE"])
    assert "unieważniony" in out["findings"][0]["message"]
    # through run --once: review, never accepted, never a technical failure; monitoring names the responder
    enqueue(server, "good.xml", raw, filed)
    r = run_cli(cold, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr
    assert rows(db_url)["good.xml"]["status"] == "NEEDS_REVIEW"
    r = run_cli(cold, "status", "--monitor", env=env)
    assert r.returncode == 1 and "serwer unieważnień" in r.stdout and online.qca.ocsp_url in r.stdout, r.stdout
    assert "revocation_responders_failing=2" in r.stdout  # its OCSP responder and its CRL
    # the responder back: reprocess asks again
    trust_server.failing.clear()
    r = run_cli(cold, "reprocess", "--code", "SIGNATURE_INDETERMINATE", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(db_url)["good.xml"]["status"] == "ACCEPTED"


def test_a_tampered_list_is_not_used_the_last_good_copy_is(setup, online, tmp_path, db_url):
    config, server, urls, env = setup
    cfg = config()
    assert run_cli(cfg, "trust", "update", env=env).returncode == 0
    publish(online, sequence=8, tamper=True)  # would re-grant the withdrawn CA
    r = run_cli(cfg, "trust", "update", env=env)
    assert r.returncode == 1
    assert "NIE przyjęta" in r.stdout and "podpis nie zgadza się" in r.stdout and "ostatnia poprawna kopia: nr 7" in r.stdout
    shown = json.loads(run_cli(cfg, "trust", "show", "--json", env=env).stdout)
    (pl,) = [c for c in shown["lists"] if c["territory"] == "PL"]
    assert (pl["sequence"], pl["sha256"]) == (7, urls["pl_sha256"]) and shown["granted_services_now"] == 1
    assert shown["failed"][0]["problem"] == "signature"
    docs = documents(online)
    raw, filed, status, codes = docs["withdrawn-ca"]
    path = tmp_path / "w.xml"
    path.write_bytes(raw)
    assert outcome(check(cfg, env, path, filed)) == (status, codes) == ("REJECTED", ["SIGNATURE_UNTRUSTED"])
    r = run_cli(config(epuap=False), "status", "--monitor", env=env)  # the same cache; no mailbox to watch
    assert r.returncode == 1 and "trusted_lists_failed=1" in r.stdout and "nieprzyjęta" in r.stdout, r.stdout
    r = run_cli(config(epuap=False), "status", env=env)
    assert "Zaufane listy (TSL): w użyciu 2, przeterminowane 0, nieprzyjęte przy ostatniej aktualizacji 1" in r.stdout, r.stdout
    # with no good copy at all, the tampered list is not used either: qualified signatures go to review
    cold = config(cache="cache-cold")
    assert run_cli(cold, "trust", "update", env=env).returncode == 1
    for name in ("good", "withdrawn-ca"):
        raw, filed, _, _ = docs[name]
        (tmp_path / f"{name}.xml").write_bytes(raw)
        assert outcome(check(cold, env, tmp_path / f"{name}.xml", filed)) == ("NEEDS_REVIEW", ["SIGNATURE_INDETERMINATE"]), name
        enqueue(server, f"{name}.xml", raw, filed)
    assert run_cli(cold, "run", "--once", env=env).returncode == 0
    assert {k: v["status"] for k, v in rows(db_url).items()} == {"good.xml": "NEEDS_REVIEW", "withdrawn-ca.xml": "NEEDS_REVIEW"}
    r = run_cli(config(cache="cache-cold", epuap=False), "status", "--monitor", env=env)
    assert r.returncode == 2 and "żadna zaufana lista" in r.stdout, r.stdout


def test_a_stale_list_is_not_adopted(setup, online, tmp_path, db_url):
    config, server, urls, env = setup
    publish(online, next_update=datetime.now(UTC) - timedelta(days=30))
    cfg = config()
    r = run_cli(cfg, "trust", "update", env=env)
    assert r.returncode == 1 and "przeterminowana" in r.stdout, r.stdout
    raw, filed, _, _ = documents(online)["good"]
    path = tmp_path / "good.xml"
    path.write_bytes(raw)
    assert outcome(check(cfg, env, path, filed)) == ("NEEDS_REVIEW", ["SIGNATURE_INDETERMINATE"])
    enqueue(server, "good.xml", raw, filed)
    assert run_cli(cfg, "run", "--once", env=env).returncode == 0
    assert rows(db_url)["good.xml"]["status"] == "NEEDS_REVIEW"
    # within the grace it is adopted, used, and monitoring says it is past its NextUpdate
    lenient = config(cache="cache-lenient", trusted_list_grace_s=60 * 86400)
    assert run_cli(lenient, "trust", "update", env=env).returncode == 0
    assert outcome(check(lenient, env, path, filed)) == ("ACCEPTED", [])
    r = run_cli(config(cache="cache-lenient", epuap=False, trusted_list_grace_s=60 * 86400), "status", "--monitor", env=env)
    assert r.returncode == 1 and "przeterminowana od" in r.stdout and "trusted_lists_stale=1" in r.stdout, r.stdout


def test_an_older_list_replayed_is_refused(setup, online, tmp_path):
    config, server, urls, env = setup
    cfg = config()
    publish(online, sequence=9)
    assert run_cli(cfg, "trust", "update", env=env).returncode == 0
    publish(online, sequence=8)  # signed correctly, but older than the kept copy
    r = run_cli(cfg, "trust", "update", env=env)
    assert r.returncode == 1 and "niższy numer kolejny" in r.stdout and "nr 9" in r.stdout, r.stdout


def test_a_national_list_given_as_a_file_needs_no_network(setup, online, tmp_path, pki):
    config, server, urls, env = setup
    now = datetime.now(UTC)
    pl = tmp_path / "trust" / "pl-tl.xml"
    pl.write_bytes(sign_list(national_tl("PL", 11, now, now + timedelta(days=30), services(online)), online.tl_signer, now))
    (tmp_path / "trust" / "pl-signer.pem").write_bytes(online.tl_signer.cert_pem)
    cfg = config(trusted_lists=["trust/pl-tl.xml"], trusted_list_signers=tmp_path / "trust" / "pl-signer.pem")
    r = run_cli(cfg, "trust", "update", env=env)
    assert r.returncode == 0 and "pl-tl.xml" in r.stdout, r.stdout
    r = run_cli(cfg, "trust", "show", env=env)
    assert r.returncode == 0 and "PL (lista krajowa): nr 11" in r.stdout and "ze statusem „udzielony” teraz: 1" in r.stdout, r.stdout


def test_the_folder_of_the_cache_is_private(setup, tmp_path):
    config, server, urls, env = setup
    cfg = config()
    assert run_cli(cfg, "trust", "update", env=env).returncode == 0
    for p in [tmp_path / "cache" / "lists", *(tmp_path / "cache" / "lists").iterdir()]:
        assert p.stat().st_mode & 0o007 == 0, p


# --- the revocation answers one by one --------------------------------------------------------


@pytest.fixture
def fetcher(tmp_path, trust_server, online):
    from worker.signatures.fetch import Fetcher
    from worker.signatures.revocation import RevocationConfig, RevocationFetcher

    trust_server.reset()
    online.qca.stale_crl = False
    return RevocationFetcher(RevocationConfig(cache=tmp_path / "cache", fetcher=Fetcher(timeout_s=5)))


def chain(online: OnlinePKI, who):
    return [who.cert, who.issuer.cert, online.root.cert]


def test_a_ca_is_checked_with_its_issuers_crl(fetcher, online, trust_server):
    online.root_ca.revoked[online.wca.ca.cert.serial_number] = datetime(2024, 1, 1, tzinfo=UTC)
    try:
        answer = fetcher.check([online.qca.ca.cert, online.root.cert], FILED)
        assert (answer.status, answer.source, answer.url) == ("good", "crl", online.root_ca.crl_url)
        revoked = fetcher.check([online.wca.ca.cert, online.root.cert], FILED)
    finally:
        online.root_ca.revoked.clear()
    assert (revoked.status, revoked.cached) == ("revoked", True)  # the same CRL, kept until its nextUpdate
    assert trust_server.hits["/crl/root.crl"] == 1


def test_a_stale_crl_is_no_answer(fetcher, online, trust_server):
    trust_server.failing.add("/ocsp/qca")
    online.qca.stale_crl = True
    try:
        answer = fetcher.check(chain(online, online.good), FILED)
    finally:
        online.qca.stale_crl = False
    assert answer.status == "unknown" and any("crl" in t for t in answer.tried)


def test_an_answer_signed_by_somebody_else_is_no_answer(fetcher, online, trust_server):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    def forged(body: bytes):  # "good", signed by the other CA's responder
        req = ocsp.load_der_ocsp_request(body)
        now = datetime.now(UTC)
        b = ocsp.OCSPResponseBuilder().add_response(
            cert=online.revoked_before.cert, issuer=online.qca.ca.cert, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now, next_update=now + timedelta(hours=1), revocation_time=None, revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, online.wca.responder.cert).certificates([online.wca.responder.cert])  # fmt: skip
        assert req.serial_number == online.revoked_before.cert.serial_number
        return 200, "application/ocsp-response", b.sign(online.wca.responder.key, hashes.SHA256()).public_bytes(Encoding.DER)

    original = trust_server.routes["/ocsp/qca"]
    trust_server.routes["/ocsp/qca"] = forged
    try:
        answer = fetcher.check(chain(online, online.revoked_before), FILED)
    finally:
        trust_server.routes["/ocsp/qca"] = original
    # the forged OCSP answer is not used; the CRL then tells the truth
    assert (answer.status, answer.source) == ("revoked", "crl") and "ocsp" in answer.tried[0]


def test_a_failing_responder_is_not_asked_again_at_once(fetcher, online, trust_server):
    trust_server.failing |= {"/ocsp/qca", "/crl/qca.crl"}
    for _ in range(3):
        assert fetcher.check(chain(online, online.good), FILED).status == "unknown"
    assert trust_server.hits["/ocsp/qca"] == 1 and trust_server.hits["/crl/qca.crl"] == 1
    from worker.signatures.revocation import read_responders

    health = read_responders(fetcher.cfg.cache)
    assert health[online.qca.ocsp_url]["ok"] is False and "503" in health[online.qca.ocsp_url]["reason"]


def test_a_fetch_is_bounded_in_size(trust_server):
    from worker.signatures.fetch import Fetcher, FetchError

    url = trust_server.serve("/big.bin", b"x" * 200_000, "application/octet-stream")
    assert len(Fetcher(max_bytes=300_000).get(url)) == 200_000
    with pytest.raises(FetchError, match="(więcej|większa) niż dopuszczalne 100000 B"):
        Fetcher(max_bytes=100_000).get(url)


# --- the daemon's refresh ---------------------------------------------------------------------


@pytest.mark.slow  # a real daemon
def test_the_daemon_refreshes_the_lists_every_trusted_list_refresh_s(setup, online, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.test_intake_signals import events_of, wait_for

    config, server, urls, env = setup
    metrics = tmp_path / "metrics.prom"
    cfg = config(epuap=False, trusted_list_refresh_s=1)
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[monitoring]\n", f'[monitoring]\nmetrics_file = "{metrics}"\n'), encoding="utf-8")
    out = tmp_path / "daemon.log"

    def events(name: str) -> list[dict]:
        return [e for e in events_of(out) if e["event"] == name]

    with open(out, "w") as fh:
        daemon = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=fh, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, **env))  # fmt: skip
    try:
        wait_for(lambda: len(events("trust.updated")) >= 2, "two refreshes")
        adopted = {e["territory"] for e in events("trust.list_adopted")}
        assert adopted == {"EU", "PL"} and {e["territory"] for e in events("trust.list_checked")} >= {"PL"}
        wait_for(lambda: metrics.exists() and "ebok_worker_trusted_list_next_update_timestamp_seconds" in metrics.read_text(encoding="utf-8"), "metrics")
        publish(online, sequence=8, tamper=True)
        wait_for(lambda: any(e.get("problem") == "signature" for e in events("trust.list_failed")), "a refused list")
        wait_for(lambda: "ebok_worker_trusted_lists_failed 1.0" in metrics.read_text(encoding="utf-8"), "the refusal in the metrics")
        text = metrics.read_text(encoding="utf-8")
        assert 'ebok_worker_last_pass_timestamp_seconds{job="trust.refresh"}' in text  # the job's last pass, by #23's convention
        counted = re.compile(r'^ebok_worker_errors_total\{kind="trust"\} ([1-9][0-9]*)\.0$', re.M)  # each refused refresh (one a second)
        wait_for(lambda: counted.search(metrics.read_text(encoding="utf-8")) is not None, "the refusal counted")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    assert daemon.returncode == 0
    assert all(e["job"] != "trust.refresh" for e in events("job.failed"))


# --- configuration ------------------------------------------------------------------------------


def test_configuration_problems_name_the_key(setup, tmp_path):
    config, server, urls, env = setup
    doc = tmp_path / "x.xml"
    doc.write_text("<x/>", encoding="utf-8")
    cfg = config(trusted_list_signers=tmp_path / "missing.pem")
    r = run_cli(cfg, "check", str(doc), env=env)
    assert r.returncode == 2 and r.stderr.startswith("ebok-worker: signatures.trusted_list_signers:"), r.stderr
    cfg = config(revocation="off")
    r = run_cli(cfg, "check", str(doc), env=env)
    assert r.returncode == 2 and "signatures.revocation_fetch" in r.stderr, r.stderr
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("trusted_list_signers", "# trusted_list_signers").replace('revocation = "off"', 'revocation = "required"'),
                   encoding="utf-8")  # fmt: skip
    r = run_cli(cfg, "trust", "show", env=env)
    assert r.returncode == 2 and "signatures.trusted_list_signers: wymagane" in r.stderr, r.stderr
