"""The Profil Zaufany seal, pinned by its public key (``spec/signatures.md``, "The Profil
Zaufany seal is pinned by its key").

A configured seal certificate (``signatures.trusted_profile_seals``) pins the seal by the
SHA-256 of its ``SubjectPublicKeyInfo``. A certificate with the seal's subject name but
another key — which any CA under the trust anchors could issue — is not the seal. A
certificate with the same key is (a certificate re-issued for the same key), as long as
it also chains to a trust anchor (checked by the path validation, like every signer's).
When the ministry renews the seal with a new key, the office adds the new certificate to
the list; the old one stays for older documents.

>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> key = ec.generate_private_key(ec.SECP256R1())
>>> len(spki_sha256(key.public_key()))
64
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# how a certificate matched a pin (evidence ``pinned_by``)
BY_CERTIFICATE = "certificate"  # the configured certificate itself
BY_KEY = "key"  # another certificate of the same public key


def spki_sha256(public_key: Any) -> str:
    """SHA-256 (hex) of a public key's DER ``SubjectPublicKeyInfo``."""
    return hashlib.sha256(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _certificate_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


# the digests of the few certificates every document carries (the seal, its CAs), kept:
# at most this many, and only certificates of ordinary size
_KNOWN: dict[x509.Certificate, tuple[str, str]] = {}
_KNOWN_MAX = 256
_KNOWN_MAX_DER = 16 * 1024


def _digests(cert: x509.Certificate) -> tuple[str, str]:
    """(SPKI digest, certificate digest) of ``cert``; ``ValueError`` for an unreadable key."""
    known = _KNOWN.get(cert)
    if known is not None:
        return known
    try:
        known = (spki_sha256(cert.public_key()), _certificate_sha256(cert))
    except (UnsupportedAlgorithm, TypeError) as exc:
        raise ValueError("unreadable public key") from exc
    if len(cert.tbs_certificate_bytes) <= _KNOWN_MAX_DER:
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        _KNOWN[cert] = known
    return known


@dataclass(frozen=True)
class SealPins:
    """The pins of the configured seal certificates: their SPKI digests (and their own
    digests, to tell the configured certificate from another one of the same key)."""

    keys: frozenset[str] = frozenset()
    certificates: frozenset[str] = frozenset()

    @classmethod
    def of(cls, seals: Iterable[x509.Certificate]) -> SealPins:
        seals = list(seals)
        return cls(frozenset(spki_sha256(s.public_key()) for s in seals), frozenset(_certificate_sha256(s) for s in seals))

    def pinned_by(self, cert: x509.Certificate) -> str | None:
        """:data:`BY_CERTIFICATE` or :data:`BY_KEY` when ``cert`` carries a pinned key,
        else ``None`` (whatever its subject says)."""
        if not self.keys:
            return None
        try:
            key, whole = _digests(cert)
        except ValueError:  # a key cryptography cannot read is no pinned key
            return None
        if key not in self.keys:
            return None
        return BY_CERTIFICATE if whole in self.certificates else BY_KEY


__all__ = ["BY_CERTIFICATE", "BY_KEY", "SealPins", "spki_sha256"]
