"""Signature time-stamps (``[signatures] tsa_anchors``): a verified
``xades:SignatureTimeStamp`` of a configured TSA that is earlier than the filing time is
the validation time. Tokens are made by ``openssl ts`` (an independent implementation) at
the time the test runs, so the certificates here are dated around that time."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from tests.sigtools.pki import ALICJA, TestPKI
from tests.sigtools.tsa import add_signature_timestamp
from tests.sigtools.xmlsig import declaration, qualified_signature, sign
from worker.signatures import INVALID, VALID, TrustConfig, verify_document

DOC = declaration(ALICJA)


@pytest.fixture(scope="module")
def dated(pki: TestPKI):
    """A qualified certificate valid from 30 days ago to 30 days from now, a document it
    signed yesterday (claimed), and the same document time-stamped now by the TSA."""
    now = datetime.now(UTC)
    signer = pki.person(ALICJA, not_before=now - timedelta(days=30), not_after=now + timedelta(days=30))
    raw = sign(DOC, qualified_signature(signer, now - timedelta(days=1)), signer)
    return now, signer, raw


@pytest.fixture
def with_tsa(pki: TestPKI, trust: TrustConfig) -> TrustConfig:
    return replace(trust, tsa_anchors=(pki.root.cert,))


def test_an_earlier_time_stamp_is_the_validation_time(pki, trust, with_tsa, dated, tmp_path) -> None:
    now, _, raw = dated
    stamped = add_signature_timestamp(raw, pki.tsa, tmp_path)
    filed = now + timedelta(days=365)  # filed after the certificate expired
    # without TSA anchors the time-stamp is not used: checked at the filing time, expired
    plain = verify_document(stamped, trust, filed_at=filed)
    assert [f.code for f in plain.findings] == ["SIGNATURE_CERT_EXPIRED"]
    assert plain.evidence["validation_time_source"] == "filing_time"
    # with the TSA configured, the time-stamp proves the signature existed while the certificate was valid
    r = verify_document(stamped, with_tsa, filed_at=filed)
    assert (r.status, r.findings) == (VALID, [])
    ev = r.evidence
    assert ev["validation_time_source"] == "signature_timestamp"
    at = datetime.fromisoformat(ev["validation_time"])
    assert now - timedelta(minutes=5) <= at <= datetime.now(UTC) + timedelta(minutes=1)
    assert ev["signatures"][0]["timestamp"] == "signature time-stamp verified"
    # a time-stamp later than the filing time changes nothing
    early_filing = verify_document(stamped, with_tsa, filed_at=now - timedelta(hours=1))
    assert early_filing.evidence["validation_time_source"] == "filing_time"


def test_a_time_stamp_after_expiry_does_not_help(pki, with_tsa, tmp_path) -> None:
    now = datetime.now(UTC)
    expired = pki.person(ALICJA, not_before=now - timedelta(days=60), not_after=now - timedelta(days=1))
    raw = sign(DOC, qualified_signature(expired, now - timedelta(days=30)), expired)  # back-dated claim
    stamped = add_signature_timestamp(raw, pki.tsa, tmp_path)
    r = verify_document(stamped, with_tsa, filed_at=now + timedelta(days=2))
    assert [f.code for f in r.findings] == ["SIGNATURE_CERT_EXPIRED"]
    assert r.evidence["validation_time_source"] == "signature_timestamp"
    assert "znacznikiem czasu" in r.findings[0].message


def test_untrusted_moved_or_altered_time_stamps_are_not_used(pki, with_tsa, dated, tmp_path) -> None:
    now, signer, raw = dated
    filed = now + timedelta(days=365)
    untrusted = add_signature_timestamp(raw, pki.untrusted_tsa, tmp_path / "u")
    r = verify_document(untrusted, with_tsa, filed_at=filed)
    assert r.status == INVALID and r.evidence["validation_time_source"] == "filing_time"
    assert "TSA anchor" in r.evidence["signatures"][0]["timestamp"]

    # a token made for another signature's value, moved onto this one
    other = sign(declaration(ALICJA, residents=3, fee="114.00"), qualified_signature(signer, now - timedelta(days=2)), signer)
    other_stamped = etree.fromstring(add_signature_timestamp(other, pki.tsa, tmp_path / "o"))
    token = base64.b64decode(other_stamped.find(".//{http://uri.etsi.org/01903/v1.3.2#}EncapsulatedTimeStamp").text)
    moved = add_signature_timestamp(raw, pki.tsa, tmp_path / "m", token=token)
    r = verify_document(moved, with_tsa, filed_at=filed)
    assert r.status == INVALID and "does not cover this signature value" in r.evidence["signatures"][0]["timestamp"]

    good = etree.fromstring(add_signature_timestamp(raw, pki.tsa, tmp_path / "g"))
    token = bytearray(base64.b64decode(good.find(".//{http://uri.etsi.org/01903/v1.3.2#}EncapsulatedTimeStamp").text))
    token[-5] ^= 0x01  # inside the TSA's signature value
    altered = add_signature_timestamp(raw, pki.tsa, tmp_path / "a", token=bytes(token))
    r = verify_document(altered, with_tsa, filed_at=filed)
    assert r.status == INVALID and "does not verify" in r.evidence["signatures"][0]["timestamp"]

    garbage = add_signature_timestamp(raw, pki.tsa, tmp_path / "x", token=b"\x30\x03\x02\x01\x01")
    r = verify_document(garbage, with_tsa, filed_at=filed)
    assert r.status == INVALID and r.evidence["signatures"][0]["timestamp"]


def test_tsa_anchors_in_the_configuration(pki, trust_files, tmp_path) -> None:
    from worker import config as config_mod
    from worker.app import build_settings
    from worker.errors import ConfigError

    anchors, seal = trust_files
    (tmp_path / "tsa.pem").write_bytes(pki.root.cert_pem)
    sig = {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)], "tsa_anchors": "tsa.pem"}
    cfg = config_mod.from_dict({"signatures": sig}, base=tmp_path)
    assert cfg.signatures.tsa_anchors == tmp_path / "tsa.pem"
    assert build_settings(cfg).trust.tsa_anchors == (pki.root.cert,)
    missing = config_mod.from_dict({"signatures": dict(sig, tsa_anchors="nope.pem")}, base=tmp_path)
    with pytest.raises(ConfigError, match="signatures.tsa_anchors"):
        build_settings(missing)
    without = config_mod.from_dict({"signatures": {k: v for k, v in sig.items() if k != "tsa_anchors"}}, base=tmp_path)
    assert build_settings(without).trust.tsa_anchors == ()
