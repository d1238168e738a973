"""Test documents and their signatures, made by an independent implementation: the
``xmlsec1`` command-line tool (libxmlsec1/OpenSSL) signs templates written here.

* :func:`declaration` — a DO-1/2025 declaration of a person (fictitious data).
* :func:`pz_signature` — a Profil Zaufany signature template: enveloped, ``URI=""`` with the
  ``not(ancestor-or-self::ds:Signature)`` XPath filter, the SignedProperties reference,
  the identity in ``ClaimedRole`` (``pz:EPSignature`` or ``ppZP:PodpisZP``).
* :func:`qualified_signature` — an enveloped-signature XAdES template for a person's certificate.
* :func:`sign` — insert a template into a document and let ``xmlsec1 --sign`` fill it.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from tests.sigtools.pki import Issued, Person

DO1_2025_NS = "http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2025/"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
SIGNATURE_EXCLUSION = "not(ancestor-or-self::ds:Signature)"


def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        raise RuntimeError("the xmlsec1 tool is needed for the signature tests: apt-get install -y xmlsec1")
    return path


def declaration(person: Person, *, fee: str = "76.00", residents: int = 2, stylesheet: bool = False) -> str:
    """A DO-1/2025 declaration by ``person`` for a single-family house in Gogolin."""
    pi = (
        '<?xml-stylesheet type="text/xsl" href="http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/'
        'czysty_region/DO1_2025/styl.xsl"?>\n'
        if stylesheet
        else ""
    )
    lines = f"""<wnio:Pozycja>
            <wnio:Opis>osoby 1-4</wnio:Opis>
            <wnio:LiczbaOsob>{residents}</wnio:LiczbaOsob>
            <wnio:Stawka>38.00</wnio:Stawka>
            <wnio:Kwota>{fee}</wnio:Kwota>
          </wnio:Pozycja>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
{pi}<wnio:Dokument xmlns:wnio="{DO1_2025_NS}" xmlns:meta="http://crd.gov.pl/xml/schematy/meta/2009/11/16/" xmlns:str="http://crd.gov.pl/xml/schematy/struktura/2009/11/16/" xmlns:oso="http://crd.gov.pl/xml/schematy/osoba/2009/11/16/" xmlns:inst="http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/" xmlns:adr="http://crd.gov.pl/xml/schematy/adres/2009/11/09/">
  <wnio:DaneDokumentu>
    <str:Naglowek>
      <str:NazwaDokumentu>Deklaracja o wysokości opłaty za gospodarowanie odpadami komunalnymi</str:NazwaDokumentu>
    </str:Naglowek>
    <meta:Data typDaty="stworzony">
      <meta:Czas>2025-03-10</meta:Czas>
    </meta:Data>
    <str:Adresaci>
      <meta:Podmiot>
        <inst:Instytucja>
          <inst:NazwaInstytucji>Związek Międzygminny "Czysty Region"</inst:NazwaInstytucji>
          <inst:IdInstytucji>
            <inst:NIP>7492045956</inst:NIP>
            <inst:REGON>160223990</inst:REGON>
          </inst:IdInstytucji>
        </inst:Instytucja>
      </meta:Podmiot>
    </str:Adresaci>
  </wnio:DaneDokumentu>
  <wnio:TrescDokumentu format="text/xml" kodowanie="XML">
    <wnio:Deklaracja>
      <wnio:CelZlozenia>
        <wnio:Rodzaj>PIERWSZA</wnio:Rodzaj>
        <wnio:ObowiazujeOd>2025-03-03</wnio:ObowiazujeOd>
      </wnio:CelZlozenia>
      <wnio:Skladajacy>
        <wnio:TytulPrawny>WLASCICIEL</wnio:TytulPrawny>
        <oso:Osoba>
          <oso:IdOsoby>
            <oso:PESEL>{person.pesel}</oso:PESEL>
          </oso:IdOsoby>
          <oso:Imie>{escape(person.first)}</oso:Imie>
          <oso:Nazwisko>{escape(person.last)}</oso:Nazwisko>
        </oso:Osoba>
        <wnio:AdresZamieszkania>
          <adr:Adres>
            <adr:KodPocztowy>47-320</adr:KodPocztowy>
            <adr:Miejscowosc>Gogolin</adr:Miejscowosc>
            <adr:Ulica>Krapkowicka</adr:Ulica>
            <adr:Budynek>12</adr:Budynek>
          </adr:Adres>
        </wnio:AdresZamieszkania>
      </wnio:Skladajacy>
      <wnio:Nieruchomosc>
        <wnio:Gmina>Gogolin</wnio:Gmina>
        <adr:Adres>
          <adr:KodPocztowy>47-320</adr:KodPocztowy>
          <adr:Miejscowosc>Gogolin</adr:Miejscowosc>
          <adr:Ulica>Krapkowicka</adr:Ulica>
          <adr:Budynek>12</adr:Budynek>
        </adr:Adres>
        <wnio:RodzajNieruchomosci>ZAMIESZKALA</wnio:RodzajNieruchomosci>
        <wnio:RodzajZabudowy>JEDNORODZINNA</wnio:RodzajZabudowy>
      </wnio:Nieruchomosc>
      <wnio:CzescZamieszkala>
        <wnio:Lokal>
          <wnio:LiczbaMieszkancow>{residents}</wnio:LiczbaMieszkancow>
        </wnio:Lokal>
        <wnio:Kompostownik>false</wnio:Kompostownik>
        <wnio:Wyliczenie>
          {lines}
          <wnio:Oplata>{fee}</wnio:Oplata>
        </wnio:Wyliczenie>
      </wnio:CzescZamieszkala>
      <wnio:OplataMiesieczna>{fee}</wnio:OplataMiesieczna>
      <wnio:ZgodaNaKorespondencjeElektroniczna>true</wnio:ZgodaNaKorespondencjeElektroniczna>
      <wnio:Oswiadczenie>true</wnio:Oswiadczenie>
    </wnio:Deklaracja>
  </wnio:TrescDokumentu>
</wnio:Dokument>
"""


def declaration_at(person: Person, *, street: str = "Krapkowicka", building: str = "12", purpose: str = "PIERWSZA",
                   applies: str = "2025-03-03", residents: int = 2, fee: str | None = None, created: str = "2025-03-10",
                   justification: str = "Zmiana liczby mieszkańców.") -> str:
    """:func:`declaration` with another address (the same for the declarant and the
    property), purpose, start date, residents and creation date; a ``KOREKTA`` gets its
    justification. ``fee``: 38.00 per resident unless given."""
    doc = declaration(person, fee=fee or f"{38 * residents:.2f}", residents=residents)
    doc = doc.replace("<adr:Ulica>Krapkowicka</adr:Ulica>\n            <adr:Budynek>12</adr:Budynek>\n          </adr:Adres>\n        </wnio:AdresZamieszkania>",
                      f"<adr:Ulica>{street}</adr:Ulica>\n            <adr:Budynek>{building}</adr:Budynek>\n          </adr:Adres>\n        </wnio:AdresZamieszkania>")
    doc = doc.replace("<adr:Ulica>Krapkowicka</adr:Ulica>\n          <adr:Budynek>12</adr:Budynek>",
                      f"<adr:Ulica>{street}</adr:Ulica>\n          <adr:Budynek>{building}</adr:Budynek>")
    doc = doc.replace("<wnio:Rodzaj>PIERWSZA</wnio:Rodzaj>", f"<wnio:Rodzaj>{purpose}</wnio:Rodzaj>")
    doc = doc.replace("<wnio:ObowiazujeOd>2025-03-03</wnio:ObowiazujeOd>", f"<wnio:ObowiazujeOd>{applies}</wnio:ObowiazujeOd>")
    doc = doc.replace("<meta:Czas>2025-03-10</meta:Czas>", f"<meta:Czas>{created}</meta:Czas>")
    if purpose == "KOREKTA":
        doc = doc.replace("</wnio:ObowiazujeOd>", f"</wnio:ObowiazujeOd><wnio:Uzasadnienie>{justification}</wnio:Uzasadnienie>")
    return doc


def ep_signature(person: Person, *, pesel: str | None = None) -> str:
    """The new Profil Zaufany identity (``pz:EPSignature``), names in capitals as the service gives them."""
    return f"""<pz:EPSignature xmlns:pz="http://crd.gov.pl/xml/schematy/podpis_zaufany/">
  <pz:NaturalPerson>
    <pz:CurrentFamilyName>{escape(person.last.upper())}</pz:CurrentFamilyName>
    <pz:FirstName>{escape(person.first.upper())}</pz:FirstName>
    <pz:DateOfBirth>{person.born.isoformat()}</pz:DateOfBirth>
    <pz:PersonalIdentifier>{pesel or person.pesel}</pz:PersonalIdentifier>
  </pz:NaturalPerson>
  <pz:SignatureData>
    <pz:IdentityIssuer>login.gov.pl</pz:IdentityIssuer>
    <pz:IdentityIssueTimestamp>2025-03-10T09:30:00.000+01:00</pz:IdentityIssueTimestamp>
  </pz:SignatureData>
</pz:EPSignature>"""


def podpis_zp(person: Person, *, account_under: str = "DanePodpisu") -> str:
    """The old Profil Zaufany identity (``ppZP:PodpisZP``); ``IdKontaUzytkownikaEpuap``
    under ``DanePodpisu`` or under ``DaneZPOsobyFizycznej``."""
    account = "<ppZP:IdKontaUzytkownikaEpuap>konto-testowe</ppZP:IdKontaUzytkownikaEpuap>"
    inner = account if account_under == "DaneZPOsobyFizycznej" else ""
    outer = f"<ppZP:DanePodpisu>{account}</ppZP:DanePodpisu>" if account_under == "DanePodpisu" else ""
    return f"""<ppZP:PodpisZP xmlns:ppZP="http://crd.gov.pl/xml/schematy/ppzp/" xmlns:os="http://crd.gov.pl/xml/schematy/osoba/2009/03/06/">
  <ppZP:DaneZP>
    <ppZP:DaneZPOsobyFizycznej>
      <os:Imie>{escape(person.first.upper())}</os:Imie>
      <os:Nazwisko os:rodzajCzlonu="pierwszy">{escape(person.last.upper())}</os:Nazwisko>
      <os:PESEL>{person.pesel}</os:PESEL>
      {inner}
    </ppZP:DaneZPOsobyFizycznej>
  </ppZP:DaneZP>
  {outer}
</ppZP:PodpisZP>"""


RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
_CERT_DIGESTS = {"sha256": ("http://www.w3.org/2001/04/xmlenc#sha256", hashes.SHA256), "sha1": ("http://www.w3.org/2000/09/xmldsig#sha1", hashes.SHA1)}


def _signing_certificate(cert: Issued, digest_name: str = "sha256") -> str:
    uri, algorithm = _CERT_DIGESTS[digest_name]
    digest = base64.b64encode(cert.cert.fingerprint(algorithm())).decode()
    return f"""<xades:SigningCertificate>
              <xades:Cert>
                <xades:CertDigest>
                  <ds:DigestMethod Algorithm="{uri}"/>
                  <ds:DigestValue>{digest}</ds:DigestValue>
                </xades:CertDigest>
                <xades:IssuerSerial>
                  <ds:X509IssuerName>{escape(cert.cert.issuer.rfc4514_string())}</ds:X509IssuerName>
                  <ds:X509SerialNumber>{cert.cert.serial_number}</ds:X509SerialNumber>
                </xades:IssuerSerial>
              </xades:Cert>
            </xades:SigningCertificate>"""


def _template(
    doc_transforms: str,
    signer: Issued,
    signing_time: datetime | None,
    claimed_role: str | None,
    *,
    extra_references: str = "",
    keyinfo_id: str | None = None,
    method: str = RSA_SHA256,
    cert_digest: str = "sha256",
) -> str:
    sid = uuid.uuid4().hex[:12]
    time_el = f"<xades:SigningTime>{signing_time.isoformat(timespec='milliseconds')}</xades:SigningTime>" if signing_time else ""
    role = (
        f"<xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>{claimed_role}</xades:ClaimedRole>"
        "</xades:ClaimedRoles></xades:SignerRole>"
        if claimed_role
        else ""
    )
    keyinfo_attr = f' Id="{keyinfo_id}"' if keyinfo_id else ""
    return f"""<ds:Signature xmlns:ds="{DS}" Id="Signature-{sid}">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="{method}"/>
      <ds:Reference URI="">
        <ds:Transforms>{doc_transforms}</ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue/>
      </ds:Reference>
      <ds:Reference Type="http://uri.etsi.org/01903#SignedProperties" URI="#SignedProps-{sid}">
        <ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue/>
      </ds:Reference>{extra_references}
    </ds:SignedInfo>
    <ds:SignatureValue/>
    <ds:KeyInfo{keyinfo_attr}><ds:X509Data/></ds:KeyInfo>
    <ds:Object>
      <xades:QualifyingProperties xmlns:xades="{XADES}" Target="#Signature-{sid}">
        <xades:SignedProperties Id="SignedProps-{sid}">
          <xades:SignedSignatureProperties>
            {time_el}
            {_signing_certificate(signer, cert_digest)}
            {role}
          </xades:SignedSignatureProperties>
        </xades:SignedProperties>
      </xades:QualifyingProperties>
    </ds:Object>
  </ds:Signature>"""


XPATH_TRANSFORM = (
    '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116">'
    "<ds:XPath>{expr}</ds:XPath></ds:Transform>"
)
ENVELOPED_TRANSFORMS = (
    '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
)


def pz_signature(seal: Issued, signing_time: datetime, identity: str | None, *, xpath: str = SIGNATURE_EXCLUSION) -> str:
    return _template(XPATH_TRANSFORM.format(expr=escape(xpath)), seal, signing_time, identity)


def qualified_signature(
    signer: Issued,
    signing_time: datetime | None,
    *,
    claimed_role: str | None = None,
    transforms: str = ENVELOPED_TRANSFORMS,
    sign_keyinfo: bool = False,
    method: str = RSA_SHA256,
    cert_digest: str = "sha256",
) -> str:
    extra, kid = "", None
    if sign_keyinfo:
        kid = f"KeyInfo-{uuid.uuid4().hex[:8]}"
        extra = f"""
      <ds:Reference URI="#{kid}">
        <ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue/>
      </ds:Reference>"""
    return _template(transforms, signer, signing_time, claimed_role, extra_references=extra, keyinfo_id=kid, method=method,
                     cert_digest=cert_digest)


def insert_signature(document: str | bytes, template: str) -> bytes:
    """Insert ``template`` as the last child of the document element."""
    doc = document.encode() if isinstance(document, str) else document
    end = doc.rstrip().rfind(b"</")
    return doc[:end] + b"  " + template.encode() + b"\n" + doc[end:]


def sign(document: str | bytes, template: str, signer: Issued, *, extra_certs: list[Issued] | None = None) -> bytes:
    """Insert ``template`` into ``document`` and sign it with ``xmlsec1``; ``KeyInfo`` gets
    the signer's certificate followed by its issuing CA (or ``extra_certs``)."""
    return sign_many(document, [(template, signer, extra_certs)])


def sign_many(document: str | bytes, signatures: list[tuple[str, Issued, list[Issued] | None]]) -> bytes:
    """Insert every template, then sign them one after the other with ``xmlsec1``
    (``--node-id``), in the order given."""
    tool = xmlsec1()
    doc = document.encode() if isinstance(document, str) else document
    for template, _, _ in signatures:
        doc = insert_signature(doc, template)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n, (template, signer, extra_certs) in enumerate(signatures):
            sig_id = re.search(r'Id="(Signature-[^"]+)"', template).group(1)
            files = [d / f"key{n}.pem", d / f"cert{n}.pem"]
            files[0].write_bytes(signer.key_pem)
            files[1].write_bytes(signer.cert_pem)
            chain = extra_certs if extra_certs is not None else ([signer.issuer] if signer.issuer and signer.issuer.issuer else [])
            for i, c in enumerate(chain):
                p = d / f"ca{n}-{i}.pem"
                p.write_bytes(c.cert.public_bytes(Encoding.PEM))
                files.append(p)
            (d / "in.xml").write_bytes(doc)
            subprocess.run(
                [tool, "--sign", "--privkey-pem", ",".join(str(f) for f in files), "--id-attr:Id", "SignedProperties",
                 "--id-attr:Id", "KeyInfo", "--id-attr:Id", "Signature", "--node-id", sig_id,
                 "--output", str(d / "out.xml"), str(d / "in.xml")],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            doc = (d / "out.xml").read_bytes()
    return doc
