"""Verified paths are reused only for the same certificates inside their validity window:
a path remembered for one certificate never lets an expired, untrusted or unfit one pass."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, TestPKI, utc
from tests.sigtools.xmlsig import declaration, ep_signature, pz_signature, qualified_signature, sign
from worker.signatures import TrustConfig, verify_document
from worker.signatures import trust as tr

DOC = declaration(ALICJA)


@pytest.fixture
def fresh(trust_files) -> TrustConfig:
    anchors, seal = trust_files
    return TrustConfig.from_files(anchors, [seal])


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


def test_a_valid_path_is_reused_and_gives_the_same_chain(pki: TestPKI, fresh: TrustConfig) -> None:
    first = fresh.validate_path(pki.seal.cert, [pki.seal_ca.cert], FILED_AT)
    assert first.status == tr.PATH_OK and fresh.paths.misses == 1 and len(fresh.paths) == 1
    again = fresh.validate_path(pki.seal.cert, [pki.seal_ca.cert], FILED_AT + timedelta(days=30))
    assert (again.status, again.chain) == (tr.PATH_OK, first.chain) and fresh.paths.hits == 1


def test_outside_the_window_the_path_is_validated_again(pki: TestPKI, fresh: TrustConfig) -> None:
    assert fresh.validate_path(pki.seal.cert, [pki.seal_ca.cert], FILED_AT).status == tr.PATH_OK
    # the seal is valid 2022–2032: before and after, expired as without the cache
    assert fresh.validate_path(pki.seal.cert, [pki.seal_ca.cert], utc(2021, 6, 1)).status == tr.PATH_EXPIRED
    assert fresh.validate_path(pki.seal.cert, [pki.seal_ca.cert], utc(2033, 1, 1)).status == tr.PATH_EXPIRED
    assert fresh.paths.hits == 0


def test_another_certificate_under_the_same_ca_is_validated_on_its_own(pki: TestPKI, fresh: TrustConfig) -> None:
    assert fresh.validate_path(pki.alicja.cert, [pki.qualified_ca.cert], FILED_AT).status == tr.PATH_OK
    # same issuer, expired at the filing time
    assert fresh.validate_path(pki.expired.cert, [pki.qualified_ca.cert], FILED_AT).status == tr.PATH_EXPIRED
    # an issuer of the same name under an untrusted root; the leaf offered with it
    assert fresh.validate_path(pki.untrusted_person.cert, [pki.untrusted_ca.cert], FILED_AT).status == tr.PATH_UNTRUSTED
    # the same leaf as a cached one but offered with the untrusted look-alike issuer only
    assert fresh.validate_path(pki.alicja.cert, [pki.untrusted_ca.cert], FILED_AT).status == tr.PATH_UNTRUSTED
    assert fresh.paths.hits == 0


def test_documents_after_a_cached_seal_are_still_refused(pki: TestPKI, fresh: TrustConfig) -> None:
    good = sign(DOC, pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)
    assert verify_document(good, fresh, filed_at=FILED_AT).status == "VALID"
    assert verify_document(good, fresh, filed_at=FILED_AT + timedelta(hours=1)).status == "VALID"
    assert fresh.paths.hits >= 1
    lookalike = sign(DOC, pz_signature(pki.fake_seal, SIGNED_AT, ep_signature(ALICJA)), pki.fake_seal)
    assert codes(verify_document(lookalike, fresh, filed_at=FILED_AT)) == ["SIGNATURE_UNTRUSTED"]
    expired = sign(DOC, qualified_signature(pki.expired, SIGNED_AT), pki.expired)
    assert codes(verify_document(expired, fresh, filed_at=FILED_AT)) == ["SIGNATURE_CERT_EXPIRED"]
    # the cached seal filed after its validity: expired, not reused
    assert codes(verify_document(good, fresh, filed_at=utc(2033, 1, 1))) == ["SIGNATURE_CERT_EXPIRED"]


def test_an_unfit_certificate_is_refused_though_its_path_is_cached(pki: TestPKI, fresh: TrustConfig) -> None:
    # the purpose is checked for every document, after the (cached) path
    unfit = sign(DOC, qualified_signature(pki.encipher_only, SIGNED_AT), pki.encipher_only)
    assert codes(verify_document(unfit, fresh, filed_at=FILED_AT)) == ["SIGNATURE_UNTRUSTED"]
    assert codes(verify_document(unfit, fresh, filed_at=FILED_AT + timedelta(hours=1))) == ["SIGNATURE_UNTRUSTED"]


def test_a_ca_certificate_as_signer_is_never_cached(pki: TestPKI, fresh: TrustConfig) -> None:
    for _ in range(2):
        assert fresh.validate_path(pki.qualified_ca.cert, [], FILED_AT).status == tr.PATH_USAGE
    assert len(fresh.paths) == 0


def test_revocation_is_checked_for_every_document(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    anchors, seal = trust_files

    def crl(issuer, revoked, name):
        p = tmp_path / name
        p.write_bytes(pki.crl(issuer, revoked, last=utc(2025, 1, 1), next=None).public_bytes(Encoding.PEM))
        return p

    root_crl = crl(pki.root, [], "root.crl")
    revoked = crl(pki.qualified_ca, [(pki.alicja, utc(2025, 3, 5))], "revoked.crl")
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl, revoked])
    raw = sign(DOC, qualified_signature(pki.alicja, utc(2025, 3, 1)), pki.alicja)
    before = verify_document(raw, cfg, filed_at=utc(2025, 3, 2))
    assert before.status == "VALID"
    after = verify_document(raw, cfg, filed_at=FILED_AT)  # the path is reused; the revocation is not
    assert cfg.paths.hits >= 1 and codes(after) == ["SIGNATURE_UNTRUSTED"]
    # another CRL set is another configuration: nothing shared
    other = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl])
    assert other.paths is not cfg.paths and other._crl_set != cfg._crl_set
    assert verify_document(raw, other, filed_at=utc(2025, 3, 2)).status == "INDETERMINATE"


def test_a_crl_signed_by_someone_else_stays_unusable(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    anchors, seal = trust_files
    forged = pki.crl(pki.untrusted_ca, [], last=utc(2025, 1, 1), next=None)  # the trusted CA's name, another key
    root = pki.crl(pki.root, [], last=utc(2025, 1, 1), next=None)
    files = []
    for name, c in (("root.crl", root), ("forged.crl", forged)):
        (tmp_path / name).write_bytes(c.public_bytes(Encoding.PEM))
        files.append(tmp_path / name)
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=files)
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    for _ in range(2):
        assert verify_document(raw, cfg, filed_at=FILED_AT).status == "INDETERMINATE"


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = tr.PathCache(maxsize=3)

    class Cert:
        not_valid_before_utc = utc(2020)
        not_valid_after_utc = utc(2030)

    for k in range(5):
        cache.put(("leaf", k), (Cert(),))
    assert len(cache) == 3
    assert cache.get(("leaf", 0), utc(2025)) is None and cache.get(("leaf", 4), utc(2025)) is not None
    cache.get(("leaf", 2), utc(2025))
    cache.put(("leaf", 5), (Cert(),))
    assert cache.get(("leaf", 2), utc(2025)) is not None and cache.get(("leaf", 3), utc(2025)) is None
    assert cache.get(("leaf", 5), utc(2031)) is None  # outside the window
