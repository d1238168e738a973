"""Trusted lists (ETSI TS 119 612) for tests: a national TL with CA/QC services and their
history, a LOTL pointing to national TLs, both signed with an enveloped XAdES signature by
the ``xmlsec1`` tool (:func:`tests.sigtools.xmlsig.sign`), independently of the worker.

Everything is fictitious and generated at test time.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.serialization import Encoding

from tests.sigtools.pki import Issued
from tests.sigtools.xmlsig import qualified_signature, sign

TSL = "http://uri.etsi.org/02231/v2#"
TSLX = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
ADD = "http://uri.etsi.org/02231/v2/additionaltypes#"
XADES_ID = "http://uri.etsi.org/01903/v1.3.2#"
CA_QC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
GRANTED = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
WITHDRAWN = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn"
SVCINFO = "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt"
TSL_TYPE_GENERIC = "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric"
TSL_TYPE_LOTL = "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUlistofthelists"


def _t(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(cert: Issued) -> str:
    return base64.b64encode(cert.cert.public_bytes(Encoding.DER)).decode()


@dataclass
class Service:
    """One CA/QC service: its CA certificate, current status since ``start``, earlier
    states (``history``: (status, since), newest first), purposes (``ForeSignatures``,
    ``ForeSeals``)."""

    name: str
    ca: Issued
    status: str = GRANTED
    start: datetime | None = None
    history: list[tuple[str, datetime]] = field(default_factory=list)
    purposes: tuple[str, ...] = ("ForeSignatures",)
    qualifiers: tuple[str, ...] = ("QCWithQSCD",)
    policy: str = "0.4.0.194112.1.2"


def _extensions(svc: Service) -> str:
    parts = []
    for purpose in svc.purposes:
        parts.append(
            f'<tsl:Extension Critical="true"><tsl:AdditionalServiceInformation>'
            f'<tsl:URI xml:lang="en">{SVCINFO}/{purpose}</tsl:URI></tsl:AdditionalServiceInformation></tsl:Extension>'
        )
    if svc.qualifiers:
        quals = "".join(f'<tslx:Qualifier uri="{SVCINFO}/{q}"/>' for q in svc.qualifiers)
        parts.append(
            f'<tsl:Extension Critical="true"><tslx:Qualifications xmlns:tslx="{TSLX}" xmlns:xades="{XADES_ID}">'
            f"<tslx:QualificationElement><tslx:Qualifiers>{quals}</tslx:Qualifiers>"
            f'<tslx:CriteriaList assert="atLeastOne"><tslx:PolicySet><tslx:PolicyIdentifier>'
            f"<xades:Identifier>{svc.policy}</xades:Identifier></tslx:PolicyIdentifier></tslx:PolicySet>"
            f"</tslx:CriteriaList></tslx:QualificationElement></tslx:Qualifications></tsl:Extension>"
        )
    return f"<tsl:ServiceInformationExtensions>{''.join(parts)}</tsl:ServiceInformationExtensions>" if parts else ""


def _service(svc: Service, default_start: datetime) -> str:
    identity = f"<tsl:ServiceDigitalIdentity><tsl:DigitalId><tsl:X509Certificate>{_b64(svc.ca)}</tsl:X509Certificate></tsl:DigitalId></tsl:ServiceDigitalIdentity>"
    name = f'<tsl:ServiceName><tsl:Name xml:lang="en">{escape(svc.name)}</tsl:Name></tsl:ServiceName>'
    history = "".join(
        f"<tsl:ServiceHistoryInstance><tsl:ServiceTypeIdentifier>{CA_QC}</tsl:ServiceTypeIdentifier>{name}{identity}"
        f"<tsl:ServiceStatus>{status}</tsl:ServiceStatus><tsl:StatusStartingTime>{_t(since)}</tsl:StatusStartingTime>"
        f"{_extensions(svc)}</tsl:ServiceHistoryInstance>"
        for status, since in svc.history
    )
    return (
        f"<tsl:TSPService><tsl:ServiceInformation><tsl:ServiceTypeIdentifier>{CA_QC}</tsl:ServiceTypeIdentifier>{name}{identity}"
        f"<tsl:ServiceStatus>{svc.status}</tsl:ServiceStatus><tsl:StatusStartingTime>{_t(svc.start or default_start)}</tsl:StatusStartingTime>"
        f"{_extensions(svc)}</tsl:ServiceInformation>"
        + (f"<tsl:ServiceHistory>{history}</tsl:ServiceHistory>" if history else "")
        + "</tsl:TSPService>"
    )


def _scheme(tsl_type: str, territory: str, sequence: int, issued: datetime, next_update: datetime, pointers: str = "") -> str:
    return (
        f"<tsl:SchemeInformation><tsl:TSLVersionIdentifier>5</tsl:TSLVersionIdentifier>"
        f"<tsl:TSLSequenceNumber>{sequence}</tsl:TSLSequenceNumber><tsl:TSLType>{tsl_type}</tsl:TSLType>"
        f'<tsl:SchemeOperatorName><tsl:Name xml:lang="en">TEST supervisory body {territory}</tsl:Name></tsl:SchemeOperatorName>'
        f'<tsl:SchemeInformationURI><tsl:URI xml:lang="en">https://tl.example/{territory}/info.html</tsl:URI></tsl:SchemeInformationURI>'
        f"<tsl:SchemeTerritory>{territory}</tsl:SchemeTerritory>{pointers}"
        f"<tsl:ListIssueDateTime>{_t(issued)}</tsl:ListIssueDateTime>"
        f"<tsl:NextUpdate><tsl:dateTime>{_t(next_update)}</tsl:dateTime></tsl:NextUpdate></tsl:SchemeInformation>"
    )


def national_tl(territory: str, sequence: int, issued: datetime, next_update: datetime, services: list[Service]) -> str:
    """A national trusted list (unsigned) with one TSP holding ``services``."""
    tsp = (
        '<tsl:TrustServiceProvider><tsl:TSPInformation><tsl:TSPName><tsl:Name xml:lang="en">TEST - dostawca</tsl:Name></tsl:TSPName>'
        f"</tsl:TSPInformation><tsl:TSPServices>{''.join(_service(s, issued) for s in services)}</tsl:TSPServices></tsl:TrustServiceProvider>"
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<tsl:TrustServiceStatusList xmlns:tsl="{TSL}" '
        f'TSLTag="http://uri.etsi.org/19612/TSLTag" Id="TrustServiceStatusList-{territory}-{sequence}">'
        f"{_scheme(TSL_TYPE_GENERIC, territory, sequence, issued, next_update)}"
        f"<tsl:TrustServiceProviderList>{tsp}</tsl:TrustServiceProviderList></tsl:TrustServiceStatusList>\n"
    )


def lotl(sequence: int, issued: datetime, next_update: datetime, pointers: list[tuple[str, str, Issued]]) -> str:
    """A list of the lists (unsigned) pointing to ``(location, territory, signer)``."""
    items = "".join(
        f"<tsl:OtherTSLPointer><tsl:ServiceDigitalIdentities><tsl:ServiceDigitalIdentity><tsl:DigitalId>"
        f"<tsl:X509Certificate>{_b64(signer)}</tsl:X509Certificate></tsl:DigitalId></tsl:ServiceDigitalIdentity>"
        f"</tsl:ServiceDigitalIdentities><tsl:TSLLocation>{escape(location)}</tsl:TSLLocation><tsl:AdditionalInformation>"
        f"<tsl:OtherInformation><tsl:TSLType>{TSL_TYPE_GENERIC}</tsl:TSLType></tsl:OtherInformation>"
        f"<tsl:OtherInformation><tsl:SchemeTerritory>{territory}</tsl:SchemeTerritory></tsl:OtherInformation>"
        f'<tsl:OtherInformation><ns3:MimeType xmlns:ns3="{ADD}">application/vnd.etsi.tsl+xml</ns3:MimeType></tsl:OtherInformation>'
        f"</tsl:AdditionalInformation></tsl:OtherTSLPointer>"
        for location, territory, signer in pointers
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<tsl:TrustServiceStatusList xmlns:tsl="{TSL}" '
        f'TSLTag="http://uri.etsi.org/19612/TSLTag" Id="LOTL-{sequence}">'
        f"{_scheme(TSL_TYPE_LOTL, 'EU', sequence, issued, next_update, f'<tsl:PointersToOtherTSL>{items}</tsl:PointersToOtherTSL>')}"
        f"</tsl:TrustServiceStatusList>\n"
    )


def sign_list(xml: str, signer: Issued, signed_at: datetime) -> bytes:
    """The list signed by ``signer`` (enveloped XAdES, ``xmlsec1``)."""
    return sign(xml, qualified_signature(signer, signed_at), signer, extra_certs=[])
