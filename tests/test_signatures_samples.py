"""The union's signed samples (signed by xmlsec1), the XAdES reference vectors and the XML
attack files from ``../shared`` (read through the ``shared_dir`` fixture)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from worker.signatures import QUALIFIED, TRUSTED_PROFILE, VALID, TrustConfig, verify_document, xades
from worker.signatures.xmlparse import parse_untrusted


def _signed(shared_dir: Path) -> Path:
    return shared_dir / "spec" / "samples" / "signed"


@pytest.fixture(scope="module")
def sample_trust(shared_dir: Path) -> TrustConfig:
    pki = _signed(shared_dir) / "pki"
    return TrustConfig.from_files(pki / "trust-anchors.pem", [pki / "pz-seal.pem"])


def _signer_table(readme: str) -> dict[str, tuple[str, str]]:
    """file -> (name, PESEL) from the README's signer table."""
    rows = re.findall(r"^\| `([^`]+\.xml)` \| ([^|]+?) \| (\d{11}) \|$", readme, flags=re.MULTILINE)
    return {f: (name, pesel) for f, name, pesel in rows}


def _expected(shared_dir: Path) -> list[dict]:
    return json.loads((_signed(shared_dir) / "expected.json").read_text(encoding="utf-8"))


def _filed_at(path: Path) -> datetime:
    meta = json.loads(Path(str(path) + ".meta.json").read_text(encoding="utf-8"))
    return datetime.fromisoformat(meta["dataNadania"])


def test_every_sample_verifies_with_its_expected_signer(shared_dir: Path, sample_trust: TrustConfig) -> None:
    signed = _signed(shared_dir)
    signers = _signer_table((signed / "README.md").read_text(encoding="utf-8"))
    expected = _expected(shared_dir)
    assert len(expected) == 6 and set(signers) == {e["file"] for e in expected}
    for e in expected:
        path = signed / e["file"]
        result = verify_document(path.read_bytes(), sample_trust, filed_at=_filed_at(path))
        name, pesel = signers[e["file"]]
        assert (result.kind, result.status, result.findings) == (e["signature"], e["signature_status"], []), e["file"]
        assert result.signer_name == name, e["file"]
        assert result.signer_pesel == pesel == e["signer_pesel"], e["file"]
        assert result.signing_time is not None and result.signing_time <= _filed_at(path)
        assert result.signed_root is not None
        assert not list(result.signed_root.iter(xades.DS_SIGNATURE))
        ev = json.loads(json.dumps(result.evidence))
        assert ev["kind"] == e["signature"] and ev["status"] == VALID
        assert len(ev["certificates"]) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", f) for f in ev["certificates"])
        assert pesel not in json.dumps(ev)


def test_processing_instruction_before_the_root_is_part_of_the_signed_content(
    shared_dir: Path, sample_trust: TrustConfig
) -> None:
    path = _signed(shared_dir) / "do1-2025-pz-nowy-wielolokalowa.xml"
    raw = path.read_bytes()
    result = verify_document(raw, sample_trust, filed_at=_filed_at(path))
    assert result.status == VALID
    pis = [n for n in result.signed_root.itersiblings(preceding=True)]
    assert len(pis) == 1 and pis[0].target == "xml-stylesheet"
    # the stylesheet is covered: changing it breaks the signature
    tampered = raw.replace(b"styl.xsl", b"inny.xsl")
    assert verify_document(tampered, sample_trust, filed_at=_filed_at(path)).findings[0].code == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    "file, old, new",
    [
        ("do1-2025-pz-nowy-jednorodzinna.xml", b"<wnio:OplataMiesieczna>144.00<", b"<wnio:OplataMiesieczna>14.00<"),
        ("do1-2025-kwalifikowany-jednorodzinna.xml", b"<wnio:Gmina>Walce<", b"<wnio:Gmina>Opole<"),
    ],
)
def test_tampered_sample_content_is_invalid(shared_dir: Path, sample_trust: TrustConfig, file: str, old: bytes, new: bytes) -> None:
    path = _signed(shared_dir) / file
    raw = path.read_bytes()
    assert old in raw
    result = verify_document(raw.replace(old, new), sample_trust, filed_at=_filed_at(path))
    assert result.status == "INVALID" and result.signed_root is None
    assert [f.code for f in result.findings] == ["SIGNATURE_INVALID"]
    assert "zmienione" in result.findings[0].message


def test_tampered_sample_identity_is_invalid(shared_dir: Path, sample_trust: TrustConfig) -> None:
    path = _signed(shared_dir) / "do1-2025-pz-stary-jednorodzinna.xml"
    raw = path.read_bytes()
    tampered = raw.replace(b"<os:PESEL>85110210756</os:PESEL>", b"<os:PESEL>79031431242</os:PESEL>")
    assert tampered != raw
    result = verify_document(tampered, sample_trust, filed_at=_filed_at(path))
    assert [f.code for f in result.findings] == ["SIGNATURE_INVALID"]
    assert result.signer_pesel is None and result.signed_root is None


def test_samples_without_the_seal_pinned_are_untrusted(shared_dir: Path) -> None:
    pki = _signed(shared_dir) / "pki"
    trust = TrustConfig.from_files(pki / "trust-anchors.pem", [pki / "qualified-ca.pem"])
    path = _signed(shared_dir) / "do1-2025-pz-nowy-jednorodzinna.xml"
    result = verify_document(path.read_bytes(), trust, filed_at=_filed_at(path))
    assert (result.kind, result.status) == (TRUSTED_PROFILE, "INVALID")
    assert [f.code for f in result.findings] == ["SIGNATURE_UNTRUSTED"]
    # the qualified samples do not need the seal
    q = _signed(shared_dir) / "do1-2025-kwalifikowany-niezamieszkala.xml"
    assert verify_document(q.read_bytes(), trust, filed_at=_filed_at(q)).kind == QUALIFIED


def test_claimed_signing_time_is_bounded_by_the_filing_time(shared_dir: Path, sample_trust: TrustConfig) -> None:
    # the certificate is checked at the filing time (proof of existence), never at the claimed signing time
    path = _signed(shared_dir) / "do1-2025-kwalifikowany-jednorodzinna.xml"
    result = verify_document(path.read_bytes(), sample_trust, filed_at=datetime.fromisoformat("2031-06-01T00:00:00+00:00"))
    # signed (claimed 2025) within validity, but first proven in 2031 after the certificate expired (2030)
    assert [f.code for f in result.findings] == ["SIGNATURE_CERT_EXPIRED"]
    assert result.evidence["validation_time"] == "2031-06-01T00:00:00+00:00"
    assert result.evidence["validation_time_source"] == "filing_time"
    early = verify_document(path.read_bytes(), sample_trust, filed_at=datetime.fromisoformat("2025-05-01T00:00:00+00:00"))
    # filed before the claimed signing time (2025-05-12): the claim cannot be true
    assert [f.code for f in early.findings] == ["SIGNATURE_INDETERMINATE"]
    assert early.status == "INDETERMINATE" and early.signed_root is not None
    # filed before the certificate existed (2022): not valid at the only time proven
    before = verify_document(path.read_bytes(), sample_trust, filed_at=datetime.fromisoformat("2021-06-01T00:00:00+00:00"))
    assert [f.code for f in before.findings] == ["SIGNATURE_CERT_EXPIRED"]


# -- the XAdES reference vectors (signxml's test set): the cryptographic layer --------

VERIFY = ["dss-signed.xml", "xades-extended-epes.xml", "X_AT_SIT_1.xml", "TEST_S1a_C1a_InTL_VALID.xml"]
FAIL = [
    ("dss-signed-altered-signedPropsRemoved.xml", xades.SIGNATURE_VALUE),
    ("xades-wrong-sign-cert-digest.xml", xades.CERT_BINDING),
    ("xades-sign-cert-v2-wrong-digest.xml", xades.CERT_BINDING),
]


def _vector(shared_dir: Path, name: str) -> tuple[bytes, object]:
    raw = (shared_dir / "reference" / "xades-vectors" / name).read_bytes()
    sig = xades.signature_elements(parse_untrusted(raw))[0]
    certs = xades.keyinfo_certificates(sig)
    return raw, xades.pick_signing_certificate(sig, certs)


@pytest.mark.parametrize("name", VERIFY)
def test_reference_vectors_that_verify(shared_dir: Path, name: str) -> None:
    raw, cert = _vector(shared_dir, name)
    result = xades.verify_crypto(raw, 0, cert, allow_base64=True)
    assert result.signed_properties is not None
    assert result.signed_properties.tag == xades.XADES_SIGNED_PROPERTIES
    targets = [r.target for r in result.references]
    assert targets.count(xades.SIGNED_PROPERTIES) == 1


def test_reference_vector_with_the_xpath_filter_covers_the_document(shared_dir: Path) -> None:
    raw, cert = _vector(shared_dir, "TEST_S1a_C1a_InTL_VALID.xml")
    result = xades.verify_crypto(raw, 0, cert)
    doc = [r for r in result.references if r.target == xades.DOCUMENT]
    assert len(doc) == 1 and xades.XPATH_FILTER in doc[0].transforms
    assert result.document_root.tag == "Data" and not list(result.document_root.iter(xades.DS_SIGNATURE))


@pytest.mark.parametrize("name, category", FAIL)
def test_reference_vectors_that_fail(shared_dir: Path, name: str, category: str) -> None:
    raw, cert = _vector(shared_dir, name)
    with pytest.raises(xades.CryptoFailure) as info:
        xades.verify_crypto(raw, 0, cert, allow_base64=True)
    assert info.value.category == category


def test_reference_vector_signed_with_sha1_is_refused_unless_allowed(shared_dir: Path) -> None:
    raw, cert = _vector(shared_dir, "document.signed.bes.ptcc.xml")
    with pytest.raises(xades.CryptoFailure) as info:
        xades.verify_crypto(raw, 0, cert)
    assert info.value.category == xades.ALGORITHM
    result = xades.verify_crypto(raw, 0, cert, allow_sha1=True)
    assert result.signed_properties is not None


def test_reference_vectors_are_never_valid_declarations(shared_dir: Path, sample_trust: TrustConfig) -> None:
    # they do not chain to the configured anchors, or are not an ePUAP shape at all
    for path in sorted((shared_dir / "reference" / "xades-vectors").glob("*.xml")):
        result = verify_document(path.read_bytes(), sample_trust, filed_at=datetime.fromisoformat("2024-01-01T00:00:00+00:00"))
        assert result.status == "INVALID" and result.signed_root is None, path.name
        assert result.findings and result.findings[0].code in {"SIGNATURE_INVALID", "SIGNATURE_UNTRUSTED"}
    dss = shared_dir / "reference" / "xades-vectors" / "dss-signed.xml"
    result = verify_document(dss.read_bytes(), sample_trust, filed_at=datetime.fromisoformat("2019-03-01T00:00:00+00:00"))
    assert [f.code for f in result.findings] == ["SIGNATURE_UNTRUSTED"]


def test_xml_attack_files_are_refused_without_expansion(shared_dir: Path, sample_trust: TrustConfig) -> None:
    files = sorted((shared_dir / "reference" / "xml-attacks").glob("*.xml"))
    assert len(files) >= 6
    for path in files:
        result = verify_document(path.read_bytes(), sample_trust)
        assert result.status == "INVALID" and result.signed_root is None, path.name
        assert [f.code for f in result.findings] == ["SIGNATURE_INVALID"], path.name
