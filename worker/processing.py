"""The service layer: process stored documents, one transaction each.

For every pending document: *claim* it (RECEIVED → PROCESSING, committed, with a claim
token and a lease), read its raw bytes back from storage, run the pure stages, then in one
transaction check the claim is still ours, load the outcome into the eBOK tables and mark
the document DONE. Any exception rolls that transaction back and records a technical
failure (FAILED, retried with exponential backoff) — never a rejection. A crash at any
instant leaves the document claimed but not loaded; the next pass takes it back.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from adapters.db import queue
from adapters.db.errors import database_lost
from adapters.db.queue import Claim, DocumentQueue, StoredDocument, database_reachable
from adapters.storage import DocumentStore
from worker import states
from worker.config import PaymentsConfig, ProcessingConfig
from worker.correspondence import finish_analysis
from worker.domain.clock import utcnow
from worker.domain.findings import REJECTED, finding
from worker.domain.limits import fit_declaration
from worker.errors import SafeMessage, describe_technical_error
from adapters.db.locks import PassLocks
from worker.pipeline import CORRESPONDENCE, Context, ProcessingSettings, Stage, run_stages
from worker.stages import stages_for

log = logging.getLogger(__name__)

TEST = "TEST"  # kind of an ePUAP czyTestowe document: stored, never loaded


def _checkpoint(name: str) -> None:
    """A named point between two steps of processing. Does nothing; the crash tests
    replace it to kill the process exactly there."""


# --- the pure part ----------------------------------------------------------------------


def default_stages(channel: str, metadata: dict[str, Any]) -> list[Stage]:
    """The stages for a document of ``channel``, in order."""
    return stages_for(channel, metadata)


def analyse(
    raw: bytes,
    *,
    channel: str,
    filed_at: datetime | None,
    metadata: dict[str, Any] | None = None,
    settings: ProcessingSettings,
    stages: list[Stage] | None = None,
    document_id: int | None = None,
    on_stage: Callable[[str, float], None] | None = None,
) -> Context:
    """Run the stages over one document's bytes; no I/O. Used by processing and ``check``."""
    metadata = metadata or {}
    ctx = Context(raw=raw, channel=channel, filed_at=filed_at, metadata=metadata, settings=settings, document_id=document_id)
    if metadata.get("czyTestowe") is True:
        ctx.kind = TEST
        ctx.halt(finding("TEST_DOCUMENT", None, "Dokument testowy ePUAP (czyTestowe): zapisany, nie jest wczytywany do eBOK."))
        return ctx
    if stages is None:
        stages = default_stages(channel, metadata)
    run_stages(ctx, stages, on_stage)
    return finish_analysis(ctx)


# --- the processor ----------------------------------------------------------------------


@dataclass
class PassReport:
    processed: int = 0
    failed: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"processed": self.processed, "failed": self.failed, "outcomes": dict(self.outcomes)}


@dataclass
class _Analysed:
    """One claimed document of a batch, after its analysis (or its technical failure)."""

    claim: Claim
    doc: StoredDocument
    t0: float
    ctx: Context | None = None
    error: Exception | None = None
    outcome: str | None = None
    declaration_id: int | None = None


class Processor:
    LEASE = timedelta(minutes=10)

    def __init__(
        self,
        engine: Any,
        store: DocumentStore,
        settings: ProcessingSettings,
        config: ProcessingConfig | None = None,
        payments: PaymentsConfig | None = None,
        *,
        stages_for: Callable[[str, dict[str, Any]], list[Stage]] = default_stages,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.queue = DocumentQueue(engine)
        self.store = store
        self.settings = settings
        self.config = config or ProcessingConfig()
        self.payments = payments or PaymentsConfig()
        self.stages_for = stages_for
        self.clock = clock
        # claims carry this process's instance id; a lock named after it tells other
        # processes that the claims' holder is alive (see recover_stale)
        self.instance = uuid.uuid4().hex[:8]
        self.locks = PassLocks(engine)
        self._alive = False
        self._orphaned: dict[int, str] = {}  # claims whose failure could not be recorded (database lost)

    def pending_ids(self, limit: int | None = None) -> list[int]:
        return self.queue.due_ids(self.clock(), limit)

    def _instance_lock(self, instance: str) -> str:
        return f"processor:{instance}"

    def _announce(self) -> None:
        """Hold this process's sign of life (once; again after the database was lost)."""
        if not self._alive:
            self._alive = self.locks.keep(self._instance_lock(self.instance))

    def reset_liveness(self) -> None:
        """The database connection holding the sign of life was lost: take it again at the
        next pass (on PostgreSQL the advisory lock died with the connection)."""
        self.locks.let_go(self._instance_lock(self.instance))
        self._alive = False

    def recover_stale(self) -> int:
        """Take back the claims of processes that are gone (called when a process starts,
        and after the database was lost): a claim whose holder still runs (its instance lock
        is held — another daemon working on the same database) is left alone. A holder that
        was wrongly judged gone cannot commit afterwards: its claim token no longer matches."""
        self._announce()
        gone: list[tuple[int, str | None]] = []
        alive: dict[str, bool] = {}
        for doc_id, token in self.queue.claims():
            owner = (token or "")[:8]
            if owner == self.instance:
                continue
            if owner and owner not in alive:
                alive[owner] = self.locks.is_held_elsewhere(self._instance_lock(owner))
            if not owner or not alive[owner]:
                gone.append((doc_id, token))
        n = self.queue.take_back(gone) if gone else 0
        if n:
            log.warning("claims of an interrupted run taken back", extra={"event": "processing.recovered", "count": n})
        return n

    def release_orphaned(self) -> int:
        """Give back at once the claims this process could not settle because the database
        was lost mid-document (rather than leaving them to their lease)."""
        if not self._orphaned:
            return 0
        n = self.queue.take_back(list(self._orphaned.items()), clear_retry=True)
        self._orphaned.clear()
        log.info("claims cut by a lost database connection released", extra={"event": "processing.released", "count": n})
        return n

    def run_pending(self, stop: threading.Event | None = None, limit: int | None = None) -> PassReport:
        report = PassReport()
        self._announce()
        self.release_orphaned()
        while not (stop and stop.is_set()):
            ids = self.pending_ids(limit=50)
            if not ids:
                break
            for doc_id in ids:
                if stop and stop.is_set():
                    break
                if limit is not None and report.processed + report.failed >= limit:
                    return report
                outcome = self.process(doc_id)
                if outcome is None:
                    continue
                if outcome == states.FAILED:
                    report.failed += 1
                else:
                    report.processed += 1
                    report.outcomes[outcome] += 1
            if limit is not None and report.processed + report.failed >= limit:
                break
        return report

    # claims

    def _new_token(self) -> str:
        return f"{self.instance}-{str(uuid.uuid4())[9:]}"  # 36 characters, like the column

    def _claim(self, doc_id: int, force: bool) -> tuple[str, int] | None:
        claims = self.queue.claim([doc_id], self._new_token(), self.clock(), self.LEASE, force=force)
        return (claims[0].token, claims[0].attempt_id) if claims else None

    def process(self, doc_id: int, *, force: bool = False, actor: str = "worker") -> str | None:
        """Process one document. Returns its outcome (or kind), ``FAILED`` on a technical
        error, ``None`` when it was not due (or claimed by someone else)."""
        claims = self.queue.claim([doc_id], self._new_token(), self.clock(), self.LEASE, force=force)
        if not claims:
            return None
        (item,) = self._process_claimed(claims, actor)
        return item.outcome

    def _process_claimed(self, claims: list[Claim], actor: str) -> list[_Analysed]:
        """Analyse and commit claimed documents: one transaction for all of them; when one
        fails technically, that transaction is undone and each is committed alone, so the
        failure of one never loses the others' work."""
        _checkpoint("claimed")
        docs = self.queue.documents([c.document_id for c in claims])
        items = [_Analysed(c, docs[c.document_id], time.perf_counter()) for c in claims]
        for item in items:
            self._analyse_item(item)
        _checkpoint("analysed")
        ok = [i for i in items if i.error is None]
        if len(ok) > 1:
            try:
                self._commit(ok, actor)
            except Exception:  # noqa: BLE001 - retried one by one below, where it is recorded
                for i in ok:
                    i.outcome = i.declaration_id = None
            ok = [i for i in ok if i.outcome is None]
        for item in ok:
            try:
                self._commit([item], actor)
            except Exception as exc:  # a technical failure: recorded, retried, never a rejection
                item.error = exc
        for item in items:
            if item.error is not None:
                self._record_failure(item)
            else:
                self._log_done(item)
        return items

    def _analyse_item(self, item: _Analysed) -> None:
        doc = item.doc
        extra = {"document_id": doc.id, "channel": doc.channel, "mailbox": doc.source}
        try:
            raw = self.store.get(doc.storage_key)
            if DocumentStore.digest(raw) != doc.sha256:
                raise StorageCorrupted(f"stored bytes of document {doc.id} do not match their SHA-256")

            def on_stage(name: str, dt: float) -> None:
                log.info("step done", extra={"event": "document.step", "step": name, "duration_ms": round(dt * 1000, 2), **extra})

            item.ctx = self._analyse(doc, raw, on_stage)
        except Exception as exc:  # a technical failure: recorded, retried, never a rejection
            item.error = exc

    def _record_failure(self, item: _Analysed) -> None:
        exc = item.error
        assert exc is not None
        try:
            self._fail(item.claim, exc, item.t0)
        except Exception:
            if database_lost(exc) or not database_reachable(self.engine):
                # the database went away mid-document: give the claim back as soon as it
                # is back (the daemon's next pass), not after the lease
                self._orphaned[item.claim.document_id] = item.claim.token
                self.reset_liveness()  # the instance lock went with the connection
            raise
        item.outcome = states.FAILED

    def _log_done(self, item: _Analysed) -> None:
        doc, ctx = item.doc, item.ctx
        assert ctx is not None
        log.info(
            "document processed",
            extra={"event": "document.done", "step": "load", "outcome": item.outcome, "kind": ctx.kind,
                   "duration_ms": round((time.perf_counter() - item.t0) * 1000, 2), "codes": sorted({f.code for f in ctx.findings}),
                   "document_id": doc.id, "channel": doc.channel, "mailbox": doc.source},
        )

    def _analyse(self, doc: StoredDocument, raw: bytes, on_stage: Callable[[str, float], None] | None = None) -> Context:
        meta = doc.meta or {}
        return analyse(
            raw, channel=doc.channel, filed_at=doc.filed_at, metadata=meta, settings=self.settings,
            stages=None if meta.get("czyTestowe") is True else self.stages_for(doc.channel, meta),
            document_id=doc.id, on_stage=on_stage,
        )

    def reanalyse(self, doc: Any, raw: bytes) -> Context:
        """The stages over a stored document again, writing nothing (the hand-over of
        correspondence and the export of attachments read the verified content from it)."""
        return self._analyse(doc if isinstance(doc, StoredDocument) else StoredDocument.from_row(doc), raw)

    def _commit(self, items: list[_Analysed], actor: str) -> None:
        """One transaction: the claims re-checked, every document loaded, DONE and audited."""
        now = self.clock()
        with self.queue.unit_of_work() as uow:
            # first: are the claims still ours? (takes the row locks on PostgreSQL)
            ours = set(uow.confirm_claims([i.claim for i in items], now, self.LEASE))
            lost = [i.doc.id for i in items if i.doc.id not in ours]
            if lost:
                raise ClaimLost(f"claim on document {lost[0]} was taken over")
            # loads of several processes one after another (analysis stays parallel)
            uow.serialize_loads()
            for item in items:
                ctx = item.ctx
                assert ctx is not None
                item.outcome = ctx.outcome
                if ctx.kind in (TEST, CORRESPONDENCE):
                    item.outcome = ctx.kind if ctx.kind == TEST else REJECTED
                else:
                    # one signature, one filing: before loading, so that a copy changes nothing
                    uow.record_signatures(item.doc, ctx, ruleset=self.settings.ruleset, now=now, actor=actor)
                    fit_to_columns(ctx)
                    loaded = uow.load(item.doc, ctx, payments=self.payments, ruleset=self.settings.ruleset, now=now, actor=actor)
                    item.declaration_id, item.outcome = loaded.declaration_id, loaded.status
            _checkpoint("loaded")
            for item in items:
                ctx = item.ctx
                assert ctx is not None
                uow.mark_done(item.claim, kind=ctx.kind, outcome=item.outcome, findings=[f.to_dict() for f in ctx.findings],
                              evidence=_evidence(ctx), now=now)
            uow.audit([
                dict(at=now, document_id=i.doc.id, declaration_id=i.declaration_id, actor=actor, action="PROCESSED",
                     old_status=i.doc.outcome, new_status=i.outcome)
                for i in items
            ])
            _checkpoint("before_commit")

    def preview(self, doc_id: int) -> dict[str, Any]:
        """What processing the document now would give, computed inside a transaction
        that is rolled back: nothing is written (``reprocess --dry-run``)."""
        doc = self.queue.document(doc_id)
        ctx = self._analyse(doc, self.store.get(doc.storage_key))
        if ctx.kind in (TEST, CORRESPONDENCE):
            outcome = ctx.kind if ctx.kind == TEST else REJECTED
        else:
            fit_to_columns(ctx)
            with self.queue.unit_of_work(rollback=True) as uow:
                uow.record_signatures(doc, ctx, ruleset=self.settings.ruleset, now=self.clock(), actor="dry-run")
                outcome = uow.load(doc, ctx, payments=self.payments, ruleset=self.settings.ruleset, now=self.clock(), actor="dry-run").status
        return {
            "document_id": doc_id,
            "old_outcome": doc.outcome if doc.state == states.DONE else doc.state,
            "new_outcome": outcome,
            "old_codes": sorted({f["code"] for f in (doc.findings or [])}),
            "new_codes": sorted({f.code for f in ctx.findings}),
            "computed_fee": str(ctx.computed_fee) if ctx.computed_fee is not None else None,
        }

    def _fail(self, claim: Claim, exc: Exception, t0: float) -> None:
        described = describe_technical_error(exc)
        error = described.text()[:2000]  # never SQL parameters or document content
        c = self.config
        failure = self.queue.fail(claim, error, self.clock(), time.perf_counter() - t0, max_attempts=c.max_attempts,
                                  retry_initial_s=c.retry_initial_s, retry_max_s=c.retry_max_s)
        next_at = failure.next_attempt_at
        log.error(
            "processing failed (technical error, will retry)" if next_at else "processing failed; retries exhausted",
            exc_info=exc,
            extra={"event": "document.failed", "document_id": claim.document_id, "attempts": failure.attempts,
                   "retry_at": next_at.isoformat() if next_at else None, **described.log_fields()},
        )


SIGNER_LIMIT = 300  # ebok_declaration.signer


def fit_to_columns(ctx: Context) -> None:
    """Cut the declaration to what the eBOK columns hold, with a finding for each value that
    did not fit (see ``worker.domain.limits``): content never fails the load."""
    sig = ctx.signature
    signer = getattr(sig, "signer_name", None)
    if isinstance(signer, str) and len(signer) > SIGNER_LIMIT and dataclasses.is_dataclass(sig):
        # a name from a certificate, not from the sender's form: shown cut, with no finding
        ctx.signature = dataclasses.replace(sig, signer_name=signer[:SIGNER_LIMIT])
    if ctx.declaration is None:
        return
    fitted, findings = fit_declaration(ctx.declaration, ctx.channel)
    if findings:
        ctx.declaration = fitted
        ctx.add(*findings)



class StorageCorrupted(SafeMessage):
    pass


class ClaimLost(SafeMessage):
    pass


def requeue(conn: Any, doc_ids: Iterable[int], now: datetime) -> int:
    """Put DONE or FAILED documents back to RECEIVED so they are processed again from raw
    (within the caller's transaction)."""
    return queue.requeue(conn, doc_ids)


def _evidence(ctx: Context) -> dict[str, Any]:
    ev: dict[str, Any] = {"timings_ms": {k: round(v * 1000, 3) for k, v in ctx.timings.items()}}
    sig = ctx.signature
    if sig is not None:
        ev["signature"] = getattr(sig, "evidence", None)
    if ctx.fee_explanation:
        ev["fee_explanation"] = list(ctx.fee_explanation)
    if ctx.form is not None:
        ev["form"] = getattr(ctx.form, "form", None)
    if ctx.attachments or ctx.signed_root is not None:  # present: the verified content was searched
        ev["attachments"] = [a.summary() for a in ctx.attachments]
    return ev
