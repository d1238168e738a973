"""The ``verify_signature`` and ``check_signer`` stages in the ePUAP pipeline order."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from lxml import etree

from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, BOGDAN, TestPKI
from tests.sigtools.xmlsig import declaration, ep_signature, pz_signature, qualified_signature, sign, sign_many
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW, REJECTED
from worker.domain.model import EPUAP, INSTITUTION
from worker.forms import stages as forms
from worker.pipeline import CORRESPONDENCE, Context, ProcessingSettings, run_stages
from worker.signatures import TrustConfig, verify_document
from worker.signatures import stages as signatures

BEFORE_MAPPING = [forms.parse, forms.identify, signatures.verify_signature, forms.validate, forms.map_declaration]
ALL = BEFORE_MAPPING + [signatures.check_signer]


def context(raw: bytes, trust: TrustConfig) -> Context:
    return Context(raw=raw, channel=EPUAP, filed_at=FILED_AT, settings=ProcessingSettings(trust=trust))


def codes(ctx: Context) -> list[str]:
    return [f.code for f in ctx.findings]


def test_valid_profile_signature_by_the_declarant(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(declaration(ALICJA), pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)
    ctx = run_stages(context(raw, trust), ALL)
    assert (codes(ctx), ctx.outcome, ctx.halted) == ([], ACCEPTED, False)
    assert ctx.content_root is ctx.signed_root is ctx.signature.signed_root
    assert ctx.signature.signer_role == signatures.DECLARANT
    assert ctx.signature.evidence["signer_role"] == signatures.DECLARANT
    assert ctx.declaration.declarant.pesel == ALICJA.pesel


def test_the_parse_stage_tree_is_reused_unchanged(pki: TestPKI, trust: TrustConfig) -> None:
    """verify_signature reads the parse stage's tree of the bytes instead of parsing them
    again: the tree is left as parsed and the outcome is that of verifying the bytes alone."""
    raw = sign_many(
        declaration(ALICJA),
        [
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(BOGDAN)), pki.seal, None),
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal, None),
        ],
    )
    ctx = run_stages(context(raw, trust), [forms.parse, forms.identify])
    parsed = ctx.root
    before = etree.tostring(parsed.getroottree())
    run_stages(ctx, [signatures.verify_signature])
    assert ctx.root is parsed and etree.tostring(parsed.getroottree()) == before
    alone = verify_document(raw, trust, filed_at=FILED_AT)
    assert (ctx.signature.status, ctx.signature.evidence) == (alone.status, alone.evidence)
    assert ctx.signed_root is not None and ctx.signed_root.getroottree().getroot() is not parsed
    assert etree.tostring(ctx.signed_root) == etree.tostring(alone.signed_root)


def test_signer_not_declarant(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(declaration(ALICJA), pz_signature(pki.seal, SIGNED_AT, ep_signature(BOGDAN)), pki.seal)
    ctx = run_stages(context(raw, trust), ALL)
    assert codes(ctx) == ["SIGNER_NOT_DECLARANT"] and ctx.outcome == NEEDS_REVIEW
    f = ctx.findings[0]
    assert f.field == "Skladajacy/Osoba/IdOsoby/PESEL" and "inna osoba" in f.message
    assert ALICJA.pesel not in f.message and BOGDAN.pesel not in f.message
    assert ctx.signature.signer_name == "Bogdan Zięba" and ctx.signature.signer_role == signatures.OTHER


def test_signer_without_pesel_cannot_be_confirmed(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(declaration(ALICJA), qualified_signature(pki.company_seal, SIGNED_AT), pki.company_seal)
    ctx = run_stages(context(raw, trust), ALL)
    assert codes(ctx) == ["SIGNER_NOT_DECLARANT"]
    assert "Nie można ustalić numeru PESEL" in ctx.findings[0].message


def test_one_of_several_signers_is_the_declarant(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign_many(
        declaration(ALICJA),
        [
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(BOGDAN)), pki.seal, None),
            (pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal, None),
        ],
    )
    ctx = run_stages(context(raw, trust), ALL)
    assert codes(ctx) == []
    assert (ctx.signature.signer_pesel, ctx.signature.signer_name) == (ALICJA.pesel, "Alicja Wróblewska")
    assert ctx.signature.evidence["primary_signature"] == 1


def test_institution_signer_is_its_representative(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(declaration(ALICJA), pz_signature(pki.seal, SIGNED_AT, ep_signature(BOGDAN)), pki.seal)
    ctx = run_stages(context(raw, trust), BEFORE_MAPPING)
    d = ctx.declaration
    ctx.declaration = dataclasses.replace(
        d, declarant=dataclasses.replace(d.declarant, kind=INSTITUTION, pesel=None, institution_name="Wspólnota Mieszkaniowa")
    )
    run_stages(ctx, [signatures.check_signer])
    assert codes(ctx) == []
    assert ctx.signature.signer_role == signatures.REPRESENTATIVE and ctx.signature.signer_name == "Bogdan Zięba"


@pytest.mark.parametrize("who", ["untrusted", "expired", "missing", "tampered"])
def test_no_valid_signature_halts_before_reading_the_declaration(pki: TestPKI, trust: TrustConfig, who: str) -> None:
    doc = declaration(ALICJA)
    raw = {
        "untrusted": lambda: sign(doc, qualified_signature(pki.untrusted_person, SIGNED_AT), pki.untrusted_person),
        "expired": lambda: sign(doc, qualified_signature(pki.expired, SIGNED_AT), pki.expired),
        "missing": lambda: doc.encode(),
        "tampered": lambda: sign(doc, qualified_signature(pki.alicja, SIGNED_AT), pki.alicja).replace(b">76.00<", b">7.00<"),
    }[who]()
    ctx = run_stages(context(raw, trust), ALL)
    expected = {
        "untrusted": "SIGNATURE_UNTRUSTED",
        "expired": "SIGNATURE_CERT_EXPIRED",
        "missing": "SIGNATURE_MISSING",
        "tampered": "SIGNATURE_INVALID",
    }[who]
    assert codes(ctx) == [expected] and ctx.outcome == REJECTED
    assert ctx.halted and ctx.declaration is None and ctx.signed_root is None
    assert set(ctx.timings) == {"parse", "identify", "verify_signature"}
    assert ctx.signature.status == "INVALID"


def test_indeterminate_continues_from_the_verified_content(pki: TestPKI, trust: TrustConfig) -> None:
    raw = sign(declaration(ALICJA), qualified_signature(pki.alicja, FILED_AT + timedelta(hours=3)), pki.alicja)
    ctx = run_stages(context(raw, trust), ALL)
    assert codes(ctx) == ["SIGNATURE_INDETERMINATE"] and ctx.outcome == NEEDS_REVIEW
    assert ctx.declaration is not None and ctx.content_root is ctx.signed_root
    assert ctx.signature.signer_role == signatures.DECLARANT


def test_correspondence_is_verified_without_findings(pki: TestPKI, trust: TrustConfig) -> None:
    ctx = context(b"<pismo><tresc>Prosz\xc4\x99 o kontakt</tresc></pismo>", trust)
    ctx.kind = CORRESPONDENCE
    run_stages(ctx, [signatures.verify_signature])
    assert codes(ctx) == [] and not ctx.halted
    assert ctx.signature.status == "INVALID" and ctx.signature.kind == "NONE"


def test_missing_trust_configuration_is_a_wiring_error(pki: TestPKI) -> None:
    ctx = Context(raw=b"<a/>", channel=EPUAP, filed_at=FILED_AT)
    with pytest.raises(RuntimeError, match="trust"):
        signatures.verify_signature(ctx)
