"""Which keys and algorithms a signature may rest on (``spec/signatures.md``, "Keys and
algorithms"; ETSI TS 119 312, SOG-IS).

A signature is only as strong as the weakest key and hash under it, so the same rule holds
for the signer's certificate and for every CA certificate of its path:

* keys: RSA of at least :data:`MIN_RSA_BITS` bits, or an elliptic curve of at least 256
  bits from :data:`EC_CURVES` (P-256, P-384, P-521 and the brainpool curves of those
  sizes). DSA, shorter RSA or EC keys and any other kind of key are refused;
* the certificate's own signature made with SHA-1 or MD5 (or a hash that cannot be
  named) is refused — except the self-signature of the trust anchor at the end of the
  path: an anchor is trusted because it is configured, not because of its self-signature
  (its key is still checked: it signs the next certificate).

:func:`path_problems` is applied to a path as built by the chain validation (leaf first,
anchor last), whichever validator built it; :func:`certificate_problems` to a single
certificate (the signer's, before its path is built: a cheap refusal).
:func:`signature_method_problem` and :func:`digest_problem` judge the XML-DSig algorithms
of the signature itself (``SignatureMethod``, every ``DigestMethod``). Every problem names
the key or algorithm, in English for the evidence (:attr:`Problem.reason`) and in Polish
for the finding (:attr:`Problem.message`); neither holds personal data (a CA is named by
its common name, the signer's certificate only as "the signer's certificate").

>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> key_problem(ec.generate_private_key(ec.SECP256R1()).public_key()) is None
True
>>> key_problem(ec.generate_private_key(ec.SECP224R1()).public_key())
'EC key on curve secp224r1 (224 bits)'
>>> digest_problem("http://www.w3.org/2000/09/xmldsig#sha1")
'digest SHA-1'
>>> signature_method_problem("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256") is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID

MIN_RSA_BITS = 2048
#: accepted elliptic curves (cryptography's names) and their sizes in bits
EC_CURVES = {
    "secp256r1": 256, "secp384r1": 384, "secp521r1": 521,
    "brainpoolP256r1": 256, "brainpoolP384r1": 384, "brainpoolP512r1": 512,
}  # fmt: skip
WEAK_HASHES = frozenset({"sha1", "md5", "md4", "md2"})

_DSIG = "http://www.w3.org/2000/09/xmldsig#"
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_ENC = "http://www.w3.org/2001/04/xmlenc#"
_DSIG11 = "http://www.w3.org/2009/xmldsig11#"
_MGF1 = "http://www.w3.org/2007/05/xmldsig-more#"
_MORE21 = "http://www.w3.org/2021/04/xmldsig-more#"
#: XML-DSig signature methods accepted: RSA (PKCS#1 v1.5 and PSS) and ECDSA with SHA-2 or SHA-3
SIGNATURE_METHODS = frozenset({
    _MORE + "rsa-sha224", _MORE + "rsa-sha256", _MORE + "rsa-sha384", _MORE + "rsa-sha512",
    _MORE + "ecdsa-sha224", _MORE + "ecdsa-sha256", _MORE + "ecdsa-sha384", _MORE + "ecdsa-sha512",
    _MGF1 + "sha224-rsa-MGF1", _MGF1 + "sha256-rsa-MGF1", _MGF1 + "sha384-rsa-MGF1", _MGF1 + "sha512-rsa-MGF1",
    _MGF1 + "sha3-224-rsa-MGF1", _MGF1 + "sha3-256-rsa-MGF1", _MGF1 + "sha3-384-rsa-MGF1", _MGF1 + "sha3-512-rsa-MGF1",
    _MORE21 + "ecdsa-sha3-224", _MORE21 + "ecdsa-sha3-256", _MORE21 + "ecdsa-sha3-384", _MORE21 + "ecdsa-sha3-512",
})  # fmt: skip
#: XML-DSig digest methods accepted: SHA-2 and SHA-3
DIGEST_METHODS = frozenset({
    _MORE + "sha224", _ENC + "sha256", _MORE + "sha384", _ENC + "sha512",
    _MGF1 + "sha3-224", _MGF1 + "sha3-256", _MGF1 + "sha3-384", _MGF1 + "sha3-512",
})  # fmt: skip
_NAMED = {
    _DSIG + "sha1": "SHA-1", _MORE + "md5": "MD5", _DSIG + "rsa-sha1": "RSA-SHA1", _DSIG + "dsa-sha1": "DSA-SHA1",
    _DSIG11 + "dsa-sha256": "DSA-SHA256", _MORE + "rsa-md5": "RSA-MD5", _MORE + "ecdsa-sha1": "ECDSA-SHA1",
    _DSIG + "hmac-sha1": "HMAC-SHA1", _MORE + "hmac-sha256": "HMAC-SHA256", _MORE + "hmac-sha384": "HMAC-SHA384",
    _MORE + "hmac-sha512": "HMAC-SHA512", _MORE + "hmac-sha224": "HMAC-SHA224", _MGF1 + "sha1-rsa-MGF1": "RSA-PSS-SHA1",
}  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """A key or algorithm below the policy: ``reason`` (English, for the evidence) and
    ``message`` (Polish, for the ``SIGNATURE_UNTRUSTED`` finding)."""

    reason: str
    message: str


def key_problem(key: Any) -> str | None:
    """What is wrong with a public key (English), or ``None`` when it is accepted."""
    if isinstance(key, rsa.RSAPublicKey):
        return None if key.key_size >= MIN_RSA_BITS else f"RSA key of {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        name = key.curve.name
        return None if name in EC_CURVES else f"EC key on curve {name} ({key.curve.key_size} bits)"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA key of {key.key_size} bits"
    return f"{type(key).__name__.removeprefix('_').removesuffix('PublicKey') or 'unknown'} key"


def _key_text(key: Any) -> str:
    """The key described in Polish, for a message."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"klucz RSA o długości {key.key_size} bitów (wymagane co najmniej {MIN_RSA_BITS})"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"klucz na krzywej eliptycznej {key.curve.name} ({key.curve.key_size} bitów; wymagane P-256, P-384, P-521 lub brainpool co najmniej 256-bitowe)"
    if isinstance(key, dsa.DSAPublicKey):
        return f"klucz DSA ({key.key_size} bitów; algorytm DSA nie jest dopuszczony)"
    return "klucz niedopuszczonego rodzaju"


def _hash_name(cert: x509.Certificate) -> str | None:
    """The hash of the certificate's own signature (``None``: none named, e.g. Ed25519)."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algorithm.name if algorithm is not None else None


def _who(cert: x509.Certificate, position: int) -> tuple[str, str]:
    """(English, Polish) naming the certificate: the signer's, or a CA by its common name."""
    if position == 0:
        return "the signer's certificate", "certyfikat podpisującego"
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value)[:100] if names else cert.subject.rfc4514_string()[:100]
    return f"CA certificate {cn!r}", f"certyfikat wystawcy „{cn}”"


def certificate_problems(cert: x509.Certificate, *, position: int = 0, anchor: bool = False) -> list[Problem]:
    """The policy's problems with one certificate: ``position`` 0 is the signer's, higher
    ones CAs of its path; ``anchor``: the configured trust anchor (its self-signature is
    not judged)."""
    who_en, who_pl = _who(cert, position)
    problems: list[Problem] = []
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        problems.append(Problem(f"{who_en}: unreadable or unsupported public key", f"{who_pl} ma klucz niedopuszczonego rodzaju"))
    else:
        weak = key_problem(key)
        if weak is not None:
            problems.append(Problem(f"{who_en}: {weak}", f"{who_pl} ma {_key_text(key)}"))
    if not anchor:
        hash_name = _hash_name(cert)
        if hash_name is not None and hash_name.lower() in WEAK_HASHES | {"unknown"}:
            shown = {"sha1": "SHA-1", "md5": "MD5", "md4": "MD4", "md2": "MD2"}.get(hash_name.lower(), "nieznanym skrótem")
            problems.append(Problem(f"{who_en}: signed with {hash_name.upper()}", f"{who_pl} został podpisany algorytmem z {shown}"))
    return problems


def path_problems(path: Sequence[x509.Certificate]) -> list[Problem]:
    """The policy's problems with a certificate path, leaf first and the trust anchor
    last (as the chain validation returns it); empty when every certificate passes."""
    last = len(path) - 1
    return [p for i, cert in enumerate(path) for p in certificate_problems(cert, position=i, anchor=i == last and i > 0)]


def signature_method_problem(uri: str | None) -> str | None:
    """What is wrong with an XML-DSig ``SignatureMethod`` (English), or ``None``."""
    if uri in SIGNATURE_METHODS:
        return None
    return f"signature method {_NAMED.get(uri or '', uri or 'none')}"


def digest_problem(uri: str | None) -> str | None:
    """What is wrong with an XML-DSig ``DigestMethod`` (English), or ``None``."""
    if uri in DIGEST_METHODS:
        return None
    return f"digest {_NAMED.get(uri or '', uri or 'none')}"


def algorithm_message(problem: str) -> str:
    """The Polish words for a :func:`signature_method_problem` / :func:`digest_problem`.

    >>> algorithm_message("digest SHA-1")
    'skrót w podpisie obliczono niedopuszczonym algorytmem SHA-1'
    """
    if problem.startswith("signature method "):
        return f"podpis złożono niedopuszczonym algorytmem {problem.removeprefix('signature method ')[:120]}"
    return f"skrót w podpisie obliczono niedopuszczonym algorytmem {problem.removeprefix('digest ')[:120]}"


__all__ = [
    "DIGEST_METHODS",
    "EC_CURVES",
    "MIN_RSA_BITS",
    "Problem",
    "SIGNATURE_METHODS",
    "algorithm_message",
    "certificate_problems",
    "digest_problem",
    "key_problem",
    "path_problems",
    "signature_method_problem",
]
