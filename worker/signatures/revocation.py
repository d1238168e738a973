"""Revocation, fetched (``spec/signatures.md``, "Revocation, fetched";
``[signatures] revocation = "required"`` with ``revocation_fetch = true``).

For one certificate of a validated path (every one but the anchor), :meth:`RevocationFetcher.check`:

1. asks the **OCSP** responders of its Authority Information Access (a request by
   CertID, POST, HTTP or HTTPS, bounded time and size: :mod:`.fetch`);
2. else fetches the **CRLs** of its CRL Distribution Points;
3. judges each answer with pyhanko-certvalidator (``verify_ocsp_response`` /
   ``verify_crl``): the answer matches the certificate (CertID; the CRL's issuer and
   scope), its signature verifies with the issuer's key or, for OCSP, with a responder
   the issuer delegated to (``id-kp-OCSPSigning``, the responder's own certificate
   checked as the OCSP rules say: not at all with ``id-pkix-ocsp-nocheck``, else against
   its issuer's CRL), and it is **fresh** now (``thisUpdate`` not in the future beyond
   the clock skew, ``nextUpdate`` not past);
4. judges the status **at the validation time**: revoked at or before it → revoked; a
   revocation after it leaves the certificate valid then (a declaration filed before a
   card was reported lost stays valid); ``good`` → good. A certificate that has expired
   since is not vouched for by a ``good`` answer given now (CRLs drop expired
   certificates): unknown;
5. no usable answer (responder down, answer unverifiable, stale, unknown status) →
   unknown, which the signature check turns into ``SIGNATURE_INDETERMINATE``.

Answers that verified are **cached on disk** until their ``nextUpdate``
(``<cache>/revocation/ocsp/…``, ``…/crl/…``; an OCSP answer without ``nextUpdate`` is not
kept) and reused by every process. A responder that failed is not asked again for
:attr:`RevocationConfig.retry_after_s` by the same process (the documents meanwhile go to
review instead of each waiting for the timeout), and the failure is recorded in
``<cache>/revocation/responders.json`` for monitoring. What decided — source, URL, dates,
status, the answer's SHA-256 and, for OCSP, the answer itself — is returned for the
document's signature evidence (:meth:`Answer.evidence`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from worker.signatures.cache import locked, read_bytes, write_private
from worker.signatures.fetch import Fetcher, FetchError, is_url

log = logging.getLogger(__name__)

GOOD, REVOKED, UNKNOWN = "good", "revoked", "unknown"
SOURCE_OCSP, SOURCE_CRL = "ocsp", "crl"
MAX_OCSP_EVIDENCE = 16 * 1024  # an OCSP answer larger than this is kept by digest only


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t is not None else None


def _fp(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class RevocationConfig:
    cache: Path  # the cache folder (revocation/ under it)
    fetcher: Fetcher
    clock_skew: timedelta = timedelta(minutes=5)
    retry_after_s: float = 60.0

    @property
    def folder(self) -> Path:
        return self.cache / "revocation"


@dataclass(frozen=True)
class Answer:
    """The revocation status of one certificate at the validation time, and what said so."""

    certificate: str  # SHA-256 fingerprint
    status: str  # GOOD / REVOKED / UNKNOWN
    reason: str  # English
    source: str | None = None  # SOURCE_OCSP / SOURCE_CRL
    url: str | None = None
    revoked_at: datetime | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    sha256: str | None = None  # of the answer (DER)
    cached: bool = False
    der: bytes | None = None  # the OCSP answer (kept in the evidence when small)
    tried: tuple[str, ...] = ()  # what did not give a usable answer, with why

    def evidence(self) -> dict[str, Any]:
        return {
            "certificate": self.certificate,
            "status": self.status,
            "reason": self.reason,
            "source": self.source,
            "url": self.url,
            "revoked_at": _iso(self.revoked_at),
            "this_update": _iso(self.this_update),
            "next_update": _iso(self.next_update),
            "answer_sha256": self.sha256,
            "answer": base64.b64encode(self.der).decode() if self.der is not None and len(self.der) <= MAX_OCSP_EVIDENCE else None,
            "cached": self.cached,
            "tried": list(self.tried),
        }


class _Unusable(Exception):
    pass


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP and isinstance(d.access_location, x509.UniformResourceIdentifier)
            and is_url(d.access_location.value)]  # fmt: skip


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [n.value for dp in cdp for n in (dp.full_name or []) if isinstance(n, x509.UniformResourceIdentifier) and is_url(n.value)]


def _asn1(cert: x509.Certificate) -> Any:
    from asn1crypto import x509 as ax

    return ax.Certificate.load(cert.public_bytes(Encoding.DER))


def _path(chain: Sequence[x509.Certificate]) -> Any:
    """pyhanko-certvalidator's path to ``chain[0]`` (``chain``: the certificate first, the anchor last).

    The anchor may be a CA certificate that is not self-signed (a CA/QC service of a
    trusted list): certvalidator finds the path of a CRL's issuer by truncating the path
    to that issuer's *issuer*, which is not in the path then; a CRL signed by the anchor
    itself is therefore given the anchor's own (leafless) path, as certvalidator does for
    a self-signed anchor."""
    from pyhanko_certvalidator.authority import AuthorityWithCert, TrustAnchor
    from pyhanko_certvalidator.path import ValidationPath

    class AnchoredPath(ValidationPath):
        def truncate_to_issuer_and_append(self, cert: Any) -> Any:
            anchor = self.trust_anchor.authority
            if isinstance(anchor, AuthorityWithCert) and anchor.certificate.dump() == cert.dump():
                return ValidationPath(self.trust_anchor, interm=[], leaf=None)
            return super().truncate_to_issuer_and_append(cert)

    certs = [_asn1(c) for c in chain]
    return AnchoredPath(TrustAnchor(AuthorityWithCert(certs[-1])), list(reversed(certs[1:-1])), certs[0])


def _context(chain: Sequence[x509.Certificate], skew: timedelta, *, ocsps: Sequence[bytes] = (), crls: Sequence[bytes] = (),
             others: Sequence[x509.Certificate] = ()) -> Any:  # fmt: skip
    """A certvalidator context judging the given answers *now* (their freshness). For an
    OCSP answer, the nested validation of a delegated responder's certificate requires a
    CRL (one without ``ocsp-nocheck``: the CRLs given); the CAs of the path are checked
    by the caller, one by one, so nested validations do not check them again."""
    from pyhanko_certvalidator.context import ValidationContext
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    responder_rule = RevocationCheckingRule.CRL_REQUIRED if ocsps else RevocationCheckingRule.NO_CHECK
    policy = CertRevTrustPolicy(RevocationCheckingPolicy(ee_certificate_rule=responder_rule,
                                                         intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK))  # fmt: skip
    return ValidationContext(
        trust_roots=[_asn1(chain[-1])], other_certs=[_asn1(c) for c in [*chain, *others]], allow_fetching=False,
        ocsps=list(ocsps), crls=list(crls), revinfo_policy=policy, time_tolerance=skew,
    )  # fmt: skip


def _judge(check: Any) -> datetime | None:
    """Run one certvalidator check: ``None`` when it found the certificate not revoked,
    the revocation time when revoked; ``_Unusable`` when the answer says nothing usable."""
    from pyhanko_certvalidator.errors import RevokedError

    try:
        asyncio.run(check)
    except RevokedError as exc:
        when = exc.revocation_dt
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    except Exception as exc:  # noqa: BLE001 - every other outcome: no usable answer
        raise _Unusable(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None
    return None


class RevocationFetcher:
    """Fetched, verified and cached revocation answers (see the module docstring). One per
    process; thread-safe."""

    def __init__(self, cfg: RevocationConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._retry_at: dict[str, float] = {}
        self._recorded: dict[str, tuple[bool, float]] = {}
        self._judged: dict[tuple[str, str], tuple[bytes, bool, Any]] = {}

    # -- the decision for one certificate ------------------------------------------------

    def check(self, chain: Sequence[x509.Certificate], at: datetime, *, now: datetime | None = None) -> Answer:
        """The status at ``at`` of ``chain[0]``, issued by ``chain[1]`` (``chain``: up to the anchor)."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        at = at.astimezone(UTC)
        cert = chain[0]
        fp = _fp(cert)
        tried: list[str] = []
        for url in ocsp_urls(cert):
            try:
                return self._ocsp(chain, url, at, now, fp, tried)
            except _Unusable as exc:
                tried.append(f"ocsp {url}: {exc}")
        for url in crl_urls(cert):
            try:
                return self._crl(chain, url, at, now, fp, tried)
            except _Unusable as exc:
                tried.append(f"crl {url}: {exc}")
        if not tried:
            return Answer(fp, UNKNOWN, "the certificate names no OCSP responder and no CRL distribution point")
        return Answer(fp, UNKNOWN, "no usable revocation answer", tried=tuple(tried))

    def _status(self, cert: x509.Certificate, revoked_at: datetime | None, at: datetime, now: datetime) -> tuple[str, str]:
        if revoked_at is not None and revoked_at <= at:
            return REVOKED, "revoked at or before the validation time"
        if revoked_at is not None:
            return GOOD, "revoked only after the validation time"
        if cert.not_valid_after_utc < now:
            raise _Unusable("the certificate has expired since; a current answer does not cover it")
        return GOOD, "not revoked"

    def _ocsp(self, chain: Sequence[x509.Certificate], url: str, at: datetime, now: datetime, fp: str, tried: list[str]) -> Answer:
        from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response

        cert, issuer = chain[0], chain[1]

        def judge(der: bytes) -> tuple[datetime | None, datetime | None, datetime | None]:
            resp = ocsp.load_der_ocsp_response(der)
            if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                raise _Unusable(f"responder answered {resp.response_status.name}")
            others = list(resp.certificates)
            crls = [self._crl_bytes(u, now) for c in others if _needs_crl(c, issuer) for u in crl_urls(c)[:1]]
            context = _context(chain, self.cfg.clock_skew, ocsps=[der], crls=crls, others=others)
            return _judge(verify_ocsp_response(_asn1(cert), _path(chain), context)), resp.this_update_utc, resp.next_update_utc

        path = self.cfg.folder / "ocsp" / f"{hashlib.sha256(f'{_fp(issuer)}:{cert.serial_number}:{url}'.encode()).hexdigest()}.der"
        der, cached, (revoked_at, this_update, next_update) = self._answer(SOURCE_OCSP, url, path, fp, now, lambda: self._fetch_ocsp(url, cert, issuer), judge, tried)
        status, reason = self._status(cert, revoked_at, at, now)
        return Answer(fp, status, f"OCSP: {reason}", SOURCE_OCSP, url, revoked_at, this_update, next_update,
                      hashlib.sha256(der).hexdigest(), cached, der, tuple(tried))  # fmt: skip

    def _crl(self, chain: Sequence[x509.Certificate], url: str, at: datetime, now: datetime, fp: str, tried: list[str]) -> Answer:
        from pyhanko_certvalidator.revinfo.validate_crl import verify_crl

        cert = chain[0]

        def judge(der: bytes) -> tuple[datetime | None, datetime | None, datetime | None]:
            crl = x509.load_der_x509_crl(der)
            context = _context(chain, self.cfg.clock_skew, crls=[der])
            return _judge(verify_crl(_asn1(cert), _path(chain), context)), crl.last_update_utc, crl.next_update_utc

        der, cached, (revoked_at, this_update, next_update) = self._answer(SOURCE_CRL, url, self._crl_path(url), fp, now, lambda: self._fetch_crl(url), judge, tried)
        status, reason = self._status(cert, revoked_at, at, now)
        return Answer(fp, status, f"CRL: {reason}", SOURCE_CRL, url, revoked_at, this_update, next_update,
                      hashlib.sha256(der).hexdigest(), cached, None, tuple(tried))  # fmt: skip

    def _answer(self, kind: str, url: str, path: Path, cert_fp: str, now: datetime, fetch: Any, judge: Any,
                tried: list[str]) -> tuple[bytes, bool, Any]:  # fmt: skip
        """The cached answer when ``judge`` finds it usable (current, verified), else a
        fetched one, kept in the cache when it has a ``nextUpdate``: ``(der, cached,
        judge's result)``. ``_Unusable`` when the fetched one is not usable either.

        What was judged is remembered in this process, for this certificate, until the
        answer's ``nextUpdate``: its signature, responder and status do not change, and
        its freshness is then only a comparison of times (almost every declaration is
        signed with the same seal; judging its answer again for each would cost tens of
        milliseconds)."""
        key = (str(path), cert_fp)
        with self._lock:
            known = self._judged.get(key)
        if known is not None and known[2][1] is not None and known[2][2] is not None and \
                known[2][1] - self.cfg.clock_skew <= now <= known[2][2]:  # fmt: skip
            return known[0], True, known[2]
        for cached in (True, False):
            der = read_bytes(path) if cached else fetch()
            if der is None:
                continue
            try:
                result = judge(der)
            except (_Unusable, ValueError) as exc:
                reason = str(exc) if isinstance(exc, _Unusable) else f"not a readable {kind.upper()} answer ({type(exc).__name__})"
                if cached:
                    tried.append(f"{kind} {url} (cached): {reason}")
                    continue
                raise _Unusable(reason) from None
            if not cached and result[2] is not None:
                write_private(path, der)
            if result[2] is not None:
                with self._lock:
                    if len(self._judged) >= 4096:
                        self._judged.clear()
                    self._judged[key] = (der, cached, result)
            return der, cached, result
        raise _Unusable("no answer")

    # -- fetching --------------------------------------------------------------------------

    def _crl_path(self, url: str) -> Path:
        return self.cfg.folder / "crl" / f"{hashlib.sha256(url.encode()).hexdigest()}.der"

    def _crl_bytes(self, url: str, now: datetime) -> bytes:
        """A CRL for a delegated OCSP responder's certificate (cached while current)."""
        der = read_bytes(self._crl_path(url))
        if der is not None:
            with contextlib.suppress(ValueError):
                crl = x509.load_der_x509_crl(der)
                if crl.next_update_utc is not None and crl.next_update_utc >= now:
                    return der
        der = self._fetch_crl(url)
        with contextlib.suppress(ValueError):
            if x509.load_der_x509_crl(der).next_update_utc is not None:
                write_private(self._crl_path(url), der)
        return der

    def _fetch_ocsp(self, url: str, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # CertID hash: SHA-1, as responders expect
        return self._fetch(url, lambda: self.cfg.fetcher.post(url, request.public_bytes(Encoding.DER), content_type="application/ocsp-request",
                                                              accept="application/ocsp-response"))  # fmt: skip

    def _fetch_crl(self, url: str) -> bytes:
        der = self._fetch(url, lambda: self.cfg.fetcher.get(url, accept="application/pkix-crl, */*"))
        if der.lstrip().startswith(b"-----BEGIN"):
            with contextlib.suppress(ValueError):
                return x509.load_pem_x509_crl(der).public_bytes(Encoding.DER)
        return der

    def _fetch(self, url: str, call: Any) -> bytes:
        with self._lock:
            retry_at = self._retry_at.get(url, 0.0)
        if time.monotonic() < retry_at:
            raise _Unusable(f"failed recently; asked again after {self.cfg.retry_after_s:g} s")
        try:
            data: bytes = call()
        except FetchError as exc:
            with self._lock:
                self._retry_at[url] = time.monotonic() + self.cfg.retry_after_s
            self._record(url, False, str(exc))
            log.warning("revocation responder failed", extra={"event": "revocation.fetch_failed", "url": url, "reason": str(exc)})
            raise _Unusable(str(exc)) from None
        with self._lock:
            self._retry_at.pop(url, None)
        self._record(url, True, "")
        return data

    def _record(self, url: str, ok: bool, reason: str) -> None:
        """Keep the responders' health for monitoring (``responders.json``): written when a
        responder's state changes, and at most once a minute otherwise."""
        with self._lock:
            last = self._recorded.get(url)
            if last is not None and last[0] == ok and time.monotonic() - last[1] < 60:
                return
            self._recorded[url] = (ok, time.monotonic())
        folder = self.cfg.folder
        try:
            with locked(folder):
                health = read_responders(self.cfg.cache)
                now = _iso(datetime.now(UTC))
                entry = health.get(url) or {}
                if ok:
                    entry = {"ok": True, "at": now, "last_ok": now, "reason": "", "failing_since": None}
                else:
                    entry = {"ok": False, "at": now, "last_ok": entry.get("last_ok"), "reason": reason,
                             "failing_since": entry.get("failing_since") if entry.get("ok") is False else now}  # fmt: skip
                health[url] = entry
                write_private(folder / "responders.json", json.dumps(health, indent=1, sort_keys=True).encode())
        except OSError as exc:
            log.warning("revocation responders' health not recorded", extra={"event": "revocation.health_not_recorded", "error": str(exc)})


def read_responders(cache: Path) -> dict[str, dict[str, Any]]:
    """The responders' health: URL → ``ok``, ``at``, ``last_ok``, ``reason``, ``failing_since``."""
    try:
        data = json.loads((cache / "revocation" / "responders.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _needs_crl(responder: x509.Certificate, issuer: x509.Certificate) -> bool:
    """A delegated responder's certificate without ``id-pkix-ocsp-nocheck`` is itself checked."""
    if responder == issuer:
        return False
    try:
        responder.extensions.get_extension_for_oid(ExtensionOID.OCSP_NO_CHECK)
        return False
    except x509.ExtensionNotFound:
        return True
