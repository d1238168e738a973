"""``import-package``: ePUAP's mailbox export package taken in through the durable intake
(``spec/epuap.md``, "When the pull service cannot be used").

Each document of the package's descriptor is stored exactly as a pulled one would be
(channel EPUAP, source reference ``<mailbox>#<SHA-256>``, the filing time from
``DataNadania``), with who imported it (``meta["import"]`` and an ``IMPORTED`` audit
record): a document also delivered by the pull service, before or after, is the same
document — stored once, loaded once, and confirmed to ePUAP when the pull delivers it. Its
attachments sent by reference are fetched like a pulled document's (when the file
repository can be used; otherwise the daemon's next pull passes try them).

The archive is hostile input (``adapters.ziparchive``): every entry that is refused is
named with its reason; the rest is imported. Output: one line per document, a summary;
exit 0, or 1 when anything was refused.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from adapters.db import documents
from adapters.epuap.package import DESCRIPTOR, PackageRefused, entry_path, read_package
from adapters.epuap.referenced import file_ids_of
from adapters.ziparchive import ArchiveUnreadable, Limits, SafeZip
from worker.correspondence_cmd import clean
from worker.domain.clock import utcnow
from worker.errors import UsageError
from worker.output import EXIT_FAILURE, EXIT_OK

log = logging.getLogger("worker.package")

CHANNEL = "EPUAP"


def _digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def import_package(app: Any, path: Path, mailbox: str, user: str) -> int:
    cfg = app.config.epuap
    address = "/" + mailbox.strip().strip("/")
    if address not in {m.address for m in cfg.mailboxes}:
        configured = ", ".join(m.address for m in cfg.mailboxes) or "brak"
        raise UsageError(f"--mailbox: {mailbox} nie jest skonfigurowaną skrytką ePUAP (epuap.mailboxes: {configured}); "
                         "podaj adres w postaci /podmiot/skrytka")
    podmiot = address.strip("/").split("/")[0]
    if not path.is_file():
        raise UsageError(f"nie ma pliku {path} (podaj ścieżkę do paczki ZIP pobranej z ePUAP)")
    package_sha = _digest(path)
    now = utcnow()
    print(f"Import paczki {clean(path.name, 200)} do skrytki {address} (importuje: {clean(user, 100)})")
    stored = known = refused = refused_entries = skipped = 0
    waiting: list[tuple[int, list[str], str]] = []
    try:
        archive = SafeZip(path, Limits.from_config(cfg))
    except ArchiveUnreadable as exc:
        print(f"  ODRZUCONO całą paczkę: {exc}")
        return _summary(0, 0, 0, 1, 0, address)
    with archive:
        named: set[str] = {DESCRIPTOR.casefold()}
        try:
            for item in read_package(archive):
                named.add("/".join(p for p in item.path.replace("\\", "/").split("/") if p not in ("", ".")).casefold())
                where = f"  [{item.index}] {clean(item.path or '(brak ścieżki)', 200)}"
                if item.refused is None and item.mailbox != address:
                    item.refused = (f"dokument ze skrytki {clean(item.mailbox or '(brak AdresSkrytki)', 200)}, "
                                    f"a import dotyczy skrytki {address}")
                if item.refused is not None or item.content is None:
                    refused += 1
                    print(f"{where}: ODRZUCONO — {item.refused}")
                    continue
                content = item.content
                file_ids = file_ids_of(content)
                meta = {**item.metadata, "import": {"package": path.name[:300], "package_sha256": package_sha,
                                                    "entry": item.path[:500], "user": user[:100], "at": now.isoformat()}}
                if file_ids:
                    meta["files_by_reference"] = file_ids
                result = app.intake.store(channel=CHANNEL, source_ref=f"{address}#{meta['sha256']}", raw=content,
                                          filed_at=item.filed_at, metadata=meta, mailbox=address,
                                          **({"awaiting": True} if file_ids else {}))
                if result.created:
                    stored += 1
                    documents.record_imported(app.engine, result.document_id, actor=user, at=now,
                                              note=f"paczka eksportu skrytki {path.name[:200]} (SHA-256 {package_sha})")
                    print(f"{where}: zapisano jako dokument #{result.document_id}")
                else:
                    known += 1
                    print(f"{where}: już znany (dokument #{result.document_id}) — nie zapisano ponownie")
                if file_ids:
                    waiting.append((result.document_id, file_ids, where))
        except PackageRefused as exc:
            print(f"  ODRZUCONO całą paczkę: {exc}")
            return _summary(stored, known, refused, 1, 0, address)
        for entry in archive.files():
            if "/".join(entry.parts).casefold() in named:
                continue
            if entry.refused is not None:
                refused_entries += 1
                print(f"  pozycja archiwum {clean(entry_path(entry), 200)}: ODRZUCONO — {entry.refused}")
            else:
                skipped += 1
                print(f"  pozycja archiwum {clean(entry_path(entry), 200)}: pominięto (nie wymieniona w {DESCRIPTOR})")
    if waiting:
        _fetch_files(app, address, podmiot, waiting)
    log.info("package imported", extra={"event": "package.imported", "mailbox": address, "stored": stored, "known": known,
                                        "refused": refused, "refused_entries": refused_entries, "skipped": skipped})
    return _summary(stored, known, refused, refused_entries, skipped, address)


def _fetch_files(app: Any, address: str, podmiot: str, waiting: list[tuple[int, list[str], str]]) -> None:
    """The attachments by reference of the imported documents, now when the repository can
    be used; otherwise the daemon's pull passes fetch them (or give them up)."""
    cfg = app.config.epuap
    with app.locks.hold(f"epuap:{address}") as mine:
        if not mine:
            print(f"  Załączniki przekazane przez odniesienie ({len(waiting)} dok.): skrytkę pobiera teraz inny proces — "
                  "pobierze je najbliższy przebieg pobierania z ePUAP.")
            return
        client = None
        if cfg.enabled:
            from adapters.epuap.filerepo import FileRepoClient

            def client() -> Any:
                return FileRepoClient.for_config(cfg)

        with app.referenced_files(client) as fetcher:
            for document_id, file_ids, where in waiting:
                try:
                    done = fetcher.settle(document_id, podmiot, file_ids)
                except Exception as exc:  # noqa: BLE001 - the document is stored; the daemon tries again
                    log.warning("fetching attachments by reference failed", extra={
                        "event": "filerepo.settle_failed", "document_id": document_id, "error": type(exc).__name__})
                    done = False
                if done:
                    print(f"{where}: załączniki przekazane przez odniesienie: {len(file_ids)} (pobrane lub opisane jako niedostępne)")
                else:
                    print(f"{where}: czeka na załączniki z repozytorium plików ePUAP (pobierze je najbliższy przebieg pobierania)")


def _summary(stored: int, known: int, refused: int, refused_entries: int, skipped: int, address: str) -> int:
    print(f"Podsumowanie ({address}): zapisane {stored}, już znane {known}, odrzucone dokumenty {refused}, "
          f"odrzucone pozycje archiwum {refused_entries}, pominięte pozycje {skipped}.")
    if refused or refused_entries:
        print("Odrzucone pozycje nie zostały zaimportowane (powody powyżej); pozostałe dokumenty są zapisane i zostaną przetworzone.")
        return EXIT_FAILURE
    return EXIT_OK
