"""The cryptographic layer: XAdES signatures checked with signxml (pinned to 5.2.0).

What signxml does here: it canonicalises ``ds:SignedInfo``, checks the signature value
with the certificate we hand it, checks the digests of the ``#id`` references (the
``xades:SignedProperties``, an optional ``ds:KeyInfo``) and the XAdES signing-certificate
digest. What it cannot do is handled here, in a subclass of its ``XAdESVerifier``:

* the whole-document reference ``URI=""``. signxml silently skips the XPath filter
  transform Profil Zaufany uses, resolves ``URI=""`` to the root element (losing the
  processing instructions before it, e.g. ``xml-stylesheet``, which that reference covers)
  and, with several signatures, removes the first one for an enveloped-signature
  transform instead of its own. So :func:`document_content` computes that reference
  itself, following XML-DSig: the document node-set without comments, minus the
  signature's own ``ds:Signature`` (enveloped-signature transform) and/or minus every
  ``ds:Signature`` (the XPath filter, accepted **only** with exactly the expression
  ``not(ancestor-or-self::PREFIX:Signature)`` where PREFIX is bound to the XML-DSig
  namespace), canonicalised with the one canonicalisation transform given (inclusive
  C14N 1.0 when none is given);
* unknown transforms, which signxml ignores: every transform outside a short allow-list
  is refused, and the XPath filter is refused anywhere but on ``URI=""``;
* several signatures on one document: the verifier is told which ``ds:Signature`` (by its
  position in document order) it checks.

Certificate trust is *not* decided here: the caller hands in the signing certificate it
picked from ``ds:KeyInfo`` and validates its path separately (``trust.py``) at the signing
time. signxml's own clock check is neutralised by verifying "at" a moment inside the
certificate's validity (``verification_time``), so it never falls back to the current
time or, since a certificate is always given, to the web CA bundle.

Everything returned (:class:`CryptoResult`) is the verified data only: the document as
covered by the ``URI=""`` reference, re-parsed from its canonical bytes, and the
``SignedProperties`` as signxml returns them.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
from base64 import b64decode
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from signxml import SignatureConstructionMethod, SignatureMethod, VerifyResult
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, SignXMLException
from signxml.util import add_pem_header
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from worker.domain.xmlvalue import string_value
from worker.signatures import policy
from worker.signatures.trust import fingerprint
from worker.signatures.xmlparse import UnsafeXML, parse_untrusted, safe_parser

logger = logging.getLogger(__name__)

# signxml logs every canonicalised reference (the declaration, the signer's PESEL) at
# DEBUG: personal data must never reach the logs, whatever level the worker runs at.
_signxml_logger = logging.getLogger("signxml")
if _signxml_logger.level < logging.INFO:  # NOTSET (0) included
    _signxml_logger.setLevel(logging.INFO)

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
DS_SIGNATURE = f"{{{DS_NS}}}Signature"
DS_KEYINFO = f"{{{DS_NS}}}KeyInfo"
XADES_SIGNED_PROPERTIES = f"{{{XADES_NS}}}SignedProperties"

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XPATH_FILTER = "http://www.w3.org/TR/1999/REC-xpath-19991116"
BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
C14N_ALGORITHMS = frozenset(m.value for m in CanonicalizationMethod)
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

_NS = {"ds": DS_NS, "xades": XADES_NS, "ec": "http://www.w3.org/2001/10/xml-exc-c14n#"}

# reference targets (ReferenceInfo.target)
DOCUMENT = "document"
SIGNED_PROPERTIES = "signed_properties"
KEY_INFO = "key_info"
OTHER = "other"

# failure categories (CryptoFailure.category)
DIGEST = "digest"  # a reference digest does not match: the signed data was altered
SIGNATURE_VALUE = "signature_value"  # SignatureValue does not verify with the certificate
CERT_BINDING = "certificate_binding"  # xades:SigningCertificate does not name the certificate
ALGORITHM = "algorithm"  # a forbidden algorithm (SHA-1 unless allowed)
FORMAT = "format"  # refused or unsupported structure or transform


class CryptoFailure(Exception):
    """The signature does not verify cryptographically. ``category`` is one of the
    module's failure categories; ``str(exc)`` is an English reason with no personal data."""

    def __init__(self, category: str, reason: str):
        super().__init__(reason)
        self.category = category
        self.reason = reason


@dataclass(frozen=True)
class ReferenceInfo:
    """One verified ``ds:Reference`` (read from the verified ``SignedInfo``)."""

    uri: str
    type: str | None
    transforms: tuple[str, ...]
    target: str  # DOCUMENT / SIGNED_PROPERTIES / KEY_INFO / OTHER


@dataclass(frozen=True)
class CryptoResult:
    """What one signature verifiably covers."""

    references: tuple[ReferenceInfo, ...]
    document_content: bytes | None  # canonical bytes of the URI="" reference
    document_root: Any  # lxml root re-parsed from document_content, or None
    signed_properties: Any  # verified xades:SignedProperties element, or None
    signature_method: str


def signature_elements(root: Any) -> list[Any]:
    """Every ``ds:Signature`` of the document in document order (the root included when
    the document is an enveloping signature). The position in this list identifies a
    signature for :func:`verify_crypto`."""
    return list(root.iter(DS_SIGNATURE))


def keyinfo_certificates(signature: Any) -> list[x509.Certificate]:
    """The certificates of ``ds:KeyInfo/ds:X509Data`` (untrusted until verified).
    Raises :class:`CryptoFailure` for an undecodable certificate."""
    certs: list[x509.Certificate] = []
    for el in signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=_NS):
        try:
            certs.append(_der_certificate("".join((string_value(el) or "").split())))
        except (ValueError, TypeError) as exc:
            raise CryptoFailure(FORMAT, "undecodable X509Certificate in KeyInfo") from exc
    return certs


# certificate texts longer than this (real ones are a few thousand characters) are
# loaded without being remembered, so a hostile document cannot make the caches hold
# large objects
_CACHED_CERTIFICATE_TEXT = 16 * 1024


def _der_certificate(b64: str) -> x509.Certificate:
    """A certificate from its base64 DER, remembered when of ordinary size (failures
    are raised again)."""
    if len(b64) <= _CACHED_CERTIFICATE_TEXT:
        return _cached_der_certificate(b64)
    return x509.load_der_x509_certificate(b64decode(b64))


@functools.lru_cache(maxsize=256)
def _cached_der_certificate(b64: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(b64decode(b64))


def _cert_digest(cert: x509.Certificate, algorithm_uri: str) -> bytes:
    """The digest of ``cert`` with the XML-DSig digest algorithm ``algorithm_uri``
    (the remembered fingerprint for SHA-256; ValueError for an unknown algorithm)."""
    if algorithm_uri == DigestAlgorithm.SHA256.value:
        return bytes.fromhex(fingerprint(cert))
    return cert.fingerprint(_hash_for(algorithm_uri))


def pick_signing_certificate(signature: Any, certs: list[x509.Certificate]) -> x509.Certificate | None:
    """The certificate the signature claims to be made with: the one whose digest the
    (not yet verified) ``xades:SigningCertificate`` names, else the first of ``KeyInfo``.
    The claim is bound afterwards: signxml verifies the signature value with this
    certificate and checks the signed ``SigningCertificate`` digest against it."""
    if not certs:
        return None
    for cert_digest in signature.iterfind(
        "ds:Object/xades:QualifyingProperties/xades:SignedProperties/xades:SignedSignatureProperties/"
        "*/xades:Cert/xades:CertDigest",
        namespaces=_NS,
    ):
        method = cert_digest.find("ds:DigestMethod", namespaces=_NS)
        value = cert_digest.find("ds:DigestValue", namespaces=_NS)
        if method is None or value is None:
            continue
        uri = method.get("Algorithm", "")
        try:
            _hash_for(uri)
            wanted = b64decode("".join((value.text or "").split()))
        except (ValueError, TypeError):
            continue
        for cert in certs:
            if _cert_digest(cert, uri) == wanted:
                return cert
        break
    return certs[0]


def _hash_for(uri: str) -> hashes.HashAlgorithm:
    from signxml.algorithms import digest_algorithm_implementations

    return digest_algorithm_implementations[DigestAlgorithm(uri)]()


def _remove_keeping_tail(el: Any) -> None:
    parent = el.getparent()
    if parent is None:
        raise CryptoFailure(FORMAT, "the signature is the document element")
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _xpath_filter_is_signature_exclusion(transform: Any, signature_copy: Any) -> bool:
    """True when the XPath filter is exactly ``not(ancestor-or-self::P:Signature)`` with
    ``P`` bound to the XML-DSig namespace. Exclusive C14N of ``SignedInfo`` may drop the
    prefix declaration from the verified copy; then the declaration in the document is
    used (as any XML-DSig implementation does), and it must bind the same namespace."""
    xpaths = transform.findall("ds:XPath", namespaces=_NS)
    if len(xpaths) != 1 or len(transform) != 1:
        return False
    expr = (xpaths[0].text or "").strip()
    m = re.fullmatch(r"not\(\s*ancestor-or-self::([A-Za-z_][\w.\-]*):Signature\s*\)", expr)
    if not m:
        return False
    prefix = m.group(1)
    bound = xpaths[0].nsmap.get(prefix)
    if bound is not None:
        return bound == DS_NS
    in_document = {x.nsmap.get(prefix) for x in signature_copy.iter(f"{{{DS_NS}}}XPath")}
    return in_document == {DS_NS}


def _document_transforms(transforms: list[Any], signature_copy: Any) -> tuple[bool, bool, Any]:
    """(enveloped, xpath filter, canonicalisation transform or None) of a ``URI=""``
    reference's transforms; :class:`CryptoFailure` for anything not allowed (see
    :func:`document_content`)."""
    algorithms = [t.get("Algorithm") for t in transforms]
    enveloped = xpath = False
    c14n: Any = None
    for pos, (alg, transform) in enumerate(zip(algorithms, transforms, strict=False)):
        if alg == ENVELOPED and not enveloped and c14n is None:
            enveloped = True
        elif alg == XPATH_FILTER and not xpath and c14n is None:
            if not _xpath_filter_is_signature_exclusion(transform, signature_copy):
                raise CryptoFailure(FORMAT, "XPath filter other than not(ancestor-or-self::ds:Signature)")
            xpath = True
        elif alg in C14N_ALGORITHMS and c14n is None and pos == len(transforms) - 1:
            c14n = transform
        else:
            raise CryptoFailure(FORMAT, f"transform not allowed on the document reference: {alg}")
    if not (enveloped or xpath):
        raise CryptoFailure(FORMAT, "the document reference does not exclude the signature")
    return enveloped, xpath, c14n


def document_content(doc_root: Any, signature_index: int, transforms: list[Any], signature_copy: Any) -> bytes:
    """Canonical bytes of the ``URI=""`` reference of signature number ``signature_index``.

    ``transforms`` are the reference's ``ds:Transform`` elements (from the verified
    ``SignedInfo``). Allowed: an enveloped-signature transform and/or the signature-exclusion
    XPath filter (at least one of them, so the signature does not cover itself), then at
    most one canonicalisation transform, last. Anything else raises :class:`CryptoFailure`.
    """
    enveloped, xpath, c14n = _document_transforms(transforms, signature_copy)

    # work on a copy of the whole document (with the processing instructions around the root;
    # a deep copy of the tree, which is what serialising and parsing it again gave, cheaper)
    doc = copy.deepcopy(doc_root.getroottree()).getroot()
    signatures = signature_elements(doc)
    if signature_index >= len(signatures):
        raise CryptoFailure(FORMAT, "signature not found")
    own = signatures[signature_index]
    remove = set()
    if enveloped:
        remove.add(own)
    if xpath:
        remove.update(signatures)
    outermost = [s for s in signatures if s in remove and not any(a in remove for a in s.iterancestors())]
    for s in outermost:
        _remove_keeping_tail(s)

    exclusive, prefixes = False, None
    if c14n is not None:
        exclusive = c14n.get("Algorithm", "").startswith("http://www.w3.org/2001/10/xml-exc-c14n#")
        inc = c14n.find("ec:InclusiveNamespaces", namespaces=_NS)
        if exclusive and inc is not None and inc.get("PrefixList"):
            prefixes = inc.get("PrefixList").split()
    # URI="" dereferences to the node-set *without comments*, whatever the c14n variant says
    return etree.tostring(
        doc.getroottree(), method="c14n", exclusive=exclusive, with_comments=False, inclusive_ns_prefixes=prefixes
    )


def _keyinfo_certificate(text: Any) -> x509.Certificate:
    """``X509Certificate`` text loaded exactly as signxml loads it (PEM armour added, the
    base64 re-wrapped by ``textwrap``, which costs more than the rest of the check of the
    certificate digests), remembered by the text when of ordinary size: almost every
    document carries the same Profil Zaufany seal and intermediates. Failures are not
    remembered (raised again)."""
    if isinstance(text, str) and len(text) <= _CACHED_CERTIFICATE_TEXT:
        return _cached_keyinfo_certificate(text)
    return x509.load_pem_x509_certificate(add_pem_header(text))


@functools.lru_cache(maxsize=256)
def _cached_keyinfo_certificate(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(add_pem_header(text))


class _Verifier(XAdESVerifier):
    """signxml's XAdES verifier, bound to one signature of the document, with the
    ``URI=""`` reference and the transform allow-list handled here (see module doc)."""

    def __init__(self, signature_index: int, allow_base64: bool, parsed: Any = None) -> None:
        super().__init__()
        self._signature_index = signature_index
        self._allow_base64 = allow_base64
        self._parsed = parsed
        self.references: list[ReferenceInfo] = []
        self.document_content: bytes | None = None
        self.document_root: Any = None

    def get_root(self, data):  # noqa: D401 - signxml hook
        # the document already parsed safely from exactly these bytes: only read here
        # (the references work on copies), so it need not be parsed again
        if self._parsed is not None:
            return self._parsed
        return super().get_root(data)

    def _get_signature(self, root):  # noqa: D401 - signxml hook
        signatures = signature_elements(root)
        if self._signature_index >= len(signatures):
            raise InvalidInput("signature not found")
        return signatures[self._signature_index]

    def _verify_reference(self, reference, index, root, uri_resolver, c14n_algorithm, signature, signature_key_used):
        uri = reference.get("URI")
        transforms = reference.findall("ds:Transforms/ds:Transform", namespaces=_NS)
        algorithms = tuple(t.get("Algorithm") or "" for t in transforms)
        digest_method = self._find(reference, "DigestMethod").get("Algorithm")
        try:
            digest_alg = DigestAlgorithm(digest_method)
        except ValueError:
            raise CryptoFailure(ALGORITHM, f"unknown digest algorithm {digest_method}") from None
        self.check_digest_alg_expected(digest_alg)

        if uri == "":
            content = document_content(root, self._signature_index, transforms, signature)
            digest_value = self._find(reference, "DigestValue")
            if b64decode(digest_value.text or "") != self._get_digest(content, digest_alg):
                raise InvalidDigest(f"Digest mismatch for reference {index} (the document)")
            self.document_content = content
            self.document_root = parse_untrusted(content)
            self.references.append(ReferenceInfo("", reference.get("Type"), algorithms, DOCUMENT))
            key = signature_key_used
            pem = key if isinstance(key, bytes) else key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            return VerifyResult(content, self.document_root, signature, signature_key=pem)

        if uri is None or not uri.startswith("#") or uri.startswith("#xpointer("):
            raise CryptoFailure(FORMAT, "only same-document references are accepted")
        allowed = C14N_ALGORITHMS | {ENVELOPED} | ({BASE64} if self._allow_base64 else set())
        for alg in algorithms:
            if alg not in allowed:
                raise CryptoFailure(FORMAT, f"transform not allowed on reference {uri}: {alg}")
        target_el = self._resolve_reference(root, reference)
        own = self._get_signature(root)
        if target_el.tag == XADES_SIGNED_PROPERTIES and own in set(target_el.iterancestors()):
            target = SIGNED_PROPERTIES
        elif target_el.tag == DS_KEYINFO and target_el.getparent() is own:
            target = KEY_INFO
        else:
            target = OTHER
        result = self._verify_id_reference(reference, index, root, target_el, signature, signature_key_used)
        self.references.append(ReferenceInfo(uri, reference.get("Type"), algorithms, target))
        return result

    def _verify_id_reference(self, reference, index, root, target_el, signature, signature_key_used):
        """signxml 5.2.0's ``XMLVerifier._verify_reference`` for a ``#id`` reference whose
        target ``target_el`` (in ``root``) is already resolved. One difference: signxml
        works on a copy of the whole document, serialised and parsed again, because an
        enveloped-signature transform removes the signature from it; here the copy is made
        only for such a transform. Nothing else changes the tree: the payload itself is
        serialised and parsed again before it is canonicalised (``_apply_transforms``)."""
        transforms = self._find(reference, "Transforms", require=False)
        algorithms = [] if transforms is None else [t.get("Algorithm") for t in self._findall(transforms, "Transform")]
        if SignatureConstructionMethod.enveloped.value in algorithms:
            copied_root = self._fromstring(self._tostring(root))
            signature_ref = self._get_signature(copied_root)
            payload = self._resolve_reference(copied_root, reference)
        else:
            signature_ref = self._get_signature(root)
            payload = target_el
        digest_alg = DigestAlgorithm(self._find(reference, "DigestMethod").get("Algorithm"))
        digest_value = self._find(reference, "DigestValue")
        payload_c14n = self._apply_transforms(payload, transforms_node=transforms, signature=signature_ref)
        self.check_digest_alg_expected(digest_alg)
        if b64decode(digest_value.text) != self._get_digest(payload_c14n, digest_alg):
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        # only the canonicalised payload is returned, parsed again (no unsigned data)
        try:
            payload_c14n_xml = self._fromstring(payload_c14n)
        except etree.XMLSyntaxError:
            payload_c14n_xml = None
        key = signature_key_used
        pem = key if isinstance(key, bytes) else key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return VerifyResult(payload_c14n, payload_c14n_xml, signature, signature_key=pem)

    def _check_cert_validity(self, cert, cert_source):  # noqa: D401 - signxml hook
        # signxml's check, without formatting the certificate's description (its subject
        # as text) when there is nothing to report: signxml raises exactly when the
        # verification time lies outside the validity period
        at = self._get_cert_verification_time()
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            super()._check_cert_validity(cert, cert_source)

    def _verify_cert_digests(self, verify_result):  # noqa: D401 - signxml hook
        # signxml 5.2.0's XAdESVerifier._verify_cert_digests, the certificates loaded
        # through _keyinfo_certificate instead of load_pem_x509_certificate(add_pem_header(…))
        certs = []
        for x509_data in self._findall(verify_result.signature_xml, "ds:KeyInfo/ds:X509Data"):
            for cert in self._findall(x509_data, "X509Certificate"):
                certs.append(_keyinfo_certificate(string_value(cert)))
        signing_cert = self._find_signing_cert(verify_result, certs)
        if signing_cert is not None:
            self._add_cert_if_missing(certs, signing_cert)

        signed_signature_props = self._find(verify_result.signed_xml, "xades:SignedSignatureProperties")
        signing_cert_node = self._find(signed_signature_props, "xades:SigningCertificate", require=False)
        signing_cert_v2_node = self._find(signed_signature_props, "xades:SigningCertificateV2", require=False)
        if signing_cert_node is None and signing_cert_v2_node is None:
            raise InvalidInput("Expected to find XML element xades:SigningCertificate or xades:SigningCertificateV2")
        if signing_cert_node is not None and signing_cert_v2_node is not None:
            raise InvalidInput("Expected to find exactly one of xades:SigningCertificate or xades:SigningCertificateV2")
        if signing_cert_node is not None:
            self._verify_cert_digest(signing_cert_node, certs=certs, signing_cert=signing_cert)
        elif signing_cert_v2_node is not None:
            self._verify_cert_digest(signing_cert_v2_node, certs=certs, signing_cert=signing_cert)


_SHA1_METHODS = frozenset({"RSA_SHA1", "ECDSA_SHA1", "SHA1_RSA_MGF1"})


def precheck(signature: Any, *, allow_base64: bool = False) -> None:
    """Refuse, before anything is canonicalised, what :func:`verify_crypto` would refuse
    anyway — read from the signature as it stands (nothing here is trusted, it can only
    refuse): a ``SignatureMethod`` or ``DigestMethod`` below the key and algorithm policy
    (:mod:`.policy`: :data:`ALGORITHM`), also the digest of the XAdES signing certificate;
    a canonicalisation or transform outside the allow-list, not exactly one reference to
    the whole document (``URI=""``), a reference to anything but that and this signature's
    own ``SignedProperties`` or ``KeyInfo`` (``#id``), a ``SignatureValue`` that is not
    plain text (:data:`FORMAT`). ``allow_base64`` (enveloping signatures, reference
    vectors only) also lets ``#id`` references point elsewhere. So a hostile document costs
    no canonicalisation of its content to be refused."""
    signed_info = _child(signature, "SignedInfo")
    if signed_info is None:
        raise CryptoFailure(FORMAT, "no ds:SignedInfo")
    c14n = _child(signed_info, "CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in C14N_ALGORITHMS:
        raise CryptoFailure(FORMAT, "SignedInfo canonicalisation not allowed")
    method = _child(signed_info, "SignatureMethod")
    problem = policy.signature_method_problem(method.get("Algorithm") if method is not None else None)
    if problem:
        raise CryptoFailure(ALGORITHM, problem)
    value = _child(signature, "SignatureValue")
    if value is None or len(value):  # a comment or processing instruction inside: not what was signed
        raise CryptoFailure(FORMAT, "SignatureValue is not plain text")
    allowed_id = C14N_ALGORITHMS | {ENVELOPED} | ({BASE64} if allow_base64 else set())
    references = list(signed_info.iterchildren(_DS_REFERENCE))
    if sum(1 for r in references if r.get("URI") == "") != 1:
        raise CryptoFailure(FORMAT, "exactly one whole-document reference expected")
    own = {el.get("Id") for el in signature.iter(XADES_SIGNED_PROPERTIES, DS_KEYINFO) if el.get("Id")}
    for reference in references:
        digest = _child(reference, "DigestMethod")
        problem = policy.digest_problem(digest.get("Algorithm") if digest is not None else None)
        if problem:
            raise CryptoFailure(ALGORITHM, problem)
        uri = reference.get("URI")
        container = _child(reference, "Transforms")
        transforms = list(container.iterchildren(_DS_TRANSFORM)) if container is not None else []
        if uri == "":
            _document_transforms(transforms, signature)
        elif uri is None or not uri.startswith("#") or uri.startswith("#xpointer("):
            raise CryptoFailure(FORMAT, "only same-document references are accepted")
        elif any(t.get("Algorithm") not in allowed_id for t in transforms):
            raise CryptoFailure(FORMAT, f"transform not allowed on reference {uri[:100]}")
        elif not allow_base64 and uri[1:] not in own:
            raise CryptoFailure(FORMAT, "references to other data than the document and the signature's own properties")
    for props in signature.iter(XADES_SIGNED_PROPERTIES):  # the XAdES signing certificate's digests
        for cert_digest in props.iter(_XADES_CERT_DIGEST):
            method = _child(cert_digest, "DigestMethod")
            problem = policy.digest_problem(method.get("Algorithm") if method is not None else None)
            if problem:
                raise CryptoFailure(ALGORITHM, f"signing certificate {problem}")


_DS_REFERENCE = f"{{{DS_NS}}}Reference"
_DS_TRANSFORM = f"{{{DS_NS}}}Transform"
_XADES_CERT_DIGEST = f"{{{XADES_NS}}}CertDigest"


def _child(element: Any, name: str) -> Any:
    """The first ``ds:`` child element ``name`` of ``element`` (or None)."""
    return next(element.iterchildren(f"{{{DS_NS}}}{name}"), None)


def verify_crypto(
    raw: bytes,
    signature_index: int,
    signing_cert: x509.Certificate,
    *,
    allow_sha1: bool = False,
    allow_base64: bool = False,
    parsed: Any = None,
) -> CryptoResult:
    """Verify signature number ``signature_index`` of ``raw`` cryptographically with
    ``signing_cert``: signature value, every reference digest, the XAdES signing-certificate
    digest. Raises :class:`CryptoFailure` when anything does not hold.

    ``allow_sha1`` admits RSA-SHA1 / SHA-1 digests (never for declarations; only to
    examine old reference vectors). ``allow_base64`` admits the base64 transform on
    ``#id`` references (enveloping signatures; not a shape ePUAP declarations take).
    ``parsed``: the root element of ``raw`` already parsed by a safe parser
    (:func:`worker.signatures.xmlparse.parse_untrusted` or
    :func:`worker.forms.safe_xml.parse_untrusted`), used instead of parsing ``raw``
    again; it is only read, never changed.
    """
    # the key and algorithm policy (.policy); SHA-1 only to examine old reference vectors
    methods = frozenset(m for m in SignatureMethod if m.value in policy.SIGNATURE_METHODS or (allow_sha1 and m.name in _SHA1_METHODS))
    digests = frozenset(d for d in DigestAlgorithm if d.value in policy.DIGEST_METHODS or (allow_sha1 and d.name == "SHA1"))
    before, after = signing_cert.not_valid_before_utc, signing_cert.not_valid_after_utc
    config = XAdESSignatureConfiguration(
        expect_references=True,  # any number: the caller checks the set of references
        signature_methods=methods,
        digest_algorithms=digests,
        # the validity period is checked by the path validation at the signing time
        verification_time=before + (after - before) / 2,
    )
    verifier = _Verifier(signature_index, allow_base64, parsed)
    try:
        results = verifier.verify(raw, x509_cert=signing_cert, expect_config=config, parser=safe_parser())
    except CryptoFailure:
        raise
    except InvalidDigest as exc:
        msg = str(exc)
        if "certificate digest" in msg:
            raise CryptoFailure(CERT_BINDING, "xades:SigningCertificate does not match the signing certificate") from exc
        raise CryptoFailure(DIGEST, msg) from exc
    except InvalidCertificate as exc:
        raise CryptoFailure(SIGNATURE_VALUE, "signing certificate refused by the cryptographic check") from exc
    except InvalidSignature as exc:
        raise CryptoFailure(SIGNATURE_VALUE, "signature value does not verify") from exc
    except InvalidInput as exc:
        msg = str(exc)
        category = ALGORITHM if "forbidden by configuration" in msg else FORMAT
        raise CryptoFailure(category, msg[:300]) from exc
    except UnsafeXML as exc:
        raise CryptoFailure(FORMAT, str(exc)) from exc
    except (SignXMLException, etree.LxmlError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # malformed signatures: missing elements, bad base64, unknown algorithm URIs, …
        raise CryptoFailure(FORMAT, f"malformed signature ({type(exc).__name__})") from exc

    signed_properties = None
    for r in results:
        if getattr(r, "signed_properties", None) is not None:
            signed_properties = r.signed_xml
            break
    signed_info = results[0].signature_xml.find("ds:SignedInfo/ds:SignatureMethod", namespaces=_NS)
    return CryptoResult(
        references=tuple(verifier.references),
        document_content=verifier.document_content,
        document_root=verifier.document_root,
        signed_properties=signed_properties,
        signature_method=signed_info.get("Algorithm", "") if signed_info is not None else "",
    )
