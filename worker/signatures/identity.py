"""Who signed, and when: read from verified data only.

For Profil Zaufany the citizen's identity is inside the **verified**
``xades:SignedProperties`` (``SignedSignatureProperties/SignerRole/ClaimedRoles/ClaimedRole``),
in one of two formats:

* new, ``pz:EPSignature`` (``http://crd.gov.pl/xml/schematy/podpis_zaufany/``):
  ``NaturalPerson/FirstName``, ``CurrentFamilyName``, ``PersonalIdentifier`` (the PESEL);
* old, ``ppZP:PodpisZP`` (``http://crd.gov.pl/xml/schematy/ppzp/``):
  ``DaneZP/DaneZPOsobyFizycznej/Imie``, ``Nazwisko``, ``PESEL`` (the ``osoba`` namespace),
  with ``IdKontaUzytkownikaEpuap`` under ``DaneZPOsobyFizycznej`` or under ``DanePodpisu``.

For qualified and personal signatures it is the certificate subject: ``givenName`` and
``surname`` (else ``commonName``), the PESEL from ``serialNumber`` ``PNOPL-<PESEL>``
(ETSI EN 319 412-1) or ``PESEL:<PESEL>`` / ``PESEL-<PESEL>``.

Names are shown as people write them: an all-capitals name (as Profil Zaufany gives it)
is put in title case, anything else is kept.

>>> display_name("KLEMENTYNA", "MIKA")
'Klementyna Mika'
>>> display_name("JAN MARIA", "KOWALSKA-NOWAK")
'Jan Maria Kowalska-Nowak'
>>> display_name("Łucja", "de Lubicz")
'Łucja de Lubicz'
>>> pesel_from_serial_number("PNOPL-01272345518")
'01272345518'
>>> pesel_from_serial_number("PESEL:01272345518")
'01272345518'
>>> pesel_from_serial_number("IDCPL-ABC123456") is None
True
>>> parse_xs_datetime("2017-09-21T18:04:25.5839467+02:00").isoformat()
'2017-09-21T18:04:25.583946+02:00'
>>> parse_xs_datetime("2025-05-12T08:08:00Z").isoformat()
'2025-05-12T08:08:00+00:00'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from stdnum.pl import pesel as stdnum_pesel

from worker.domain.clock import WARSAW
from worker.domain.xmlvalue import string_value

XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
PZ_NS = "http://crd.gov.pl/xml/schematy/podpis_zaufany/"
PPZP_NS = "http://crd.gov.pl/xml/schematy/ppzp/"

SOURCE_EP_SIGNATURE = "pz:EPSignature"
SOURCE_PODPIS_ZP = "ppZP:PodpisZP"
SOURCE_CERTIFICATE = "certificate"


_NS = {"xades": XADES_NS, "pz": PZ_NS, "ppZP": PPZP_NS}


@dataclass(frozen=True)
class SignerIdentity:
    """The signer as the verified data name them. ``pesel`` is ``None`` when absent or
    when its checksum is wrong (``pesel_claimed`` keeps what was written, for the record)."""

    first_name: str | None
    last_name: str | None
    pesel: str | None
    source: str
    pesel_claimed: str | None = None
    epuap_account: str | None = None  # ppZP IdKontaUzytkownikaEpuap
    identity_issuer: str | None = None  # pz SignatureData/IdentityIssuer
    common_name: str | None = None  # certificate CN (when no given name / surname)

    @property
    def name(self) -> str | None:
        if self.first_name or self.last_name:
            return display_name(self.first_name or "", self.last_name or "")
        return self.common_name


def _display_part(part: str) -> str:
    part = " ".join(part.split())
    return part.title() if part.isupper() else part


def display_name(first: str, last: str) -> str:
    """``first last`` with all-capitals parts in title case."""
    return " ".join(p for p in (_display_part(first), _display_part(last)) if p)


def valid_pesel(value: str | None) -> str | None:
    """``value`` when it is an 11-digit PESEL with a valid checksum, else ``None``."""
    if value and re.fullmatch(r"\d{11}", value) and stdnum_pesel.is_valid(value):
        return value
    return None


def pesel_from_serial_number(value: str | None) -> str | None:
    """The 11 digits of a ``PNOPL-…`` / ``PESEL:…`` / ``PESEL-…`` subject serialNumber."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(?:PNOPL-|PESEL\s*[:\-]\s*)(\d{11})\s*", value, flags=re.IGNORECASE)
    return m.group(1) if m else None


def parse_xs_datetime(text: str) -> datetime:
    """An ``xs:dateTime`` as an aware datetime. Fractions beyond microseconds are cut;
    a time without a zone is taken as Polish local time. ``ValueError`` when unreadable."""
    s = text.strip()
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?", s)
    if not m:
        raise ValueError("not an xs:dateTime")
    frac = (m.group(2) or "")[:7]
    zone = m.group(3) or ""
    dt = datetime.fromisoformat(m.group(1) + frac + ("+00:00" if zone == "Z" else zone))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=WARSAW)


def _text(el: Any) -> str | None:
    value = string_value(el)
    if value is None:
        return None
    t = " ".join(value.split())
    return t or None


def signed_signature_properties(signed_properties: Any) -> Any:
    return signed_properties.find("xades:SignedSignatureProperties", namespaces=_NS)


def signing_time(signed_properties: Any) -> datetime | None:
    """``SigningTime`` of the verified ``SignedProperties`` (``None`` when absent).
    ``ValueError`` when present but unreadable."""
    ssp = signed_signature_properties(signed_properties)
    el = ssp.find("xades:SigningTime", namespaces=_NS) if ssp is not None else None
    text = _text(el)
    return parse_xs_datetime(text) if text else None


def _local_children(el: Any, name: str) -> list[Any]:
    return [c for c in el if isinstance(c.tag, str) and c.tag.rsplit("}", 1)[-1] == name]


def _single(base: Any, path: str) -> tuple[str | None, bool]:
    """The text of the one element at ``path`` under ``base`` and whether it is unambiguous
    (``False`` when the element is there more than once: no value is chosen among them)."""
    if base is None:
        return None, True
    found = base.findall(path, namespaces=_NS)
    if len(found) > 1:
        return None, False
    return (_text(found[0]) if found else None), True


def _identity(first: str | None, last: str | None, claimed: str | None, source: str, **extra: Any) -> SignerIdentity:
    """An identity as written, its PESEL kept only when valid (``pesel_claimed`` has it as written)."""
    return SignerIdentity(first_name=first, last_name=last, pesel=valid_pesel(claimed), pesel_claimed=claimed, source=source, **extra)


def _from_ep_signature(el: Any) -> list[SignerIdentity]:
    """One identity per ``NaturalPerson`` (a well-formed ``EPSignature`` has exactly one);
    a name or identifier given twice within it makes that identity unreadable."""
    people = el.findall("pz:NaturalPerson", namespaces=_NS) or [None]
    data = el.findall("pz:SignatureData", namespaces=_NS)
    issuer, _ = _single(data[0], "pz:IdentityIssuer") if len(data) == 1 else (None, True)
    found = []
    for person in people:
        first, ok_first = _single(person, "pz:FirstName")
        last, ok_last = _single(person, "pz:CurrentFamilyName")
        claimed, ok_pesel = _single(person, "pz:PersonalIdentifier")
        if not (ok_first and ok_last and ok_pesel):
            found.append(SignerIdentity(None, None, None, SOURCE_EP_SIGNATURE))
        else:
            found.append(_identity(first, last, claimed, SOURCE_EP_SIGNATURE, identity_issuer=issuer))
    return found


def _from_podpis_zp(el: Any) -> list[SignerIdentity]:
    """One identity per ``DaneZP/DaneZPOsobyFizycznej`` (a well-formed ``PodpisZP`` has
    exactly one). Several ``Imie`` are a person's given names, several ``Nazwisko`` the
    parts of a two-part surname; two PESELs make the identity unreadable."""
    people = el.findall("ppZP:DaneZP/ppZP:DaneZPOsobyFizycznej", namespaces=_NS)
    if not people:
        return [SignerIdentity(None, None, None, SOURCE_PODPIS_ZP)]
    found = []
    for person in people:
        first = " ".join(t for t in (_text(e) for e in _local_children(person, "Imie")) if t) or None
        last = "-".join(t for t in (_text(e) for e in _local_children(person, "Nazwisko")) if t) or None
        pesels = [t for t in (_text(e) for e in _local_children(person, "PESEL")) if t]
        claimed = pesels[0] if len(pesels) == 1 else None
        account = _text(person.find("ppZP:IdKontaUzytkownikaEpuap", namespaces=_NS)) or _text(
            el.find("ppZP:DanePodpisu/ppZP:IdKontaUzytkownikaEpuap", namespaces=_NS)
        )
        found.append(_identity(first, last, claimed, SOURCE_PODPIS_ZP, epuap_account=account))
    return found


_IDENTITY_TAGS = (f"{{{PZ_NS}}}EPSignature", f"{{{PPZP_NS}}}PodpisZP")


def claims_profile_identity(signed_properties: Any) -> bool:
    """Whether ``SignedProperties`` carry a Profil Zaufany identity element at all (what a
    signature *claims*; :func:`profile_identities` reads them)."""
    for role in ("SignerRole", "SignerRoleV2"):
        path = f"xades:SignedSignatureProperties/xades:{role}/xades:ClaimedRoles/xades:ClaimedRole/*"
        if any(child.tag in _IDENTITY_TAGS for child in signed_properties.iterfind(path, namespaces=_NS)):
            return True
    return False


def profile_identities(signed_properties: Any) -> list[SignerIdentity]:
    """Every Profil Zaufany identity in the ``ClaimedRoles`` of the verified
    ``SignedProperties`` (``SignerRole`` or ``SignerRoleV2``), in document order: one per
    person of each ``EPSignature`` / ``PodpisZP``. A Profil Zaufany signature carries
    exactly one (``spec/signatures.md``, "Exactly one identity"): the caller refuses two or
    more, even with the same PESEL."""
    ssp = signed_signature_properties(signed_properties)
    if ssp is None:
        return []
    found: list[SignerIdentity] = []
    for role in ssp.iterfind("*/xades:ClaimedRoles/xades:ClaimedRole", namespaces=_NS):
        if role.getparent().getparent().tag not in (f"{{{XADES_NS}}}SignerRole", f"{{{XADES_NS}}}SignerRoleV2"):
            continue
        for child in role:
            if child.tag == f"{{{PZ_NS}}}EPSignature":
                found.extend(_from_ep_signature(child))
            elif child.tag == f"{{{PPZP_NS}}}PodpisZP":
                found.extend(_from_podpis_zp(child))
    return found


def certificate_identity(cert: x509.Certificate) -> SignerIdentity:
    """The signer named by a qualified or personal certificate's subject."""

    def attr(oid) -> str | None:
        values = [a.value for a in cert.subject.get_attributes_for_oid(oid)]
        return " ".join(str(v) for v in values) if values else None

    serial = attr(NameOID.SERIAL_NUMBER)
    claimed = pesel_from_serial_number(serial)
    return _identity(attr(NameOID.GIVEN_NAME), attr(NameOID.SURNAME), claimed, SOURCE_CERTIFICATE, common_name=attr(NameOID.COMMON_NAME))


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
