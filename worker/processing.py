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

from sqlalchemy import Engine, and_, insert, or_, select, text, update

from adapters.db import ebok, signature_digests
from adapters.db.errors import database_lost
from adapters.db.tables import worker_attempt, worker_audit, worker_document
from adapters.storage import DocumentStore
from worker import states
from worker.config import PaymentsConfig, ProcessingConfig
from worker.correspondence import finish_analysis
from worker.domain.clock import utcnow
from worker.domain.findings import REJECTED, finding
from worker.domain.limits import fit_declaration
from worker.errors import SafeMessage, describe_technical_error
from adapters.db.locks import PassLocks, lock_key
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


class Processor:
    LEASE = timedelta(minutes=10)

    def __init__(
        self,
        engine: Engine,
        store: DocumentStore,
        settings: ProcessingSettings,
        config: ProcessingConfig | None = None,
        payments: PaymentsConfig | None = None,
        *,
        stages_for: Callable[[str, dict[str, Any]], list[Stage]] = default_stages,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
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

    # which documents are due

    def _due(self, now: datetime):
        d = worker_document.c
        return or_(
            d.state == states.RECEIVED,
            and_(d.state == states.FAILED, d.next_attempt_at.is_not(None), d.next_attempt_at <= now),
            and_(d.state == states.PROCESSING, d.lease_until < now),
        )

    def pending_ids(self, limit: int | None = None) -> list[int]:
        d = worker_document.c
        q = select(d.id).where(self._due(self.clock())).order_by(d.received_at, d.id)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

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
        d = worker_document.c
        with self.engine.connect() as conn:
            claims = conn.execute(select(d.id, d.claim_token).where(d.state == states.PROCESSING)).all()
        gone: list[tuple[int, str | None]] = []
        alive: dict[str, bool] = {}
        for doc_id, token in claims:
            owner = (token or "")[:8]
            if owner == self.instance:
                continue
            if owner and owner not in alive:
                alive[owner] = self.locks.is_held_elsewhere(self._instance_lock(owner))
            if not owner or not alive[owner]:
                gone.append((doc_id, token))
        n = 0
        if gone:
            with self.engine.begin() as conn:
                for doc_id, token in gone:
                    cond = [d.id == doc_id, d.state == states.PROCESSING]
                    cond.append(d.claim_token == token if token is not None else d.claim_token.is_(None))
                    n += conn.execute(
                        update(worker_document).where(*cond).values(state=states.RECEIVED, claim_token=None, lease_until=None)
                    ).rowcount
        if n:
            log.warning("claims of an interrupted run taken back", extra={"event": "processing.recovered", "count": n})
        return n

    def release_orphaned(self) -> int:
        """Give back at once the claims this process could not settle because the database
        was lost mid-document (rather than leaving them to their lease)."""
        if not self._orphaned:
            return 0
        d = worker_document.c
        n = 0
        with self.engine.begin() as conn:
            for doc_id, token in list(self._orphaned.items()):
                n += conn.execute(
                    update(worker_document).where(d.id == doc_id, d.claim_token == token, d.state == states.PROCESSING)
                    .values(state=states.RECEIVED, claim_token=None, lease_until=None, next_attempt_at=None)
                ).rowcount
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

    # one document

    def _claim(self, doc_id: int, force: bool) -> tuple[str, int] | None:
        now = self.clock()
        token = f"{self.instance}-{str(uuid.uuid4())[9:]}"  # 36 characters, like the column
        d = worker_document.c
        cond = [d.id == doc_id]
        if not force:
            cond.append(self._due(now))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # the claim need not survive a crash (a lost claim only means the document
                # is claimed again): no need to wait for the WAL flush
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                # several processes may process at once: a row another one is claiming right
                # now is skipped, never waited for or fought over
                cond = [d.id == select(d.id).where(*cond).with_for_update(skip_locked=True).correlate(None).scalar_subquery()]
            n = conn.execute(
                update(worker_document)
                .where(*cond)
                .values(state=states.PROCESSING, claim_token=token, lease_until=now + self.LEASE, attempts=d.attempts + 1)
            ).rowcount
            if n != 1:
                return None
            attempt_id = conn.execute(
                insert(worker_attempt).values(document_id=doc_id, started_at=now).returning(worker_attempt.c.id)
            ).scalar_one()
        return token, attempt_id

    def process(self, doc_id: int, *, force: bool = False, actor: str = "worker") -> str | None:
        """Process one document. Returns its outcome (or kind), ``FAILED`` on a technical
        error, ``None`` when it was not due (or claimed by someone else)."""
        claim = self._claim(doc_id, force)
        if claim is None:
            return None
        token, attempt_id = claim
        _checkpoint("claimed")
        t0 = time.perf_counter()
        with self.engine.connect() as conn:
            doc = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
        extra = {"document_id": doc_id, "channel": doc["channel"], "mailbox": doc["source"]}
        try:
            raw = self.store.get(doc["storage_key"])
            if DocumentStore.digest(raw) != doc["sha256"]:
                raise StorageCorrupted(f"stored bytes of document {doc_id} do not match their SHA-256")

            def on_stage(name: str, dt: float) -> None:
                log.debug("step done", extra={"event": "document.step", "step": name, "duration_ms": round(dt * 1000, 2), **extra})

            ctx = self._analyse(doc, raw, on_stage)
            _checkpoint("analysed")
            outcome = self._commit(doc, token, attempt_id, ctx, actor)
        except Exception as exc:  # a technical failure: recorded, retried, never a rejection
            try:
                self._fail(doc_id, token, attempt_id, exc, t0)
            except Exception:
                if database_lost(exc) or _database_lost_now(self.engine):
                    # the database went away mid-document: give the claim back as soon as it
                    # is back (the daemon's next pass), not after the lease
                    self._orphaned[doc_id] = token
                    self.reset_liveness()  # the instance lock went with the connection
                raise
            return states.FAILED
        dt = time.perf_counter() - t0
        log.info(
            "document processed",
            extra={"event": "document.done", "step": "load", "outcome": outcome, "kind": ctx.kind, "duration_ms": round(dt * 1000, 2),
                   "codes": sorted({f.code for f in ctx.findings}), **extra},
        )
        return outcome

    def _analyse(self, doc: Any, raw: bytes, on_stage: Callable[[str, float], None] | None = None) -> Context:
        meta = doc["meta"] or {}
        return analyse(
            raw, channel=doc["channel"], filed_at=doc["filed_at"], metadata=meta, settings=self.settings,
            stages=None if meta.get("czyTestowe") is True else self.stages_for(doc["channel"], meta),
            document_id=doc["id"], on_stage=on_stage,
        )

    def reanalyse(self, doc: Any, raw: bytes) -> Context:
        """The stages over a stored document again, writing nothing (the hand-over of
        correspondence and the export of attachments read the verified content from it)."""
        return self._analyse(doc, raw)

    def _commit(self, doc: Any, token: str, attempt_id: int, ctx: Context, actor: str) -> str:
        now = self.clock()
        d = worker_document.c
        with self.engine.begin() as conn:
            # first: is the claim still ours? (takes the row lock on PostgreSQL)
            n = conn.execute(
                update(worker_document).where(d.id == doc["id"], d.claim_token == token, d.state == states.PROCESSING).values(lease_until=now + self.LEASE)
            ).rowcount
            if n != 1:
                raise ClaimLost(f"claim on document {doc['id']} was taken over")
            if conn.dialect.name == "postgresql":
                # loads of several processes one after another (analysis stays parallel): two
                # declarations of one payer or property never race for the same new row
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("ebok-load")})
            declaration_id = None
            outcome = ctx.outcome
            if ctx.kind in (TEST, CORRESPONDENCE):
                outcome = ctx.kind if ctx.kind == TEST else REJECTED
            else:
                # one signature, one filing: before loading, so that a copy changes nothing
                signature_digests.apply(conn, doc, ctx, ruleset=self.settings.ruleset, now=now, actor=actor)
                fit_to_columns(ctx)
                loaded = ebok.load(conn, doc, ctx, payments=self.payments, ruleset=self.settings.ruleset, now=now, actor=actor)
                declaration_id, outcome = loaded.declaration_id, loaded.status
            _checkpoint("loaded")
            conn.execute(
                update(worker_document)
                .where(d.id == doc["id"])
                .values(
                    state=states.DONE, kind=ctx.kind, outcome=outcome, processed_at=now, claim_token=None, lease_until=None,
                    next_attempt_at=None, last_error=None,
                    findings=[f.to_dict() for f in ctx.findings],
                    evidence=_evidence(ctx),
                )
            )
            conn.execute(update(worker_attempt).where(worker_attempt.c.id == attempt_id).values(finished_at=now, result=states.DONE))
            conn.execute(
                insert(worker_audit).values(
                    at=now, document_id=doc["id"], declaration_id=declaration_id, actor=actor,
                    action="PROCESSED", old_status=doc["outcome"], new_status=outcome,
                )
            )
            _checkpoint("before_commit")
        return outcome

    def preview(self, doc_id: int) -> dict[str, Any]:
        """What processing the document now would give, computed inside a transaction
        that is rolled back: nothing is written (``reprocess --dry-run``)."""
        with self.engine.connect() as conn:
            doc = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
        ctx = self._analyse(doc, self.store.get(doc["storage_key"]))
        if ctx.kind in (TEST, CORRESPONDENCE):
            outcome = ctx.kind if ctx.kind == TEST else REJECTED
        else:
            fit_to_columns(ctx)
            with self.engine.connect() as conn:
                tx = conn.begin()
                try:
                    signature_digests.apply(conn, doc, ctx, ruleset=self.settings.ruleset, now=self.clock(), actor="dry-run")
                    outcome = ebok.load(conn, doc, ctx, payments=self.payments, ruleset=self.settings.ruleset, now=self.clock(), actor="dry-run").status
                finally:
                    tx.rollback()
        return {
            "document_id": doc_id,
            "old_outcome": doc["outcome"] if doc["state"] == states.DONE else doc["state"],
            "new_outcome": outcome,
            "old_codes": sorted({f["code"] for f in (doc["findings"] or [])}),
            "new_codes": sorted({f.code for f in ctx.findings}),
            "computed_fee": str(ctx.computed_fee) if ctx.computed_fee is not None else None,
        }

    def _fail(self, doc_id: int, token: str, attempt_id: int, exc: Exception, t0: float) -> None:
        now = self.clock()
        d = worker_document.c
        described = describe_technical_error(exc)
        error = described.text()[:2000]  # never SQL parameters or document content
        with self.engine.begin() as conn:
            attempts = conn.execute(select(d.attempts).where(d.id == doc_id)).scalar_one()
            if attempts >= self.config.max_attempts:
                next_at = None  # parked: `reprocess` brings it back
            else:
                delay = min(self.config.retry_max_s, self.config.retry_initial_s * (2 ** (attempts - 1)))
                next_at = now + timedelta(seconds=delay)
            conn.execute(
                update(worker_document)
                .where(d.id == doc_id, d.claim_token == token)
                .values(state=states.FAILED, claim_token=None, lease_until=None, next_attempt_at=next_at, last_error=error)
            )
            conn.execute(
                update(worker_attempt).where(worker_attempt.c.id == attempt_id).values(
                    finished_at=now, result=states.FAILED, error=error, duration_s=time.perf_counter() - t0
                )
            )
        log.error(
            "processing failed (technical error, will retry)" if next_at else "processing failed; retries exhausted",
            exc_info=exc,
            extra={"event": "document.failed", "document_id": doc_id, "attempts": attempts, "retry_at": next_at.isoformat() if next_at else None,
                   **described.log_fields()},
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



def _database_lost_now(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return False
    except Exception:  # noqa: BLE001
        return True


class StorageCorrupted(SafeMessage):
    pass


class ClaimLost(SafeMessage):
    pass


def requeue(conn: Any, doc_ids: Iterable[int], now: datetime) -> int:
    """Put DONE or FAILED documents back to RECEIVED so they are processed again from raw."""
    ids = list(doc_ids)
    if not ids:
        return 0
    d = worker_document.c
    return conn.execute(
        update(worker_document)
        .where(d.id.in_(ids), d.state.in_((states.DONE, states.FAILED, states.RECEIVED)))
        .values(state=states.RECEIVED, attempts=0, next_attempt_at=None, last_error=None)
    ).rowcount


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
