"""The ePUAP pull loop: fetch → store durably → confirm, per mailbox, exactly once.

One pass over a mailbox::

    repeat until the queue is empty (kod 0) or ``batch_limit`` documents were confirmed:
        pobierzNastepny                      -> the head of the queue
        sink.store(raw bytes + metadata)     -> durable (a re-delivery is recognised: created=False)
        potwierdzOdebranie(skrot=SHA-1)      -> only now may ePUAP forget it

Round trips: 2 per document plus one final ``pobierzNastepny`` answering ``kod`` 0.
``oczekujaceDokumenty`` is not needed for draining (the empty-queue answer ends the pass and
costs the same one round trip a count would); it is called once, only when the batch limit
stops a pass early, to report how many documents remain. Since ePUAP keeps returning the
head until it is confirmed, fetching the next document cannot overlap the confirmation of
the current one: the protocol bound is 1/(2·RTT) documents per second per mailbox.

Failures: every ePUAP error (transport, timeout, Fault, status kod ≠ 1, bad signature,
malformed answer) is retried after an exponential back-off with jitter, at most
``max_attempts`` consecutive failures; then the mailbox's pass ends with the reason in its
report (``gave_up``) and the next scheduled pass starts over. A failed confirmation is not
retried blindly: the loop fetches again — if the same document comes back (the confirmation
did not happen) it is recognised as already stored and confirmed again; if another one (or
none) comes back, the confirmation had happened and only its reply was lost. Nothing is
confirmed before ``store`` returned, so no document can be lost; nothing is stored twice.
A failure of the store itself ends the mailbox's pass without confirming.

Attachments sent by reference (``kodowanie="URI"``): with ``files`` (:mod:`.referenced`),
a document that links such files is stored FETCHING, its files are downloaded and stored
(each once, remembered by fileId), and only then is it released for processing and
confirmed. A file that cannot be had never blocks the mailbox (it is recorded unavailable);
while the file repository is unreachable the document stays unconfirmed for at most
``filerepo_max_passes`` passes (the pass ends early, the mailbox is not reported blocked).
At the start of each pass the documents of the mailbox still waiting for their files are
tried again.

Blocked mailbox: content a sender put into a document never stops the loop (an empty or
non-base64 ``zawartosc`` is stored and confirmed like any other document; processing rejects
it). Only an answer that cannot be attributed to a document — unsigned or badly signed,
unparseable, too large, an unexpected status — or a failing store can keep the head of the
queue unconfirmed. When such a failure exhausts the retries, the pass reports the mailbox as
*blocked* (``report.blocked``, the ``epuap.mailbox_blocked`` event at ERROR, and
``blocked_since``/``blocked_reason`` in ``status``) until a pass succeeds again. ePUAP being
unreachable (transport errors, SOAP Faults) is not a block: the pass just ends early.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import requests

from adapters.db.errors import database_lost
from worker.errors import describe_technical_error, file_error_text, is_disk_full, os_error_of

from .client import FetchedDocument, MailboxLike, PullClient
from .errors import EpuapConfigError, EpuapError, EpuapFault, EpuapTransportError
from .filerepo import FileRepoClient
from .referenced import ReferencedFiles, file_ids_of

log = logging.getLogger(__name__)

CHANNEL = "EPUAP"
MAX_ERRORS_KEPT = 50


class StoreResultLike(Protocol):
    @property
    def document_id(self) -> int: ...

    @property
    def created(self) -> bool: ...


class DocumentSink(Protocol):
    """The durable store (``worker.intake.Intake`` implements it)."""

    def store(self, *, channel: str, source_ref: str, raw: bytes, filed_at: datetime | None,
              metadata: dict[str, Any], mailbox: str | None = None) -> StoreResultLike: ...

    def record_pull(self, mailbox: str, at: datetime, error: str | None = None, blocked: str | None = None,
                    error_kind: str | None = None) -> None: ...


#: what a pass's failure was (``MailboxReport.error_kind``, ``worker_mailbox.error_kind``)
EPUAP_ERROR, STORAGE_ERROR, DATABASE_ERROR, CONFIG_ERROR = "epuap", "storage", "database", "config"


@dataclass
class MailboxReport:
    """What one pass did for one mailbox."""

    mailbox: str
    fetched: int = 0  # documents received (a re-delivery counts again)
    stored_new: int = 0
    duplicates: int = 0  # received again, recognised as already stored
    confirmed: int = 0  # confirmations known to have happened (incl. inferred after a lost reply)
    test_documents: int = 0  # czyTestowe among the new ones
    errors: list[str] = field(default_factory=list)  # every failure met, retried or not
    retries: int = 0
    drained: bool = False  # the pass ended on an empty queue
    remaining: int | None = None  # documents still waiting, when the batch limit ended the pass
    gave_up: str | None = None  # why the pass ended early (None: it succeeded)
    blocked: str | None = None  # the head of the queue could not be taken in after the retries
    error_kind: str | None = None  # what made the pass fail: epuap, storage (the worker's disk), database, config
    busy: bool = False  # skipped: another process holds this mailbox's pull lock
    round_trips: int = 0
    started_at: datetime | None = None
    duration_s: float = 0.0
    last_success_at: datetime | None = None  # set when this pass succeeded
    # the database refused the document (lost, or full: SQLite on a full disk): the daemon
    # takes it as an outage of its database (one database.unavailable), not as the mailbox's
    database_refused: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.gave_up is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox, "ok": self.ok, "fetched": self.fetched, "stored_new": self.stored_new,
            "duplicates": self.duplicates, "confirmed": self.confirmed, "test_documents": self.test_documents,
            "errors": list(self.errors), "retries": self.retries, "drained": self.drained,
            "remaining": self.remaining, "gave_up": self.gave_up, "blocked": self.blocked, "error_kind": self.error_kind,
            "busy": self.busy, "round_trips": self.round_trips,
            "duration_s": round(self.duration_s, 3),
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
        }


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with "equal jitter": the n-th consecutive failure waits a random
    time in [d/2, d], d = min(max_s, initial_s · 2^(n−1)); at most ``max_attempts`` failures."""

    max_attempts: int = 5
    initial_s: float = 1.0
    max_s: float = 60.0

    def delay(self, failures: int, rng: random.Random) -> float:
        d = min(self.max_s, self.initial_s * (2 ** max(failures - 1, 0)))
        return d / 2 + rng.uniform(0, d / 2)

    @classmethod
    def from_config(cls, cfg: Any) -> RetryPolicy:
        return cls(
            max_attempts=max(1, int(getattr(cfg, "max_attempts", 5))),
            initial_s=float(getattr(cfg, "backoff_initial_s", 1.0)),
            max_s=float(getattr(cfg, "backoff_max_s", 60.0)),
        )


def _now() -> datetime:
    return datetime.now(UTC)


class _Pass:
    """State of one mailbox's pass (kept small: the loop is in :func:`pull_mailbox`)."""

    def __init__(self, report: MailboxReport, policy: RetryPolicy, wait: Callable[[float], bool], rng: random.Random) -> None:
        self.report = report
        self.policy = policy
        self.wait = wait
        self.rng = rng
        self.failures = 0

    def failed(self, exc: EpuapError, operation: str) -> bool:
        """Record a failure; back off and return True to try again, or False to give up."""
        self.failures += 1
        message = str(exc)
        if len(self.report.errors) < MAX_ERRORS_KEPT:
            self.report.errors.append(message)
        extra = {"event": "epuap.error", "mailbox": self.report.mailbox, "operation": operation,
                 "error": type(exc).__name__, "attempt": self.failures}
        if not exc.retryable or self.failures >= self.policy.max_attempts:
            self.report.gave_up = message
            self.report.error_kind = CONFIG_ERROR if isinstance(exc, EpuapConfigError) else EPUAP_ERROR
            if not isinstance(exc, EpuapTransportError | EpuapFault | EpuapConfigError):
                self.report.blocked = f"{operation}: {message}"
            log.warning("ePUAP pass gave up: %s", message, extra={**extra, "event": "epuap.gave_up"})
            return False
        delay = self.policy.delay(self.failures, self.rng)
        self.report.retries += 1
        log.info("ePUAP call failed, retrying in %.2f s: %s", delay, message, extra={**extra, "event": "epuap.retry", "delay_s": round(delay, 3)})
        if self.wait(delay):  # asked to stop while backing off
            self.report.gave_up = "Przerwano (zatrzymanie usługi) w trakcie ponawiania"
            return False
        return True


def pull_mailbox(
    client: PullClient,
    sink: DocumentSink,
    mailbox: MailboxLike,
    *,
    batch_limit: int = 100,
    policy: RetryPolicy = RetryPolicy(),
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
    files: ReferencedFiles | None = None,
) -> MailboxReport:
    """One pass over one mailbox (see the module docstring). Never raises for ePUAP trouble."""
    address = mailbox.address
    report = MailboxReport(mailbox=address, started_at=_now())
    started = time.monotonic()
    trips_before = client.round_trips
    stop = stop or threading.Event()
    state = _Pass(report, policy, stop.wait, rng or random.Random())
    unconfirmed: FetchedDocument | None = None  # stored, confirmation failed: outcome unknown
    if files is not None:
        try:
            files.settle_waiting(address, mailbox.podmiot)
        except Exception as exc:  # noqa: BLE001 - bookkeeping of earlier documents must not stop this pass
            log.warning("documents waiting for their attachments could not be settled: %s", type(exc).__name__,
                        extra={"event": "filerepo.settle_failed", "mailbox": address, "error": type(exc).__name__, **_db_context(exc)})

    while True:
        if report.confirmed >= batch_limit:
            try:
                report.remaining = client.count(mailbox)
            except EpuapError as exc:
                log.info("could not count the remaining documents: %s", exc, extra={"event": "epuap.count", "mailbox": address})
            break
        if stop.is_set():
            report.gave_up = report.gave_up or "Przerwano (zatrzymanie usługi)"
            break
        try:
            doc = client.fetch(mailbox)
        except EpuapError as exc:
            if state.failed(exc, "pobierzNastepny"):
                continue
            break
        if unconfirmed is not None:
            if doc is None or doc.sha256 != unconfirmed.sha256:
                # the earlier confirmation did happen: only its reply was lost
                report.confirmed += 1
                log.info("earlier confirmation took effect", extra={"event": "epuap.confirm_inferred", "mailbox": address})
            unconfirmed = None
        if doc is None:
            report.drained = True
            break
        report.fetched += 1
        file_ids = file_ids_of(doc.content) if files is not None else []
        try:
            result = sink.store(
                channel=CHANNEL,
                source_ref=f"{address}#{doc.sha256}",
                raw=doc.content,
                filed_at=doc.filed_at,
                metadata={**doc.metadata, "files_by_reference": file_ids} if file_ids else doc.metadata,
                mailbox=address,
                **({"awaiting": True} if file_ids else {}),
            )
            settled = files.settle(result.document_id, mailbox.podmiot, file_ids) if files is not None and file_ids else True
        except Exception as exc:  # noqa: BLE001 - whatever the store's failure, do not confirm
            # the worker's own disk (storage.path; a full disk also under the database) or the
            # database: not the mailbox's fault, so no block — said as what it is
            disk = is_disk_full(exc) or os_error_of(exc) is not None
            if database_lost(exc):
                report.database_refused = exc
            if database_lost(exc) and not disk:
                report.error_kind = DATABASE_ERROR  # an outage is reported as such (database.unavailable), not as a block
                report.gave_up = f"Nie udało się zapisać dokumentu z ePUAP: baza danych niedostępna ({type(exc).__name__}); dokument pozostaje w skrytce"
            elif disk:
                report.error_kind = STORAGE_ERROR
                report.gave_up = f"Nie udało się zapisać dokumentu z ePUAP: {file_error_text(exc)}; dokument pozostaje w skrytce"
            else:
                report.error_kind = EPUAP_ERROR
                report.gave_up = f"Nie udało się zapisać dokumentu z ePUAP ({type(exc).__name__}); dokument pozostaje w skrytce"
                report.blocked = report.gave_up
            report.errors.append(report.gave_up)
            found = os_error_of(exc)
            log.log(logging.WARNING if report.error_kind == DATABASE_ERROR else logging.ERROR,  # an outage: database.unavailable says it once
                    "storing an ePUAP document failed: %s", type(exc).__name__,
                    extra={"event": "epuap.store_failed", "mailbox": address, "size": len(doc.content),
                             "error": type(exc).__name__, "error_kind": report.error_kind,
                             "errno": found.errno if found is not None else (28 if is_disk_full(exc) else None),
                             "error_text": file_error_text(exc) if disk else None, **_db_context(exc)})
            break
        if result.created:
            report.stored_new += 1
            report.test_documents += doc.test
        else:
            report.duplicates += 1
        log.info("ePUAP document stored" if result.created else "ePUAP document received again",
                 extra={"event": "epuap.fetch", "mailbox": address, "document_id": result.document_id,
                        "new": result.created, "size": len(doc.content), "test": doc.test, "files_by_reference": len(file_ids)})
        if not settled:
            # the file repository cannot be reached now: the document waits in the mailbox
            # (unconfirmed) for the next pass; after filerepo_max_passes its files are given up
            report.gave_up = ("Nie udało się jeszcze pobrać załączników przekazanych przez odniesienie (repozytorium plików "
                              "ePUAP niedostępne); dokument pozostaje w skrytce do następnego przebiegu")
            report.errors.append(report.gave_up)
            log.warning("ePUAP document waits for its attachments by reference", extra={
                "event": "filerepo.waiting", "mailbox": address, "document_id": result.document_id})
            break
        try:
            client.confirm(mailbox, doc.skrot)
        except EpuapError as exc:
            unconfirmed = doc
            if state.failed(exc, "potwierdzOdebranie"):
                continue  # the next fetch tells whether it was confirmed after all
            break
        report.confirmed += 1
        state.failures = 0
        log.info("ePUAP document confirmed", extra={"event": "epuap.confirm", "mailbox": address, "document_id": result.document_id})

    report.round_trips = client.round_trips - trips_before
    report.duration_s = time.monotonic() - started
    _record(sink, report)
    return report


def _db_context(exc: BaseException) -> dict[str, Any]:
    """The table a failed SQL statement was about (never its parameters)."""
    return {"table": describe_technical_error(exc).table}


def _record(sink: DocumentSink, report: MailboxReport) -> None:
    at = _now()
    if report.blocked is not None:
        log.error("ePUAP mailbox blocked: its head document cannot be taken in: %s", report.blocked,
                  extra={"event": "epuap.mailbox_blocked", "mailbox": report.mailbox, "reason": report.blocked})
    try:
        if report.ok:
            report.last_success_at = at
            sink.record_pull(report.mailbox, at)
        elif report.blocked is not None:
            sink.record_pull(report.mailbox, at, error=report.gave_up, blocked=report.blocked, error_kind=report.error_kind)
        else:
            sink.record_pull(report.mailbox, at, error=report.gave_up, error_kind=report.error_kind)
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not hide the pass's result
        log.log(logging.WARNING if database_lost(exc) else logging.ERROR, "recording the pull failed: %s", type(exc).__name__,
                  extra={"event": "epuap.record_failed", "mailbox": report.mailbox, "error": type(exc).__name__, **_db_context(exc)})
    log.info(
        "ePUAP pass %s" % ("done" if report.ok else "ended early"),
        extra={"event": "epuap.pass", "mailbox": report.mailbox, "ok": report.ok, "fetched": report.fetched,
               "stored_new": report.stored_new, "duplicates": report.duplicates, "confirmed": report.confirmed,
               "retries": report.retries, "round_trips": report.round_trips, "duration_s": round(report.duration_s, 3)},
    )


def _select(mailboxes: Sequence[MailboxLike], wanted: str | None) -> list[MailboxLike]:
    if wanted is None:
        return list(mailboxes)
    norm = "/" + wanted.strip().strip("/")
    chosen = [m for m in mailboxes if m.address == norm]
    if not chosen:
        known = ", ".join(m.address for m in mailboxes) or "brak"
        raise ValueError(f"Nieznana skrytka ePUAP {wanted!r} (skonfigurowane: {known})")
    return chosen


def check_config(cfg: Any, *, password: str | None = None) -> None:
    """Load the key material once (start-up check); raises :class:`EpuapConfigError` with a reason."""
    PullClient.from_config(cfg, password=password).close()


def pull_mailboxes(
    cfg: Any,
    sink: DocumentSink,
    mailbox: str | None = None,
    *,
    password: str | None = None,
    stop: threading.Event | None = None,
    session: requests.Session | None = None,
    rng: random.Random | None = None,
    lock: Callable[[str], Any] | None = None,
    files: Callable[[Callable[[], Any]], ReferencedFiles] | None = None,
) -> list[MailboxReport]:
    """One pass over the configured mailboxes (or only ``mailbox``, an address ``/podmiot/skrytka``).

    ``cfg`` is an ``EpuapConfig``-like object. Returns one report per mailbox and never raises
    for ePUAP or key trouble (it is in the reports, and recorded with ``sink.record_pull``);
    raises ``ValueError`` for a ``mailbox`` that is not configured. ``stop`` (set on SIGTERM)
    ends the pass after the document in hand. ``lock(name)`` (``adapters.db.locks.PassLocks.hold``)
    is a context manager telling whether this process may pull the mailbox now: a mailbox
    another process is pulling is skipped (``report.busy``), so at most one pull per mailbox
    runs across all processes on one database. ``files(client_factory)`` makes the
    :class:`~.referenced.ReferencedFiles` that fetches attachments sent by reference (None:
    they are not fetched); the file repository's client is built when first needed.
    """
    chosen = _select(tuple(cfg.mailboxes), mailbox)
    if not getattr(cfg, "enabled", True) or not chosen:
        return []
    policy = RetryPolicy.from_config(cfg)
    try:
        client = PullClient.from_config(cfg, password=password, session=session, stop=stop)
    except EpuapConfigError as exc:
        reports = []
        for mb in chosen:
            report = MailboxReport(mailbox=mb.address, started_at=_now(), gave_up=str(exc), errors=[str(exc)], error_kind=CONFIG_ERROR)
            _record(sink, report)
            reports.append(report)
        return reports
    batch_limit = max(1, int(getattr(cfg, "batch_limit", 100)))
    reports = []
    fetcher = files(lambda: FileRepoClient.for_config(cfg, password=password, session=session)) if files is not None else None
    with client, (fetcher or contextlib.nullcontext()):
        for mb in chosen:
            if lock is None:
                reports.append(pull_mailbox(client, sink, mb, batch_limit=batch_limit, policy=policy, stop=stop, rng=rng,
                                            files=fetcher))
                continue
            with lock(f"epuap:{mb.address}") as mine:
                if mine:
                    reports.append(pull_mailbox(client, sink, mb, batch_limit=batch_limit, policy=policy, stop=stop, rng=rng,
                                                files=fetcher))
                else:
                    log.info("mailbox skipped: another process is pulling it", extra={"event": "epuap.busy", "mailbox": mb.address})
                    reports.append(MailboxReport(mailbox=mb.address, started_at=_now(), busy=True))
    return reports
