"""Verifying the signatures of one ePUAP document: :func:`verify_document`.

Every ``ds:Signature`` that is a direct child of the document element is checked on its
own (the ETSI EN 319 102-1 order: format and cryptography, then the certificate path at
the signing time, then revocation); the document needs at least one VALID signature.
For each signature:

1. **Format and cryptography** (``xades.verify_crypto``, signxml 5.2.0): signature value,
   every reference digest, the XAdES signing-certificate digest. The references must be
   exactly: one whole-document reference ``URI=""`` (enveloped-signature transform and/or
   the ``not(ancestor-or-self::ds:Signature)`` XPath filter, then optionally one
   canonicalisation), one ``xades:SignedProperties`` reference of this signature (with the
   XAdES ``Type``), and at most one reference to this signature's own ``ds:KeyInfo``.
   A Profil Zaufany signature must not carry the ``KeyInfo`` reference (it has exactly two).
2. **Kind**: Profil Zaufany when the signing certificate is a configured seal, or when the
   verified ``SignedProperties`` carry a Profil Zaufany identity (then a certificate other
   than the seal makes it ``SIGNATURE_UNTRUSTED``: a company seal cannot vouch for a
   citizen's identity); otherwise QUALIFIED when the certificate says it is qualified
   (QcCompliance / qualified policy), else PERSONAL.
3. **Validation time** (``spec/signatures.md``, "proof of existence, not the signer's
   claim"): the earliest time the worker has proof the signature existed — a verified
   signature time-stamp of a configured TSA (``timestamps.py``) when earlier than the
   filing time, the filing time ``filed_at`` (ePUAP's ``dataNadania``), or, with no
   filing time (``check`` of a file without ``--filed-at``), the time of the check. The
   verified ``SigningTime`` is written by the signer's software and proves nothing: it is
   only checked for plausibility — after the validation time (beyond ``TrustConfig.clock_skew``) or before
   the signing certificate's ``notBefore`` gives INDETERMINATE. The evidence records the
   time used and its source (``validation_time``, ``validation_time_source``).
4. **Certificate path** to a configured anchor, valid at the validation time
   (``SIGNATURE_UNTRUSTED`` / ``SIGNATURE_CERT_EXPIRED``), and a certificate **fit for
   signing documents** (``trust.purpose_problems``: key usage, extended key usage, the
   QcStatements of a qualified certificate) else ``SIGNATURE_UNTRUSTED`` naming what is
   missing.
5. **Revocation** when required, at the validation time; revoked → ``SIGNATURE_UNTRUSTED``
   (``spec/signatures.md``), no data → ``SIGNATURE_INDETERMINATE``.
6. **Identity** from verified data only: the Profil Zaufany identity (exactly one, with a
   valid PESEL, or the signature is INVALID) or the certificate subject (a missing or
   invalid PESEL there leaves ``signer_pesel`` empty; the signature itself stays valid and
   ``check_signer`` asks for a review).

The content the declaration is read from (``SignatureResult.signed_root``) is the
document exactly as covered by the first VALID signature's ``URI=""`` reference, re-parsed
from its canonical bytes, with any ``ds:Signature`` left in it removed. For an
INDETERMINATE outcome (cryptographically sound, trust not established) it is the content
of that signature; for INVALID it is ``None``.

The kind and signer of an INVALID signature are as the signature claims them (unverified)
and are for the record only.

Each cryptographically verified signature (VALID or INDETERMINATE) also carries
``SignatureCheck.value_digest``: the SHA-256 of its ``ds:SignatureValue`` (the decoded
value, so whitespace or base64 layout do not make a copy look new), which the worker
records to refuse the same signature in another document (``DUPLICATE_SIGNATURE``,
``adapters/db/signature_digests.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from worker.domain.budget import BudgetExceeded, CpuBudget
from worker.domain.findings import Finding, finding
from worker.signatures import identity as idn
from worker.signatures import policy, timestamps, xades
from worker.signatures import trust as tr
from worker.signatures import trusted_lists as tl
from worker.signatures.identity import SignerIdentity
from worker.signatures.trust import TrustConfig, fingerprint
from worker.signatures.xmlparse import UnsafeXML, parse_untrusted

logger = logging.getLogger(__name__)

# kinds (contract column ``signature``)
TRUSTED_PROFILE = "TRUSTED_PROFILE"
QUALIFIED = "QUALIFIED"
PERSONAL = "PERSONAL"
NONE = "NONE"

# statuses (contract column ``signature_status``)
VALID = "VALID"
INVALID = "INVALID"
INDETERMINATE = "INDETERMINATE"

SIGNATURE_MISSING = "SIGNATURE_MISSING"
SIGNATURE_INVALID = "SIGNATURE_INVALID"
SIGNATURE_UNTRUSTED = "SIGNATURE_UNTRUSTED"
SIGNATURE_CERT_EXPIRED = "SIGNATURE_CERT_EXPIRED"
SIGNATURE_INDETERMINATE = "SIGNATURE_INDETERMINATE"

# where the validation time comes from (evidence ``validation_time_source``)
TIME_FILING = "filing_time"  # ePUAP dataNadania (or check --filed-at)
TIME_CHECK = "check_time"  # no proof of existence: the time of the check
TIME_STAMP = "signature_timestamp"  # a verified xades:SignatureTimeStamp of a configured TSA, earlier

_TIME_PHRASE = {
    TIME_FILING: "w chwili złożenia dokumentu ({at})",
    TIME_CHECK: "w chwili sprawdzenia ({at})",
    TIME_STAMP: "w chwili poświadczonej znacznikiem czasu ({at})",
}
_PURPOSE_PHRASE = {
    tr.MISSING_KEY_USAGE: "użycie klucza (KeyUsage) nie obejmuje podpisu cyfrowego ani niezaprzeczalności",
    tr.MISSING_SIGNING_EKU: "rozszerzone użycie klucza (ExtendedKeyUsage) nie obejmuje podpisywania dokumentów "
    "(np. certyfikat serwera TLS)",
    tr.MISSING_QC_COMPLIANCE: "certyfikat uznany za kwalifikowany nie ma deklaracji QcCompliance (QcStatements)",
    tr.QC_TYPE_NOT_ESIGN: "certyfikat kwalifikowany osoby fizycznej nie jest certyfikatem podpisu elektronicznego "
    "(QcType bez esign)",
    tr.QC_TYPE_NOT_ESEAL: "certyfikat kwalifikowany instytucji nie jest certyfikatem pieczęci elektronicznej "
    "(QcType bez eseal)",
    tr.QC_TYPE_NEITHER: "typ certyfikatu kwalifikowanego (QcType) nie obejmuje ani podpisu, ani pieczęci elektronicznej",
}

_MESSAGES = {
    "missing": "Dokument złożony przez ePUAP nie zawiera podpisu elektronicznego.",
    "unreadable": "Nie można odczytać dokumentu, więc nie można sprawdzić podpisu elektronicznego.",
    "misplaced": "Podpis elektroniczny nie jest umieszczony w dokumencie w sposób stosowany przez ePUAP "
    "(podpis otaczający lub zagnieżdżony), więc nie może zostać uznany.",
    xades.DIGEST: "Podpis elektroniczny jest nieważny: treść dokumentu lub podpisane dane zostały zmienione "
    "po złożeniu podpisu.",
    xades.SIGNATURE_VALUE: "Podpis elektroniczny jest nieważny: wartość podpisu nie zgadza się z podpisanymi danymi.",
    xades.CERT_BINDING: "Podpis elektroniczny jest nieważny: certyfikat dołączony do podpisu nie jest "
    "certyfikatem wskazanym w podpisanych danych.",
    xades.ALGORITHM: "Podpis elektroniczny opiera się na niedopuszczonym algorytmie: {what}.",
    xades.FORMAT: "Podpis elektroniczny ma nieobsługiwaną lub niedozwoloną budowę (np. nieznane przekształcenie "
    "lub odwołanie do innych danych niż cały dokument), więc nie może zostać uznany.",
    "no_certificate": "Podpis elektroniczny nie zawiera certyfikatu podpisującego.",
    "identity": "Podpis zaufany nie zawiera poprawnych danych tożsamości podpisującego "
    "(imię, nazwisko i prawidłowy numer PESEL).",
    "identities": "Podpis zaufany zawiera więcej niż jedną tożsamość podpisującego (dopuszczalna jest dokładnie "
    "jedna), więc nie wiadomo, kto podpisał dokument.",
    tr.PATH_WEAK: "Podpis opiera się na zbyt słabym kluczu lub algorytmie: {what}.",
    "signing_time": "Czas złożenia podpisu zapisany w podpisie jest nieczytelny.",
    tr.PATH_UNTRUSTED: "Certyfikat podpisu nie pochodzi od zaufanego dostawcy usług zaufania "
    "(nie prowadzi do skonfigurowanego zaufanego certyfikatu).",
    tr.PATH_USAGE: "Certyfikat użyty do podpisu nie służy do składania podpisów.",
    "purpose": "Certyfikat użyty do podpisu nie jest przeznaczony do podpisywania dokumentów: {what}.",
    "not_seal": "Podpis ma postać podpisu zaufanego, ale nie został złożony pieczęcią podpisu zaufanego.",
    tr.PATH_EXPIRED: "Certyfikat podpisu nie był ważny {when}; czas podpisania deklarowany w podpisie "
    "nie jest dowodem istnienia podpisu.",
    tr.REVOCATION_REVOKED: "Certyfikat podpisu był unieważniony {when}.",
    tr.REVOCATION_UNKNOWN: "Nie można ustalić, czy certyfikat podpisu nie został unieważniony "
    "(brak danych o unieważnieniach) — podpis wymaga sprawdzenia.",
    "tl_" + tl.NOT_GRANTED: "Certyfikat podpisu kwalifikowanego nie pochodzi od kwalifikowanego dostawcy usług zaufania: "
    "jego wystawca nie był {when} usługą CA/QC o statusie „udzielony” (granted) na zaufanej liście (TSL).",
    "tl_" + tl.WRONG_PURPOSE: "Wystawca certyfikatu był {when} kwalifikowanym dostawcą usług zaufania, ale według zaufanej "
    "listy (TSL) nie dla tego rodzaju certyfikatu (podpis osoby fizycznej albo pieczęć instytucji).",
    "tl_" + tl.UNAVAILABLE: "Nie można ustalić, czy certyfikat podpisu jest kwalifikowany: brak zweryfikowanej zaufanej "
    "listy (TSL) — podpis wymaga sprawdzenia (po aktualizacji list dokument można przetworzyć ponownie).",
    "time_after_filing": "Czas złożenia podpisu zapisany w podpisie jest późniejszy niż czas wpływu dokumentu "
    "(lub czas poświadczony znacznikiem czasu) — ważności podpisu nie można potwierdzić, dokument wymaga sprawdzenia.",
    "time_before_certificate": "Czas złożenia podpisu zapisany w podpisie jest wcześniejszy niż początek ważności "
    "certyfikatu podpisu — jest nieprawdopodobny, dokument wymaga sprawdzenia.",
}


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome for one ``ds:Signature``."""

    index: int  # position among the document's ds:Signature elements (document order)
    signature_id: str | None
    kind: str
    status: str
    code: str | None  # finding code when not VALID
    reason: str  # English, no personal data
    message: str | None  # Polish, when not VALID
    signer: SignerIdentity | None = None
    signing_time: datetime | None = None
    validation_time: datetime | None = None
    validation_time_source: str | None = None  # TIME_FILING / TIME_CHECK / TIME_STAMP
    timestamp: str | None = None  # what became of a signature time-stamp (English), when there is one
    value_digest: str | None = None  # SHA-256 of the verified ds:SignatureValue (VALID / INDETERMINATE only)
    certificates: tuple[str, ...] = ()  # SHA-256 fingerprints: signing certificate first, then its path
    pinned_by: str | None = None  # Profil Zaufany seal's key (pinning.py): "certificate" (the configured one) or "key" (another of its key)
    revocation: str = tr.REVOCATION_NOT_CHECKED
    revocation_answers: tuple[dict[str, Any], ...] = ()  # what decided the revocation status, per certificate
    trusted_list: dict[str, Any] | None = None  # what the trusted lists said (a QUALIFIED signature, lists configured)
    signed_root: Any = field(default=None, repr=False, compare=False)

    def to_evidence(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.signature_id,
            "kind": self.kind,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "signing_time": _iso(self.signing_time),
            "validation_time": _iso(self.validation_time),
            "validation_time_source": self.validation_time_source,
            "timestamp": self.timestamp,
            "signature_value_sha256": self.value_digest,
            "certificates": list(self.certificates),
            "pinned_by": self.pinned_by,
            "revocation": self.revocation,
            "revocation_answers": list(self.revocation_answers),
            "trusted_list": self.trusted_list,
            "identity_source": self.signer.source if self.signer else None,
            "signer_name": self.signer.name if self.signer and self.status != INVALID else None,
        }


@dataclass(frozen=True)
class SignatureResult:
    """The outcome for the document (contract columns ``signature``, ``signature_status``,
    ``signer``), the findings, the verified content and the evidence to store."""

    kind: str
    status: str
    signer_name: str | None
    signer_pesel: str | None  # internal only: never logged, never in the signer column
    signing_time: datetime | None
    findings: list[Finding]
    signed_root: Any
    evidence: dict[str, Any]
    checks: tuple[SignatureCheck, ...] = ()
    signer_role: str | None = None  # set by check_signer: DECLARANT / REPRESENTATIVE / OTHER

    @property
    def usable_checks(self) -> tuple[SignatureCheck, ...]:
        """Signatures whose content is cryptographically verified (VALID or INDETERMINATE)."""
        return tuple(c for c in self.checks if c.signed_root is not None)

    def with_primary(self, check: SignatureCheck, signer_role: str | None = None) -> SignatureResult:
        """The same result with ``check`` as the signature named in the columns."""
        evidence = dict(self.evidence)
        evidence.update(_summary(check))
        if signer_role is not None:
            evidence["signer_role"] = signer_role
        return replace(
            self,
            kind=check.kind,
            signer_name=check.signer.name if check.signer else None,
            signer_pesel=check.signer.pesel if check.signer else None,
            signing_time=check.signing_time,
            signed_root=check.signed_root if check.signed_root is not None else self.signed_root,
            evidence=evidence,
            signer_role=signer_role if signer_role is not None else self.signer_role,
        )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _summary(check: SignatureCheck) -> dict[str, Any]:
    return {
        "kind": check.kind,
        "signing_time": _iso(check.signing_time),
        "signer_name": check.signer.name if check.signer and check.status != INVALID else None,
        "certificates": list(check.certificates),
        "primary_signature": check.index,
    }


def _claimed_kind(trust: TrustConfig, cert: x509.Certificate | None, *, profile: bool = False) -> str:
    """The kind a signature claims (before it is verified): Profil Zaufany when made with
    the seal's key or carrying a Profil Zaufany identity (``profile``), else by its
    certificate."""
    if cert is None:
        return NONE
    if profile or trust.profile_seal_pin(cert):
        return TRUSTED_PROFILE
    return QUALIFIED if tr.is_qualified(cert) else PERSONAL


def _strip_signatures(root: Any) -> Any:
    for sig in [s for s in root.iter(xades.DS_SIGNATURE)]:
        if sig.getparent() is not None and not any(a.tag == xades.DS_SIGNATURE for a in sig.iterancestors()):
            xades._remove_keeping_tail(sig)
    return root


def _check_references(refs: tuple[xades.ReferenceInfo, ...], profile: bool) -> str | None:
    """English reason when the set of references is not the expected one, else None."""
    docs = [r for r in refs if r.target == xades.DOCUMENT]
    props = [r for r in refs if r.target == xades.SIGNED_PROPERTIES]
    keyinfo = [r for r in refs if r.target == xades.KEY_INFO]
    if len(docs) != 1:
        return "exactly one whole-document reference expected"
    if len(props) != 1 or props[0].type != xades.SIGNED_PROPERTIES_TYPE:
        return "exactly one SignedProperties reference of this signature expected"
    if len(keyinfo) > (0 if profile else 1):
        return "unexpected KeyInfo reference"
    if len(docs) + len(props) + len(keyinfo) != len(refs):
        return "references to other data than the document and the signature's own properties"
    return None


def signature_value_digest(sig: Any, key: Any = None) -> str | None:
    """SHA-256 (hex) of the decoded ``ds:SignatureValue`` of ``sig`` (leading zero octets
    dropped, so a re-encoded copy of the same value gives the same digest); ``None``
    when there is no readable value.

    An ECDSA value ``r || s`` (``key`` an EC public key) is malleable: ``s`` can be
    replaced by ``n - s`` and it still verifies. Only ``r`` is digested then (it
    depends on the signer's one-time nonce alone), so such a copy is the same signature."""
    el = sig.find(f"{{{xades.DS_NS}}}SignatureValue")
    if el is None or not el.text:
        return None
    try:
        value = base64.b64decode("".join(el.text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not value or len(value) % 2:
            return None
        value = b"ecdsa-r:" + value[: len(value) // 2].lstrip(b"\x00")
    value = value.lstrip(b"\x00")
    return hashlib.sha256(value).hexdigest() if value else None


def _algorithm_what(exc: xades.CryptoFailure) -> str:
    """The Polish naming of the algorithm an :data:`~.xades.ALGORITHM` failure refused."""
    if exc.category != xades.ALGORITHM:
        return ""
    reason = exc.reason.removeprefix("signing certificate ")
    if reason.startswith(("signature method ", "digest ")):
        return policy.algorithm_message(reason)
    return "algorytm spoza dopuszczonych (np. SHA-1)"


def _claimed_properties(sig: Any) -> Any:
    """The ``SignedProperties`` this signature's ``SignedInfo`` refers to (by its ``Id``,
    within the signature), as they stand — before anything is verified. Only for what the
    signature *claims* (its kind, its signing time: a refusal's record), never to accept
    anything; another ``SignedProperties`` nobody refers to (a planted one) is ignored."""
    for ref in sig.iterfind(f"{{{xades.DS_NS}}}SignedInfo/{{{xades.DS_NS}}}Reference"):
        uri = ref.get("URI") or ""
        if ref.get("Type") == xades.SIGNED_PROPERTIES_TYPE and uri.startswith("#"):
            for el in sig.iter(xades.XADES_SIGNED_PROPERTIES):
                if el.get("Id") == uri[1:]:
                    return el
    return None


def _claimed_signing_time(props: Any) -> datetime | None:
    try:
        return idn.signing_time(props) if props is not None else None
    except ValueError:
        return None


def _check_one(
    raw: bytes, root: Any, index: int, sig: Any, trust: TrustConfig, poe: datetime, poe_source: str = TIME_FILING,
    budget: CpuBudget | None = None,
) -> SignatureCheck:
    """One signature, cheapest refusals first (``spec/signatures.md``: a signature whose
    key is not trusted need not be canonicalised to be refused): its shape and algorithms,
    the signer's certificate (path to an anchor at the validation time, key and algorithm
    policy, the Profil Zaufany seal's key, fitness for signing), and only then the
    cryptography — the canonicalisation of the whole document, the costly part."""
    sig_id = sig.get("Id")
    if budget is not None:  # (a document may carry thousands of signatures to refuse)
        budget.check("verify_signature")

    def fail(kind: str, category: str, reason: str, what: str = "", **kw: Any) -> SignatureCheck:
        code = {
            tr.PATH_UNTRUSTED: SIGNATURE_UNTRUSTED,
            tr.PATH_USAGE: SIGNATURE_UNTRUSTED,
            tr.PATH_WEAK: SIGNATURE_UNTRUSTED,
            xades.ALGORITHM: SIGNATURE_UNTRUSTED,
            "purpose": SIGNATURE_UNTRUSTED,
            "not_seal": SIGNATURE_UNTRUSTED,
            tr.PATH_EXPIRED: SIGNATURE_CERT_EXPIRED,
            tr.REVOCATION_REVOKED: SIGNATURE_UNTRUSTED,
            "tl_" + tl.NOT_GRANTED: SIGNATURE_UNTRUSTED,
            "tl_" + tl.WRONG_PURPOSE: SIGNATURE_UNTRUSTED,
        }.get(category, SIGNATURE_INVALID)
        at = kw.get("validation_time")
        at_text = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""
        when = _TIME_PHRASE.get(kw.get("validation_time_source") or "", "{at}").format(at=at_text)
        message = _MESSAGES[category].format(at=at_text, when=when, what=what)
        if "signing_time" not in kw and props is not None:  # as claimed, for the record of a refusal
            kw["signing_time"] = _claimed_signing_time(props)
        return SignatureCheck(index, sig_id, kind, INVALID, code, reason, message, **kw)

    props: Any = None
    try:
        certs = xades.keyinfo_certificates(sig)
    except xades.CryptoFailure as exc:
        return fail(NONE, exc.category, exc.reason)
    leaf = xades.pick_signing_certificate(sig, certs)
    if leaf is None:
        return fail(NONE, "no_certificate", "no X509Certificate in KeyInfo")
    pinned = trust.profile_seal_pin(leaf)
    props = _claimed_properties(sig)
    claimed = _claimed_kind(trust, leaf, profile=pinned is not None or (props is not None and idn.claims_profile_identity(props)))
    fps = (fingerprint(leaf),)
    # 1. the signature's shape and algorithms, as it stands (refusals only)
    try:
        xades.precheck(sig)
    except xades.CryptoFailure as exc:
        what, reason = _algorithm_what(exc), exc.reason
        if exc.category == xades.ALGORITHM:  # the signer's key said too, when it is below the policy as well
            weak = policy.certificate_problems(leaf)
            what = "; ".join([what, *(p.message for p in weak)])
            reason = "; ".join([reason, *(p.reason for p in weak)])
        return fail(claimed, exc.category, reason, what, certificates=fps)

    # 2. the signer's certificate, at the earliest proof of existence: the filing time (or
    # the check), or an earlier verified time-stamp (over the signature value only)
    at, source, stamp = poe, poe_source, None
    ts = timestamps.signature_timestamp(sig, trust.tsa_anchors)
    if ts is not None:
        stamp = ts.reason
        if ts.time is not None and ts.time < poe:
            at, source = ts.time, TIME_STAMP
        elif ts.time is not None:
            stamp = "signature time-stamp verified, not earlier than the filing time"
    common: dict[str, Any] = {"validation_time": at, "validation_time_source": source, "pinned_by": pinned, "timestamp": stamp}

    def judge_certificate(kind: str) -> tuple[Any, bool, SignatureCheck | None]:
        """The signer's path, the key policy, the seal, fitness for signing and — for a
        qualified signature with trusted lists — the issuing service at ``at``, as judged
        for ``kind``: ``(path, lists_unavailable, refusal or None)``."""
        path = trust.validate_path(leaf, certs, at, qualified=kind == QUALIFIED)
        common["certificates"] = tuple(fingerprint(c) for c in path.chain) if path.chain else fps
        # qualified, with trusted lists configured but none verified yet: no path to a listed
        # CA proves nothing — the trust is unknown, not refused
        unavailable = (
            path.status == tr.PATH_UNTRUSTED and kind == QUALIFIED and trust.trusted_lists is not None and not trust.trusted_lists.available()
        )
        if path.status == tr.PATH_WEAK:
            what = "; ".join(p.message for p in path.problems)
            return path, unavailable, fail(kind, tr.PATH_WEAK, path.reason, what, **common)
        if path.status != tr.PATH_OK and not unavailable:
            return path, unavailable, fail(kind, path.status, path.reason, **common)
        if kind == TRUSTED_PROFILE and pinned is None:
            return path, unavailable, fail(kind, "not_seal", "Profil Zaufany identity under a certificate that is not the configured seal", **common)
        problems = tr.purpose_problems(leaf, qualified=kind == QUALIFIED)
        if problems:
            what = "; ".join(_PURPOSE_PHRASE[p] for p in problems)
            return path, unavailable, fail(kind, "purpose", f"certificate not fit for signing documents: {', '.join(problems)}", what, **common)
        if kind == QUALIFIED and not unavailable:
            qualification = trust.qualification(path.chain, at)
            if qualification is not None:
                common["trusted_list"] = qualification.evidence()
                if qualification.status in (tl.NOT_GRANTED, tl.WRONG_PURPOSE):
                    return path, unavailable, fail(kind, "tl_" + qualification.status, qualification.reason, **common)
                unavailable = qualification.status == tl.UNAVAILABLE
        return path, unavailable, None

    path, lists_unavailable, refusal = judge_certificate(claimed)
    if refusal is not None:
        return refusal

    # 3. the cryptography: signature value, then every reference (the document canonicalised)
    if budget is not None:
        budget.check("verify_signature")
    try:
        crypto = xades.verify_crypto(raw, index, leaf, parsed=root)
    except xades.CryptoFailure as exc:
        return fail(claimed, exc.category, exc.reason, _algorithm_what(exc), **common)
    if crypto.signed_properties is None or crypto.document_root is None:
        return fail(claimed, xades.FORMAT, "no verified SignedProperties or document", **common)

    identities = idn.profile_identities(crypto.signed_properties)
    profile = pinned is not None or bool(identities)
    kind = TRUSTED_PROFILE if profile else (QUALIFIED if tr.is_qualified(leaf) else PERSONAL)
    problem = _check_references(crypto.references, profile)
    if problem:
        return fail(kind, xades.FORMAT, problem, **common)
    if kind == TRUSTED_PROFILE and pinned is None:
        return fail(kind, "not_seal", "Profil Zaufany identity under a certificate that is not the configured seal", **common)
    if kind != claimed:  # (the verified properties say otherwise than they seemed to: judge them again)
        common.pop("trusted_list", None)
        path, lists_unavailable, refusal = judge_certificate(kind)
        if refusal is not None:
            return refusal

    try:
        signed_at = idn.signing_time(crypto.signed_properties)
    except ValueError:
        return fail(kind, "signing_time", "unreadable SigningTime", **common)
    common["signing_time"] = signed_at
    # the claimed SigningTime only for plausibility; everything is checked at the proof of existence
    late = signed_at is not None and signed_at > at + trust.clock_skew
    early = signed_at is not None and signed_at < leaf.not_valid_before_utc

    if kind == TRUSTED_PROFILE:
        if len(identities) > 1:  # exactly one identity: two, even with the same PESEL, say nothing certain
            return fail(kind, "identities", f"{len(identities)} Profil Zaufany identities in the signed properties", **common)
        if len(identities) == 0 or identities[0].pesel is None or not identities[0].name:
            return fail(kind, "identity", "no single Profil Zaufany identity with a valid PESEL", **common)
        signer = identities[0]
    else:
        signer = idn.certificate_identity(leaf)
    common["signer"] = signer

    revocation, rev_reason, answers = trust.revocation_status(path.chain, at) if path.chain else (tr.REVOCATION_NOT_CHECKED, "no path", [])
    common["revocation"] = revocation
    common["revocation_answers"] = tuple(answers)
    if revocation == tr.REVOCATION_REVOKED:
        return fail(kind, tr.REVOCATION_REVOKED, rev_reason, **common)

    content = _strip_signatures(crypto.document_root)
    common["value_digest"] = signature_value_digest(sig, leaf.public_key())
    if revocation == tr.REVOCATION_UNKNOWN or lists_unavailable or late or early:
        if lists_unavailable:
            category, reason = "tl_" + tl.UNAVAILABLE, "no verified trusted list to decide whether the certificate is qualified"
        elif revocation == tr.REVOCATION_UNKNOWN:
            category, reason = tr.REVOCATION_UNKNOWN, rev_reason
        elif late:
            category, reason = "time_after_filing", "claimed signing time after the proof-of-existence time"
        else:
            category, reason = "time_before_certificate", "claimed signing time before the certificate's notBefore"
        return SignatureCheck(
            index, sig_id, kind, INDETERMINATE, SIGNATURE_INDETERMINATE, reason, _MESSAGES[category],
            signed_root=content, **common,
        )  # fmt: skip
    return SignatureCheck(index, sig_id, kind, VALID, None, "all checks passed", None, signed_root=content, **common)


def _check_guarded(
    raw: bytes, root: Any, index: int, sig: Any, trust: TrustConfig, poe: datetime, poe_source: str,
    budget: CpuBudget | None = None,
) -> SignatureCheck:
    """:func:`_check_one`, with anything unforeseen in hostile input turned into an
    INVALID signature instead of a traceback (logged by exception type only). A used-up
    CPU budget is not a verdict on the signature: it goes on to the pipeline."""
    try:
        return _check_one(raw, root, index, sig, trust, poe, poe_source, budget)
    except BudgetExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence for hostile input
        logger.warning("signature_check_failed", extra={"event": "signature_check_failed", "error": type(exc).__name__})
        return SignatureCheck(
            index, sig.get("Id"), NONE, INVALID, SIGNATURE_INVALID,
            f"unexpected error while verifying ({type(exc).__name__})", _MESSAGES[xades.FORMAT],
        )  # fmt: skip


def _result_without_signature(code: str, category: str, reason: str, signatures: int = 0) -> SignatureResult:
    message = _MESSAGES[category]
    evidence: dict[str, Any] = {
        "kind": NONE,
        "status": INVALID,
        "reason": reason,
        "signing_time": None,
        "signer_name": None,
        "certificates": [],
        "signatures": [],
        "signatures_elsewhere": signatures,
    }
    return SignatureResult(NONE, INVALID, None, None, None, [finding(code, None, message)], None, evidence)


def verify_document(
    raw: bytes,
    trust: TrustConfig,
    *,
    filed_at: datetime | None = None,
    now: datetime | None = None,
    parsed: Any = None,
    budget: CpuBudget | None = None,
) -> SignatureResult:
    """Verify every signature of an ePUAP document (the raw bytes as received).

    ``filed_at`` is the filing time (ePUAP ``dataNadania``): the proof that the signature
    existed then, and the validation time; without it the time of the check is used
    (``now``, default the current time). Never raises for bad input.

    ``parsed`` is the root element of exactly ``raw`` when it was already parsed by
    :func:`worker.forms.safe_xml.parse_untrusted` (the ``parse`` stage's ``ctx.root``):
    then ``raw`` is not parsed again. The tree is only read; what the declaration is
    read from is still the canonical content of the verified reference, parsed anew.

    ``budget`` (the document's CPU budget) is checked before each signature's costly
    cryptographic check: :class:`~worker.domain.budget.BudgetExceeded` when used up.
    """
    if filed_at is None:
        poe, poe_source = (now or datetime.now(UTC)).astimezone(UTC), TIME_CHECK
    else:
        poe_source = TIME_FILING  # a filing time without a zone is Polish local time, like an xs:dateTime without one
        poe = (filed_at if filed_at.tzinfo is not None else filed_at.replace(tzinfo=idn.WARSAW)).astimezone(UTC)
    if parsed is not None:
        root = parsed
    else:
        try:
            root = parse_untrusted(raw)
        except UnsafeXML as exc:
            return _log(_result_without_signature(SIGNATURE_INVALID, "unreadable", f"document not readable: {exc}"))
    all_signatures = xades.signature_elements(root)
    if not all_signatures:
        return _log(_result_without_signature(SIGNATURE_MISSING, "missing", "no ds:Signature in the document"))
    enveloped = [(i, s) for i, s in enumerate(all_signatures) if s.getparent() is root]
    if not enveloped:
        return _log(
            _result_without_signature(
                SIGNATURE_INVALID, "misplaced", "no ds:Signature directly under the document element", len(all_signatures)
            )
        )

    checks = tuple(_check_guarded(raw, root, i, s, trust, poe, poe_source, budget) for i, s in enveloped)
    valid = [c for c in checks if c.status == VALID]
    indeterminate = [c for c in checks if c.status == INDETERMINATE]
    if valid:
        primary, status, findings = valid[0], VALID, []
    elif indeterminate:
        primary, status = indeterminate[0], INDETERMINATE
        findings = [finding(SIGNATURE_INDETERMINATE, None, primary.message or "")]
    else:
        primary, status = checks[0], INVALID
        findings, seen = [], set()
        for c in checks:
            if (c.code, c.message) not in seen:
                seen.add((c.code, c.message))
                findings.append(finding(c.code or SIGNATURE_INVALID, None, c.message or ""))

    evidence: dict[str, Any] = {
        "status": status,
        "reason": primary.reason,
        "validation_time": _iso(primary.validation_time),
        "proof_of_existence": _iso(poe),
        "validation_time_source": primary.validation_time_source or poe_source,
        "validation_time_rule": "earliest proof of existence (a verified signature time-stamp of a configured TSA "
        "when earlier than the filing time; the filing time; else the time of the check); "
        "the claimed SigningTime is checked for plausibility only",
        "revocation_mode": trust.revocation,
        "revocation_fetch": trust.revocation_fetcher is not None,
        "trusted_lists": trust.trusted_lists is not None,
        "signatures": [c.to_evidence() for c in checks],
        "signatures_elsewhere": len(all_signatures) - len(enveloped),
        "verifier": "signxml 5.2.0 + worker URI=\"\" reference handling",
    }
    evidence.update(_summary(primary))
    result = SignatureResult(
        kind=primary.kind,
        status=status,
        signer_name=primary.signer.name if primary.signer and status != INVALID else None,
        signer_pesel=primary.signer.pesel if primary.signer and status != INVALID else None,
        signing_time=primary.signing_time,
        findings=findings,
        signed_root=primary.signed_root if status != INVALID else None,
        evidence=evidence,
        checks=checks,
    )
    return _log(result)


def _log(result: SignatureResult) -> SignatureResult:
    # a step's record (DEBUG): the document's one INFO record is document.done
    logger.debug(
        "signature verified",
        extra={
            "event": "signature.verified",
            "signature_kind": result.kind,
            "signature_status": result.status,
            "signature_codes": [f.code for f in result.findings],
            "signatures": len(result.checks),
        },
    )
    return result
