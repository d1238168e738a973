"""The capture station's scan export (``schemas/scans/scan-export.xsd``): parse, validate, read.

One export describes one scanned paper form: a header (the scan id, batch, scanning time,
the receipt date stamped on the paper, the operator, the form recognised, the PDF of the
page images with its SHA-256, whether the operator saw a handwritten signature) and the
recognised fields (``Pole``: name, value, OCR confidence, verified by the operator).

* :func:`validate_export` — the export against the project's copy of the XSD, reported as
  ``SCHEMA_INVALID`` findings in Polish with element paths (the same explainer as the
  e-forms);
* :func:`read_export` — a schema-valid export → :class:`ScanExport`;
* :func:`read_header` — only what the inbox needs (id, receipt date, the PDF's name and
  hash), leniently, from bytes that need not be schema-valid: the inbox stores every pair
  whose header can be read and lets processing judge the rest.

The receipt date (``DataWplywu``) is the filing date; as a time it is taken as midnight in
Poland (:func:`filing_time`), so the filing *day* in Polish time — what form versions and
deadlines are judged on — is exactly the stamped date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.domain.clock import WARSAW
from worker.domain.findings import Finding, finding
from worker.domain.xmlvalue import string_value, stripped_value
from worker.forms.registry import FormSpec
from worker.forms.safe_xml import XmlRefused
from worker.forms.structure import DEFAULT_LIMITS, StructureLimits, parse_bounded
from worker.forms.validation import validate_document

SCAN_NS = "urn:czystyregion:skan:1"
SCAN_ROOT = f"{{{SCAN_NS}}}Skan"
POLISH_TZ = WARSAW

#: the export format, described like a form so the e-forms' XSD explainer can report on it
#: (it is *not* in the forms registry: it is an envelope, not a declaration form)
SCAN_EXPORT = FormSpec(
    code="SKAN",
    version="1",
    namespace=SCAN_NS,
    xsd="scans/scan-export.xsd",
    mapper=None,  # type: ignore[arg-type]
    root_element="Skan",
    title="Eksport stanowiska skanowania (skan formularza papierowego)",
)

_XS_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ScanExportError(ValueError):
    """The export cannot be read. ``reason`` is a stable English key for logs and reason
    files; ``message`` is Polish (for the office)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ScanField:
    """One recognised field (``Pole``)."""

    name: str  # e.g. ``skladajacy.pesel``, ``lokale.1.liczba_mieszkancow``
    value: str  # as recognised, surrounding whitespace removed ("" when the box was empty)
    confidence: Decimal  # OCR confidence 0..1
    verified: bool  # checked by the operator at the station: counts as certain


@dataclass(frozen=True)
class ScanHeader:
    scan_id: str
    received_on: date  # DataWplywu: the receipt stamp, the filing date
    image_file: str  # Obraz/@plik: the PDF's name, in the same folder
    image_sha256: str
    image_pages: int | None = None
    batch: str | None = None
    scanned_at: str | None = None  # DataSkanowania as written (xs:dateTime)
    operator: str | None = None
    form_code: str | None = None
    form_version: str | None = None
    handwritten_signature: bool | None = None

    @property
    def form(self) -> str:
        """The contract's form name, ``DO-1/2025``."""
        return f"{self.form_code}/{self.form_version}"

    @property
    def source_ref(self) -> str:
        """The document's source reference in the worker: ``scan:<id>``."""
        return f"scan:{self.scan_id}"

    @property
    def filed_at(self) -> datetime:
        return filing_time(self.received_on)

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON for the document's metadata (no personal data: the header has none)."""
        return {
            "id": self.scan_id,
            "batch": self.batch,
            "scanned_at": self.scanned_at,
            "received_on": self.received_on.isoformat(),
            "operator": self.operator,
            "form": self.form if self.form_code else None,
            "handwritten_signature": self.handwritten_signature,
            "image": {"file": self.image_file, "sha256": self.image_sha256, "pages": self.image_pages},
        }


@dataclass(frozen=True)
class ScanExport:
    header: ScanHeader
    fields: tuple[ScanField, ...]


def filing_time(received_on: date) -> datetime:
    """The filing time of a paper declaration: the start of its receipt day in Poland.

    >>> filing_time(date(2025, 1, 31)).isoformat()
    '2025-01-31T00:00:00+01:00'
    """
    return datetime.combine(received_on, time(0), tzinfo=POLISH_TZ)


def is_scan_export(root: Any) -> bool:
    return getattr(root, "tag", None) == SCAN_ROOT


def parse_xs_date(text: str | None) -> date | None:
    """An ``xs:date`` (an optional time zone is ignored: the stamped day counts), or None.

    >>> parse_xs_date("2025-01-31"), parse_xs_date("2025-01-31+01:00"), parse_xs_date("2025-02-30")
    (datetime.date(2025, 1, 31), datetime.date(2025, 1, 31), None)
    """
    m = _XS_DATE.fullmatch((text or "").strip())
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_xs_boolean(text: str | None) -> bool | None:
    """``true``/``1`` → True, ``false``/``0`` → False, anything else → None."""
    v = (text or "").strip()
    return True if v in ("true", "1") else False if v in ("false", "0") else None


def safe_file_name(name: str | None) -> bool:
    """Whether ``name`` is a plain file name in the same folder (no path, no ``..``).

    >>> [safe_file_name(n) for n in ("a.pdf", "../a.pdf", "x/a.pdf", "x\\\\a.pdf", "..", "", ".hidden.pdf")]
    [True, False, False, False, False, False, False]
    """
    if not name or len(name) > 255:
        return False
    if any(c in name for c in "/\\\x00:") or name.startswith("."):
        return False
    return name not in (".", "..")


def _q(name: str) -> str:
    return f"{{{SCAN_NS}}}{name}"


def _text(root: Any, name: str) -> str | None:
    return stripped_value(root.find(_q(name)))


_POLE_PATH = re.compile(r"/Skan/Pola/Pole(?:\[(\d+)\])?")
_FIELD_NAME = re.compile(r"[a-z_]+(\.[a-z0-9_]+)*")


def validate_export(root: Any, budget: Any = None) -> list[Finding]:
    """``SCHEMA_INVALID`` findings of the export against its XSD (none when valid).

    The e-forms' explainer words the errors; an error it places on a ``Pole`` element
    itself (an attribute's value it reads as the element's) would quote the recognised
    value — personal data — so those are replaced by this module's own wording of the
    field's attributes, which never repeats the value.
    """
    findings = validate_document(root, SCAN_EXPORT, budget=budget)
    out: list[Finding] = []
    done: set[str] = set()
    for f in findings:
        match = _POLE_PATH.fullmatch(f.field or "")
        if match is None:
            out.append(f)
            continue
        if f.field in done:
            continue
        done.add(f.field or "")
        out.extend(_pole_findings(root, f.field or "", int(match.group(1) or 1)))
    return out


def _pole_findings(root: Any, path: str, position: int) -> list[Finding]:
    pola = root.find(_q("Pola"))
    poles = list(pola.iterchildren(_q("Pole"))) if pola is not None else []
    pole = poles[position - 1] if 0 < position <= len(poles) else None
    if pole is None:
        return [finding("SCHEMA_INVALID", path, "Pole eksportu skanu nie jest zgodne ze wzorem eksportu.")]
    name = pole.get("nazwa") or ""
    what = f"Pole „{name[:60]}”" if _FIELD_NAME.fullmatch(name) else f"Pole nr {position}"
    out = []
    if not _FIELD_NAME.fullmatch(name):
        out.append(finding("SCHEMA_INVALID", f"{path}/@nazwa", f"{what}: nazwa pola ma niedozwoloną postać (wymagane małe litery, cyfry, „_” i kropki, np. skladajacy.pesel)."))
    try:
        confidence = Decimal((pole.get("pewnosc") or "").strip())
        ok = confidence.is_finite() and Decimal(0) <= confidence <= Decimal(1)
    except InvalidOperation:
        ok = False
    if not ok:
        out.append(finding("SCHEMA_INVALID", f"{path}/@pewnosc", f"{what}: pewność odczytu musi być liczbą od 0 do 1 z kropką dziesiętną, np. 0.95."))
    verified = pole.get("zweryfikowane")
    if verified is not None and parse_xs_boolean(verified) is None:
        out.append(finding("SCHEMA_INVALID", f"{path}/@zweryfikowane", f"{what}: znacznik weryfikacji musi mieć wartość true albo false."))
    return out or [finding("SCHEMA_INVALID", path, f"{what}: pole nie jest zgodne ze wzorem eksportu skanu.")]


def read_header(root: Any) -> ScanHeader:
    """The header of a parsed export, read leniently (the rest need not be valid).

    Raises :class:`ScanExportError` when the id, the receipt date or the image reference
    cannot be read — without them the pair can be neither stored nor checked.
    """
    if not is_scan_export(root):
        raise ScanExportError("not_scan_export", "Plik nie jest eksportem stanowiska skanowania (element główny „Skan”).")
    scan_id = (root.get("id") or "").strip()
    if not scan_id or len(scan_id) > 200 or any(ord(c) < 32 for c in scan_id):
        raise ScanExportError("no_id", "Eksport skanu nie ma identyfikatora skanu (atrybut „id”).")
    received_on = parse_xs_date(_text(root, "DataWplywu"))
    if received_on is None:
        raise ScanExportError("no_receipt_date", "Eksport skanu nie ma poprawnej daty wpływu (DataWplywu, RRRR-MM-DD).")
    obraz = root.find(_q("Obraz"))
    plik = (obraz.get("plik") if obraz is not None else None) or ""
    sha = ((obraz.get("sha256") if obraz is not None else None) or "").strip()
    if obraz is None or not plik:
        raise ScanExportError("no_image", "Eksport skanu nie wskazuje pliku obrazu (Obraz/@plik).")
    if not safe_file_name(plik):
        raise ScanExportError(
            "unsafe_image_name",
            "Nazwa pliku obrazu (Obraz/@plik) nie jest zwykłą nazwą pliku w tym samym folderze "
            "(zawiera ścieżkę, „..” albo znaki niedozwolone).",
        )
    if not _SHA256.fullmatch(sha):
        raise ScanExportError("no_image_hash", "Eksport skanu nie podaje poprawnego skrótu SHA-256 pliku obrazu (Obraz/@sha256).")
    pages = (obraz.get("strony") or "").strip()
    form = root.find(_q("Formularz"))
    return ScanHeader(
        scan_id=scan_id,
        received_on=received_on,
        image_file=plik,
        image_sha256=sha,
        image_pages=int(pages) if pages.isdigit() and len(pages) < 7 else None,
        batch=_text(root, "Partia"),
        scanned_at=_text(root, "DataSkanowania"),
        operator=_text(root, "Operator"),
        form_code=((form.get("kod") or "").strip() or None) if form is not None else None,
        form_version=((form.get("wersja") or "").strip() or None) if form is not None else None,
        handwritten_signature=parse_xs_boolean(_text(root, "PodpisWlasnoreczny")),
    )


def header_from_bytes(raw: bytes, *, max_bytes: int, limits: StructureLimits = DEFAULT_LIMITS) -> ScanHeader:
    """Parse ``raw`` safely, within the structural ``limits``, and read its header (the
    inbox's view of an export)."""
    try:
        root = parse_bounded(raw, max_bytes=max_bytes, limits=limits)
    except XmlRefused as exc:
        raise ScanExportError(f"xml_{exc.reason}", exc.message) from None
    return read_header(root)


def read_fields(root: Any) -> tuple[ScanField, ...]:
    """The recognised fields of a schema-valid export, in document order."""
    out: list[ScanField] = []
    pola = root.find(_q("Pola"))
    for pole in pola.iterchildren(_q("Pole")) if pola is not None else ():
        try:
            confidence = Decimal((pole.get("pewnosc") or "").strip())
        except InvalidOperation:  # the XSD makes this unreachable for a valid export
            confidence = Decimal(0)
        out.append(
            ScanField(
                name=(pole.get("nazwa") or "").strip(),
                value=(string_value(pole) or "").strip(),
                confidence=confidence,
                verified=parse_xs_boolean(pole.get("zweryfikowane")) is True,
            )
        )
    return tuple(out)


def read_export(root: Any) -> ScanExport:
    """A schema-valid export → :class:`ScanExport` (raises :class:`ScanExportError`)."""
    header = read_header(root)
    if not header.form_code or not header.form_version:
        raise ScanExportError("no_form", "Eksport skanu nie wskazuje rozpoznanego formularza (Formularz/@kod, @wersja).")
    return ScanExport(header, read_fields(root))


__all__ = [
    "SCAN_EXPORT",
    "SCAN_NS",
    "SCAN_ROOT",
    "ScanExport",
    "ScanExportError",
    "ScanField",
    "ScanHeader",
    "filing_time",
    "header_from_bytes",
    "is_scan_export",
    "parse_xs_boolean",
    "parse_xs_date",
    "read_export",
    "read_fields",
    "read_header",
    "safe_file_name",
    "validate_export",
]
