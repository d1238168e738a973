"""WS-Security (X.509 token profile) for ePUAP's pull service: signing and verifying SOAP 1.1 envelopes.

The layout ePUAP is known to accept (``../shared/spec/epuap.md``)::

    soap-env:Header/wsse:Security (mustUnderstand="1")
        wsu:Timestamp  (wsu:Id, Created, Expires)            -- optional, signed when present
        wsse:BinarySecurityToken (X509v3, Base64Binary)       -- BEFORE the signature
        ds:Signature
            SignedInfo: exclusive C14N, RSA-SHA256;
                        Reference URI="#<Body wsu:Id>" (exc-C14N transform, SHA-256 digest)
                        [Reference URI="#<Timestamp wsu:Id>"]
            SignatureValue
            KeyInfo/wsse:SecurityTokenReference/wsse:Reference URI="#<token id>"

Decision: signing is done here with lxml (exclusive C14N through ``etree.tostring(method="c14n",
exclusive=True)``) and ``cryptography`` (RSA PKCS#1 v1.5 with SHA-256) — no native ``xmlsec``
binding, so no lxml/libxml2 version pairing to maintain. Verification is delegated to
``signxml`` (already a project dependency, pure Python on the same lxml/cryptography), which is
an implementation independent of the signing code above: every request the double accepts and
every response the client accepts is thus checked by a second implementation. The verifier is
given the pinned certificate (never a certificate found in the message), refuses SHA-1, and we
additionally require that one reference points to *the* SOAP Body (by its unique ``wsu:Id``), so
a signature over some other element cannot vouch for the Body the client reads (wrapping).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, SignXMLException

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

WSU_ID = f"{{{WSU}}}Id"

# signxml logs every canonicalised payload (whole documents, with personal data) at DEBUG: never let it.
logging.getLogger("signxml").setLevel(logging.INFO)
_NS = {"soap-env": SOAP11, "wsse": WSSE, "wsu": WSU, "ds": DS}


class WsSecurityError(Exception):
    """A message's WS-Security is missing, malformed or does not verify (``reason`` in English)."""


@dataclass(frozen=True)
class SigningIdentity:
    """A private key with its certificate (the union's system certificate, or the double's)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class VerifiedMessage:
    """What a successful verification established."""

    certificate: x509.Certificate
    references: tuple[str, ...]  # the signed URIs, e.g. ("#id-…", "#TS-…")
    timestamp_signed: bool


# --------------------------------------------------------------------------- key material


def load_certificate(path: Path) -> x509.Certificate:
    """Load a PEM or DER certificate (the first one of a PEM file)."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_identity(certificate: Path, private_key: Path, password: str | None) -> SigningIdentity:
    """Load the signing key and certificate.

    ``private_key`` may be a PEM/DER private key (encrypted or not) or a PKCS#12 file
    (``.p12``/``.pfx``, as ePUAP's administrators often hand it out); for PKCS#12 the
    certificate inside it is used when ``certificate`` is the same file. Raises
    ``ValueError``/``TypeError``/``OSError`` with a reason for unreadable material.
    """
    key_path = Path(private_key)
    data = key_path.read_bytes()
    pwd = password.encode("utf-8") if password is not None else None
    if key_path.suffix.lower() in (".p12", ".pfx"):
        key, cert, _ = pkcs12.load_key_and_certificates(data, pwd)
        if Path(certificate) != key_path or cert is None:
            cert = load_certificate(certificate)
    else:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, pwd)
        else:
            key = serialization.load_der_private_key(data, pwd)
        cert = load_certificate(certificate)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the WS-Security key must be an RSA key (RSA-SHA256)")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("the private key does not belong to the certificate")
    return SigningIdentity(key=key, certificate=cert)


# --------------------------------------------------------------------------- signing


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _xs_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def sign_envelope(
    envelope: etree._Element,
    identity: SigningIdentity,
    *,
    timestamp_ttl_s: float | None = 300.0,
    now: datetime | None = None,
) -> etree._Element:
    """Add a ``wsse:Security`` header signing the Body (and a Timestamp when ``timestamp_ttl_s``).

    Returns the signed envelope: ``envelope`` itself, or a new ``Envelope`` element holding its
    children when the ``wsse``/``wsu`` prefixes had to be declared on the root. The
    serialisation of the envelope afterwards may use any prefixes/whitespace outside the
    signed elements: the digests are over their exclusive canonical form.
    """
    if envelope.tag != f"{{{SOAP11}}}Envelope":
        raise ValueError("not a SOAP 1.1 envelope")
    if envelope.find("soap-env:Body", _NS) is None:
        raise ValueError("the envelope has no Body")
    if envelope.nsmap.get("wsse") != WSSE or envelope.nsmap.get("wsu") != WSU:
        # re-root under an Envelope declaring the WS-Security prefixes once (readable output)
        nsmap = {k: v for k, v in envelope.nsmap.items() if k not in ("wsse", "wsu")}
        rerooted = etree.Element(envelope.tag, dict(envelope.attrib), nsmap={**nsmap, "wsse": WSSE, "wsu": WSU})
        rerooted.extend(list(envelope))
        envelope = rerooted
    body = envelope.find("soap-env:Body", _NS)
    header = envelope.find("soap-env:Header", _NS)
    if header is None:
        header = etree.Element(f"{{{SOAP11}}}Header")
        envelope.insert(0, header)
    security = etree.SubElement(header, f"{{{WSSE}}}Security")
    security.set(f"{{{SOAP11}}}mustUnderstand", "1")

    targets: list[etree._Element] = []
    if timestamp_ttl_s is not None:
        created = (now or datetime.now(UTC)).astimezone(UTC)
        ts = etree.SubElement(security, f"{{{WSU}}}Timestamp", {WSU_ID: _new_id("TS")})
        etree.SubElement(ts, f"{{{WSU}}}Created").text = _xs_datetime(created)
        etree.SubElement(ts, f"{{{WSU}}}Expires").text = _xs_datetime(created + timedelta(seconds=timestamp_ttl_s))
    token_id = _new_id("X509")
    token = etree.SubElement(
        security,
        f"{{{WSSE}}}BinarySecurityToken",
        {"EncodingType": BASE64_BINARY, "ValueType": X509V3, WSU_ID: token_id},
    )
    token.text = base64.b64encode(identity.certificate_der).decode("ascii")
    if body.get(WSU_ID) is None:
        body.set(WSU_ID, _new_id("id"))
    targets.append(body)
    if timestamp_ttl_s is not None:
        targets.append(ts)

    signature = etree.SubElement(security, f"{{{DS}}}Signature", {"Id": _new_id("SIG")}, nsmap={"ds": DS})
    signed_info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    etree.SubElement(signed_info, f"{{{DS}}}CanonicalizationMethod", {"Algorithm": EXC_C14N})
    etree.SubElement(signed_info, f"{{{DS}}}SignatureMethod", {"Algorithm": RSA_SHA256})
    for target in targets:
        ref = etree.SubElement(signed_info, f"{{{DS}}}Reference", {"URI": "#" + target.get(WSU_ID)})
        transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
        etree.SubElement(transforms, f"{{{DS}}}Transform", {"Algorithm": EXC_C14N})
        etree.SubElement(ref, f"{{{DS}}}DigestMethod", {"Algorithm": SHA256})
        digest = hashlib.sha256(_c14n(target)).digest()
        etree.SubElement(ref, f"{{{DS}}}DigestValue").text = base64.b64encode(digest).decode("ascii")
    value = identity.key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(signature, f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode("ascii")
    key_info = etree.SubElement(signature, f"{{{DS}}}KeyInfo", {"Id": _new_id("KI")})
    str_ = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference", {WSU_ID: _new_id("STR")})
    etree.SubElement(str_, f"{{{WSSE}}}Reference", {"URI": "#" + token_id, "ValueType": X509V3})
    return envelope


# --------------------------------------------------------------------------- verifying


def find_fault(envelope: etree._Element) -> etree._Element | None:
    """The ``soap-env:Body/soap-env:Fault`` element, if the message is a SOAP Fault."""
    return envelope.find("soap-env:Body/soap-env:Fault", _NS)


def security_header(envelope: etree._Element) -> etree._Element:
    """The single ``wsse:Security`` header (raises when absent or repeated)."""
    found = envelope.findall("soap-env:Header/wsse:Security", _NS)
    if not found:
        raise WsSecurityError("no wsse:Security header")
    if len(found) > 1:
        raise WsSecurityError("more than one wsse:Security header")
    return found[0]


def token_certificate(envelope: etree._Element) -> x509.Certificate:
    """The X.509 certificate of the BinarySecurityToken the signature's KeyInfo refers to."""
    security = security_header(envelope)
    signature = security.find("ds:Signature", _NS)
    if signature is None:
        raise WsSecurityError("no ds:Signature in the wsse:Security header")
    ref = signature.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", _NS)
    if ref is None or not (ref.get("URI") or "").startswith("#"):
        raise WsSecurityError("the signature's KeyInfo has no wsse:SecurityTokenReference to a token")
    token_id = ref.get("URI")[1:]
    tokens = [t for t in security.findall("wsse:BinarySecurityToken", _NS) if t.get(WSU_ID) == token_id]
    if len(tokens) != 1:
        raise WsSecurityError("the referenced BinarySecurityToken is missing or ambiguous")
    if tokens[0].get("ValueType") != X509V3:
        raise WsSecurityError("the BinarySecurityToken is not an X509v3 token")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(tokens[0].text or "", validate=False))
    except ValueError as exc:
        raise WsSecurityError(f"the BinarySecurityToken is not a certificate: {exc}") from None


def _parse_xs_datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WsSecurityError("malformed wsu:Timestamp") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _verify_parser() -> etree.XMLParser:
    """signxml re-parses the envelope: no DTD, no entities, no network — but big text nodes
    allowed (a document's base64 content exceeds libxml2's 10 MB default; the answer's size
    is bounded by ``epuap.max_response_bytes`` before anything is parsed)."""
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=True)


def verify_envelope(
    envelope: etree._Element,
    certificate: x509.Certificate,
    *,
    max_clock_skew_s: float = 300.0,
    now: datetime | None = None,
) -> VerifiedMessage:
    """Verify the envelope's WS-Security signature with ``certificate`` (pinned or trusted).

    Requirements: one ``wsse:Security`` header holding a ``ds:Signature``; the signature
    verifies with the certificate's key (SHA-1 refused); one of its references is the SOAP
    Body, identified by its unique ``wsu:Id``; a *signed* ``wsu:Timestamp`` must not be expired
    (nor created in the future) beyond ``max_clock_skew_s``. Raises :class:`WsSecurityError`.
    """
    security = security_header(envelope)
    signature = security.find("ds:Signature", _NS)
    if signature is None:
        raise WsSecurityError("no ds:Signature in the wsse:Security header")
    body = envelope.find("soap-env:Body", _NS)
    if body is None:
        raise WsSecurityError("no SOAP Body")
    body_id = body.get(WSU_ID) or body.get("Id")
    if not body_id:
        raise WsSecurityError("the SOAP Body has no wsu:Id, so it cannot be signed")
    config = SignatureConfiguration(
        location=f"{{{SOAP11}}}Header/{{{WSSE}}}Security/",
        expect_references=True,
        require_x509=True,
    )
    try:
        XMLVerifier().verify(envelope, x509_cert=certificate, expect_config=config, parser=_verify_parser())
    except (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput) as exc:
        raise WsSecurityError(str(exc) or type(exc).__name__) from None
    except (SignXMLException, ValueError, KeyError, etree.LxmlError) as exc:
        raise WsSecurityError(f"unverifiable signature: {type(exc).__name__}: {exc}") from None
    uris = tuple(ref.get("URI") or "" for ref in signature.findall("ds:SignedInfo/ds:Reference", _NS))
    if "#" + body_id not in uris:
        raise WsSecurityError("the signature does not cover the SOAP Body")
    timestamp_signed = False
    timestamp = security.find("wsu:Timestamp", _NS)
    if timestamp is not None and timestamp.get(WSU_ID) and "#" + timestamp.get(WSU_ID) in uris:
        timestamp_signed = True
        moment = now or datetime.now(UTC)
        skew = timedelta(seconds=max_clock_skew_s)
        created = _parse_xs_datetime(timestamp.findtext("wsu:Created", namespaces=_NS))
        expires = _parse_xs_datetime(timestamp.findtext("wsu:Expires", namespaces=_NS))
        if expires is not None and expires + skew < moment:
            raise WsSecurityError("the signed wsu:Timestamp has expired")
        if created is not None and created - skew > moment:
            raise WsSecurityError("the signed wsu:Timestamp was created in the future")
    return VerifiedMessage(certificate=certificate, references=uris, timestamp_signed=timestamp_signed)
