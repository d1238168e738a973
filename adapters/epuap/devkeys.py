"""A development PKI for the ePUAP double: never for production.

``ensure(dir)`` creates, once, in ``dir``:

- ``system.pem`` / ``system.key`` — a self-signed stand-in for the union's WS-Security system
  certificate; the key is encrypted with :data:`DEV_KEY_PASSWORD` (also written to
  ``system.key.password``), so the worker's password-from-environment path is exercised;
- ``epuap-sign.pem`` / ``epuap-sign.key`` — the double's response-signing certificate
  (subject ``ePUAP-INT-WS-Sign (DEV)``), which the worker pins as ``response_certificate``.

Existing, readable files are kept (idempotent); a missing or unreadable pair is regenerated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .wssec import SigningIdentity, load_identity

DEV_KEY_PASSWORD = "ebok-dev-only"  # development PKI only; documented in the README
VALIDITY = timedelta(days=3650)


@dataclass(frozen=True)
class DevKeys:
    """Paths of the development key material."""

    directory: Path
    system_certificate: Path
    system_key: Path
    system_key_password: str
    double_certificate: Path
    double_key: Path

    def system_identity(self) -> SigningIdentity:
        return load_identity(self.system_certificate, self.system_key, self.system_key_password)

    def double_identity(self) -> SigningIdentity:
        return load_identity(self.double_certificate, self.double_key, None)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _generate(cert_path: Path, key_path: Path, common_name: str, organization: str, password: str | None) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _usable(cert_path: Path, key_path: Path, password: str | None) -> bool:
    try:
        identity = load_identity(cert_path, key_path, password)
    except (OSError, ValueError, TypeError):
        return False
    return identity.certificate.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1)


def ensure(directory: Path) -> DevKeys:
    """Create the development PKI in ``directory`` unless it is already there; return its paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    keys = DevKeys(
        directory=directory,
        system_certificate=directory / "system.pem",
        system_key=directory / "system.key",
        system_key_password=DEV_KEY_PASSWORD,
        double_certificate=directory / "epuap-sign.pem",
        double_key=directory / "epuap-sign.key",
    )
    if not _usable(keys.system_certificate, keys.system_key, DEV_KEY_PASSWORD):
        _generate(keys.system_certificate, keys.system_key, "ebok-worker system (DEV)", "Czysty Region (DEV)", DEV_KEY_PASSWORD)
    if not _usable(keys.double_certificate, keys.double_key, None):
        _generate(keys.double_certificate, keys.double_key, "ePUAP-INT-WS-Sign (DEV)", "ePUAP double (DEV)", None)
    password_file = directory / "system.key.password"
    if not password_file.exists():
        _write(password_file, (DEV_KEY_PASSWORD + "\n").encode(), 0o600)
    return keys
