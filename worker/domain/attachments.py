"""Attachments of a document (``str:Zalaczniki/str:Zalacznik``): decoded, named safely,
their declared type checked against their first bytes. No I/O.

Only the *verified* content is ever given to :func:`extract` (what the signature covers,
``Context.signed_root``): an attachment smuggled outside the signed part is never seen.

A broken attachment (bad base64, too large, a type that does not match its bytes) is
described by its ``problem`` (Polish, for the office) instead of raising.

An attachment sent by reference (``kodowanie="URI"``) holds a link to ePUAP's file
repository; its ``fileId`` (:func:`file_id_of`) names the file the pull fetched and stored
(``referenced`` records, see ``adapters.epuap.referenced``). The bytes are then read from
storage by whoever writes them out; the analysis only sees the record. One that could not
be had is ``unavailable`` (the ``ATTACHMENT_UNAVAILABLE`` finding).

>>> file_id_of("https://epuap.gov.pl/file-download-servlet/DownloadServlet?fileId=123456")
'123456'
>>> file_id_of("https://x/DownloadServlet?a=1&fileId=ab-9_Z.1"), file_id_of("https://x/?fileId=../../etc"), file_id_of("nic")
('ab-9_Z.1', None, None)

>>> safe_name("../../etc/passwd", set())
'passwd'
>>> safe_name("CON", set()), safe_name("con.txt", set())
('_CON', '_con.txt')
>>> used = set(); safe_name("a.pdf", used), safe_name("A.pdf", used), safe_name("a.pdf", used)
('a.pdf', 'A-2.pdf', 'a-3.pdf')
>>> safe_name("list\\nnowy.pdf", set())
'list_nowy.pdf'
>>> len(safe_name("x" * 300 + ".pdf", set())) <= MAX_NAME_CHARS
True
>>> sniff(b"%PDF-1.7 ..."), sniff(b"\\x89PNG\\r\\n\\x1a\\n...."), sniff(b"\\x00\\x01")
('application/pdf', 'image/png', None)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from worker.domain.xmlvalue import string_value, stripped_value

STR_NS = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
ZALACZNIK = f"{{{STR_NS}}}Zalacznik"
DANE = f"{{{STR_NS}}}DaneZalacznika"
OPIS = f"{{{STR_NS}}}OpisZalacznika"

MAX_NAME_CHARS = 100  # of a file name written to disk (the form allows 255)
MAX_ATTACHMENTS = 50  # the CRD structure allows 20; more is read as hostile
DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # one decoded attachment

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r'[<>:"/\\|?*]')

#: declared MIME type -> the types its first bytes may show
_COMPATIBLE: dict[str, set[str]] = {
    "application/pdf": {"application/pdf"},
    "image/png": {"image/png"},
    "image/jpeg": {"image/jpeg"},
    "image/jpg": {"image/jpeg"},
    "image/gif": {"image/gif"},
    "image/tiff": {"image/tiff"},
    "application/zip": {"application/zip"},
    # OOXML / ODF documents and XAdES containers are ZIP files
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {"application/zip"},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"application/zip"},
    "application/vnd.oasis.opendocument.text": {"application/zip"},
    "application/vnd.oasis.opendocument.spreadsheet": {"application/zip"},
    "application/vnd.etsi.asic-e+zip": {"application/zip"},
    "application/xml": {"application/xml"},
    "text/xml": {"application/xml"},
    "text/plain": {"text/plain", "application/xml"},
    "application/msword": {"application/x-ole"},
    "application/vnd.ms-excel": {"application/x-ole"},
}

#: the extension a detected type is written with when the declared type does not match
_EXTENSION = {
    "application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
    "image/tiff": ".tif", "application/zip": ".zip", "application/xml": ".xml", "text/plain": ".txt",
    "application/x-ole": ".doc",
}


def sniff(data: bytes) -> str | None:
    """The type the first bytes show, for the few types the office handles; None when unknown."""
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole"
    sample = data[:4096]
    if b"\x00" in sample:
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not merely a character cut at the sample's end
            return None
        text = sample[: exc.start].decode("utf-8")
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<?xml") or stripped.startswith("<"):
        return "application/xml"
    if all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return "text/plain"
    return None


_FILE_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")

FETCHED = "FETCHED"  # a referenced file's record: its bytes are in storage
UNAVAILABLE = "UNAVAILABLE"  # it cannot be had (the reason is in the record)


def file_id_of(link: str | None) -> str | None:
    """The ``fileId`` parameter of a link to ePUAP's file repository
    (``…/DownloadServlet?fileId=<id>``); None when there is none or it is not a plain id.
    The link itself is never fetched: the id is asked for at the configured repository."""
    text = "".join((link or "").split())[:2000]
    try:
        values = parse_qs(urlsplit(text).query).get("fileId") or []
    except ValueError:
        return None
    if len(values) != 1 or not _FILE_ID.fullmatch(values[0]) or set(values[0]) <= {"."}:
        return None
    return values[0]


@dataclass(frozen=True)
class Link:
    """An attachment sent by reference, as linked from a document."""

    index: int
    file_id: str | None
    name: str | None


def links(root: Any, *, max_count: int = MAX_ATTACHMENTS) -> list[Link]:
    """The attachments of ``root`` sent by reference (``kodowanie="URI"``), in document order."""
    out = []
    for i, el in enumerate(_elements(root), start=1):
        if i > max_count:
            break
        if (el.get("kodowanie") or "").strip().lower() != "uri":
            continue
        dane = el.find(DANE)
        out.append(Link(i, file_id_of(string_value(dane)), el.get("nazwaPliku")))
    return out


def safe_name(name: str | None, used: set[str], *, fallback: str = "zalacznik") -> str:
    """A file name that is safe on any file system: the last path component only, no
    control or reserved characters, no leading dots, not a reserved device name, at most
    :data:`MAX_NAME_CHARS` characters (keeping the extension), unique in ``used``
    (compared case-insensitively; duplicates get ``-2``, ``-3``…). Adds it to ``used``."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = _UNSAFE.sub("_", text)
    text = text.strip(" .")
    text = re.sub(r"_+", "_", text) if text.count("_") > 20 else text
    if not text or set(text) <= {"_"}:
        text = fallback
    stem, ext = _split(text)
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    stem, ext = _bound(stem, ext)
    candidate = stem + ext
    n = 1
    while candidate.casefold() in used:
        n += 1
        s, e = _bound(stem, ext, reserve=len(f"-{n}"))
        candidate = f"{s}-{n}{e}"
    used.add(candidate.casefold())
    return candidate


def _split(text: str) -> tuple[str, str]:
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 10 or not ext.isalnum():
        return text, ""
    return stem, "." + ext


def _bound(stem: str, ext: str, reserve: int = 0) -> tuple[str, str]:
    room = MAX_NAME_CHARS - len(ext) - reserve
    return stem[: max(room, 1)].rstrip(" ."), ext


@dataclass
class Attachment:
    """One attachment as found in the verified content."""

    index: int  # 1, 2, … in document order
    original_name: str | None  # @nazwaPliku as given (may be hostile: never used as a path)
    name: str  # the safe file name
    declared_type: str | None  # @format
    encoding: str | None  # @kodowanie
    description: str | None  # OpisZalacznika
    data: bytes | None = field(default=None, repr=False)  # decoded bytes; None when broken
    detected_type: str | None = None
    problem: str | None = None  # Polish, for the office; None when the attachment is fine
    by_reference: bool = False  # sent as a link to ePUAP's file repository, not covered by the signature
    file_id: str | None = None
    storage_key: str | None = None  # a fetched file's bytes in storage (``data`` stays None)
    stored_size: int | None = None
    stored_sha256: str | None = None
    unavailable: bool = False  # sent by reference and could not be fetched: ATTACHMENT_UNAVAILABLE

    @property
    def present(self) -> bool:
        """Its bytes can be written out (decoded here, or fetched and stored)."""
        return self.data is not None or self.storage_key is not None

    @property
    def size(self) -> int | None:
        return len(self.data) if self.data is not None else self.stored_size

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else self.stored_sha256

    def summary(self) -> dict[str, Any]:
        """What is recorded with the document and written to ``metadane.json`` (no bytes)."""
        summary: dict[str, Any] = {
            "index": self.index,
            "file": self.name if self.present else None,
            "original_name": (self.original_name or "")[:300] or None,
            "declared_type": self.declared_type,
            "detected_type": self.detected_type,
            "size": self.size,
            "sha256": self.sha256,
            "description": (self.description or "")[:1000] or None,
            "problem": self.problem,
        }
        if self.by_reference:  # fetched from ePUAP's file repository: not covered by the signature
            summary.update(by_reference=True, file_id=self.file_id, unavailable=self.unavailable)
        return summary


def _elements(root: Any) -> Iterator[Any]:
    if root is None:
        return
    yield from root.iter(ZALACZNIK)


def extract(root: Any, *, max_bytes: int = DEFAULT_MAX_BYTES, max_count: int = MAX_ATTACHMENTS,
            referenced: dict[str, Any] | None = None) -> list[Attachment]:
    """Every ``str:Zalacznik`` under ``root`` (the verified content), decoded; those sent by
    reference from ``referenced`` (fileId → the record of the fetched file)."""
    found: list[Attachment] = []
    used: set[str] = set()
    for i, el in enumerate(_elements(root), start=1):
        if i > max_count:
            found.append(Attachment(i, None, "", None, None, None, problem=f"Więcej niż {max_count} załączników: pozostałych nie odczytano."))
            break
        original = el.get("nazwaPliku")
        declared = (el.get("format") or "").strip().lower()[:200] or None
        encoding = (el.get("kodowanie") or "").strip()[:50] or None
        opis = el.find(OPIS)
        description = stripped_value(opis)
        att = Attachment(i, original, "", declared, encoding, description)
        dane = el.find(DANE)
        text = "".join((string_value(dane) or "").split())
        if encoding is not None and encoding.lower() == "uri":
            _by_reference(att, text, (referenced or {}))
        elif encoding is not None and encoding.lower() != "base64":
            att.problem = f"Załącznik o nieznanym kodowaniu „{encoding}”: nie można go odczytać."
        elif not text:
            att.problem = "Załącznik bez danych (pusty element DaneZalacznika)."
        elif len(text) > 4 * ((max_bytes + 2) // 3):  # more than max_bytes once decoded
            att.problem = f"Załącznik większy niż dopuszczalne {_mib(max_bytes)}: nie został zapisany."
        else:
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                att.problem = "Dane załącznika nie są poprawnym kodowaniem base64: nie można go odczytać."
            else:
                if len(data) > max_bytes:
                    att.problem = f"Załącznik większy niż dopuszczalne {_mib(max_bytes)}: nie został zapisany."
                else:
                    att.data = data
                    att.detected_type = sniff(data)
        if att.present:
            name = original
            if declared is not None and not _matches(declared, att.detected_type):
                att.problem = (
                    f"Zadeklarowany typ „{declared}” nie zgadza się z zawartością "
                    f"({att.detected_type or 'typ nierozpoznany'}): plik zapisano z rozszerzeniem "
                    f"„{_EXTENSION.get(att.detected_type or '', '.bin')}”."
                )
                name = f"{_split(safe_name(original, set()))[0]}{_EXTENSION.get(att.detected_type or '', '.bin')}"
            att.name = safe_name(name, used, fallback=f"zalacznik-{i}")
        found.append(att)
    return found


_REASONS = {
    "fault": "repozytorium plików ePUAP odmówiło wydania pliku",
    "too_large": "plik jest większy niż dopuszczalny rozmiar (epuap.filerepo_max_file_bytes)",
    "unreachable": "repozytorium plików ePUAP było nieosiągalne mimo ponowień",
    "invalid": "repozytorium plików ePUAP dało niepoprawną odpowiedź",
    "disabled": "integracja z ePUAP jest wyłączona w konfiguracji",
    "no_file_id": "odnośnik nie zawiera identyfikatora pliku (fileId)",
}


def _by_reference(att: Attachment, link: str, referenced: dict[str, Any]) -> None:
    """An attachment sent by reference: the fetched file's record, or why there is none."""
    att.by_reference = True
    att.file_id = file_id_of(link)
    record = referenced.get(att.file_id) if att.file_id is not None else None
    if isinstance(record, dict) and record.get("state") == FETCHED and record.get("storage_key"):
        att.storage_key = str(record["storage_key"])
        att.stored_sha256 = record.get("sha256")
        att.stored_size = record.get("size")
        att.detected_type = record.get("detected_type")
        if not att.original_name and record.get("filename"):
            att.original_name = str(record["filename"])
        return
    att.unavailable = True
    if att.file_id is None:
        why = _REASONS["no_file_id"]
    elif isinstance(record, dict):
        why = _REASONS.get(str(record.get("reason")), "nie udało się go pobrać")
        if record.get("error"):
            why += f" ({str(record['error'])[:300]})"
    else:
        why = "nie został pobrany z repozytorium plików ePUAP"
    shown = f" „{att.original_name[:100]}”" if att.original_name else ""
    ident = f" (fileId {att.file_id})" if att.file_id else ""
    att.problem = (f"Załącznik{shown}{ident} przekazany przez odniesienie do repozytorium plików ePUAP: {why}. "
                   "Należy poprosić nadawcę o ponowne przesłanie pliku.")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB".replace(".", ",") if n >= 1024 * 1024 else f"{n} B"


def _matches(declared: str, detected: str | None) -> bool:
    allowed = _COMPATIBLE.get(declared.split(";")[0].strip())
    if allowed is None:
        return detected is not None and (declared == detected or declared.startswith("text/") and detected == "text/plain")
    return detected in allowed
