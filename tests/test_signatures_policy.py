"""Issue #20: keys and algorithms (RSA ≥ 2048, EC ≥ 256, no DSA, no SHA-1/MD5 — for the
signer and every CA of the path), the Profil Zaufany seal pinned by its public key, and
exactly one identity in a Profil Zaufany signature. Documents signed by xmlsec1 with keys
made by OpenSSL and ``cryptography``; through ``verify_document``, ``check`` and
``run --once`` pulling from the local ePUAP double."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec

from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.filings import declarations_by_file, file_document
from tests.sigtools import xmlsig
from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, BOGDAN, QCP_N_QSCD, Issued, Person, TestPKI, _name, issue, utc
from worker.signatures import INVALID, VALID, policy, verify_document

ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
DSA_SHA256 = "http://www.w3.org/2009/xmldsig11#dsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


def openssl_rsa(bits: int):
    """An RSA key of ``bits`` (``cryptography`` will not make one below 1024 bits)."""
    pem = subprocess.run(["openssl", "genrsa", str(bits)], capture_output=True, check=True).stdout
    return serialization.load_pem_private_key(pem, None)


def person(pki: TestPKI, key, issuer: Issued | None = None, who: Person = ALICJA) -> Issued:
    return issue(
        _name(C="PL", GN=who.first, SN=who.last, serialNumber=f"PNOPL-{who.pesel}", CN=f"{who.first} {who.last}"),
        issuer or pki.qualified_ca, not_before=utc(2022), not_after=utc(2030, 12, 31), ca=False, key_usage="nonrep",
        qualified=True, policy=QCP_N_QSCD, key=key,
    )  # fmt: skip


def sha1_signed_ca(pki: TestPKI, tmp: Path) -> Issued:
    """A qualified CA whose certificate the root signed with SHA-1 (OpenSSL: ``cryptography``
    no longer signs with SHA-1)."""
    key = openssl_rsa(2048)
    (tmp / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp / "root.key").write_bytes(pki.root.key_pem)
    (tmp / "root.pem").write_bytes(pki.root.cert_pem)
    (tmp / "ext.cnf").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    subprocess.run(["openssl", "req", "-new", "-key", tmp / "ca.key", "-subj", "/C=PL/O=TEST - dostawca/CN=TEST CA SHA-1", "-out", tmp / "ca.csr"],
                   capture_output=True, check=True)
    subprocess.run(["openssl", "x509", "-req", "-in", tmp / "ca.csr", "-CA", tmp / "root.pem", "-CAkey", tmp / "root.key", "-sha1",
                    "-set_serial", "4242", "-days", "3650", "-extfile", tmp / "ext.cnf", "-out", tmp / "ca.pem"], capture_output=True, check=True)
    cert = x509.load_pem_x509_certificate((tmp / "ca.pem").read_bytes())
    return Issued(cert, key, pki.root)


@dataclass
class Case:
    raw: bytes
    status: str  # check's / the eBOK's status
    codes: list[str]
    says: str | None = None  # what the finding's message must name


@pytest.fixture(scope="module")
def cases(pki: TestPKI, tmp_path_factory) -> dict[str, Case]:
    buildings = iter(range(1, 100))

    def declaration() -> str:  # each case a property of its own (its own building)
        return xmlsig.declaration_at(ALICJA, building=str(next(buildings)), residents=2, fee="76.00")

    weak_ca = issue(_name(C="PL", O="TEST - dostawca", CN="TEST CA RSA-1024"), pki.root, not_before=utc(2020), not_after=utc(2040),
                    ca=True, key_usage="ca", key=openssl_rsa(1024))
    sha1_ca = sha1_signed_ca(pki, tmp_path_factory.mktemp("sha1-ca"))

    def qualified(signer: Issued, method: str = xmlsig.RSA_SHA256, **kw) -> bytes:
        return xmlsig.sign(declaration(), xmlsig.qualified_signature(signer, SIGNED_AT, method=method, **kw), signer)

    def profile(identity: str, seal: Issued | None = None) -> bytes:
        seal = seal or pki.seal
        return xmlsig.sign(declaration(), xmlsig.pz_signature(seal, SIGNED_AT, identity), seal)

    same_name_seal = issue(pki.seal.cert.subject, pki.seal_ca, not_before=utc(2024), not_after=utc(2034), ca=False, key_usage="seal",
                           qualified=True)
    other_names = Person("Alina", "Wróbel", ALICJA.pesel, ALICJA.born)
    two_persons = xmlsig.podpis_zp(ALICJA).replace(
        "</ppZP:DaneZP>",
        f"<ppZP:DaneZPOsobyFizycznej><os:Imie>BOGDAN</os:Imie><os:Nazwisko>ZIĘBA</os:Nazwisko><os:PESEL>{BOGDAN.pesel}</os:PESEL>"
        "</ppZP:DaneZPOsobyFizycznej></ppZP:DaneZP>",
    )
    return {
        "rsa-512": Case(qualified(person(pki, openssl_rsa(512))), "REJECTED", ["SIGNATURE_UNTRUSTED"], "RSA o długości 512 bitów"),
        "rsa-1024": Case(qualified(person(pki, openssl_rsa(1024))), "REJECTED", ["SIGNATURE_UNTRUSTED"], "RSA o długości 1024 bitów"),
        "dsa-2048": Case(qualified(person(pki, dsa.generate_private_key(2048)), DSA_SHA256), "REJECTED", ["SIGNATURE_UNTRUSTED"], "DSA"),
        "ec-p192": Case(qualified(person(pki, ec.generate_private_key(ec.SECP192R1())), ECDSA_SHA256), "REJECTED",
                        ["SIGNATURE_UNTRUSTED"], "secp192r1"),
        "rsa-sha1": Case(qualified(pki.alicja, RSA_SHA1), "REJECTED", ["SIGNATURE_UNTRUSTED"], "RSA-SHA1"),
        "cert-digest-sha1": Case(qualified(pki.alicja, cert_digest="sha1"), "REJECTED", ["SIGNATURE_UNTRUSTED"], "SHA-1"),
        "ca-rsa-1024": Case(qualified(person(pki, None, weak_ca)),
                            "REJECTED", ["SIGNATURE_UNTRUSTED"], "„TEST CA RSA-1024” ma klucz RSA o długości 1024 bitów"),
        "ca-signed-sha1": Case(qualified(person(pki, None, sha1_ca)),
                               "REJECTED", ["SIGNATURE_UNTRUSTED"], "„TEST CA SHA-1” został podpisany algorytmem z SHA-1"),
        "ok-ec-p256": Case(qualified(person(pki, ec.generate_private_key(ec.SECP256R1())), ECDSA_SHA256), "ACCEPTED", []),
        "ok-ec-p384": Case(qualified(person(pki, ec.generate_private_key(ec.SECP384R1())), ECDSA_SHA256), "ACCEPTED", []),
        "seal-name-other-key": Case(profile(xmlsig.ep_signature(ALICJA), same_name_seal), "REJECTED", ["SIGNATURE_UNTRUSTED"],
                                    "pieczęcią podpisu zaufanego"),
        "two-ep-signatures-same-pesel": Case(profile(xmlsig.ep_signature(ALICJA) + xmlsig.ep_signature(other_names)), "REJECTED",
                                             ["SIGNATURE_INVALID"], "więcej niż jedną tożsamość"),
        "two-claimed-roles": Case(profile(xmlsig.ep_signature(ALICJA) + "</xades:ClaimedRole><xades:ClaimedRole>" + xmlsig.podpis_zp(ALICJA)),
                                  "REJECTED", ["SIGNATURE_INVALID"], "więcej niż jedną tożsamość"),
        "two-podpiszp-persons": Case(profile(two_persons), "REJECTED", ["SIGNATURE_INVALID"], "więcej niż jedną tożsamość"),
        "ok-profil-zaufany": Case(profile(xmlsig.ep_signature(ALICJA)), "ACCEPTED", []),
    }


def test_each_case_through_verify_document(cases, trust):
    for name, case in cases.items():
        r = verify_document(case.raw, trust, filed_at=FILED_AT)
        assert [f.code for f in r.findings] == case.codes, name
        assert r.status == (VALID if case.status == "ACCEPTED" else INVALID), name
        if case.says:
            assert case.says in r.findings[0].message, (name, r.findings[0].message)
        if case.status != "ACCEPTED":
            assert r.signed_root is None and r.signer_pesel is None, name


def test_a_weak_key_is_refused_before_the_document_is_canonicalised(cases, trust, monkeypatch):
    # cheap refusals first: an untrusted key, a weak key or algorithm never reaches the
    # canonicalisation of the content
    from worker.signatures import xades

    def never(*args, **kwargs):
        raise AssertionError("canonicalised")

    monkeypatch.setattr(xades, "verify_crypto", never)
    for name in ("rsa-512", "dsa-2048", "rsa-sha1", "ca-rsa-1024", "ca-signed-sha1", "seal-name-other-key"):
        assert verify_document(cases[name].raw, trust, filed_at=FILED_AT).findings[0].code == "SIGNATURE_UNTRUSTED", name


def test_the_path_policy_spares_only_the_anchor_s_self_signature(pki, tmp_path):
    sha1_ca = sha1_signed_ca(pki, tmp_path)
    assert policy.path_problems([pki.alicja.cert, pki.qualified_ca.cert, pki.root.cert]) == []
    (problem,) = policy.path_problems([person(pki, None, sha1_ca).cert, sha1_ca.cert, pki.root.cert])
    assert "SHA1" in problem.reason and "TEST CA SHA-1" in problem.reason
    # the same certificate as the configured anchor: its self-signature is not what trust rests on
    assert policy.certificate_problems(sha1_ca.cert, position=1, anchor=True) == []
    assert policy.key_problem(dsa.generate_private_key(2048).public_key()) == "DSA key of 2048 bits"


# --- through check and run --once ---------------------------------------------------------

MAILBOX = "/czystyregion/deklaracje"
FILED = datetime(2025, 3, 10, 9, 5, tzinfo=UTC)


def test_each_case_through_check_and_run_once(cases, write_config, keys, epuap_double, trust_files, db_url, tmp_path):
    anchors, seal = trust_files
    server = epuap_double(mailboxes=[MAILBOX])
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje"),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
    )
    env = epuap_env(keys)
    for n, (name, case) in enumerate(cases.items()):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(case.raw)
        r = run_cli(cfg, "check", str(path), "--json", "--filed-at", FILED.isoformat(), env=env)
        assert r.returncode == 0, r.stderr
        (out,) = json.loads(r.stdout)
        assert (out["status"], [f["code"] for f in out["findings"]]) == (case.status, case.codes), name
        file_document(server, MAILBOX, name, case.raw, FILED + timedelta(minutes=n), order=n)
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stdout[-2000:]
    assert not re.search(r"\d{11}", r.stdout)  # no PESEL in any log line
    rows = declarations_by_file(db_url)
    assert set(rows) == set(cases)
    for name, case in cases.items():
        row = rows[name]
        codes = [f["code"] for f in row["findings"]]
        if case.status == "ACCEPTED":
            assert (row["status"], codes) == ("ACCEPTED", []), name
        else:
            assert (row["status"], codes) == (case.status, case.codes), name
            assert row["payer_id"] is None and row["property_id"] is None, name  # nothing loaded from it
