"""A throwaway test PKI generated with ``cryptography``: trusted root, the Profil Zaufany
seal under a seal CA, a qualified CA for persons, an untrusted root, an expired person,
a personal-signature (non-qualified) person, and a qualified company seal; and the
certificates that must not sign a declaration: a TLS server certificate and an e-mail
encryption one from a trusted CA, a "qualified" one without QcStatements, a person's
certificate of QcType eseal.

Everything here is fictitious and generated at test time; nothing is trusted outside tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

QC_STATEMENTS = ObjectIdentifier("1.3.6.1.5.5.7.1.3")
# SEQUENCE { SEQUENCE { OID 0.4.0.1862.1.1 (QcCompliance) } }
QC_COMPLIANCE_DER = bytes.fromhex("300a3008060604008e460101")
QCP_N_QSCD = ObjectIdentifier("0.4.0.194112.1.2")
QCP_L = ObjectIdentifier("0.4.0.194112.1.3")
QC_TYPE_ESIGN = "0.4.0.1862.1.6.1"
QC_TYPE_ESEAL = "0.4.0.1862.1.6.2"
QC_TYPE_WEB = "0.4.0.1862.1.6.3"
EKU_SERVER_AUTH = ObjectIdentifier("1.3.6.1.5.5.7.3.1")
EKU_CLIENT_AUTH = ObjectIdentifier("1.3.6.1.5.5.7.3.2")
EKU_EMAIL = ObjectIdentifier("1.3.6.1.5.5.7.3.4")
EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
EKU_TIME_STAMPING = ObjectIdentifier("1.3.6.1.5.5.7.3.8")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for n in parts[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out.extend(reversed(chunk))
    return _der(0x06, bytes(out))


def qc_statements(*, compliance: bool = True, types: tuple[str, ...] | None = None) -> bytes:
    """The DER of a QCStatements extension value (ETSI EN 319 412-5): QcCompliance and,
    when ``types`` is given, a QcType statement listing them."""
    statements = b""
    if compliance:
        statements += _der(0x30, _der_oid("0.4.0.1862.1.1"))
    if types is not None:
        statements += _der(0x30, _der_oid("0.4.0.1862.1.6") + _der(0x30, b"".join(_der_oid(t) for t in types)))
    return _der(0x30, statements)


def utc(y: int, m: int = 1, d: int = 1) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def make_pesel(born: date, serial: int, female: bool) -> str:
    """A fictitious PESEL with a valid checksum.

    >>> make_pesel(date(1980, 5, 17), 123, False)[:6]
    '800517'
    """
    month = born.month + {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}[born.year // 100 * 100]
    s = serial % 1000 * 10 + (0 if female else 1)
    digits = f"{born.year % 100:02d}{month:02d}{born.day:02d}{s:04d}"
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    check = (10 - sum(int(c) * w for c, w in zip(digits, weights, strict=False)) % 10) % 10
    return digits + str(check)


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any  # the private key (RSA unless issued with another)
    issuer: Issued | None = field(default=None, repr=False)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def chain(self) -> list[Issued]:
        """This certificate and its issuers up to (excluding) the self-signed root."""
        out: list[Issued] = []
        node: Issued | None = self
        while node is not None and node.issuer is not None:
            out.append(node)
            node = node.issuer
        return out


def _name(**attrs: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OI": NameOID.ORGANIZATION_IDENTIFIER,
        "GN": NameOID.GIVEN_NAME,
        "SN": NameOID.SURNAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
        "CN": NameOID.COMMON_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    key_usage: str,
    qualified: bool = False,
    policy: ObjectIdentifier | None = None,
    qc: bytes | None = None,
    eku: list[ObjectIdentifier] | None = None,
    eku_critical: bool = False,
    key: Any = None,
    extensions: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
) -> Issued:
    """Issue a certificate (self-signed when ``issuer`` is None). ``key_usage`` is
    ``"ca"``, ``"nonrep"`` (nonRepudiation only, as qualified persons), ``"seal"``,
    ``"encipher"`` (keyEncipherment only) or ``"tls"`` (digitalSignature and
    keyEncipherment). ``qualified`` adds QcStatements with QcCompliance only; ``qc`` gives
    the QcStatements value instead; ``eku`` adds an ExtendedKeyUsage; ``extensions``: more
    (extension, critical) pairs (e.g. where its OCSP responder and CRL are). ``key``: the
    subject's private key (default: a new RSA-2048 one)."""
    key = key if key is not None else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None if ca and issuer is None else (0 if ca else None)), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    ku = dict.fromkeys(
        ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    if key_usage == "ca":
        ku.update(key_cert_sign=True, crl_sign=True)
    elif key_usage == "nonrep":
        ku.update(content_commitment=True)
    elif key_usage == "seal":
        ku.update(digital_signature=True, content_commitment=True)
    elif key_usage == "encipher":
        ku.update(key_encipherment=True)
    elif key_usage == "tls":
        ku.update(digital_signature=True, key_encipherment=True)
    builder = builder.add_extension(x509.KeyUsage(**ku), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    if policy is not None:
        builder = builder.add_extension(x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False)
    if qc is not None or qualified:
        builder = builder.add_extension(x509.UnrecognizedExtension(QC_STATEMENTS, qc or QC_COMPLIANCE_DER), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    cert = builder.sign(signer_key, hashes.SHA256())
    return Issued(cert, key, issuer)


@dataclass
class Person:
    first: str
    last: str
    pesel: str
    born: date


ALICJA = Person("Alicja", "Wróblewska", make_pesel(date(1984, 2, 29), 412, True), date(1984, 2, 29))
BOGDAN = Person("Bogdan", "Zięba", make_pesel(date(1962, 11, 3), 77, False), date(1962, 11, 3))
CELINA = Person("Celina", "Kuś-Majewska", make_pesel(date(2001, 7, 15), 905, True), date(2001, 7, 15))


class TestPKI:
    """The whole test PKI (keys generated once per test session)."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.root = issue(
            _name(C="PL", O="TEST - lista zaufanych (testy)", CN="TEST Root CA ebok-worker"),
            None, not_before=utc(2020), not_after=utc(2045), ca=True, key_usage="ca",
        )  # fmt: skip
        self.seal_ca = issue(
            _name(C="PL", O="TEST - dostawca", CN="TEST CA pieczęci"),
            self.root, not_before=utc(2020), not_after=utc(2040), ca=True, key_usage="ca",
        )  # fmt: skip
        self.qualified_ca = issue(
            _name(C="PL", O="TEST - dostawca", CN="TEST Kwalifikowane CA"),
            self.root, not_before=utc(2020), not_after=utc(2040), ca=True, key_usage="ca",
        )  # fmt: skip
        self.personal_ca = issue(
            _name(C="PL", O="TEST - dowody osobiste", CN="TEST CA podpisu osobistego"),
            self.root, not_before=utc(2020), not_after=utc(2040), ca=True, key_usage="ca",
        )  # fmt: skip
        self.seal = issue(
            _name(C="PL", O="Ministerstwo TEST", OI="VATPL-0000000000", CN="Minister TEST - pieczęć podpisu zaufanego"),
            self.seal_ca, not_before=utc(2022), not_after=utc(2032), ca=False, key_usage="seal",
            qualified=True, policy=QCP_L,
        )  # fmt: skip
        self.company_seal = issue(
            _name(C="PL", O="Firma Testowa sp. z o.o.", OI="VATPL-1111111111", CN="Firma Testowa - pieczęć"),
            self.seal_ca, not_before=utc(2022), not_after=utc(2032), ca=False, key_usage="seal",
            qualified=True, policy=QCP_L,
        )  # fmt: skip
        self.alicja = self.person(ALICJA)
        self.bogdan_pesel_colon = self.person(BOGDAN, serial_format="PESEL:{}")
        self.celina_personal = self.person(CELINA, qualified=False, issuer=self.personal_ca)
        self.expired = self.person(BOGDAN, not_before=utc(2019), not_after=utc(2021, 12, 31))
        self.encipher_only = self.person(ALICJA, key_usage="encipher")
        # not for signing declarations, though issued by a trusted CA
        self.tls_server = issue(
            _name(C="PL", O="Firma Testowa sp. z o.o.", CN="www.firma-testowa.example"),
            self.personal_ca, not_before=utc(2022), not_after=utc(2030), ca=False, key_usage="tls",
            eku=[EKU_SERVER_AUTH, EKU_CLIENT_AUTH],
        )  # fmt: skip
        self.email_encryption = self.person(ALICJA, qualified=False, issuer=self.personal_ca, key_usage="encipher", eku=[EKU_EMAIL])
        self.no_qc_statements = self.person(ALICJA, qualified=False, policy=QCP_N_QSCD)  # "qualified" by policy only
        self.person_eseal = self.person(ALICJA, qc=qc_statements(types=(QC_TYPE_ESEAL,)))
        self.person_esign = self.person(ALICJA, qc=qc_statements(types=(QC_TYPE_ESIGN,)), eku=[EKU_DOCUMENT_SIGNING])
        self.company_eseal = issue(
            _name(C="PL", O="Firma Testowa sp. z o.o.", OI="VATPL-1111111111", CN="Firma Testowa - pieczęć"),
            self.seal_ca, not_before=utc(2022), not_after=utc(2032), ca=False, key_usage="seal",
            qc=qc_statements(types=(QC_TYPE_ESEAL,)), policy=QCP_L,
        )  # fmt: skip
        self.company_esign = issue(
            _name(C="PL", O="Firma Testowa sp. z o.o.", OI="VATPL-1111111111", CN="Firma Testowa - pieczęć"),
            self.seal_ca, not_before=utc(2022), not_after=utc(2032), ca=False, key_usage="seal",
            qc=qc_statements(types=(QC_TYPE_ESIGN,)), policy=QCP_L,
        )  # fmt: skip
        self.person_web_only = self.person(ALICJA, qc=qc_statements(types=(QC_TYPE_WEB,)))
        self.untrusted_root = issue(
            _name(C="PL", O="TEST - nieznany", CN="TEST Root CA niezaufane"),
            None, not_before=utc(2020), not_after=utc(2045), ca=True, key_usage="ca",
        )  # fmt: skip
        self.untrusted_ca = issue(
            _name(C="PL", O="TEST - dostawca", CN="TEST Kwalifikowane CA"),  # same name as the trusted one
            self.untrusted_root, not_before=utc(2020), not_after=utc(2040), ca=True, key_usage="ca",
        )  # fmt: skip
        self.untrusted_person = self.person(ALICJA, issuer=self.untrusted_ca)
        self.fake_seal = issue(  # the seal's name, but issued by the untrusted root
            self.seal.cert.subject,
            self.untrusted_ca, not_before=utc(2022), not_after=utc(2032), ca=False, key_usage="seal",
            qualified=True,
        )  # fmt: skip
        # a time-stamping authority under the trusted root, and one under the untrusted root
        self.tsa = issue(
            _name(C="PL", O="TEST - znaczniki czasu", CN="TEST TSA"),
            self.root, not_before=utc(2020), not_after=utc(2045), ca=False, key_usage="seal",
            eku=[EKU_TIME_STAMPING], eku_critical=True,
        )  # fmt: skip
        self.untrusted_tsa = issue(
            _name(C="PL", O="TEST - znaczniki czasu", CN="TEST TSA"),
            self.untrusted_root, not_before=utc(2020), not_after=utc(2045), ca=False, key_usage="seal",
            eku=[EKU_TIME_STAMPING], eku_critical=True,
        )  # fmt: skip

    def person(
        self,
        who: Person,
        *,
        serial_format: str = "PNOPL-{}",
        qualified: bool = True,
        issuer: Issued | None = None,
        not_before: datetime = utc(2022),  # noqa: B008  (a datetime is immutable)
        not_after: datetime = utc(2030, 12, 31),  # noqa: B008
        key_usage: str = "nonrep",
        policy: ObjectIdentifier | None = None,
        qc: bytes | None = None,
        eku: list[ObjectIdentifier] | None = None,
    ) -> Issued:
        return issue(
            _name(C="PL", GN=who.first, SN=who.last, serialNumber=serial_format.format(who.pesel), CN=f"{who.first} {who.last}"),
            issuer or self.qualified_ca,
            not_before=not_before, not_after=not_after, ca=False, key_usage=key_usage,
            qualified=qualified, policy=policy or (QCP_N_QSCD if qualified else None), qc=qc, eku=eku,
        )  # fmt: skip

    def write_trust(self, folder: Path) -> tuple[Path, Path]:
        """Write ``anchors.pem`` (the root) and ``pz-seal.pem``; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        anchors = folder / "anchors.pem"
        anchors.write_bytes(self.root.cert_pem)
        seal = folder / "pz-seal.pem"
        seal.write_bytes(self.seal.cert_pem)
        return anchors, seal

    def crl(
        self, issuer: Issued, revoked: list[tuple[Issued, datetime]], *, last: datetime, next: datetime | None
    ) -> x509.CertificateRevocationList:
        builder = x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject).last_update(last)
        builder = builder.next_update(next or utc(2040))
        for cert, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.cert.serial_number).revocation_date(when).build()
            )
        return builder.sign(issuer.key, hashes.SHA256())
