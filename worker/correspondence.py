"""Correspondence reaches the office (``spec/operations.md``, "Correspondence").

A document kept as correspondence (``kind`` CORRESPONDENCE: an ePUAP letter whose root is
no declaration form, a paper scan the station did not recognise as a declaration; TEST
submissions only with ``correspondence.include_test_documents``) is *handed over*: a folder
``<outbox>/<YYYY-MM-DD of filing, Polish time>/<document id>/`` with ``dokument.<ext>`` (the
bytes as received), ``metadane.json`` and ``zalaczniki/``, written atomically
(``adapters.outbox``), then recorded in ``worker_correspondence``.

Exactly once: the folder is written before the row; a crash between the two leaves a
folder whose ``metadane.json`` names the same document and SHA-256, which the next pass
recognises and only records. A folder that exists with other content is never
overwritten: that is an error the operator sees. An unwritable outbox is recorded on the
item (attempts, last error), logged, shown by ``status`` and retried with backoff.

Attachments are decoded from the verified content only (``Context.signed_root``): for
correspondence the signature is verified after ``identify`` by :func:`finish_analysis`.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.db import documents, handover, reports
from adapters.outbox import OutboxError, Written, write_folder
from adapters.storage import DocumentStore
from adapters.ziparchive import ArchiveUnreadable, Limits, SafeZip
from worker.domain.attachments import extract, safe_name
from worker.domain.clock import WARSAW, utcnow
from worker.domain.findings import INFO, Finding, finding
from worker.domain.model import EPUAP
from worker.errors import describe_technical_error
from worker.forms.safe_xml import DocumentTooLarge, XmlRefused, parse_untrusted
from worker.pipeline import CORRESPONDENCE, DECLARATION, Context
from worker.signatures import INDETERMINATE, VALID, verify_document

log = logging.getLogger(__name__)

POLISH = WARSAW
TEST = "TEST"
METADATA_FILE = "metadane.json"
ATTACHMENTS_DIR = "zalaczniki"


def _checkpoint(name: str) -> None:
    """A named point between two steps of a hand-over (the tests crash exactly there)."""


def local(t: datetime | None) -> str:
    """``2025-09-01 10:15`` in Polish time, ``—`` when unknown."""
    return t.astimezone(POLISH).strftime("%Y-%m-%d %H:%M") if t is not None else "—"


# --- the analysis: signature of correspondence, attachments -----------------------------


def finish_analysis(ctx: Context) -> Context:
    """After the stages: verify the signature of ePUAP correspondence (the pipeline halts
    at ``identify`` before the signature stage) and decode the attachments of the verified
    content, for every kind of document. A broken attachment is an informational
    ``ATTACHMENT_UNREADABLE`` finding, never an exception."""
    if ctx.kind == CORRESPONDENCE and ctx.channel == EPUAP and ctx.signature is None and ctx.settings.trust is not None:
        result = verify_document(ctx.raw, ctx.settings.trust, filed_at=ctx.filed_at, parsed=ctx.root, budget=ctx.budget)
        ctx.signature = result
        if result.status in (VALID, INDETERMINATE):
            ctx.signed_root = result.signed_root
    if ctx.signed_root is not None:
        referenced = ctx.metadata.get("referenced_files")
        ctx.attachments = extract(ctx.signed_root, max_bytes=ctx.settings.max_attachment_bytes,
                                  referenced=referenced if isinstance(referenced, dict) else None)
        for a in ctx.attachments:
            where = f"Zalaczniki/Zalacznik[{a.index}]"
            if a.unavailable:
                # the office asks the sender for it: a declaration waits for review, a letter is handed over with the note
                ctx.add(finding("ATTACHMENT_UNAVAILABLE", where, f"Załącznik {a.index}: {a.problem}",
                                severity=None if ctx.kind == DECLARATION else INFO))
            elif a.problem:
                ctx.add(finding("ATTACHMENT_UNREADABLE", where, f"Załącznik {a.index}: {a.problem}"))
    return ctx


# --- building an item --------------------------------------------------------------------


@dataclass
class Item:
    """One document ready to be written: its folder (relative) and files."""

    document_id: int
    folder: str
    files: dict[str, bytes]
    metadata: dict[str, Any]
    ctx: Context | None = field(default=None, repr=False)


def _extension(meta: dict[str, Any], is_xml: bool) -> str:
    """``xml`` for what was read as XML (every letter, every scan export); otherwise from
    ePUAP's ``typPliku`` for the few types known. Never from the sender's file name."""
    if is_xml:
        return "xml"
    typ = str(meta.get("typPliku") or "").split(";")[0].strip().lower()
    return {"application/pdf": "pdf", "text/plain": "txt", "application/xml": "xml", "text/xml": "xml"}.get(typ, "bin")


def _signature_summary(sig: Any) -> dict[str, Any] | None:
    if sig is None:
        return None
    if hasattr(sig, "signer_name"):
        t = getattr(sig, "signing_time", None)
        return {"status": sig.status, "kind": sig.kind, "signer": sig.signer_name, "signing_time": t.isoformat() if t else None}
    return {"kind": getattr(sig, "kind", None), "status": getattr(sig, "status", None)}


def folder_of(doc: Any) -> str:
    when = doc["filed_at"] or doc["received_at"]
    return f"{when.astimezone(POLISH):%Y-%m-%d}/{doc['id']}"


def build_item(app: Any, doc: Any) -> Item:
    """Read the document back from storage, analyse it again (the verified content and
    its attachments) and lay out its folder."""
    raw = app.store.get(doc["storage_key"])
    if DocumentStore.digest(raw) != doc["sha256"]:
        raise OutboxError(f"stored bytes of document {doc['id']} do not match their SHA-256")
    meta = doc["meta"] or {}
    ctx = reread(app, doc, raw)
    doc_file = f"dokument.{_extension(meta, ctx.root is not None or doc['channel'] == 'PAPER')}"
    files: dict[str, bytes] = {doc_file: raw}
    attachments = []
    used: set[str] = set()
    for a in ctx.attachments:
        summary = a.summary()
        data = attachment_data(app.store, a)
        if data is not None:
            used.add(a.name.casefold())
            files[f"{ATTACHMENTS_DIR}/{a.name}"] = data
            summary["file"] = f"{ATTACHMENTS_DIR}/{a.name}"
        attachments.append(summary)
    unpack_zip_attachments(ctx.attachments, attachments, files, used, app.settings.max_attachment_bytes)
    pdf = meta.get("pdf") if isinstance(meta.get("pdf"), dict) else None
    if pdf and pdf.get("storage_key"):  # a paper letter: the page images are what the office reads
        image = app.store.get(pdf["storage_key"])
        if DocumentStore.digest(image) != pdf.get("sha256"):
            raise OutboxError(f"stored scan image of document {doc['id']} does not match its SHA-256")
        name = safe_name(pdf.get("name") or "skan.pdf", used, fallback="skan.pdf")
        files[f"{ATTACHMENTS_DIR}/{name}"] = image
        attachments.append({
            "index": len(attachments) + 1, "file": f"{ATTACHMENTS_DIR}/{name}", "original_name": pdf.get("name"),
            "declared_type": "application/pdf", "detected_type": "application/pdf" if image.startswith(b"%PDF-") else None,
            "size": len(image), "sha256": pdf.get("sha256"), "description": "obraz skanu (strony pisma)", "problem": None,
        })
    filed = doc["filed_at"]
    metadata = {
        "document_id": doc["id"],
        "kind": doc["kind"],
        "channel": doc["channel"],
        "mailbox": doc["source"],
        "source_ref": doc["source_ref"],
        "filed_at": filed.astimezone(POLISH).isoformat() if filed else None,
        "received_at": doc["received_at"].astimezone(POLISH).isoformat(),
        "sender": meta.get("daneNadawcy"),
        "danePodmiotu": meta.get("danePodmiotu"),
        "adresOdpowiedzi": meta.get("adresOdpowiedzi"),
        "nazwaPliku": meta.get("nazwaPliku"),
        "typPliku": meta.get("typPliku"),
        "identyfikatorDokumentu": meta.get("identyfikatorDokumentu"),
        "test": meta.get("czyTestowe") is True,
        "scan": meta.get("scan"),
        "file": doc_file,
        "size": len(raw),
        "sha256": doc["sha256"],
        "signature": _signature_summary(ctx.signature),
        "findings": [f.to_dict() for f in ctx.findings],
        "attachments": attachments,
    }
    files[METADATA_FILE] = (json.dumps(metadata, ensure_ascii=False, indent=1, default=str) + "\n").encode("utf-8")
    return Item(doc["id"], folder_of(doc), files, metadata, ctx)


def attachment_data(store: DocumentStore, a: Any) -> bytes | None:
    """An attachment's bytes: decoded from the document, or — sent by reference — the file
    fetched from ePUAP's repository, read back from storage and checked against its SHA-256."""
    if a.data is not None:
        return bytes(a.data)
    if a.storage_key is None:
        return None
    data = store.get(a.storage_key)
    if DocumentStore.digest(data) != a.stored_sha256:
        raise OutboxError(f"stored bytes of the attachment by reference {a.file_id} do not match their SHA-256")
    return data


def _is_zip(a: Any, data: bytes) -> bool:
    """A ZIP the sender attached as such (not an office document, which is a ZIP inside)."""
    declared = (a.declared_type or "").split(";")[0].strip()
    named = (a.original_name or a.name or "").lower().endswith(".zip")
    return data.startswith(b"PK\x03\x04") and (declared in ("application/zip", "application/x-zip-compressed") or named)


def unpack_zip_attachments(found: list[Any], summaries: list[dict[str, Any]], files: dict[str, bytes], used: set[str],
                           max_bytes: int) -> None:
    """Every ZIP attachment of ``files`` also unpacked beside it, into ``zalaczniki/<name>/``:
    its entries' names decoded (UTF-8 when flagged, else CP852 — ZIPs made on Polish
    Windows), each path component made safe, hostile entries (``..``, links, bombs, duplicates)
    left out and listed with the reason in the attachment's ``unpacked`` list."""
    for a, summary in zip(found, summaries, strict=False):
        path = summary.get("file")
        data = files.get(path) if path else None
        if data is None or not _is_zip(a, data):
            continue
        folder = safe_name(a.name.rsplit(".", 1)[0] + "-rozpakowany", used)
        listing: list[dict[str, Any]] = []
        try:
            archive = SafeZip(io.BytesIO(data), Limits(max_entries=1000, max_entry_bytes=max_bytes, max_total_bytes=4 * max_bytes))
        except ArchiveUnreadable as exc:
            summary["unpacked"] = [{"name": None, "file": None, "size": None, "problem": str(exc)}]
            continue
        with archive:
            used_in: dict[tuple[str, ...], set[str]] = {}  # the names taken in each (safe) folder
            folders: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}  # a folder of the archive → its safe path
            for entry in archive.files():
                item: dict[str, Any] = {"name": entry.name[:300], "file": None, "size": None, "problem": entry.refused}
                if entry.refused is None:
                    try:
                        content = archive.read(entry)
                    except ValueError as exc:
                        item["problem"] = str(exc)
                    else:
                        for i in range(1, len(entry.parts)):
                            if entry.parts[:i] not in folders:
                                parent = folders[entry.parts[:i - 1]]
                                folders[entry.parts[:i]] = (*parent, safe_name(entry.parts[i - 1], used_in.setdefault(parent, set())))
                        parent = folders[entry.parts[:-1]]
                        parts = (*parent, safe_name(entry.parts[-1], used_in.setdefault(parent, set())))
                        target = "/".join([ATTACHMENTS_DIR, folder, *parts])
                        files[target] = content
                        item.update(file=target, size=len(content))
                listing.append(item)
        summary["unpacked"] = listing


def reread(app: Any, doc: Any, raw: bytes) -> Context:
    """A stored correspondence document read again for its hand-over: parsed safely, its
    signature verified and its attachments decoded (:func:`finish_analysis`), without
    running the pipeline again; the findings are those processing recorded."""
    ctx = Context(raw=raw, channel=doc["channel"], filed_at=doc["filed_at"], metadata=doc["meta"] or {},
                  settings=app.settings, document_id=doc["id"])
    ctx.kind = doc["kind"] or CORRESPONDENCE
    if doc["channel"] == EPUAP and ctx.kind == CORRESPONDENCE:
        try:
            ctx.root = parse_untrusted(raw, max_bytes=app.settings.max_document_bytes)
        except (DocumentTooLarge, XmlRefused):
            ctx.root = None  # cannot happen for correspondence (it was parsed), handed over raw anyway
        if ctx.root is not None:
            finish_analysis(ctx)
    ctx.findings = [Finding.from_dict(f) for f in doc["findings"] or []]
    return ctx


def _is_same_item(path: Path, item: Item) -> bool:
    try:
        existing = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return existing.get("document_id") == item.document_id and existing.get("sha256") == item.metadata["sha256"]


# --- the hand-over pass -----------------------------------------------------------------


def handed_over_kinds(app: Any) -> tuple[str, ...]:
    return (CORRESPONDENCE, TEST) if app.config.correspondence.include_test_documents else (CORRESPONDENCE,)


@dataclass
class HandoverReport:
    handed_over: int = 0
    recognised: int = 0  # folder already there from an interrupted hand-over: only recorded
    failed: int = 0
    waiting: int = 0  # not yet due again after a failure
    last_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        return {"handed_over": self.handed_over, "recognised": self.recognised, "failed": self.failed, "waiting": self.waiting}


def _due(row: Any, now: datetime, app: Any) -> bool:
    attempts = row["handover_attempts"] or 0
    last = row["handover_last_attempt_at"]
    if not attempts or last is None:
        return True
    cfg = app.config.processing
    delay = min(cfg.retry_max_s, cfg.retry_initial_s * (2 ** (attempts - 1)))
    return last + timedelta(seconds=delay) <= now


def hand_over_pending(app: Any, *, stop: threading.Event | None = None, force: bool = False, clock=utcnow) -> HandoverReport:
    """Hand over every pending item (``force``: also those waiting after a failure)."""
    report = HandoverReport()
    with app.engine.connect() as conn:
        pending = handover.pending(conn, handed_over_kinds(app))
    for row in pending:
        if stop is not None and stop.is_set():
            break
        if not force and not _due(row, clock(), app):
            report.waiting += 1
            continue
        try:
            with app.engine.connect() as conn:
                doc = documents.get(conn, row["id"])
            written = hand_over(app, doc, clock=clock)
        except Exception as exc:  # a technical state of this item: recorded, logged, retried
            # an outbox error names the folder and the OS error; anything else only its type,
            # table and code location (a database error's text carries personal data)
            error = str(exc) if isinstance(exc, OutboxError) else describe_technical_error(exc).text()
            report.failed += 1
            report.last_error = error
            handover.record_failure(app.engine, row["id"], error, clock())
            log.error("correspondence could not be handed over (retried)",
                      extra={"event": "correspondence.outbox_error", "document_id": row["id"], "error": error[:500]})
            if isinstance(exc, OutboxError) and isinstance(exc.__cause__, OSError):
                break  # the outbox itself cannot be written: the others wait for the next pass
            continue
        if written.created:
            report.handed_over += 1
        else:
            report.recognised += 1
    if report.handed_over or report.recognised or report.failed:
        log.info("correspondence pass done", extra={"event": "correspondence.pass", **report.as_dict()})
    return report


def hand_over(app: Any, doc: Any, *, clock=utcnow) -> Written:
    """Write one document's folder (or recognise it) and record it."""
    item = build_item(app, doc)
    root = Path(app.config.correspondence.outbox)
    written = write_folder(root, item.folder, item.files, group_readable=app.config.correspondence.outbox_group_readable)
    if not written.created and not _is_same_item(written.path, item):
        raise OutboxError(f"folder {item.folder} już jest w skrzynce biura z inną zawartością; niczego nie nadpisano")
    _checkpoint("folder_written")
    handover.record_handed_over(app.engine, item.document_id, item.folder, clock())
    log.info(
        "correspondence handed over" if written.created else "correspondence folder already in the outbox: recorded",
        extra={"event": "correspondence.handed_over", "document_id": item.document_id, "channel": doc["channel"],
               "mailbox": doc["source"], "folder": item.folder, "attachments": len(item.metadata["attachments"]), "recognised": not written.created},
    )
    return written


def status_counts(app: Any, conn: Any) -> dict[str, Any]:
    """For the status snapshot: items pending hand-over, handed over, and the outbox's last
    error (of an item still pending), if any."""
    return reports.handover_counts(conn, handed_over_kinds(app))
