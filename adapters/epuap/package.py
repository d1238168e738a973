"""ePUAP's mailbox export package ("awaryjne pobranie", ``spec/epuap.md``): a ZIP with
``Deskryptor.xml`` (root ``Dokumenty``, one ``Dokument`` per document, schema
``schemas/epuap/EmergencyDownload.xsd``) and the documents' files.

:func:`read_package` yields each document of the descriptor with its bytes and the same
metadata a pull answer gives (``adapters.epuap.client.document_from_response``), or the
Polish reason it is refused; the archive is read with :class:`adapters.ziparchive.SafeZip`
(nothing is extracted). ``DataNadania`` is ``dd.MM.yyyy'T'HH:mm:ss.SSS`` in Polish time.

>>> parse_filed_at("23.05.2019T14:34:19.549").isoformat()
'2019-05-23T14:34:19.549000+02:00'
>>> parse_filed_at("2019-05-23T14:34:19")
Traceback (most recent call last):
...
ValueError: DataNadania „2019-05-23T14:34:19” nie ma postaci DD.MM.RRRRTGG:MM:SS.mmm
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from lxml import etree

from adapters.ziparchive import Entry, SafeZip, posix_name
from schemas.epuap import PACKAGE_XSD
from worker.domain.clock import WARSAW
from worker.domain.xmlvalue import stripped_value
from worker.forms.safe_xml import DocumentTooLarge, XmlRefused, parse_untrusted

from .client import skrot_of
from .extra import parse_dane_dodatkowe

DESCRIPTOR = "Deskryptor.xml"
MAX_DESCRIPTOR_BYTES = 32 * 1024 * 1024
_FILED = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?")


class PackageRefused(Exception):
    """The package as a whole cannot be imported (no or unreadable descriptor): Polish reason."""


def parse_filed_at(text: str | None) -> datetime:
    """``DataNadania`` of the descriptor, in Polish local time."""
    m = _FILED.fullmatch((text or "").strip())
    if m is None:
        raise ValueError(f"DataNadania „{(text or '')[:40]}” nie ma postaci DD.MM.RRRRTGG:MM:SS.mmm")
    day, month, year, hour, minute, second, millis = m.groups()
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                    int((millis or "0").ljust(3, "0")) * 1000, tzinfo=WARSAW)


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PACKAGE_XSD)))


@dataclass
class PackageDocument:
    """One ``Dokument`` of the descriptor: its file's bytes and metadata, or why it is refused."""

    index: int  # 1, 2, … in descriptor order
    path: str  # SciezkaWArchiwum as given
    name: str | None  # NazwaPliku
    mailbox: str | None  # AdresSkrytki
    content: bytes | None = None
    filed_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None


def _text(el: etree._Element | None, name: str) -> str | None:
    if el is None:
        return None
    text = stripped_value(el.find(name)) or ""
    return text[:1000] or None


def _extra(text: str | None) -> dict[str, Any] | None:
    """``DaneDodatkowe``: the XML itself or its base64 (as the pull service sends it)."""
    if not text:
        return None
    data = text.encode("utf-8")
    if not text.lstrip().startswith("<"):
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            return {"error": "neither XML nor base64", "size": len(data)}
    return parse_dane_dodatkowe(data)


def _metadata(dok: etree._Element, content: bytes, filed_at: datetime) -> dict[str, Any]:
    podmiot = dok.find("DanePodmiotu")
    nadawca = dok.find("DaneNadawcy")
    zgoda = _text(podmiot, "Zgoda")
    extra = _extra(_text(dok, "DaneDodatkowe"))
    sha256 = hashlib.sha256(content).hexdigest()
    return {
        "adresSkrytki": _text(dok, "AdresSkrytki"),
        "nazwaSkrytki": _text(dok, "NazwaSkrytki"),
        "dataNadania": filed_at.isoformat(),
        "daneNadawcy": {"uzytkownik": _text(nadawca, "Uzytkownik"), "system": _text(nadawca, "System")},
        "danePodmiotu": {
            "identyfikator": _text(podmiot, "Identyfikator"), "typOsoby": _text(podmiot, "TypOsoby"),
            "imieSkrot": _text(podmiot, "ImieSkrot"), "nazwiskoNazwa": _text(podmiot, "NazwiskoNazwa"),
            "nip": _text(podmiot, "Nip"), "pesel": _text(podmiot, "Pesel"), "regon": _text(podmiot, "Regon"),
            "zgoda": zgoda in ("true", "1") if zgoda is not None else None,
        },
        "adresOdpowiedzi": _text(dok, "AdresOdpowiedzi"),
        "czyTestowe": None,  # the export does not say
        "daneDodatkowe": extra,
        "identyfikatorDokumentu": (extra or {}).get("fields", {}).get("IdentyfikatorDokumentu"),
        "nazwaPliku": _text(dok, "NazwaPliku"),
        "typPliku": None,
        "size": len(content),
        "sha256": sha256,
        "skrot": skrot_of(content),
    }


def read_descriptor(archive: SafeZip) -> etree._Element:
    """The descriptor's root (``Dokumenty``); :class:`PackageRefused` when there is none or
    it cannot be read."""
    found = archive.find(DESCRIPTOR)
    if not found:
        raise PackageRefused(f"w archiwum nie ma pliku {DESCRIPTOR}: to nie jest paczka eksportu skrytki ePUAP")
    if len(found) > 1 or found[0].refused is not None:
        raise PackageRefused(f"{DESCRIPTOR}: {found[0].refused or 'plik powtórzony w archiwum'}")
    try:
        root = parse_untrusted(archive.read(found[0]), max_bytes=MAX_DESCRIPTOR_BYTES)
    except ValueError as exc:  # a refused or broken entry
        raise PackageRefused(f"{DESCRIPTOR}: {exc}") from None
    except (DocumentTooLarge, XmlRefused) as exc:
        raise PackageRefused(f"{DESCRIPTOR} nie jest poprawnym plikiem XML ({exc.message})") from None
    if not isinstance(root.tag, str) or root.tag != "Dokumenty":
        raise PackageRefused(f"{DESCRIPTOR}: element główny to „{etree.QName(root).localname if isinstance(root.tag, str) else '?'}”, "
                             "a powinien być „Dokumenty” (EmergencyDownload.xsd)")
    return root


def read_package(archive: SafeZip) -> Iterator[PackageDocument]:
    """Each ``Dokument`` of the descriptor, in order (see the module docstring). Raises
    :class:`PackageRefused` before the first one when the descriptor is missing or unreadable."""
    root = read_descriptor(archive)
    for index, dok in enumerate((c for c in root if isinstance(c.tag, str)), start=1):
        path = _text(dok, "SciezkaWArchiwum") or ""
        item = PackageDocument(index, path, _text(dok, "NazwaPliku"), _text(dok, "AdresSkrytki"))
        wrapper = etree.Element("Dokumenty")
        wrapper.append(copy.deepcopy(dok))
        if dok.tag != "Dokument" or not _schema().validate(wrapper):
            error = _schema().error_log.last_error
            item.refused = (f"opis dokumentu w {DESCRIPTOR} niezgodny ze schematem EmergencyDownload.xsd"
                            + (f" ({str(error.message)[:200]})" if error is not None else ""))
            yield item
            continue
        try:
            item.filed_at = parse_filed_at(_text(dok, "DataNadania"))
        except ValueError as exc:
            item.refused = str(exc)
            yield item
            continue
        entries = archive.find(path) if path else []
        if not entries:
            item.refused = f"w archiwum nie ma pliku „{path[:200]}” wskazanego w {DESCRIPTOR} (SciezkaWArchiwum)"
        elif len(entries) > 1 or entries[0].refused is not None:
            item.refused = f"plik „{path[:200]}”: {entries[0].refused or 'nazwa powtórzona w archiwum'}"
        else:
            try:
                item.content = archive.read(entries[0])
            except ValueError as exc:
                item.refused = f"plik „{path[:200]}”: {exc}"
            else:
                item.metadata = _metadata(dok, item.content, item.filed_at)
        yield item


def entry_path(entry: Entry) -> str:
    return posix_name(entry) or entry.name
