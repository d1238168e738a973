"""Whom the worker trusts: trust anchors, the pinned Profil Zaufany seal, revocation.

Every path found is also held to the key and algorithm policy (:mod:`.policy`: RSA of at
least 2048 bits, EC of at least 256, no DSA, no SHA-1/MD5, for the signer and every CA):
a path below it is :data:`PATH_WEAK` (``SIGNATURE_UNTRUSTED`` naming the key or
algorithm). When no path can be built because a certificate offered for it is below the
policy (cryptography's own path building refuses weak CA keys and hashes), the result is
:data:`PATH_WEAK` as well, naming it, rather than "no path". The Profil Zaufany seal is
pinned by its public key (:mod:`.pinning`).

Path validation uses ``cryptography.x509.verification`` against the configured trust
anchors only (never a system or web CA bundle), **at a given time** (the validation
time: the proof of existence, never the signer's claimed ``SigningTime``), with the
intermediates the signature carries in ``ds:KeyInfo``. The extension policy is the one
electronic signatures need, not the Web PKI one: qualified certificates carry key usage
nonRepudiation only and no subjectAltName, so the end-entity policy admits any extensions
and :meth:`TrustConfig.validate_path` then requires that the certificate is not a CA.
Issuers must be CAs (basicConstraints cA) with keyCertSign when they carry a key usage.

Whether the certificate is *meant for signing documents* is :func:`purpose_problems`
(``spec/signatures.md``, "A certificate fit for signing documents"): key usage, extended
key usage and, for a qualified certificate, the QcStatements of ETSI EN 319 412-5.

Revocation: ``off`` (the default: the worker runs offline) or ``required``: every
certificate of the path except the anchor must be shown not revoked at the validation
time — by a configured CRL of its issuer (signature checked, ``nextUpdate`` not before the
time checked), else, with ``revocation_fetch``, by an OCSP answer or a CRL fetched and
verified by :mod:`.revocation`. Revoked at or before that time means *revoked*; no usable
answer means *unknown* (→ INDETERMINATE).

Trusted lists (:mod:`.trusted_lists`, when configured): the CA certificates of their CA/QC
services are anchors for qualified signatures too, and :meth:`TrustConfig.qualification`
says whether the issuing CA was granted at the validation time for the signer's purpose.

Verified paths are reused (:class:`PathCache`): almost every declaration is signed with
the same Profil Zaufany seal, so building and verifying its path for every document is
work done again for nothing. A path found valid is remembered under the fingerprints of
the leaf and of the intermediates offered with it (with the CRL set, for revocation), with
the window in which every certificate of the path is valid (the intersection of their
validity periods). Another validation with the same certificates at a time inside that
window gets the remembered path: signatures, names and extensions do not depend on the
time, the validity periods were the only time-dependent part. Outside the window, or for
other certificates, the path is built and verified from scratch, so an expired,
untrusted or unfit certificate is refused as without the cache. Failures are never
remembered. Revocation is checked for every document anyway (it depends on the time);
only the CRLs' signatures, which do not, are verified once per CRL and issuer.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as xv
from cryptography.x509.oid import NameOID

from worker.signatures import policy, qc
from worker.signatures.pinning import SealPins
from worker.signatures.revocation import REVOKED as FETCHED_REVOKED
from worker.signatures.revocation import UNKNOWN as FETCHED_UNKNOWN
from worker.signatures.revocation import RevocationFetcher
from worker.signatures.trusted_lists import TrustedLists

REVOCATION_MODES = ("off", "required")

# path validation outcomes
PATH_OK = "ok"
PATH_EXPIRED = "expired"  # the path exists, but a certificate was not valid at that time
PATH_UNTRUSTED = "untrusted"  # no path to a configured anchor
PATH_USAGE = "usage"  # the certificate is not one for signing
PATH_WEAK = "weak"  # a key or algorithm of the path is below the policy (worker.signatures.policy)

# revocation outcomes
REVOCATION_NOT_CHECKED = "not_checked"
REVOCATION_GOOD = "good"
REVOCATION_REVOKED = "revoked"
REVOCATION_UNKNOWN = "unknown"

QC_STATEMENTS, QC_COMPLIANCE, QC_TYPE = qc.QC_STATEMENTS, qc.QC_COMPLIANCE, qc.QC_TYPE
QC_TYPE_ESIGN, QC_TYPE_ESEAL = qc.QC_TYPE_ESIGN, qc.QC_TYPE_ESEAL
# extended key usages that sign documents: emailProtection, documentSigning (RFC 9336),
# Microsoft document signing, anyExtendedKeyUsage
SIGNING_EKUS = frozenset({"1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36", "1.3.6.1.4.1.311.10.3.12", "2.5.29.37.0"})

# what makes a certificate unfit for signing documents (purpose_problems)
MISSING_KEY_USAGE = "key_usage"  # KeyUsage without digitalSignature / nonRepudiation
MISSING_SIGNING_EKU = "extended_key_usage"  # ExtendedKeyUsage without a signing purpose
MISSING_QC_COMPLIANCE = "qc_compliance"  # "qualified" without QcCompliance
QC_TYPE_NOT_ESIGN = "qc_type_esign"  # a natural person's certificate whose QcType lacks esign
QC_TYPE_NOT_ESEAL = "qc_type_eseal"  # an institution's certificate whose QcType lacks eseal
QC_TYPE_NEITHER = "qc_type"  # QcType with neither esign nor eseal (e.g. web only)
# ETSI EN 319 411-2 policies of qualified certificates for natural persons (QCP-n, QCP-n-qscd)
QUALIFIED_POLICIES = frozenset({"0.4.0.194112.1.0", "0.4.0.194112.1.2"})

_CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


# fingerprints remembered: the same few certificates (the seal, the intermediates) are
# fingerprinted several times per document, and a certificate compares and hashes by its
# DER bytes, which is cheaper than the digest. At most this many, and only certificates
# of ordinary size (anything larger in a hostile document is never kept).
_FINGERPRINTS: dict[x509.Certificate, str] = {}
_FINGERPRINTS_MAX = 1024
_FINGERPRINT_MAX_DER = 16 * 1024


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, lowercase hex (as stored in the evidence)."""
    fp = _FINGERPRINTS.get(cert)
    if fp is None:
        der = cert.public_bytes(Encoding.DER)
        fp = hashlib.sha256(der).hexdigest()
        if len(der) <= _FINGERPRINT_MAX_DER:
            if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
                _FINGERPRINTS.clear()
            _FINGERPRINTS[cert] = fp
    return fp


def _load_certificates(data: bytes, origin: str) -> list[x509.Certificate]:
    if b"-----BEGIN" in data:
        try:
            return list(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise ValueError(f"{origin}: not a readable PEM certificate bundle ({exc})") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise ValueError(f"{origin}: not a PEM or DER certificate") from None


def load_certificates(path: Path, what: str) -> list[x509.Certificate]:
    """Certificates from a PEM bundle, a DER file, or a folder of such files
    (``*.pem``, ``*.crt``, ``*.cer``, ``*.der``). Raises ``ValueError`` with ``what`` and
    the path when nothing usable is found."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _CERT_SUFFIXES)
        certs = [c for f in files for c in _load_certificates(f.read_bytes(), f"{what} {f}")]
        if not certs:
            raise ValueError(f"{what}: no certificates in folder {path}")
        return certs
    if not path.is_file():
        raise ValueError(f"{what}: {path} does not exist")
    certs = _load_certificates(path.read_bytes(), f"{what} {path}")
    if not certs:
        raise ValueError(f"{what}: no certificates in {path}")
    return certs


def load_crls(paths: Iterable[Path]) -> list[x509.CertificateRevocationList]:
    """CRLs (PEM or DER) from files or folders; ``ValueError`` on unreadable ones."""
    crls: list[x509.CertificateRevocationList] = []
    for path in paths:
        path = Path(path)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if not f.is_file():
                raise ValueError(f"crls: {f} does not exist")
            data = f.read_bytes()
            try:
                crls.append(
                    x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
                )
            except ValueError:
                raise ValueError(f"crls: {f} is not a readable CRL") from None
    return crls


def is_qualified(cert: x509.Certificate) -> bool:
    """Whether the certificate *claims* to be qualified: a QcCompliance statement (ETSI
    EN 319 412-5) or a qualified-certificate policy (EN 319 411-2). Whether the claim is
    complete (QcCompliance, QcType) is :func:`purpose_problems`. QcStatements without
    QcCompliance (allowed in certificates that are not qualified) claim nothing."""
    statements = qc.of(cert)
    if statements is not None and statements.compliance:
        return True
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return False
    return any(p.policy_identifier.dotted_string in QUALIFIED_POLICIES for p in policies)


def is_natural_person(cert: x509.Certificate) -> bool | None:
    """True for a natural person's certificate (givenName, surname or pseudonym in the
    subject), False for an institution's (organizationIdentifier without them), None
    when the subject says neither."""
    subject = cert.subject
    if any(subject.get_attributes_for_oid(o) for o in (NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.PSEUDONYM)):
        return True
    if subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER):
        return False
    return None


def purpose_problems(cert: x509.Certificate, *, qualified: bool) -> list[str]:
    """Why ``cert`` is not a certificate for signing documents (empty: it is one).

    - ``KeyUsage``, when present, must include digitalSignature or nonRepudiation;
    - ``ExtendedKeyUsage``, when present, must include a signing purpose
      (:data:`SIGNING_EKUS`): TLS, code signing or time-stamping only is not;
    - ``qualified``: QcStatements with QcCompliance and, when QcType is present, esign for
      a natural person's certificate, eseal for an institution's (read by :mod:`.qc`).
    """
    problems: list[str] = []
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (ku.digital_signature or ku.content_commitment):
            problems.append(MISSING_KEY_USAGE)
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not any(oid.dotted_string in SIGNING_EKUS for oid in eku):
            problems.append(MISSING_SIGNING_EKU)
    except x509.ExtensionNotFound:
        pass
    if qualified:
        statements = qc.of(cert) or qc.NONE
        if not statements.compliance:
            problems.append(MISSING_QC_COMPLIANCE)
        if statements.types is not None:
            esign, eseal = QC_TYPE_ESIGN in statements.types, QC_TYPE_ESEAL in statements.types
            person = is_natural_person(cert)
            if person is True and not esign:
                problems.append(QC_TYPE_NOT_ESIGN)
            elif person is False and not eseal:
                problems.append(QC_TYPE_NOT_ESEAL)
            elif person is None and not (esign or eseal):
                problems.append(QC_TYPE_NEITHER)
    return problems


@dataclass(frozen=True)
class PathResult:
    status: str  # PATH_OK / PATH_EXPIRED / PATH_UNTRUSTED / PATH_USAGE / PATH_WEAK
    chain: tuple[x509.Certificate, ...] = ()  # leaf first, anchor last (when a path was found)
    reason: str = ""  # English, no personal data
    problems: tuple[policy.Problem, ...] = ()  # PATH_WEAK: what is below the policy


def _ca_check(policy, cert, ext) -> None:
    if ext is None or not ext.ca:
        raise ValueError("issuer is not a CA")


def _ca_key_usage(policy, cert, ext) -> None:
    if ext is not None and not ext.key_cert_sign:
        raise ValueError("issuer key usage lacks keyCertSign")


def _ca_policy() -> xv.ExtensionPolicy:
    return (
        xv.ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, xv.Criticality.AGNOSTIC, _ca_check)
        .may_be_present(x509.KeyUsage, xv.Criticality.AGNOSTIC, _ca_key_usage)
    )


def _as_utc(t: datetime) -> datetime:
    """A time in UTC; one without a zone is taken as UTC.

    >>> from datetime import timezone
    >>> _as_utc(datetime(2025, 3, 10, 10, 0, tzinfo=timezone(timedelta(hours=1)))).isoformat(), _as_utc(datetime(2025, 3, 10, 9)).hour
    ('2025-03-10T09:00:00+00:00', 9)
    """
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class PathCache:
    """Verified paths by ``key`` (fingerprints of the leaf and the offered intermediates,
    the CRL set), each with the window in which all of its certificates are valid;
    least recently used dropped beyond ``maxsize``. Thread-safe."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, tuple[tuple[x509.Certificate, ...], datetime, datetime]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple, at: datetime) -> tuple[x509.Certificate, ...] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or not (item[1] <= at <= item[2]):
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: tuple, chain: tuple[x509.Certificate, ...]) -> None:
        if not chain:
            return
        window = (max(c.not_valid_before_utc for c in chain), min(c.not_valid_after_utc for c in chain))
        with self._lock:
            self._items[key] = (chain, *window)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class TrustConfig:
    """The trust configuration, built once at start-up (``[signatures]`` in the config).

    ``anchors``: trusted roots (the national root NCCert, the pl.ID root for personal
    signatures…); ``profile_seals``: the certificates of the Profil Zaufany seal (a
    signature is a Profil Zaufany one only when made with the key of one of them —
    pinned by its SubjectPublicKeyInfo, :mod:`.pinning` — by a certificate that also
    chains to an anchor; the seal's subject name alone is nothing);
    ``revocation``: ``off`` or ``required``; ``crls``: revocation lists used when required;
    ``clock_skew``: how far a claimed signing time may lie after the proof-of-existence
    time (the filing time) before it is implausible; ``tsa_anchors``: roots of the
    time-stamping authorities whose signature time-stamps may prove an earlier existence
    (none: time-stamps are not used).
    """

    anchors: tuple[x509.Certificate, ...]
    profile_seals: tuple[x509.Certificate, ...] = ()
    revocation: str = "off"
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    clock_skew: timedelta = timedelta(minutes=5)
    tsa_anchors: tuple[x509.Certificate, ...] = ()
    # the trusted lists (ETSI TS 119 612) deciding QUALIFIED, when configured; and the
    # revocation answers fetched over the network (revocation_fetch), when enabled
    trusted_lists: TrustedLists | None = field(default=None, compare=False)
    revocation_fetcher: RevocationFetcher | None = field(default=None, compare=False)
    _store: xv.Store = field(init=False, repr=False, compare=False)
    paths: PathCache = field(init=False, repr=False, compare=False)
    _crl_set: str = field(init=False, repr=False, compare=False)
    _crl_signatures: dict = field(init=False, repr=False, compare=False)
    _pins: SealPins = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.anchors:
            raise ValueError("trust anchors: at least one certificate is needed")
        if self.revocation not in REVOCATION_MODES:
            raise ValueError(f"revocation: must be one of {', '.join(REVOCATION_MODES)}, not {self.revocation!r}")
        object.__setattr__(self, "_store", xv.Store(list(self.anchors)))
        object.__setattr__(self, "paths", PathCache())
        crl_set = hashlib.sha256(b"".join(hashlib.sha256(c.public_bytes(Encoding.DER)).digest() for c in self.crls))
        object.__setattr__(self, "_crl_set", f"{self.revocation}:{crl_set.hexdigest()}")
        object.__setattr__(self, "_crl_signatures", {})
        object.__setattr__(self, "_pins", SealPins.of(self.profile_seals))

    @classmethod
    def from_files(
        cls,
        trust_anchors: Path,
        trusted_profile_seals: Sequence[Path],
        revocation: str = "off",
        crls: Sequence[Path] = (),
        tsa_anchors: Path | None = None,
    ) -> TrustConfig:
        """Load the configuration from files. ``trust_anchors`` is a PEM bundle or a folder
        of certificates; ``trusted_profile_seals`` are certificate files. Any problem raises
        ``ValueError`` with a one-line reason naming the file."""
        if revocation not in REVOCATION_MODES:
            raise ValueError(f"revocation: must be one of {', '.join(REVOCATION_MODES)}, not {revocation!r}")
        anchors = load_certificates(Path(trust_anchors), "trust_anchors")
        seals = [c for p in trusted_profile_seals for c in load_certificates(Path(p), "trusted_profile_seals")]
        return cls(
            anchors=tuple(anchors),
            profile_seals=tuple(seals),
            revocation=revocation,
            crls=tuple(load_crls(crls)),
            tsa_anchors=tuple(load_certificates(Path(tsa_anchors), "tsa_anchors")) if tsa_anchors is not None else (),
        )

    # -- Profil Zaufany seal ------------------------------------------------------------

    def profile_seal_pin(self, cert: x509.Certificate) -> str | None:
        """``"certificate"`` when ``cert`` is a configured seal certificate, ``"key"`` when
        it is another certificate of a configured seal's public key, else ``None`` (a
        certificate with a seal's subject name but another key is not the seal)."""
        return self._pins.pinned_by(cert)

    # -- path validation ----------------------------------------------------------------

    def _build(self, leaf: x509.Certificate, intermediates: list[x509.Certificate], at: datetime, store: xv.Store | None = None):
        verifier = (
            xv.PolicyBuilder()
            .store(store or self._store)
            .time(_as_utc(at))
            .extension_policies(ca_policy=_ca_policy(), ee_policy=xv.ExtensionPolicy.permit_all())
            .build_client_verifier()
        )
        return tuple(verifier.verify(leaf, intermediates).chain)

    def validate_path(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], at: datetime, *, qualified: bool = False
    ) -> PathResult:
        """Validate ``leaf`` up to a configured anchor at time ``at`` (a path found valid
        before for the same certificates is reused while ``at`` is inside its window).

        ``qualified``: the signature claims to be qualified; with trusted lists configured,
        the CA certificates of their CA/QC services are anchors too (whether the service
        was granted at ``at`` is :meth:`qualification`, after the path).

        This is the one place a path is validated: ``PathResult.chain`` is the validated
        path (the signer first, its CAs, the anchor last)."""
        others = [c for c in intermediates if c != leaf]
        at = _as_utc(at)
        store, lists = None, ""
        if qualified and self.trusted_lists is not None:
            store, lists = self.trusted_lists.store(self.anchors)
        key = (fingerprint(leaf), tuple(fingerprint(c) for c in others), self._crl_set, lists)
        cached = self.paths.get(key, at)
        if cached is not None:
            return PathResult(PATH_OK, cached)
        try:
            chain = self._build(leaf, others, at, store)
        except (xv.VerificationError, ValueError):
            # a certificate the path would go through is below the policy: say which
            weak = policy.path_problems(self._path_by_names(leaf, others))
            if weak:
                return PathResult(PATH_WEAK, (), "; ".join(p.reason for p in weak), tuple(weak))
            # Is there a path at some other time? Then the failure is the time.
            before, after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
            for t in (before + (after - before) / 2, before + timedelta(seconds=1), after - timedelta(seconds=1)):
                try:
                    chain = self._build(leaf, others, t, store)
                except (xv.VerificationError, ValueError):
                    continue
                return PathResult(PATH_EXPIRED, chain, "a certificate of the path was not valid at the validation time")
            return PathResult(PATH_UNTRUSTED, (), "no path to a configured trust anchor")
        weak = policy.path_problems(chain)
        if weak:
            return PathResult(PATH_WEAK, chain, "; ".join(p.reason for p in weak), tuple(weak))
        try:
            bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                return PathResult(PATH_USAGE, chain, "the signing certificate is a CA certificate")
        except x509.ExtensionNotFound:
            pass
        self.paths.put(key, chain)
        return PathResult(PATH_OK, chain)

    def _path_by_names(self, leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        """The path as the issuer names draw it (leaf, its issuer among ``others`` or the
        anchors, …; no signature checked): what a failed path building would have gone
        through, to name a certificate below the policy."""
        path, node = [leaf], leaf
        candidates = [*others, *self.anchors]
        while len(path) < 10 and node.issuer != node.subject:
            parent = next((c for c in candidates if c.subject == node.issuer and c not in path), None)
            if parent is None:
                break
            path.append(parent)
            node = parent
        return path

    # -- revocation ---------------------------------------------------------------------

    def check_revocation(self, chain: Sequence[x509.Certificate], at: datetime) -> tuple[str, str]:
        """Revocation status of every certificate of ``chain`` (leaf first, anchor last)
        at time ``at``: ``(outcome, reason)``."""
        outcome, reason, _answers = self.revocation_status(chain, at)
        return outcome, reason

    def revocation_status(self, chain: Sequence[x509.Certificate], at: datetime) -> tuple[str, str, list[dict]]:
        """:meth:`check_revocation` with what decided for each certificate (for the
        evidence): a configured CRL of its issuer that covers ``at``, else — with
        ``revocation_fetch`` — an OCSP answer or a CRL fetched (:mod:`.revocation`)."""
        if self.revocation == "off":
            return REVOCATION_NOT_CHECKED, "revocation checking is off", []
        at = _as_utc(at)
        answers: list[dict] = []
        for i, (cert, issuer) in enumerate(zip(chain, chain[1:], strict=False)):
            usable = [crl for n, crl in enumerate(self.crls) if self._crl_signed_by(n, crl, issuer) and self._crl_current(crl, at)]
            if usable:
                revoked = [e for crl in usable if (e := crl.get_revoked_certificate_by_serial_number(cert.serial_number)) is not None]
                when = min((e.revocation_date_utc for e in revoked), default=None)
                status = "revoked" if when is not None and when <= at else "good"
                answers.append({"certificate": fingerprint(cert), "status": status, "source": "configured_crl",
                                "revoked_at": when.isoformat() if when else None})  # fmt: skip
                if status == "revoked":
                    return REVOCATION_REVOKED, "a certificate of the path was revoked at the time checked", answers
                continue
            if self.revocation_fetcher is None:
                return REVOCATION_UNKNOWN, "no usable revocation data for a certificate of the path", answers
            answer = self.revocation_fetcher.check(chain[i:], at)
            answers.append(answer.evidence())
            if answer.status == FETCHED_REVOKED:
                return REVOCATION_REVOKED, f"a certificate of the path was revoked at the time checked ({answer.reason})", answers
            if answer.status == FETCHED_UNKNOWN:
                return REVOCATION_UNKNOWN, f"no usable revocation answer for a certificate of the path ({answer.reason})", answers
        return REVOCATION_GOOD, "not revoked at the time checked", answers

    # -- trusted lists --------------------------------------------------------------------

    def qualification(self, chain: Sequence[x509.Certificate], at: datetime):
        """What the trusted lists say about a qualified signer's path at ``at``
        (:meth:`TrustedLists.assess`); ``None`` when no trusted lists are configured."""
        if self.trusted_lists is None:
            return None
        return self.trusted_lists.assess(chain, _as_utc(at), natural_person=is_natural_person(chain[0]))

    def _crl_signed_by(self, index: int, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
        """Whether CRL number ``index`` is ``issuer``'s (name and signature; remembered:
        neither depends on the time)."""
        key = (index, fingerprint(issuer))
        known = self._crl_signatures.get(key)
        if known is None:
            known = self._crl_signatures[key] = self._crl_signature_ok(crl, issuer)
        return known

    @staticmethod
    def _crl_signature_ok(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
        if crl.issuer != issuer.subject:
            return False
        try:
            return bool(crl.is_signature_valid(issuer.public_key()))  # type: ignore[arg-type]
        except (InvalidSignature, TypeError, ValueError):
            return False

    @staticmethod
    def _crl_current(crl: x509.CertificateRevocationList, at: datetime) -> bool:
        nxt = crl.next_update_utc
        return nxt is None or at <= nxt

