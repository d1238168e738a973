"""verify_document on documents signed by xmlsec1 with the generated test PKI: kinds,
identity formats, trust, time, revocation, refused shapes, several signatures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, BOGDAN, CELINA, TestPKI, utc
from tests.sigtools.xmlsig import (
    declaration,
    ep_signature,
    podpis_zp,
    pz_signature,
    qualified_signature,
    sign,
    sign_many,
)
from worker.signatures import (
    INDETERMINATE,
    INVALID,
    NONE,
    PERSONAL,
    QUALIFIED,
    TRUSTED_PROFILE,
    VALID,
    TrustConfig,
    verify_document,
    xades,
)

DOC = declaration(ALICJA)


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


def test_profil_zaufany_new_identity(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (TRUSTED_PROFILE, VALID, [])
    assert (r.signer_name, r.signer_pesel) == ("Alicja Wróblewska", ALICJA.pesel)
    assert r.signing_time == SIGNED_AT
    assert r.checks[0].signer.identity_issuer == "login.gov.pl"
    assert r.evidence["signatures"][0]["pinned_by"] == "certificate"


@pytest.mark.parametrize("account_under", ["DanePodpisu", "DaneZPOsobyFizycznej"])
def test_profil_zaufany_old_identity_both_account_locations(pki: TestPKI, trust: TrustConfig, account_under: str) -> None:
    raw = sign(DOC, pz_signature(pki.seal, SIGNED_AT, podpis_zp(ALICJA, account_under=account_under)), pki.seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, r.signer_name, r.signer_pesel) == (TRUSTED_PROFILE, VALID, "Alicja Wróblewska", ALICJA.pesel)
    assert r.checks[0].signer.epuap_account == "konto-testowe"
    assert r.checks[0].signer.source == "ppZP:PodpisZP"


def test_qualified_pnopl(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, r.signer_name, r.signer_pesel) == (QUALIFIED, VALID, "Alicja Wróblewska", ALICJA.pesel)
    assert r.evidence["certificates"][0] == pki.alicja.cert.fingerprint(__import__("cryptography").hazmat.primitives.hashes.SHA256()).hex()
    assert len(r.evidence["certificates"]) == 3


def test_qualified_pesel_colon_variant_and_keyinfo_reference(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.bogdan_pesel_colon, SIGNED_AT, sign_keyinfo=True), pki.bogdan_pesel_colon)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, r.signer_name, r.signer_pesel) == (QUALIFIED, VALID, "Bogdan Zięba", BOGDAN.pesel)


def test_personal_signature(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.celina_personal, SIGNED_AT), pki.celina_personal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, r.signer_name, r.signer_pesel) == (PERSONAL, VALID, "Celina Kuś-Majewska", CELINA.pesel)


def test_untrusted_root(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.untrusted_person, SIGNED_AT), pki.untrusted_person)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_UNTRUSTED"])
    assert r.signed_root is None and r.signer_name is None
    assert "zaufan" in r.findings[0].message


def test_seal_lookalike_from_an_untrusted_root(pki: TestPKI, trust: TrustConfig) -> None:
    # same subject as the pinned seal, but it does not chain to the anchors
    raw = sign(DOC, pz_signature(pki.fake_seal, SIGNED_AT, ep_signature(ALICJA)), pki.fake_seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (TRUSTED_PROFILE, INVALID, ["SIGNATURE_UNTRUSTED"])


def test_profil_zaufany_identity_under_another_seal_is_untrusted(pki: TestPKI, trust: TrustConfig) -> None:
    # a company's qualified seal (chains to the anchors) cannot vouch for a citizen
    raw = sign(DOC, pz_signature(pki.company_seal, SIGNED_AT, ep_signature(ALICJA)), pki.company_seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (TRUSTED_PROFILE, INVALID, ["SIGNATURE_UNTRUSTED"])
    assert r.signer_pesel is None
    # without a Profil Zaufany identity the same seal is an ordinary qualified signature (no PESEL)
    plain = verify_document(sign(DOC, qualified_signature(pki.company_seal, SIGNED_AT), pki.company_seal), trust, filed_at=FILED_AT)
    assert (plain.kind, plain.status, plain.signer_name, plain.signer_pesel) == (QUALIFIED, VALID, "Firma Testowa - pieczęć", None)


def test_expired_certificate(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.expired, SIGNED_AT), pki.expired)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_CERT_EXPIRED"])
    # checked at the filing time (09:00), not at the claimed signing time (08:30)
    assert "2025-03-10 09:00 UTC" in r.findings[0].message
    # a SigningTime from when the certificate was valid proves nothing: filed in 2025, it
    # is checked in 2025 (the back-dated and the honest signer alike)
    early = sign(DOC, qualified_signature(pki.expired, utc(2021, 6, 1)), pki.expired)
    back = verify_document(early, trust, filed_at=FILED_AT)
    assert (back.status, codes(back)) == (INVALID, ["SIGNATURE_CERT_EXPIRED"])
    assert back.evidence["validation_time"] == FILED_AT.isoformat()
    # filed while the certificate was valid, it is valid
    assert verify_document(early, trust, filed_at=utc(2021, 6, 2)).status == VALID


def test_seal_used_before_its_validity(pki: TestPKI, trust: TrustConfig) -> None:
    # a claimed signing time before the certificate existed is implausible: review
    raw = sign(DOC, pz_signature(pki.seal, utc(2021, 6, 1), ep_signature(ALICJA)), pki.seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INDETERMINATE, ["SIGNATURE_INDETERMINATE"])
    assert r.evidence["signatures"][0]["reason"] == "claimed signing time before the certificate's notBefore"
    # filed before the seal existed: not valid at the only time proven
    assert codes(verify_document(raw, trust, filed_at=utc(2021, 6, 2))) == ["SIGNATURE_CERT_EXPIRED"]


def test_certificate_not_for_signing(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.encipher_only, SIGNED_AT), pki.encipher_only)
    assert codes(verify_document(raw, trust, filed_at=FILED_AT)) == ["SIGNATURE_UNTRUSTED"]


def test_profil_zaufany_identity_with_a_bad_pesel_is_invalid(pki: TestPKI, trust: TrustConfig) -> None:
    bad = ALICJA.pesel[:-1] + str((int(ALICJA.pesel[-1]) + 1) % 10)
    raw = sign(DOC, pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA, pesel=bad)), pki.seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_INVALID"])
    assert "PESEL" in r.findings[0].message


def test_profil_zaufany_without_identity_is_invalid(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, pz_signature(pki.seal, SIGNED_AT, None), pki.seal)
    assert codes(verify_document(raw, trust, filed_at=FILED_AT)) == ["SIGNATURE_INVALID"]


@pytest.mark.parametrize(
    "xpath",
    [
        "not(ancestor-or-self::ds:Object)",
        "not(ancestor-or-self::ds:Signature) or self::wnio:Deklaracja",
        "ancestor-or-self::wnio:Deklaracja",
        "true()",
    ],
)
def test_other_xpath_expressions_are_refused(pki: TestPKI, trust: TrustConfig, xpath: str) -> None:
    # xmlsec1 signs them happily (the xpath is evaluated); the worker refuses them
    template = pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA), xpath=xpath).replace(
        "<ds:Signature ", '<ds:Signature xmlns:wnio="http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2025/" ', 1
    )
    raw = sign(DOC, template, pki.seal)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_INVALID"])
    assert r.checks[0].reason.startswith("XPath filter other than")
    assert "budowę" in r.findings[0].message


def test_xpath_prefix_bound_to_another_namespace_is_refused(pki: TestPKI, trust: TrustConfig) -> None:
    template = pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA), xpath="not(ancestor-or-self::x:Signature)").replace(
        "<ds:XPath>", '<ds:XPath xmlns:x="urn:not-xmldsig">'
    )
    r = verify_document(sign(DOC, template, pki.seal), trust, filed_at=FILED_AT)
    assert codes(r) == ["SIGNATURE_INVALID"]


def test_unknown_transform_is_refused(pki: TestPKI, trust: TrustConfig) -> None:
    # XPath Filter 2.0 (xmlsec1 implements it, signxml would skip it silently): refused
    filter2 = (
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2">'
        '<f:XPath xmlns:f="http://www.w3.org/2002/06/xmldsig-filter2" '
        'xmlns:wnio="http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2025/" '
        'Filter="subtract">//wnio:CzescZamieszkala</f:XPath></ds:Transform>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    )
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT, transforms=filter2), pki.alicja)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_INVALID"])
    assert "transform not allowed" in r.checks[0].reason
    assert r.signed_root is None


def test_reference_to_other_data_is_refused(pki: TestPKI, trust: TrustConfig) -> None:
    # a signature over the document and, additionally, some element by Id: not an ePUAP shape
    doc = DOC.replace("<wnio:Deklaracja>", '<wnio:Deklaracja Id="decl">')
    template = qualified_signature(pki.alicja, SIGNED_AT).replace(
        "</ds:SignedInfo>",
        '<ds:Reference URI="#decl"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/>'
        "</ds:Reference></ds:SignedInfo>",
    )
    raw = sign_with_ids(doc, template, pki)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert codes(r) == ["SIGNATURE_INVALID"]
    assert "other data" in r.checks[0].reason


def sign_with_ids(document: str, template: str, pki: TestPKI) -> bytes:
    import subprocess
    import tempfile

    from tests.sigtools.xmlsig import insert_signature, xmlsec1

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "k.pem").write_bytes(pki.alicja.key_pem)
        (d / "c.pem").write_bytes(pki.alicja.cert_pem)
        (d / "in.xml").write_bytes(insert_signature(document, template))
        subprocess.run(
            [xmlsec1(), "--sign", "--privkey-pem", f"{d / 'k.pem'},{d / 'c.pem'}", "--id-attr:Id", "SignedProperties",
             "--id-attr:Id", "Deklaracja", "--output", str(d / "out.xml"), str(d / "in.xml")],
            check=True, capture_output=True,
        )  # fmt: skip
        return (d / "out.xml").read_bytes()


def test_missing_signature(trust: TrustConfig) -> None:
    r = verify_document(DOC.encode(), trust, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (NONE, INVALID, ["SIGNATURE_MISSING"])
    assert r.signed_root is None
    assert "nie zawiera podpisu" in r.findings[0].message


def test_unreadable_and_misplaced(pki: TestPKI, trust: TrustConfig) -> None:
    assert codes(verify_document(b"<a><b></a>", trust)) == ["SIGNATURE_INVALID"]
    assert codes(verify_document(b"", trust)) == ["SIGNATURE_INVALID"]
    # a signature nested in the content instead of under the document element
    raw = sign(DOC, pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)
    nested = raw.replace(b"</wnio:Dokument>", b"").replace(b"</wnio:TrescDokumentu>", b"")
    nested = nested.rstrip() + b"\n</wnio:TrescDokumentu></wnio:Dokument>\n"
    r = verify_document(nested, trust, filed_at=FILED_AT)
    assert codes(r) == ["SIGNATURE_INVALID"] and r.evidence["signatures_elsewhere"] == 1


def test_signing_time_after_filing_is_indeterminate(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.alicja, FILED_AT + timedelta(hours=2)), pki.alicja)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INDETERMINATE, ["SIGNATURE_INDETERMINATE"])
    assert r.signed_root is not None  # cryptographically verified content, for the review
    # within the allowed clock skew it is fine
    slightly = sign(DOC, qualified_signature(pki.alicja, FILED_AT + timedelta(minutes=2)), pki.alicja)
    assert verify_document(slightly, trust, filed_at=FILED_AT).status == VALID


def test_without_signing_time_the_filing_time_is_used(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.expired, None), pki.expired)
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert codes(r) == ["SIGNATURE_CERT_EXPIRED"] and r.signing_time is None
    assert r.evidence["validation_time"] == FILED_AT.isoformat()
    ok = verify_document(raw, trust, filed_at=utc(2021, 5, 1))
    assert ok.status == VALID


def test_several_signatures_each_verified(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign_many(
        DOC,
        [
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(BOGDAN)), pki.seal, None),
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal, None),
        ],
    )
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert [c.status for c in r.checks] == [VALID, VALID]
    assert [c.signer.pesel for c in r.checks] == [BOGDAN.pesel, ALICJA.pesel]
    assert r.signer_pesel == BOGDAN.pesel  # the first valid one is named until check_signer picks
    # break the first one's identity: the second still carries the document
    broken = raw.replace(f"<pz:PersonalIdentifier>{BOGDAN.pesel}<".encode(), f"<pz:PersonalIdentifier>{CELINA.pesel}<".encode())
    r2 = verify_document(broken, trust, filed_at=FILED_AT)
    assert [c.status for c in r2.checks] == [INVALID, VALID]
    assert (r2.status, r2.signer_pesel, codes(r2)) == (VALID, ALICJA.pesel, [])
    assert r2.evidence["signatures"][0]["code"] == "SIGNATURE_INVALID"


def test_enveloped_signature_after_a_profile_one(pki: TestPKI, trust: TrustConfig) -> None:
    # a qualified co-signature made after the Profil Zaufany one covers it; both valid
    raw = sign_many(
        DOC,
        [
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal, None),
            (qualified_signature(pki.bogdan_pesel_colon, SIGNED_AT), pki.bogdan_pesel_colon, None),
        ],
    )
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert [(c.kind, c.status) for c in r.checks] == [(TRUSTED_PROFILE, VALID), (QUALIFIED, VALID)]
    # whichever signature is used, the content read carries no signature
    for c in r.checks:
        assert not list(c.signed_root.iter(xades.DS_SIGNATURE))


def test_all_signatures_invalid_gives_each_finding_once(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign_many(
        DOC,
        [
            (pz_signature(pki.fake_seal, SIGNED_AT, ep_signature(ALICJA)), pki.fake_seal, None),
            (pz_signature(pki.fake_seal, SIGNED_AT, ep_signature(BOGDAN)), pki.fake_seal, None),
        ],
    )
    r = verify_document(raw, trust, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_UNTRUSTED"])
    assert len(r.checks) == 2


# -- revocation ----------------------------------------------------------------------


def _crl_file(pki: TestPKI, tmp_path: Path, issuer, revoked, name: str, **kw) -> Path:
    from cryptography.hazmat.primitives.serialization import Encoding

    crl = pki.crl(issuer, revoked, last=kw.get("last", utc(2025, 1, 1)), next=kw.get("next"))
    p = tmp_path / name
    p.write_bytes(crl.public_bytes(Encoding.PEM))
    return p


def test_revocation_required_without_data_is_indeterminate(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    anchors, seal = trust_files
    required = TrustConfig.from_files(anchors, [seal], revocation="required")
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    r = verify_document(raw, required, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INDETERMINATE, ["SIGNATURE_INDETERMINATE"])
    assert r.signer_pesel == ALICJA.pesel and r.signed_root is not None
    assert r.evidence["signatures"][0]["revocation"] == "unknown"


def test_revocation_with_crls(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    anchors, seal = trust_files
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    root_crl = _crl_file(pki, tmp_path, pki.root, [], "root.crl")
    good = _crl_file(pki, tmp_path, pki.qualified_ca, [], "good.crl")
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl, good])
    r = verify_document(raw, cfg, filed_at=FILED_AT)
    assert (r.status, r.evidence["signatures"][0]["revocation"]) == (VALID, "good")

    revoked = _crl_file(pki, tmp_path, pki.qualified_ca, [(pki.alicja, utc(2024, 12, 1))], "revoked.crl")
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl, revoked])
    r = verify_document(raw, cfg, filed_at=FILED_AT)
    assert (r.status, codes(r)) == (INVALID, ["SIGNATURE_UNTRUSTED"])  # spec: revoked → UNTRUSTED
    assert "unieważniony" in r.findings[0].message

    later = _crl_file(pki, tmp_path, pki.qualified_ca, [(pki.alicja, utc(2025, 6, 1))], "later.crl")
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl, later])
    assert verify_document(raw, cfg, filed_at=FILED_AT).status == VALID  # revoked after filing

    stale = _crl_file(pki, tmp_path, pki.qualified_ca, [], "stale.crl", last=utc(2023, 1, 1), next=utc(2023, 2, 1))
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl, stale])
    assert codes(verify_document(raw, cfg, filed_at=FILED_AT)) == ["SIGNATURE_INDETERMINATE"]

    forged = _crl_file(pki, tmp_path, pki.untrusted_ca, [], "forged.crl")  # same issuer name, wrong key
    cfg = TrustConfig.from_files(anchors, [seal], revocation="required", crls=[root_crl, forged])
    assert codes(verify_document(raw, cfg, filed_at=FILED_AT)) == ["SIGNATURE_INDETERMINATE"]

    # revocation off (the default) ignores CRLs
    cfg = TrustConfig.from_files(anchors, [seal], crls=[revoked])
    assert verify_document(raw, cfg, filed_at=FILED_AT).status == VALID


# -- configuration ---------------------------------------------------------------------


def test_trust_config_errors(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    anchors, seal = trust_files
    with pytest.raises(ValueError, match="trust_anchors: .* does not exist"):
        TrustConfig.from_files(tmp_path / "missing.pem", [seal])
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="trust_anchors"):
        TrustConfig.from_files(tmp_path / "junk.pem", [seal])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no certificates in folder"):
        TrustConfig.from_files(empty, [seal])
    with pytest.raises(ValueError, match="trusted_profile_seals"):
        TrustConfig.from_files(anchors, [tmp_path / "nope.pem"])
    with pytest.raises(ValueError, match="revocation"):
        TrustConfig.from_files(anchors, [seal], revocation="sometimes")
    with pytest.raises(ValueError, match="crls"):
        TrustConfig.from_files(anchors, [seal], crls=[tmp_path / "junk.pem"])


def test_trust_anchors_from_a_folder_with_der(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    _, seal = trust_files
    folder = tmp_path / "anchors"
    folder.mkdir()
    (folder / "root.cer").write_bytes(pki.root.cert.public_bytes(Encoding.DER))
    (folder / "other.pem").write_bytes(pki.untrusted_root.cert_pem)
    (folder / "README.txt").write_text("ignored")
    cfg = TrustConfig.from_files(folder, [seal])
    assert len(cfg.anchors) == 2
    raw = sign(DOC, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)
    assert verify_document(raw, cfg, filed_at=FILED_AT).status == VALID
    # now the other root is trusted too
    other = sign(DOC, qualified_signature(pki.untrusted_person, SIGNED_AT), pki.untrusted_person)
    assert verify_document(other, cfg, filed_at=FILED_AT).status == VALID


def test_seal_is_pinned_by_its_key_not_its_subject(pki: TestPKI, trust_files, tmp_path: Path) -> None:
    # spec/signatures.md "The Profil Zaufany seal is pinned by its key": the seal's exact
    # subject on a new key, issued by a trusted CA, is not the seal (this used to be
    # accepted as a "renewed seal pinned by subject")
    from tests.sigtools.pki import issue

    anchors, seal_path = trust_files
    cfg = TrustConfig.from_files(anchors, [seal_path])
    same_name = issue(
        pki.seal.cert.subject, pki.seal_ca, not_before=utc(2024), not_after=utc(2034), ca=False, key_usage="seal", qualified=True
    )
    r = verify_document(sign(DOC, pz_signature(same_name, SIGNED_AT, ep_signature(ALICJA)), same_name), cfg, filed_at=FILED_AT)
    assert (r.kind, r.status, codes(r)) == (TRUSTED_PROFILE, INVALID, ["SIGNATURE_UNTRUSTED"])
    assert r.signer_pesel is None and r.evidence["signatures"][0]["pinned_by"] is None
    # a certificate re-issued for the seal's own key is the seal
    reissued = issue(
        pki.seal.cert.subject, pki.seal_ca, not_before=utc(2024), not_after=utc(2034), ca=False, key_usage="seal",
        qualified=True, key=pki.seal.key,
    )  # fmt: skip
    r = verify_document(sign(DOC, pz_signature(reissued, SIGNED_AT, ep_signature(ALICJA)), reissued), cfg, filed_at=FILED_AT)
    assert (r.kind, r.status, r.signer_pesel) == (TRUSTED_PROFILE, VALID, ALICJA.pesel)
    assert r.evidence["signatures"][0]["pinned_by"] == "key"
    # the new seal (new key), once the office adds its certificate to the list, is the seal
    new_seal = tmp_path / "new-seal.pem"
    new_seal.write_bytes(same_name.cert_pem)
    both = TrustConfig.from_files(anchors, [seal_path, new_seal])
    r = verify_document(sign(DOC, pz_signature(same_name, SIGNED_AT, ep_signature(ALICJA)), same_name), both, filed_at=FILED_AT)
    assert (r.kind, r.status, r.evidence["signatures"][0]["pinned_by"]) == (TRUSTED_PROFILE, VALID, "certificate")


def test_evidence_is_json_and_free_of_pesel(pki: TestPKI, trust: TrustConfig) -> None:
    for raw in (
        sign(DOC, pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal),
        sign(DOC, qualified_signature(pki.expired, SIGNED_AT), pki.expired),
    ):
        r = verify_document(raw, trust, filed_at=FILED_AT)
        text = json.dumps(r.evidence)
        assert ALICJA.pesel not in text and BOGDAN.pesel not in text
        for key in ("kind", "status", "reason", "signing_time", "certificates", "signatures"):
            assert key in r.evidence


def test_no_personal_data_in_logs(pki: TestPKI, trust: TrustConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    raw = sign(DOC, pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)
    verify_document(raw, trust, filed_at=FILED_AT)
    assert caplog.records
    for rec in caplog.records:
        blob = json.dumps({k: str(v) for k, v in rec.__dict__.items()})
        assert ALICJA.pesel not in blob and "Wróblewska" not in blob and "WRÓBLEWSKA" not in blob


def test_now_is_used_without_a_filing_time(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(DOC, qualified_signature(pki.alicja, datetime.now(UTC) - timedelta(days=1)), pki.alicja)
    assert verify_document(raw, trust).status == VALID
