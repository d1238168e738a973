"""Attachments sent by reference: fetched from ePUAP's file repository between storing the
document and confirming it (``spec/epuap.md``, "Attachments by reference").

For a document whose ``str:Zalacznik`` has ``kodowanie="URI"``, the pull (and
``import-package``) does::

    store the document                       -> FETCHING (not processed yet), its fileIds in meta
    for each fileId not recorded as settled:  (worker_remote_file, one row per fileId)
        downloadFile                         -> retried with back-off (epuap.max_attempts…)
        the bytes put into storage           -> content-addressed, fsync'd, with a note
                                                naming the fileId beside them
        [file_downloaded]
        recorded FETCHED in the database     -> the note is dropped
        [file_recorded]
    every file settled                       -> the document RECEIVED, with what each file
                                                was stored as (meta["referenced_files"])
        [released]
    confirm the document

Never twice: a file recorded FETCHED or UNAVAILABLE is never asked for again — not after a
crash, a reprocess, or when a second document links it. A crash after the bytes are stored
and before the database knows (``file_downloaded``) leaves the note: the next pass records
the file from it without a request. (Only a crash while the answer itself is in flight, or
between its arrival and the fsync, can cost the single download; the file is then
unavailable and the office asks the sender.)

Never blocking: a file that cannot be had — a Fault, the file already taken, above
``epuap.filerepo_max_file_bytes``, an answer that is not the interface's — is recorded
UNAVAILABLE with its reason after the retries of this pass; a repository that stays
unreachable (transport errors) is tried again in the next passes and given up after
``epuap.filerepo_max_passes`` passes. Until then the document stays in the mailbox
(unconfirmed) and FETCHING; then it is released and confirmed, and its processing gives
``ATTACHMENT_UNAVAILABLE`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from adapters.db.remote_files import FETCHED, PENDING, UNAVAILABLE, RemoteFile, RemoteFiles
from adapters.storage import DocumentStore
from worker.domain import attachments
from worker.domain.clock import utcnow
from worker.forms.safe_xml import DocumentTooLarge, XmlRefused, parse_untrusted

from .client import ResponseTooLarge
from .errors import EpuapConfigError, EpuapError, EpuapFault, EpuapStatusError, EpuapTransportError
from .filerepo import DownloadedFile, FileTooLarge

log = logging.getLogger(__name__)

__all__ = ["FETCHED", "PENDING", "UNAVAILABLE", "ReferencedFiles", "file_ids_of"]


def _checkpoint(name: str) -> None:
    """A named point between two steps of fetching a file (the crash tests kill the process here)."""


def file_ids_of(content: bytes, *, max_bytes: int = 64 * 1024 * 1024) -> list[str]:
    """The fileIds a document's attachments by reference link, in document order (read from
    the document as received, before its signature is verified: the fetched files are
    offered to the office only where the verified content links them). Nothing for a
    document that cannot be read as XML.

    >>> file_ids_of(b'<d xmlns:s="http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"><s:Zalacznik kodowanie="URI">'
    ...     b'<s:DaneZalacznika>https://x/DownloadServlet?fileId=77</s:DaneZalacznika></s:Zalacznik></d>')
    ['77']
    >>> file_ids_of(b"not xml")
    []
    """
    try:
        root = parse_untrusted(content, max_bytes=max_bytes)
    except (DocumentTooLarge, XmlRefused):
        return []
    return list(dict.fromkeys(link.file_id for link in attachments.links(root) if link.file_id is not None))


def _note_name(file_id: str) -> str:
    return hashlib.sha256(f"filerepo:{file_id}".encode()).hexdigest()


@dataclass
class FilesReport:
    """What fetching did during one pass."""

    downloaded: int = 0
    recovered: int = 0  # recorded from a note left by an interrupted run, without a request
    unavailable: int = 0
    requests: int = 0
    released: int = 0  # documents that stopped waiting
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"downloaded": self.downloaded, "recovered": self.recovered, "unavailable": self.unavailable,
                "requests": self.requests, "released": self.released}


class _Unsettled(Exception):
    """The file could not be had in this pass, but may be in a later one."""


class ReferencedFiles:
    """Fetches and records the files of documents that link them (one instance per pass or
    command; not thread-safe). ``client`` makes the file repository's client when first
    needed; ``lock`` (``PassLocks.hold``) keeps two processes from asking for one file at once."""

    LOCK = "epuap:filerepo"

    def __init__(self, ledger: RemoteFiles, store: DocumentStore, client: Callable[[], Any] | None, *,
                 max_attempts: int = 5, delay: Callable[[int], float] | None = None, max_passes: int = 3,
                 stop: threading.Event | None = None, lock: Callable[[str], AbstractContextManager[bool]] | None = None,
                 disabled_reason: str | None = None, clock: Callable[[], Any] = utcnow) -> None:
        self.ledger = ledger
        self.store = store
        self._make_client = client
        self._client: Any = None
        self.max_attempts = max(1, max_attempts)
        self.delay = delay or (lambda n: min(60.0, 2.0 ** (n - 1)) * random.uniform(0.5, 1.0))
        self.max_passes = max(1, max_passes)
        self.stop = stop or threading.Event()
        self.lock = lock
        self.disabled_reason = disabled_reason  # no repository to ask: every file is unavailable
        self.clock = clock
        self.report = FilesReport()
        self._failed_now: set[str] = set()  # unreachable in this pass: not asked again until the next

    @classmethod
    def for_config(cls, cfg: Any, ledger: RemoteFiles, store: DocumentStore, client: Callable[[], Any] | None, *,
                   stop: threading.Event | None = None, lock: Any = None, rng: random.Random | None = None) -> ReferencedFiles:
        from .pull import RetryPolicy

        policy = RetryPolicy.from_config(cfg)
        rng = rng or random.Random()
        return cls(ledger, store, client, max_attempts=policy.max_attempts, delay=lambda n: policy.delay(n, rng),
                   max_passes=int(getattr(cfg, "filerepo_max_passes", 3)), stop=stop, lock=lock,
                   disabled_reason=None if getattr(cfg, "enabled", False) else "disabled")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ReferencedFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- documents -------------------------------------------------------------------------

    def settle(self, document_id: int, subject: str, file_ids: list[str]) -> bool:
        """Fetch what is still pending of ``file_ids`` (linked by the document); when all are
        settled, release the document (FETCHING → RECEIVED). True: nothing is pending now."""
        if not file_ids:
            self.ledger.release(document_id, {})  # nothing to wait for (a no-op unless it is FETCHING)
            return True
        self.ledger.ensure(file_ids, subject, document_id, self.clock())
        records = self.ledger.get(file_ids)
        for file_id in file_ids:
            record = records.get(file_id)
            if record is None or record.settled or file_id in self._failed_now:
                continue
            if self.stop.is_set():
                break
            self._settle_file(record)
        records = self.ledger.get(file_ids)
        if not all(r.settled for r in records.values()) or len(records) < len(set(file_ids)):
            return False
        if self.ledger.release(document_id, records):
            _checkpoint("released")
            self.report.released += 1
            log.info("document's attachments by reference settled", extra={
                "event": "filerepo.released", "document_id": document_id,
                "fetched": sum(r.state == FETCHED for r in records.values()),
                "unavailable": sum(r.state == UNAVAILABLE for r in records.values())})
        return True

    def settle_waiting(self, source: str | None, subject: str | None = None) -> int:
        """Try again the documents of ``source`` still waiting for their files (stored by an
        earlier pass or by ``import-package``); how many are still waiting."""
        waiting = 0
        for document_id, file_ids in self.ledger.waiting_documents(source):
            if self.stop.is_set():
                return waiting + 1
            who = subject or (source or "/").strip("/").split("/")[0]
            if not self.settle(document_id, who, file_ids):
                waiting += 1
        return waiting

    # --- one file ----------------------------------------------------------------------------

    def _settle_file(self, record: RemoteFile) -> None:
        file_id = record.file_id
        note = self.store.get_note(_note_name(file_id))
        if note is not None and self._recover(record, note):
            return
        if self.disabled_reason is not None:
            self._unavailable(file_id, self.disabled_reason, "integracja z ePUAP jest wyłączona (epuap.enabled = false)")
            return
        guard = self.lock(self.LOCK) if self.lock is not None else nullcontext(True)
        with guard as mine:
            if not mine:  # another process is fetching a file right now: the next pass
                self._failed_now.add(file_id)
                return
            try:
                downloaded = self._download(file_id, record.subject)
            except _Unsettled as exc:
                self._failed_now.add(file_id)
                passes = self.ledger.failed_pass(file_id, str(exc), self.clock())
                if passes >= self.max_passes:
                    self._unavailable(file_id, "unreachable", str(exc))
                return
            if downloaded is not None:
                self._keep(downloaded)

    def _download(self, file_id: str, subject: str) -> DownloadedFile | None:
        """The file, or None when it is known that it cannot be had (recorded so); raises
        :class:`_Unsettled` when the repository could not be reached after the retries."""
        last: EpuapError | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                client = self._client_now()
                self.ledger.attempt(file_id, self.clock())  # committed before the request
                self.report.requests += 1
                return client.download(file_id, subject)
            except (FileTooLarge, ResponseTooLarge) as exc:
                self._unavailable(file_id, "too_large", str(exc))
                return None
            except EpuapError as exc:
                last = exc
                log.info("file repository call failed", extra={
                    "event": "filerepo.retry" if attempt < self.max_attempts else "filerepo.error", "file_id": file_id,
                    "attempt": attempt, "error": type(exc).__name__})
            if attempt < self.max_attempts and self.stop.wait(self.delay(attempt)):
                raise _Unsettled("Przerwano (zatrzymanie usługi) w trakcie ponawiania")
        assert last is not None
        if isinstance(last, EpuapTransportError | EpuapConfigError):
            raise _Unsettled(str(last))
        self._unavailable(file_id, "fault" if isinstance(last, EpuapFault | EpuapStatusError) else "invalid", str(last))
        return None

    def _client_now(self) -> Any:
        if self._client is None:
            if self._make_client is None:
                raise EpuapConfigError("Repozytorium plików ePUAP nie jest skonfigurowane (epuap.filerepo_endpoint)",
                                       "epuap.filerepo_endpoint")
            self._client = self._make_client()
        return self._client

    def _keep(self, f: DownloadedFile) -> None:
        """The bytes stored the moment they arrive, then remembered under their fileId."""
        sha, key = self.store.put(f.content)
        facts = {"file_id": f.file_id, "sha256": sha, "size": len(f.content), "storage_key": key, "filename": f.filename,
                 "mime_type": f.mime_type, "encoding": f.encoding, "detected_type": attachments.sniff(f.content)}
        self.store.put_note(_note_name(f.file_id), json.dumps(facts).encode("utf-8"))
        _checkpoint("file_downloaded")
        self._record(facts)
        self.report.downloaded += 1
        log.info("attachment by reference stored", extra={"event": "filerepo.fetched", "file_id": f.file_id,
                                                           "size": len(f.content)})

    def _record(self, facts: dict[str, Any]) -> None:
        self.ledger.fetched(facts["file_id"], sha256=facts["sha256"], size=facts["size"], storage_key=facts["storage_key"],
                            filename=facts.get("filename"), mime_type=facts.get("mime_type"), encoding=facts.get("encoding"),
                            detected_type=facts.get("detected_type"), now=self.clock())
        self.store.drop_note(_note_name(facts["file_id"]))
        _checkpoint("file_recorded")

    def _recover(self, record: RemoteFile, note: bytes) -> bool:
        """A note left by a run that stopped after storing the bytes: recorded from it when
        the stored bytes are still those it names."""
        try:
            facts = json.loads(note)
            data = self.store.get(str(facts["storage_key"]))
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if facts.get("file_id") != record.file_id or DocumentStore.digest(data) != facts.get("sha256"):
            return False
        self._record(facts)
        self.report.recovered += 1
        log.info("attachment by reference recorded from an interrupted run", extra={"event": "filerepo.recovered",
                                                                                     "file_id": record.file_id})
        return True

    def _unavailable(self, file_id: str, reason: str, error: str) -> None:
        self.ledger.unavailable(file_id, reason, error, self.clock())
        self.report.unavailable += 1
        self.report.errors.append(error)
        log.warning("attachment by reference unavailable", extra={"event": "filerepo.unavailable", "file_id": file_id,
                                                                  "reason": reason})
