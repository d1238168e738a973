"""Signature wrapping: unsigned additions and moved elements never change a value the
worker loads. Each attack is run through the real stages (parse, identify,
verify_signature, validate, map_declaration, check_signer) and the assertions are on the
mapped declaration and the verified signer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from tests.sigtools.fixtures import FILED_AT, SIGNED_AT
from tests.sigtools.pki import ALICJA, BOGDAN, TestPKI
from tests.sigtools.xmlsig import declaration, ep_signature, pz_signature, qualified_signature, sign
from worker.domain.model import EPUAP
from worker.forms import stages as forms
from worker.pipeline import Context, ProcessingSettings, run_stages
from worker.signatures import INVALID, VALID, TrustConfig
from worker.signatures import stages as signatures

WNIO = "http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2025/"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"wnio": WNIO, "ds": DS, "xades": XADES}

STAGES = [
    forms.parse,
    forms.identify,
    signatures.verify_signature,
    forms.validate,
    forms.map_declaration,
    signatures.check_signer,
]

FAKE_DECLARATION = f"""<wnio:Deklaracja xmlns:wnio="{WNIO}" xmlns:oso="http://crd.gov.pl/xml/schematy/osoba/2009/11/16/">
  <wnio:Skladajacy><oso:Osoba><oso:IdOsoby><oso:PESEL>{BOGDAN.pesel}</oso:PESEL></oso:IdOsoby>
  <oso:Imie>Bogdan</oso:Imie><oso:Nazwisko>Zięba</oso:Nazwisko></oso:Osoba></wnio:Skladajacy>
  <wnio:OplataMiesieczna>1.00</wnio:OplataMiesieczna>
</wnio:Deklaracja>"""

FAKE_PROPERTIES = f"""<xades:QualifyingProperties xmlns:xades="{XADES}" Target="#fake"><xades:SignedProperties Id="{{id}}">
  <xades:SignedSignatureProperties><xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>
  {ep_signature(BOGDAN)}
  </xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties>
</xades:SignedProperties></xades:QualifyingProperties>"""


def run(raw: bytes, trust: TrustConfig) -> Context:
    ctx = Context(raw=raw, channel=EPUAP, filed_at=FILED_AT, settings=ProcessingSettings(trust=trust))
    return run_stages(ctx, STAGES)


def parse(raw: bytes) -> etree._Element:
    return etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))


def dump(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)


def fragment(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def assert_loaded_as_signed(ctx: Context) -> None:
    """The values the worker loads are those Alicja signed."""
    assert ctx.signature.status == VALID and [f.code for f in ctx.findings] == []
    d = ctx.declaration
    assert d is not None
    assert (d.declarant.pesel, d.declarant.first_name, d.declarant.last_name) == (ALICJA.pesel, "Alicja", "Wróblewska")
    assert d.monthly_fee == Decimal("76.00") and d.residents == 2
    assert (ctx.signature.signer_pesel, ctx.signature.signer_name) == (ALICJA.pesel, "Alicja Wróblewska")
    assert len(ctx.signed_root.findall(".//wnio:Deklaracja", NS)) == 1


@pytest.fixture(scope="module")
def pz_signed(pki: TestPKI) -> bytes:
    return sign(declaration(ALICJA), pz_signature(pki.seal, SIGNED_AT, ep_signature(ALICJA)), pki.seal)


@pytest.fixture(scope="module")
def q_signed(pki: TestPKI) -> bytes:
    return sign(declaration(ALICJA), qualified_signature(pki.alicja, SIGNED_AT), pki.alicja)


@pytest.fixture(params=["pz", "qualified"])
def signed(request, pz_signed: bytes, q_signed: bytes) -> bytes:
    return pz_signed if request.param == "pz" else q_signed


def test_untouched_documents_load(signed: bytes, trust: TrustConfig) -> None:
    assert_loaded_as_signed(run(signed, trust))


def test_second_declaration_in_an_unsigned_object(signed: bytes, trust: TrustConfig) -> None:
    root = parse(signed)
    sig = root.find("ds:Signature", NS)
    obj = etree.SubElement(sig, f"{{{DS}}}Object")
    obj.append(fragment(FAKE_DECLARATION))
    raw = dump(root)
    # the untrusted tree does hold a second declaration…
    assert len(parse(raw).findall(".//wnio:Deklaracja", NS)) == 2
    # …but the worker never sees it
    assert_loaded_as_signed(run(raw, trust))


def test_second_declaration_in_the_content_breaks_the_signature(signed: bytes, trust: TrustConfig) -> None:
    root = parse(signed)
    tresc = root.find("wnio:TrescDokumentu", NS)
    tresc.insert(0, fragment(FAKE_DECLARATION))
    ctx = run(dump(root), trust)
    assert ctx.halted and [f.code for f in ctx.findings] == ["SIGNATURE_INVALID"]
    assert ctx.declaration is None and ctx.signed_root is None


def test_fake_signature_element_inside_the_declaration(pz_signed: bytes, trust: TrustConfig) -> None:
    # the Profil Zaufany filter drops every ds:Signature: an injected one is not signed content
    root = parse(pz_signed)
    decl = root.find(".//wnio:Deklaracja", NS)
    fake = etree.SubElement(decl, f"{{{DS}}}Signature")
    fake.append(fragment(f'<wnio:OplataMiesieczna xmlns:wnio="{WNIO}">1.00</wnio:OplataMiesieczna>'))
    ctx = run(dump(root), trust)
    assert_loaded_as_signed(ctx)
    assert not list(ctx.signed_root.iter(f"{{{DS}}}Signature"))


def test_comment_inside_a_signed_value(signed: bytes, trust: TrustConfig) -> None:
    # comments are not signed; the untrusted tree's .text would stop at the comment
    raw = signed.replace(b"<wnio:OplataMiesieczna>76.00<", b"<wnio:OplataMiesieczna>7<!-- -->6.00<")
    assert raw != signed
    assert parse(raw).find(".//wnio:OplataMiesieczna", NS).text == "7"
    assert_loaded_as_signed(run(raw, trust))


def test_fake_identity_in_an_unsigned_object(signed: bytes, trust: TrustConfig) -> None:
    root = parse(signed)
    sig = root.find("ds:Signature", NS)
    obj = etree.Element(f"{{{DS}}}Object")
    obj.append(fragment(FAKE_PROPERTIES.replace("{id}", "SignedProps-fake")))
    sig.insert(sig.index(sig.find("ds:Object", NS)), obj)  # before the real one
    raw = dump(root)
    ctx = run(raw, trust)
    assert_loaded_as_signed(ctx)
    assert ctx.signature.checks[0].signer.pesel == ALICJA.pesel


def test_fake_identity_in_unsigned_properties(pz_signed: bytes, trust: TrustConfig) -> None:
    root = parse(pz_signed)
    qp = root.find(".//xades:QualifyingProperties", NS)
    unsigned = etree.SubElement(qp, f"{{{XADES}}}UnsignedProperties")
    usp = etree.SubElement(unsigned, f"{{{XADES}}}UnsignedSignatureProperties")
    usp.append(fragment(ep_signature(BOGDAN)))
    # not a schema-valid unsigned property (XAdES demands known elements there): refused
    ctx = run(dump(root), trust)
    assert [f.code for f in ctx.findings] == ["SIGNATURE_INVALID"]
    assert ctx.declaration is None and ctx.signature.signer_pesel is None


def test_moved_signed_properties_with_a_fake_in_their_place(pz_signed: bytes, trust: TrustConfig) -> None:
    root = parse(pz_signed)
    sig = root.find("ds:Signature", NS)
    real = root.find(".//xades:SignedProperties", NS)
    qp = real.getparent()
    position = qp.index(real)
    qp.remove(real)
    qp.insert(position, fragment(FAKE_PROPERTIES.replace("{id}", "SignedProps-other")).find("xades:SignedProperties", NS))
    hidden = etree.SubElement(sig, f"{{{DS}}}Object")
    hidden.append(real)  # the referenced, signed properties now sit in another object
    raw = dump(root)
    ctx = run(raw, trust)
    # what is read is what was signed: Alicja, never the fake in the expected place
    assert_loaded_as_signed(ctx)


def test_fake_properties_with_the_same_id_are_refused(pz_signed: bytes, trust: TrustConfig) -> None:
    root = parse(pz_signed)
    sig = root.find("ds:Signature", NS)
    real_id = root.find(".//xades:SignedProperties", NS).get("Id")
    obj = etree.SubElement(sig, f"{{{DS}}}Object")
    obj.append(fragment(FAKE_PROPERTIES.replace("{id}", real_id)))
    ctx = run(dump(root), trust)
    assert [f.code for f in ctx.findings] == ["SIGNATURE_INVALID"] and ctx.declaration is None


def test_moved_declaration_with_a_fake_in_its_place(signed: bytes, trust: TrustConfig) -> None:
    root = parse(signed)
    sig = root.find("ds:Signature", NS)
    real = root.find(".//wnio:Deklaracja", NS)
    tresc = real.getparent()
    tresc.replace(real, fragment(FAKE_DECLARATION))
    obj = etree.SubElement(sig, f"{{{DS}}}Object")
    obj.append(real)
    ctx = run(dump(root), trust)
    assert [f.code for f in ctx.findings] == ["SIGNATURE_INVALID"]
    assert ctx.signature.status == INVALID and ctx.declaration is None


def test_signed_document_wrapped_in_a_new_one(signed: bytes, trust: TrustConfig) -> None:
    # a new document with a fake declaration; the original (with its signature) hidden inside
    original = parse(signed)
    sig = original.find("ds:Signature", NS)
    fake_root = parse(declaration(BOGDAN, fee="1.00").encode())
    moved_sig = etree.fromstring(etree.tostring(sig))
    obj = etree.SubElement(moved_sig, f"{{{DS}}}Object")
    original.remove(sig)
    obj.append(original)
    fake_root.append(moved_sig)
    ctx = run(dump(fake_root), trust)
    assert [f.code for f in ctx.findings] == ["SIGNATURE_INVALID"] and ctx.declaration is None


def test_signature_moved_out_of_the_document_element(pz_signed: bytes, trust: TrustConfig) -> None:
    # the signature is only looked for where ePUAP puts it (a child of the document element)
    root = parse(pz_signed)
    sig = root.find("ds:Signature", NS)
    root.remove(sig)
    root.find("wnio:DaneDokumentu", NS).append(sig)
    ctx = run(dump(root), trust)
    assert [f.code for f in ctx.findings] == ["SIGNATURE_INVALID"] and ctx.declaration is None


def test_no_mutation_changes_what_is_loaded(pz_signed: bytes, q_signed: bytes, trust: TrustConfig) -> None:
    """Delete an element, change an attribute or a text anywhere (seeded, 300 times): the
    outcome is never an exception, and a VALID outcome always carries the signed content
    and signer unchanged."""
    import random

    from worker.signatures import verify_document

    originals = [pz_signed, q_signed]
    signed_content = [
        etree.tostring(verify_document(raw, trust, filed_at=FILED_AT).signed_root, method="c14n") for raw in originals
    ]
    rng = random.Random(20250310)
    valid = 0
    for _ in range(300):
        i = rng.randrange(len(originals))
        root = parse(originals[i])
        el = rng.choice(list(root.iter()))
        op = rng.choice(["delete", "attribute", "text"])
        if op == "delete" and el.getparent() is not None:
            el.getparent().remove(el)
        elif op == "attribute" and el.attrib:
            name = rng.choice(sorted(el.attrib))
            el.attrib[name] = el.attrib[name] + "x"
        elif op == "text" and el.text:
            el.text = el.text[:-1] + "Z"
        else:
            continue
        result = verify_document(dump(root), trust, filed_at=FILED_AT)
        assert result.status in (VALID, INVALID)
        if result.status == VALID:
            valid += 1
            assert etree.tostring(result.signed_root, method="c14n") == signed_content[i]
            assert result.signer_pesel == ALICJA.pesel
        else:
            assert result.signed_root is None and result.findings
    assert valid < 60  # most mutations hit signed data
