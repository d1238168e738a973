"""Signature time-stamps (``xades:SignatureTimeStamp``): a proof of existence earlier
than the filing time, when a configured TSA vouches for it (``[signatures] tsa_anchors``).

:func:`signature_timestamp` looks at the ``xades:EncapsulatedTimeStamp`` elements of one
``ds:Signature`` (unsigned properties: their place proves nothing, the token does) and
returns the earliest time of a token that verifies:

1. the token is a CMS ``SignedData`` (RFC 5652) holding a ``TSTInfo`` (RFC 3161); its
   message imprint (SHA-256/384/512) is the digest of this signature's
   ``ds:SignatureValue`` element canonicalised with the time-stamp's
   ``ds:CanonicalizationMethod`` (inclusive C14N 1.0 without comments by default, or
   exclusive C14N) — so a token cannot be moved to another signature;
2. exactly one ``SignerInfo`` with signed attributes: ``contentType`` = id-ct-TSTInfo,
   ``messageDigest`` = the digest of the ``TSTInfo``; its signature verifies with the TSA
   certificate found in the token (by issuer and serial number or key identifier);
3. the TSA certificate has the extended key usage ``timeStamping`` (and no other usage
   makes it one) and chains to a configured TSA anchor **at the token's time**.

Anything else (malformed, wrong imprint, unknown TSA, bad signature) → the token is not
used and the reason is returned for the evidence; the document's validation time stays
the filing time. ASN.1 is read with ``asn1crypto``; signatures and paths are checked with
``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import verification as xv
from lxml import etree

from worker.domain.xmlvalue import string_value
from worker.signatures.trust import _ca_policy

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EKU_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
MAX_TOKEN_BYTES = 64 * 1024


@dataclass(frozen=True)
class TimeStampCheck:
    time: datetime | None  # the verified time (UTC), None when no token verified
    reason: str  # English, for the evidence


class _Refused(Exception):
    pass


def signature_timestamp(sig: Any, anchors: Sequence[x509.Certificate]) -> TimeStampCheck | None:
    """The earliest verified signature time-stamp of ``sig`` (an lxml ``ds:Signature``),
    ``None`` when it carries none or no TSA anchor is configured."""
    if not anchors:
        return None
    tokens = sig.findall(f".//{{{XADES_NS}}}SignatureTimeStamp")
    if not tokens:
        return None
    value = sig.find(f"{{{DS_NS}}}SignatureValue")
    best: datetime | None = None
    reasons: list[str] = []
    for ts in tokens:
        try:
            t = _verify_one(ts, value, anchors)
        except _Refused as exc:
            reasons.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - hostile input: never a traceback
            reasons.append(f"unreadable time-stamp ({type(exc).__name__})")
            continue
        best = t if best is None or t < best else best
    if best is None:
        return TimeStampCheck(None, "; ".join(reasons) or "no usable time-stamp")
    return TimeStampCheck(best, "signature time-stamp verified")


def _verify_one(ts: Any, value: Any, anchors: Sequence[x509.Certificate]) -> datetime:
    from asn1crypto import cms, tsp  # noqa: F401  (tsp registers the TSTInfo content type)

    if value is None:
        raise _Refused("no ds:SignatureValue")
    encapsulated = ts.findall(f"{{{XADES_NS}}}EncapsulatedTimeStamp")
    token_text = string_value(encapsulated[0]) if len(encapsulated) == 1 else None
    if not token_text:
        raise _Refused("not exactly one EncapsulatedTimeStamp")
    c14n = ts.find(f"{{{DS_NS}}}CanonicalizationMethod")
    method = c14n.get("Algorithm") if c14n is not None else C14N_10
    if method not in (C14N_10, EXC_C14N):
        raise _Refused("unsupported canonicalisation of the time-stamped data")
    try:
        der = base64.b64decode("".join(token_text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("time-stamp token is not base64") from None
    if len(der) > MAX_TOKEN_BYTES:
        raise _Refused("time-stamp token too large")
    stamped = etree.tostring(value, method="c14n", exclusive=method == EXC_C14N, with_comments=False)

    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].native != "signed_data":
        raise _Refused("time-stamp token is not CMS SignedData")
    sd = info["content"]
    eci = sd["encap_content_info"]
    if eci["content_type"].native != "tst_info":
        raise _Refused("time-stamp token does not hold a TSTInfo")
    tst_der = eci["content"].contents
    tst = eci["content"].parsed
    imprint = tst["message_imprint"]
    alg = imprint["hash_algorithm"]["algorithm"].native
    if alg not in _HASHES:
        raise _Refused(f"time-stamp imprint algorithm not allowed ({alg})")
    if imprint["hashed_message"].native != _digest(alg, stamped):
        raise _Refused("time-stamp does not cover this signature value")
    gen_time = tst["gen_time"].native.astimezone(UTC)

    signer_infos = list(sd["signer_infos"])
    if len(signer_infos) != 1:
        raise _Refused("time-stamp token without exactly one signer")
    si = signer_infos[0]
    attrs = si["signed_attrs"]
    if not len(attrs):
        raise _Refused("time-stamp signer without signed attributes")
    found = {a["type"].native: a["values"] for a in attrs}
    if "content_type" not in found or found["content_type"][0].native != "tst_info":
        raise _Refused("time-stamp signed attributes lack the TSTInfo content type")
    digest_alg = si["digest_algorithm"]["algorithm"].native
    if digest_alg not in _HASHES:
        raise _Refused(f"time-stamp digest algorithm not allowed ({digest_alg})")
    if "message_digest" not in found or found["message_digest"][0].native != _digest(digest_alg, tst_der):
        raise _Refused("time-stamp message digest does not match its TSTInfo")

    certs = [x509.load_der_x509_certificate(c.chosen.dump()) for c in sd["certificates"] if c.name == "certificate"]
    tsa = _signer_certificate(si, certs)
    signed = b"\x31" + attrs.dump()[1:]  # the SET OF the signed attributes, as signed
    _verify_signature(tsa, si, digest_alg, signed)
    _check_tsa_certificate(tsa, [c for c in certs if c != tsa], anchors, gen_time)
    return gen_time


def _digest(alg: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASHES[alg]())
    h.update(data)
    return h.finalize()


def _signer_certificate(si: Any, certs: list[x509.Certificate]) -> x509.Certificate:
    sid = si["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            chosen = sid.chosen
            if cert.serial_number == chosen["serial_number"].native and cert.issuer.public_bytes() == chosen["issuer"].dump():
                return cert
        elif sid.name == "subject_key_identifier":
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return cert
    raise _Refused("the TSA certificate is not in the time-stamp token")


def _verify_signature(cert: x509.Certificate, si: Any, digest_alg: str, signed: bytes) -> None:
    key = cert.public_key()
    algo = si["signature_algorithm"].signature_algo
    signature = si["signature"].native
    try:
        if isinstance(key, rsa.RSAPublicKey) and algo == "rsassa_pkcs1v15":
            key.verify(signature, signed, padding.PKCS1v15(), _HASHES[digest_alg]())
        elif isinstance(key, ec.EllipticCurvePublicKey) and algo == "ecdsa":
            key.verify(signature, signed, ec.ECDSA(_HASHES[digest_alg]()))
        else:
            raise _Refused(f"time-stamp signature algorithm not supported ({algo})")
    except InvalidSignature:
        raise _Refused("time-stamp signature does not verify") from None


def _check_tsa_certificate(
    tsa: x509.Certificate, others: list[x509.Certificate], anchors: Sequence[x509.Certificate], at: datetime
) -> None:
    try:
        eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise _Refused("the TSA certificate has no timeStamping extended key usage") from None
    if EKU_TIME_STAMPING not in {o.dotted_string for o in eku}:
        raise _Refused("the TSA certificate has no timeStamping extended key usage")
    verifier = (
        xv.PolicyBuilder()
        .store(xv.Store(list(anchors)))
        .time(at)
        .extension_policies(ca_policy=_ca_policy(), ee_policy=xv.ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        verifier.verify(tsa, others)
    except (xv.VerificationError, ValueError):
        raise _Refused("the TSA certificate does not chain to a configured TSA anchor at the time-stamp's time") from None
