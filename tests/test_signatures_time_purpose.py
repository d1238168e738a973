"""Issue #10, attacks 1 and 2 at the verifier: the validation time is the proof of
existence (never the claimed SigningTime), and only certificates meant for signing
documents sign a declaration. Documents are signed by xmlsec1 with the test PKI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, TestPKI, utc
from tests.sigtools.pki import qc_statements as tr_qc
from tests.sigtools.xmlsig import declaration, qualified_signature, sign
from worker.signatures import INDETERMINATE, INVALID, PERSONAL, QUALIFIED, VALID, TrustConfig, qc, verify_document
from worker.signatures import trust as tr
from worker.signatures.verify import signature_value_digest

DOC = declaration(ALICJA)


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


# -- 1. validation time: proof of existence -----------------------------------------------


def test_back_dated_signing_time_does_not_revive_an_expired_certificate(pki: TestPKI, trust: TrustConfig) -> None:
    # the certificate expired at the end of 2021; signed in 2025 with SigningTime set to 2020
    raw = sign(DOC, qualified_signature(pki.expired, utc(2020, 6, 1)), pki.expired)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (QUALIFIED, INVALID, ["SIGNATURE_CERT_EXPIRED"])
    ev = r.evidence
    assert ev["validation_time"] == FILED_AT.isoformat() and ev["validation_time_source"] == "filing_time"
    assert ev["signatures"][0]["signing_time"] == "2020-06-01T00:00:00+00:00"  # recorded, not used
    assert "złożenia dokumentu" in r.findings[0].message and "2025-03-10 09:00 UTC" in r.findings[0].message


def test_honest_signature_filed_after_expiry_is_expired(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.expired, utc(2021, 12, 1)), pki.expired)
    assert codes(verify_document(raw, trust, filed_at=FILED_AT)) == ["SIGNATURE_CERT_EXPIRED"]
    # the same document filed before the expiry is valid
    assert verify_document(raw, trust, filed_at=utc(2021, 12, 2)).status == VALID


def test_without_a_filing_time_the_time_of_the_check_is_used(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    later = datetime(2031, 2, 1, tzinfo=UTC)  # after the certificate's end (2030)
    r = verify_document(raw, trust, now=later)
    assert codes(r) == ["SIGNATURE_CERT_EXPIRED"]
    assert r.evidence["validation_time_source"] == "check_time"
    assert "w chwili sprawdzenia" in r.findings[0].message
    ok = verify_document(raw, trust, now=datetime(2025, 6, 1, tzinfo=UTC))
    assert ok.status == VALID and ok.evidence["validation_time"] == "2025-06-01T00:00:00+00:00"


def test_signing_time_after_the_proof_of_existence_is_indeterminate(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.alicja, utc(2025, 4, 1)), pki.alicja)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INDETERMINATE, ["SIGNATURE_INDETERMINATE"])
    assert r.evidence["validation_time"] == FILED_AT.isoformat()


# -- 2. a certificate fit for signing documents -------------------------------------------


@pytest.mark.parametrize(
    ("signer", "kind", "problem", "words"),
    [
        ("tls_server", PERSONAL, tr.MISSING_SIGNING_EKU, "ExtendedKeyUsage"),
        ("email_encryption", PERSONAL, tr.MISSING_KEY_USAGE, "KeyUsage"),
        ("no_qc_statements", QUALIFIED, tr.MISSING_QC_COMPLIANCE, "QcCompliance"),
        ("person_eseal", QUALIFIED, tr.QC_TYPE_NOT_ESIGN, "esign"),
        ("company_esign", QUALIFIED, tr.QC_TYPE_NOT_ESEAL, "eseal"),
        ("person_web_only", QUALIFIED, tr.QC_TYPE_NOT_ESIGN, "esign"),
        ("encipher_only", QUALIFIED, tr.MISSING_KEY_USAGE, "KeyUsage"),
    ],
)
def test_certificate_not_meant_for_signing_is_untrusted(pki: TestPKI, trust: TrustConfig, signer: str, kind: str, problem: str, words: str) -> None:
    issued = getattr(pki, signer)
    raw = sign(DOC, qualified_signature(issued, SIGNED_AT), issued)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (kind, INVALID, ["SIGNATURE_UNTRUSTED"])
    assert problem in r.evidence["signatures"][0]["reason"]
    message = r.findings[0].message
    assert message.startswith("Certyfikat użyty do podpisu nie jest przeznaczony do podpisywania dokumentów") and words in message
    assert r.signed_root is None  # nothing is read from it


@pytest.mark.parametrize("signer", ["alicja", "person_esign", "company_eseal", "company_seal", "celina_personal"])
def test_certificates_meant_for_signing_are_valid(pki: TestPKI, trust: TrustConfig, signer: str) -> None:
    issued = getattr(pki, signer)
    r = verify_document(sign(DOC, qualified_signature(issued, SIGNED_AT), issued), trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (VALID, [])


def test_purpose_problems_reads_the_certificates(pki: TestPKI) -> None:
    assert tr.purpose_problems(pki.alicja.cert, qualified=True) == []
    assert tr.purpose_problems(pki.tls_server.cert, qualified=False) == [tr.MISSING_SIGNING_EKU]
    assert tr.purpose_problems(pki.email_encryption.cert, qualified=False) == [tr.MISSING_KEY_USAGE]
    assert tr.purpose_problems(pki.no_qc_statements.cert, qualified=True) == [tr.MISSING_QC_COMPLIANCE]
    assert tr.is_qualified(pki.no_qc_statements.cert) and not tr.is_qualified(pki.tls_server.cert)
    assert tr.purpose_problems(pki.person_eseal.cert, qualified=True) == [tr.QC_TYPE_NOT_ESIGN]
    assert tr.purpose_problems(pki.company_eseal.cert, qualified=True) == []
    # QcStatements without QcCompliance claim nothing: not qualified
    web_only = pki.person(ALICJA, qualified=False, issuer=pki.personal_ca, qc=tr_qc(compliance=False, types=("0.4.0.1862.1.6.3",)))
    assert not tr.is_qualified(web_only.cert) and tr.purpose_problems(web_only.cert, qualified=False) == []
    # malformed QcStatements: nothing readable, so QcCompliance is missing (never an exception)
    assert qc.read(b"\x30\x85garbage") == qc.NONE and not qc.NONE.compliance


def test_samples_pki_certificates_are_fit(shared_dir) -> None:
    from cryptography import x509

    pki_dir = shared_dir / "spec" / "samples" / "signed" / "pki"
    for pem in sorted((pki_dir / "signers").glob("*.pem")):
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
        assert tr.is_qualified(cert) and tr.purpose_problems(cert, qualified=True) == [], pem.name
    seal = x509.load_pem_x509_certificate((pki_dir / "pz-seal.pem").read_bytes())
    assert tr.purpose_problems(seal, qualified=True) == []  # QcType eseal on an institution


# -- the signature value digest -------------------------------------------------------------


def test_signature_value_digest_ignores_layout(pki: TestPKI, trust: TrustConfig) -> None:
    from lxml import etree

    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    digest = r.checks[0].value_digest
    assert digest and len(digest) == 64 and r.evidence["signatures"][0]["signature_value_sha256"] == digest
    root = etree.fromstring(raw)
    sig = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    value = sig.find("{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    value.text = "\n  " + "\n".join(value.text.strip()[i : i + 20] for i in range(0, len(value.text.strip()), 20)) + "\n"
    assert signature_value_digest(sig) == digest
    value.text = "not base64 !"
    assert signature_value_digest(sig) is None
    # an INVALID signature records no digest
    bad = verify_document(sign(DOC, qualified_signature(pki.tls_server, SIGNED_AT), pki.tls_server), trust, filed_at=FILED_AT)
    assert bad.checks[0].value_digest is None


def test_ecdsa_value_digest_is_not_malleable() -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from lxml import etree

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of P-256
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    r, s = 0x1234567890ABCDEF << 128, 0x42 << 200

    def signature(r: int, s: int):
        el = etree.fromstring(
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>'
            + base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
            + "</ds:SignatureValue></ds:Signature>"
        )
        return el

    original = signature_value_digest(signature(r, s), key)
    assert original is not None
    assert signature_value_digest(signature(r, n - s), key) == original  # the malleated twin
    assert signature_value_digest(signature(r + 1, s), key) != original
    # the same bytes read as an RSA value are digested whole
    assert signature_value_digest(signature(r, s)) != original
