"""The QcStatements of a certificate (ETSI EN 319 412-5), read with asn1crypto.

The ASN.1 definitions are pyHanko's (``pyhanko.sign.ades.qualified_asn1``: ``QcStatements``,
``QcStatement`` with its statement-info types, ``QcCertificateType``), decoded by asn1crypto;
they are imported on first use, so a process that never meets a QcStatements extension
does not load them. Malformed input is never an exception: what cannot be read is absent
(a missing QcCompliance is then reported as missing by the caller).

>>> read(bytes.fromhex("300a3008060604008e460101"))
QcStatements(compliance=True, types=None, sscd=False)
>>> read(b"\\x30\\x85garbage")
QcStatements(compliance=False, types=None, sscd=False)
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

QC_STATEMENTS = ObjectIdentifier("1.3.6.1.5.5.7.1.3")
QC_COMPLIANCE = "0.4.0.1862.1.1"
QC_SSCD = "0.4.0.1862.1.4"
QC_TYPE = "0.4.0.1862.1.6"
QC_TYPE_ESIGN = "0.4.0.1862.1.6.1"
QC_TYPE_ESEAL = "0.4.0.1862.1.6.2"
QC_TYPE_WEB = "0.4.0.1862.1.6.3"


@dataclass(frozen=True)
class QcStatements:
    compliance: bool  # QcCompliance: the issuer says the certificate is qualified
    types: frozenset[str] | None  # the QcType OIDs (dotted); None when there is no QcType statement
    sscd: bool  # QcSSCD: the key is in a qualified signature creation device


NONE = QcStatements(False, None, False)


def read(der: bytes) -> QcStatements:
    """The statements of the DER of a QcStatements extension value."""
    from pyhanko.sign.ades import qualified_asn1  # the definitions, with asn1crypto

    try:
        statements = qualified_asn1.QcStatements.load(der)
        compliance = sscd = False
        types: set[str] | None = None
        for statement in statements:
            oid = statement["statement_id"].dotted
            if oid == QC_COMPLIANCE:
                compliance = True
            elif oid == QC_SSCD:
                sscd = True
            elif oid == QC_TYPE:
                info = statement["statement_info"]
                types = (types or set()) | ({t.dotted for t in info} if info.native is not None else set())
        return QcStatements(compliance, frozenset(types) if types is not None else None, sscd)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return NONE


def of(cert: x509.Certificate) -> QcStatements | None:
    """The certificate's QcStatements; ``None`` when it has no such extension."""
    try:
        ext = cert.extensions.get_extension_for_oid(QC_STATEMENTS).value
    except x509.ExtensionNotFound:
        return None
    raw = getattr(ext, "value", None)
    return read(raw) if isinstance(raw, bytes) else NONE
