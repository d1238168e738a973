"""The scan inbox: scanned paper forms in, durably stored, then moved out of the inbox.

The capture station writes, per form, ``NAME.pdf`` (the page images) and then ``NAME.xml``
(the recognised data), the XML last and atomically, so an XML that exists is complete.
One pass of :func:`scan_inbox` looks at every ``*.xml`` in the inbox, in name order:

1. The XML's header is read (safe parser; only the id, the receipt date and the image
   reference are needed here — the rest is judged by processing, so a pair whose content is
   not schema-valid is still stored and shows up as a REJECTED declaration). An XML whose
   header cannot be read is quarantined at once, with ``NAME.pdf`` if there is one.
2. A pair already stored (the same scan id with the same XML bytes) is recognised and
   only moved to the archive — also when its PDF has already gone (a crash between the
   two moves): its PDF was stored before the document was.
   The same scan id with *different* XML bytes is not silently dropped as a duplicate:
   the new pair is quarantined (``scan_id_conflict``) for the office to look at.
3. The PDF named by ``Obraz/@plik`` (a plain name in the same folder) must be there with the
   SHA-256 the XML gives. If not, the pair is not ready yet (``waiting``) — unless the XML
   is older than ``scans.incomplete_grace_s`` (by its modification time): then the pair is
   quarantined with the reason.
   A PDF larger than ``scans.max_image_bytes`` is never read (not even hashed): the pair is
   quarantined at once (``image_too_large``).
4. A ready pair: the PDF is stored durably, streamed (``DocumentStore.put_file``: copied
   and hashed a MiB at a time, never whole in memory), then the XML — its bytes
   exactly — through :meth:`worker.intake.Intake.store` (channel ``PAPER``, source reference
   ``scan:<id>``, filing time = ``DataWplywu`` at midnight in Poland, the header and the
   PDF's hash, storage key, name and pages in the metadata, source ``scan-inbox``). Only
   after it returns are the files moved to the archive: the PDF first, the XML last (while
   the XML is in the inbox the pair is not done; a crash in between is finished by the
   next pass, see 2).

Nothing in the inbox is ever deleted: files are moved by an atomic rename under the same
name into ``archive`` or ``quarantine`` (a name already there gets a ``.1``, ``.2``…
suffix before the extension, the same for both files of a pair; nothing is overwritten).
A quarantined XML gets ``NAME.reason.txt`` beside it: an English key and a Polish reason.
A PDF without an XML is left alone (the station is still writing, or the office put it
there by hand); one older than the grace period is reported in the pass's log line
(``orphan_pdfs``) so the office notices it.

Logs (file names only, never content): ``scan.stored``, ``scan.duplicate``,
``scan.waiting``, ``scan.quarantined``, ``scan.error`` and one ``scan.pass`` per pass.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from adapters.db.tables import worker_document
from adapters.fsmodes import GROUP_DIR, GROUP_FILE, create_file, make_dirs
from adapters.storage import DocumentStore, fsync_dir
from worker.config import ScansConfig
from worker.domain.model import PAPER
from worker.errors import errno_text, file_error_text, is_disk_full, os_error_of
from worker.forms.structure import DEFAULT_LIMITS, StructureLimits
from worker.intake import Intake
from worker.scans.export import ScanExportError, ScanHeader, header_from_bytes

log = logging.getLogger(__name__)

#: the ``source`` of every document from the inbox (the worker's mailbox column)
SOURCE = "scan-inbox"
DEFAULT_MAX_XML_BYTES = 10 * 1024 * 1024

# English keys → Polish reasons of a quarantine
REASONS = {
    "pdf_missing": "Brak pliku obrazu (PDF) wskazanego w eksporcie skanu, także po upływie czasu oczekiwania.",
    "pdf_hash_mismatch": "Plik obrazu (PDF) ma inny skrót SHA-256 niż podany w eksporcie skanu, także po upływie "
    "czasu oczekiwania: obraz jest niekompletny albo nie należy do tego eksportu.",
    "scan_id_conflict": "Skan o tym identyfikatorze został już przyjęty z inną treścią eksportu. Nowego eksportu "
    "nie przyjęto; jeśli to poprawiony skan, stanowisko skanowania powinno nadać mu nowy identyfikator.",
    "not_regular_file": "Plik eksportu nie jest zwykłym plikiem (np. jest dowiązaniem).",
    "too_large": "Plik eksportu skanu jest większy niż dopuszczalny rozmiar dokumentu.",
    "unreadable": "Nie można odczytać pliku eksportu.",
    "image_not_pdf": "Obraz wskazany w eksporcie skanu nie jest plikiem PDF (inny rodzaj pliku albo inny eksport). "
    "Eksportu nie przyjęto; wskazanego pliku nie ruszano, chyba że to PDF tego eksportu.",
    "image_empty": "Plik obrazu (PDF) wskazany w eksporcie skanu jest pusty (0 bajtów).",
    "image_too_large": "Plik obrazu (PDF) wskazany w eksporcie skanu jest większy niż dopuszczalny rozmiar obrazu "
    "(scans.max_image_bytes); nie został przyjęty. Należy zeskanować formularz ponownie w mniejszej rozdzielczości "
    "albo zgłosić administratorowi.",
    "unsafe_file_name": "Nazwa pliku w skrzynce skanów jest niebezpieczna (nie jest poprawnym UTF-8, jest za długa "
    "albo zawiera znaki sterujące). Plik przeniesiono pod bezpieczną nazwą; pierwotna nazwa (z ucieczką znaków) "
    "jest podana niżej.",
}

#: longest file name (UTF-8 bytes) taken from the inbox: leaves room for the ``.N`` and
#: ``.reason.txt`` suffixes within the usual 255-byte limit of file systems
MAX_NAME_BYTES = 200


@dataclass
class ScanReport:
    stored: int = 0
    duplicates: int = 0
    waiting: int = 0
    quarantined: int = 0
    errors: int = 0
    orphan_pdfs: int = 0

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def as_dict(self) -> dict[str, int]:
        return {
            "stored": self.stored, "duplicates": self.duplicates, "waiting": self.waiting,
            "quarantined": self.quarantined, "errors": self.errors, "orphan_pdfs": self.orphan_pdfs,
        }


def ensure_folders(cfg: ScansConfig) -> None:
    """Create the inbox, archive and quarantine folders if missing. Raises ``ValueError``
    naming the key when one exists but is not a folder (or cannot be created)."""
    for key in ("inbox", "archive", "quarantine"):
        path = Path(getattr(cfg, key))
        if path.exists() and not path.is_dir():
            raise ValueError(f"scans.{key}: {path} nie jest folderem")
        try:
            # the inbox is shared with the capture station through the group (the unit's
            # tmpfiles make it 2770); the archive and the quarantine are the worker's
            make_dirs(path, 0o770 if key == "inbox" else GROUP_DIR)
        except OSError as exc:
            raise ValueError(f"scans.{key}: nie można utworzyć folderu {path}: {errno_text(exc.errno)}") from None


def inbox_counts(cfg: ScansConfig) -> dict[str, int]:
    """Files waiting in the inbox and pairs in quarantine (cheap: directory listings)."""
    def count(folder: Path, suffix: str) -> int:
        try:
            return sum(1 for p in folder.iterdir() if p.name.endswith(suffix) and not p.name.startswith("."))
        except OSError:
            return 0

    inbox, quarantine = Path(cfg.inbox), Path(cfg.quarantine)
    return {
        "inbox_xml": count(inbox, ".xml"),
        "inbox_pdf": count(inbox, ".pdf"),
        "quarantined": count(quarantine, ".xml"),
    }


def archived_copy(cfg: ScansConfig, name: str, sha256: str, size: int | None = None, *, limit: int = 100) -> Path | None:
    """Where a stored scan file lies in the archive: ``name`` or a suffixed ``name.N``
    (the archive never overwrites) with these bytes; None when it is not (or no longer)
    there. Reads only the candidates of the right size."""
    folder = Path(cfg.archive)
    for n in range(limit):
        candidate = folder / _suffixed(name, n)
        try:
            st = candidate.stat()
        except FileNotFoundError:
            if n > 0:
                return None
            continue
        except OSError:
            return None
        try:
            if (size is None or st.st_size == size) and _sha256_of(candidate) == sha256:
                return candidate
        except OSError:
            return None
    return None


def _sha256_of(path: Path) -> str:
    """A file's SHA-256, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_export_name(name: str) -> bool:
    """Only finished exports: ``NAME.xml``, not hidden, not a temporary name.

    >>> [_is_export_name(n) for n in ("a.xml", ".a.xml", "a.xml.tmp", "a.XML", "a.reason.txt", "~a.xml")]
    [True, False, False, True, False, False]
    """
    return name.lower().endswith(".xml") and not name.startswith((".", "~")) and len(name) > 4


def scan_inbox(
    cfg: ScansConfig,
    intake: Intake,
    store: DocumentStore,
    *,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    max_xml_bytes: int = DEFAULT_MAX_XML_BYTES,
    limits: StructureLimits = DEFAULT_LIMITS,
) -> ScanReport:
    """One pass over the inbox (see the module docstring). Never raises for a bad file:
    each problem is counted and logged, and the pass goes on with the next one."""
    report = ScanReport()
    now_ts = (now or datetime.now(UTC)).timestamp()
    inbox = Path(cfg.inbox)
    try:
        names = sorted(p.name for p in inbox.iterdir())
    except OSError as exc:
        log.error("scan inbox cannot be read", extra={"event": "scan.error", "error": exc.strerror or type(exc).__name__})
        report.errors += 1
        return report
    safe_names = []
    for name in names:
        problem = unsafe_name(name)
        if problem is None or name.startswith("."):
            safe_names.append(name)
            continue
        try:
            _quarantine_unsafe_name(cfg, inbox / name, problem, report, now_ts)
        except FileNotFoundError:
            pass  # gone meanwhile
        except Exception as exc:  # noqa: BLE001 - the file system: next pass tries again
            report.errors += 1
            log.error("file with an unsafe name could not be quarantined", extra={"event": "scan.error", "error": type(exc).__name__})
    names = safe_names
    referenced: set[str] = set()
    for name in names:
        if stop is not None and stop.is_set():
            break
        if not _is_export_name(name):
            continue
        try:
            _one(cfg, intake, store, inbox / name, now_ts, max_xml_bytes, report, referenced, limits)
        except FileNotFoundError:
            if (inbox / name).exists():
                raise
            # the export went away meanwhile (taken by hand, or by another pass): nothing to do
            log.info("scan export gone meanwhile", extra={"event": "scan.gone", "file": name})
        except Exception as exc:  # a database or file-system failure: next pass tries again
            report.errors += 1
            found = os_error_of(exc)
            disk = found is not None or is_disk_full(exc)
            log.error(
                "scan pair could not be taken in", exc_info=exc,
                extra={"event": "scan.error", "file": name, "error": type(exc).__name__,
                       "errno": found.errno if found is not None else (errno.ENOSPC if disk else None),
                       "error_text": file_error_text(exc) if disk else None},
            )
    for name in names:
        if name.lower().endswith(".pdf") and name not in referenced and not name.startswith("."):
            xml_twin = name[:-4] + ".xml"
            if xml_twin in names:
                continue
            try:
                age = now_ts - (inbox / name).stat().st_mtime
            except OSError:
                continue
            if age > cfg.incomplete_grace_s:
                report.orphan_pdfs += 1
    log.info("scan inbox pass done", extra={"event": "scan.pass", **report.as_dict()})
    return report


def _one(
    cfg: ScansConfig, intake: Intake, store: DocumentStore, xml: Path, now_ts: float, max_bytes: int,
    report: ScanReport, referenced: set[str], limits: StructureLimits = DEFAULT_LIMITS,
) -> None:
    inbox = xml.parent
    same_stem_pdf = inbox / (xml.name[:-4] + ".pdf")
    if xml.is_symlink() or not xml.is_file():
        _quarantine(cfg, xml, None, "not_regular_file", REASONS["not_regular_file"], report, now_ts)
        return
    st = xml.stat()
    if st.st_size > max_bytes:
        _quarantine(cfg, xml, same_stem_pdf, "too_large", REASONS["too_large"], report, now_ts)
        return
    raw = xml.read_bytes()
    try:
        header = header_from_bytes(raw, max_bytes=max_bytes, limits=limits)
    except ScanExportError as exc:
        _quarantine(cfg, xml, same_stem_pdf, exc.reason, exc.message, report, now_ts)
        return
    if not header.image_file.lower().endswith(".pdf") or header.image_file == xml.name:
        # the image names another export (or any non-PDF): that file is left alone
        _quarantine(cfg, xml, None, "image_not_pdf", REASONS["image_not_pdf"], report, now_ts)
        return
    pdf = inbox / header.image_file
    referenced.add(header.image_file)
    sha = DocumentStore.digest(raw)

    # already stored? (a re-delivered pair, or a crash between storing and moving)
    existing = _stored(intake, header.source_ref)
    if existing is not None:
        doc_id, stored_sha = existing
        if stored_sha != sha:
            _quarantine(cfg, xml, pdf, "scan_id_conflict", REASONS["scan_id_conflict"], report, now_ts)
            return
        _archive(cfg, xml, pdf)
        report.duplicates += 1
        log.info("scan pair already stored; moved to the archive",
                 extra={"event": "scan.duplicate", "document_id": doc_id, "file": xml.name, "channel": PAPER, "mailbox": SOURCE})
        return

    try:
        too_large = pdf.is_file() and not pdf.is_symlink() and pdf.stat().st_size > cfg.max_image_bytes
    except OSError:
        too_large = False
    if too_large:  # never read, not even hashed: it can only grow
        _quarantine(cfg, xml, pdf, "image_too_large", REASONS["image_too_large"], report, now_ts)
        return
    problem = _image_problem(pdf, header)
    if problem is not None:
        age = now_ts - st.st_mtime
        if age > cfg.incomplete_grace_s:
            _quarantine(cfg, xml, pdf, problem, REASONS[problem], report, now_ts)
        else:
            report.waiting += 1
            log.info("scan pair not complete yet", extra={"event": "scan.waiting", "file": xml.name, "reason": problem, "age_s": int(age)})
        return

    with pdf.open("rb") as fh:
        head = fh.read(5)
    if not head or head != b"%PDF-":  # complete (the hash agrees) but no PDF
        key = "image_empty" if not head else "image_not_pdf"
        _quarantine(cfg, xml, pdf, key, REASONS[key], report, now_ts)
        return
    size = pdf.stat().st_size
    stored = store.put_file(pdf, expected_sha256=header.image_sha256) if size <= cfg.max_image_bytes else None
    if stored is None:  # changed since it was checked (grown, or other bytes): not complete yet
        report.waiting += 1
        log.info("scan pair not complete yet", extra={"event": "scan.waiting", "file": xml.name, "reason": "pdf_hash_mismatch"})
        return
    pdf_sha, pdf_key = stored
    result = intake.store(
        channel=PAPER,
        source_ref=header.source_ref,
        raw=raw,
        filed_at=header.filed_at,
        metadata={
            "scan": header.to_metadata(),
            "pdf": {"sha256": pdf_sha, "storage_key": pdf_key, "name": header.image_file, "pages": header.image_pages, "size": size},
            "xml_file": xml.name,
        },
        mailbox=SOURCE,
    )
    _archive(cfg, xml, pdf)
    if result.created:
        report.stored += 1
        log.info("scan pair stored and moved to the archive",
                 extra={"event": "scan.stored", "document_id": result.document_id, "file": xml.name, "channel": PAPER, "mailbox": SOURCE})
    else:
        report.duplicates += 1
        log.info("scan pair already stored; moved to the archive",
                 extra={"event": "scan.duplicate", "document_id": result.document_id, "file": xml.name, "channel": PAPER, "mailbox": SOURCE})


def unsafe_name(name: str) -> str | None:
    r"""Why a file name in the inbox is not safe to handle (or None): not valid UTF-8 (the
    undecodable bytes arrive as surrogate escapes), too long, or with control characters.

    >>> unsafe_name("skan-1.xml"), unsafe_name("skan\udcff.xml"), unsafe_name("a\nb.pdf"), unsafe_name("x" * 201)
    (None, 'not_utf8', 'control_characters', 'too_long')
    """
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "not_utf8"
    if len(encoded) > MAX_NAME_BYTES:
        return "too_long"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "control_characters"
    return None


def escaped_name(name: str) -> str:
    r"""The original name for the reason file: printable, undecodable bytes as ``\\xNN``.

    >>> escaped_name("skan\udcff\n.xml")
    'skan\\xff\\x0a.xml'
    """
    raw = os.fsencode(name)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() and unicodedata.category(c) not in ("Cf",) else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)


def _quarantine_unsafe_name(cfg: ScansConfig, path: Path, problem: str, report: ScanReport, now_ts: float) -> None:
    if path.is_dir() and not path.is_symlink():
        return  # folders are not the station's: left alone
    original = os.fsencode(path.name)
    low = original.lower()
    ext = ".xml" if low.endswith(b".xml") else ".pdf" if low.endswith(b".pdf") else ".bin"
    safe = f"niebezpieczna-nazwa-{hashlib.sha256(original).hexdigest()[:16]}{ext}"
    folder = Path(cfg.quarantine)
    make_dirs(folder, GROUP_DIR)
    n = _free_suffix(folder, [safe, safe[: -len(ext)] + ".reason.txt"])
    reason_name = _suffixed(safe[: -len(ext)] + ".reason.txt", n)
    text = (
        "reason: unsafe_file_name\n"
        f"powód: {REASONS['unsafe_file_name']}\n"
        f"problem: {problem}\n"
        f"original_name: {escaped_name(path.name)}\n"
        f"file: {_suffixed(safe, n)}\n"
        f"at: {datetime.fromtimestamp(now_ts, UTC).isoformat()}\n"
    )
    _write_new(folder / reason_name, text.encode("utf-8"))
    _move(path, folder, _suffixed(safe, n))
    fsync_dir(folder, best_effort=True)
    fsync_dir(path.parent, best_effort=True)
    report.quarantined += 1
    log.warning("file with an unsafe name quarantined", extra={"event": "scan.quarantined", "file": _suffixed(safe, n), "reason": "unsafe_file_name"})


def _stored(intake: Intake, source_ref: str) -> tuple[int, str] | None:
    d = worker_document.c
    with intake.engine.connect() as conn:
        row = conn.execute(select(d.id, d.sha256).where(d.channel == PAPER, d.source_ref == source_ref)).first()
    return (row.id, row.sha256) if row is not None else None


def _image_problem(pdf: Path, header: ScanHeader) -> str | None:
    """``None`` when the PDF is there with the SHA-256 the export gives."""
    if pdf.is_symlink() or not pdf.is_file():
        return "pdf_missing"
    return None if _sha256_of(pdf) == header.image_sha256 else "pdf_hash_mismatch"


# --- moving files ------------------------------------------------------------------------


def _suffixed(name: str, n: int) -> str:
    """``a.xml``, 2 → ``a.2.xml``.

    >>> _suffixed("skan-1.xml", 0), _suffixed("skan-1.xml", 2), _suffixed("skan-1.reason.txt", 1)
    ('skan-1.xml', 'skan-1.2.xml', 'skan-1.reason.1.txt')
    """
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{n}.{ext}" if dot else f"{name}.{n}"


def _free_suffix(folder: Path, names: list[str]) -> int:
    """The smallest ``n`` such that no name of the pair exists in ``folder`` with it."""
    for n in range(0, 10_000):
        if not any((folder / _suffixed(x, n)).exists() for x in names):
            return n
    raise FileExistsError(f"no free name in {folder}")  # pragma: no cover


def _move(src: Path, folder: Path, name: str) -> Path:
    """Move ``src`` into ``folder`` as ``name`` (or the next free suffix), never overwriting:
    a hard link under the new name then the old one removed, both atomic; where hard links
    are not available, a rename (or a copy across file systems)."""
    n = 0
    while True:
        target = folder / _suffixed(name, n)
        try:
            os.link(src, target, follow_symlinks=False)
        except FileExistsError:
            n += 1
            continue
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if target.exists():
                n += 1
                continue
            shutil.move(str(src), str(target))
            return target
        os.unlink(src)
        return target



def _archive(cfg: ScansConfig, xml: Path, pdf: Path | None) -> None:
    folder = Path(cfg.archive)
    make_dirs(folder, GROUP_DIR)
    moving_pdf = pdf if pdf is not None and (pdf.is_file() or pdf.is_symlink()) else None
    names = [xml.name] + ([moving_pdf.name] if moving_pdf else [])
    n = _free_suffix(folder, names)
    if moving_pdf:
        _move(moving_pdf, folder, _suffixed(moving_pdf.name, n))
    _move(xml, folder, _suffixed(xml.name, n))  # the XML last: while it is in the inbox, the pair is not done
    fsync_dir(folder, best_effort=True)
    fsync_dir(xml.parent, best_effort=True)


def _quarantine(
    cfg: ScansConfig, xml: Path, pdf: Path | None, key: str, message: str, report: ScanReport, now_ts: float,
) -> None:
    folder = Path(cfg.quarantine)
    make_dirs(folder, GROUP_DIR)
    moving_pdf = pdf if pdf is not None and pdf != xml and (pdf.is_file() or pdf.is_symlink()) else None
    stem = xml.name[:-4]
    names = [xml.name, f"{stem}.reason.txt"] + ([moving_pdf.name] if moving_pdf else [])
    n = _free_suffix(folder, names)
    reason_name = _suffixed(f"{stem}.reason.txt", n)
    text = (
        f"reason: {key}\n"
        f"powód: {message}\n"
        f"file: {_suffixed(xml.name, n)}\n"
        f"pdf: {_suffixed(moving_pdf.name, n) if moving_pdf else '-'}\n"
        f"at: {datetime.fromtimestamp(now_ts, UTC).isoformat()}\n"
    )
    _write_new(folder / reason_name, text.encode("utf-8"))
    if moving_pdf:
        _move(moving_pdf, folder, _suffixed(moving_pdf.name, n))
    _move(xml, folder, _suffixed(xml.name, n))
    fsync_dir(folder, best_effort=True)
    fsync_dir(xml.parent, best_effort=True)
    report.quarantined += 1
    log.warning("scan pair quarantined", extra={"event": "scan.quarantined", "file": xml.name, "reason": key})


def _write_new(path: Path, data: bytes) -> None:
    with create_file(path, GROUP_FILE) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


__all__ = ["REASONS", "SOURCE", "ScanReport", "archived_copy", "ensure_folders", "inbox_counts", "scan_inbox"]
