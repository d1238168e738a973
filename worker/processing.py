"""The service layer: process stored documents in batches, one transaction per batch.

A pass *claims* a batch of due documents (RECEIVED → PROCESSING, committed, with a claim
token and a lease; ``[processing] batch_size`` at a time), reads their raw bytes back from
storage and runs the pure stages over them — in a pool of worker processes
(``[processing] workers``; 1: in this process) while this process loads the previous
batch; for the commands, each of ``workers`` forked processes does all of it for its own
batches (:meth:`Processor.run_pending_shared`, ``worker.parallel``) —, then in one transaction checks the claims are still ours, loads every outcome
into the eBOK tables and marks the documents DONE. A technical failure of one document
(its analysis, or its load) never loses the others' work: a batch whose transaction fails
is committed again one document at a time, and the failing one is recorded as a technical
failure (FAILED, retried with exponential backoff) — never a rejection. A crash at any
instant leaves the documents claimed but not loaded; the next pass takes them back.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from adapters.db import queue
from adapters.db.errors import database_lost
from adapters.db.locks import PassLocks
from adapters.db.queue import Claim, DocumentQueue, StoredDocument, database_reachable
from adapters.storage import DocumentStore
from rules import workdays
from worker import parallel, states
from worker.config import PaymentsConfig, ProcessingConfig
from worker.correspondence import finish_analysis
from worker.domain.budget import BudgetExceeded, CpuBudget
from worker.domain.clock import utcnow
from worker.domain.findings import finding
from worker.domain.limits import fit_declaration
from worker.errors import SafeMessage, TechnicalError, describe_technical_error
from worker.logs import safe_exception_text
from worker.pipeline import CORRESPONDENCE, Context, ProcessingSettings, Stage, run_stages, too_complex
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
    """Run the stages over one document's bytes; no I/O. Used by processing and ``check``.
    The analysis has ``settings.max_document_seconds`` of this thread's CPU time
    (:class:`worker.domain.budget.CpuBudget`); past it the document is ``DOCUMENT_TOO_COMPLEX``."""
    metadata = metadata or {}
    ctx = Context(raw=raw, channel=channel, filed_at=filed_at, metadata=metadata, settings=settings, document_id=document_id,
                  budget=CpuBudget(settings.max_document_seconds))
    if metadata.get("czyTestowe") is True:
        ctx.kind = TEST
        ctx.halt(finding("TEST_DOCUMENT", None, "Dokument testowy ePUAP (czyTestowe): zapisany, nie jest wczytywany do eBOK."))
        return ctx
    if stages is None:
        stages = default_stages(channel, metadata)
    run_stages(ctx, stages, on_stage)
    try:
        return finish_analysis(ctx)
    except BudgetExceeded as exc:  # a letter's signature, checked after the stages
        too_complex(ctx, exc)
        return ctx


# --- the processor ----------------------------------------------------------------------


@dataclass
class PassReport:
    processed: int = 0
    failed: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"processed": self.processed, "failed": self.failed, "outcomes": dict(self.outcomes)}

    def add(self, other: dict[str, Any]) -> None:
        """Count in another report (:meth:`as_dict` of a processor in another process)."""
        self.processed += other["processed"]
        self.failed += other["failed"]
        self.outcomes.update(other["outcomes"])


@dataclass
class _Analysed:
    """One claimed document of a batch, after its analysis (or its technical failure)."""

    claim: Claim
    doc: StoredDocument
    t0: float
    ctx: Context | None = None
    error: Exception | None = None
    described: TechnicalError | None = None  # a failure in a pool worker: described there
    error_text: str = ""  # and its safe traceback
    outcome: str | None = None
    declaration_id: int | None = None


@dataclass
class _Batch:
    items: list[_Analysed]
    parts: list[tuple[list[_Analysed], Future]]  # the analyses under way in the pool, a few documents each
    pool: ProcessPoolExecutor | None = None  # the pool they were submitted to


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
        self._shared_pool: ProcessPoolExecutor | None = None
        self._pass_pool: ProcessPoolExecutor | None = None  # the pool of the pass under way
        self._pool_wanted = False  # the pass starts its own pool with its first batch
        self._overlap = False  # analyse the next batch in a thread while this one waits for its turn to load (sibling)
        self._thread: ThreadPoolExecutor | None = None  # that thread, during a pass
        self._may_analyse = threading.Event()  # cleared while this process holds its turn to write
        self._may_analyse.set()

    def sibling(self) -> Processor:
        """A processor of its own for a process forked from this one (``worker.parallel``):
        the same settings, a new instance (its claims and its sign of life), new database
        connections, the analysis in its own process, one batch ahead in a thread. This
        processor stays referenced by the child, unused: dropping it would finalise its
        locks over the parent's connections."""
        self.engine.dispose(close=False)  # the parent's connections are never used here
        sibling = Processor(self.engine, self.store, self.settings, dataclasses.replace(self.config, workers=1), self.payments,
                            stages_for=self.stages_for, clock=self.clock)
        # while its batch waits for the other processes' loads (their turn to write), its
        # next batch is analysed by a thread of its own: the wait no longer leaves the core idle
        sibling._overlap = True
        sibling.queue.on_turn = sibling._on_turn
        return sibling

    def fork_siblings(self, processes: int, work: Callable[[Processor, parallel.Send, threading.Event], None]) -> parallel.Children:
        """Fork ``processes`` processes, each running ``work(processor, send, stop)`` with a
        processor of its own (:meth:`sibling`); the holiday calendar is loaded once before
        the fork. Call only when ``parallel.can_fork()``."""
        workdays.warm_up()
        return parallel.fork(processes, lambda _number, send, stop: work(self.sibling(), send, stop))

    def _on_turn(self, holding: bool) -> None:
        """This process holds its turn to write (``holding``) or has given it back: the
        analysis thread pauses meanwhile, so that the transaction — which the other
        processes wait for — runs at full speed instead of sharing the interpreter."""
        if holding:
            self._may_analyse.clear()
        else:
            self._may_analyse.set()

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
        was lost mid-batch (rather than leaving them to their lease)."""
        if not self._orphaned:
            return 0
        n = self.queue.take_back(list(self._orphaned.items()), clear_retry=True)
        self._orphaned.clear()
        log.info("claims cut by a lost database connection released", extra={"event": "processing.released", "count": n})
        return n

    # passes

    def run_pending(self, stop: threading.Event | None = None, limit: int | None = None,
                    progress: Callable[[int], None] | None = None, report: PassReport | None = None,
                    claimed: Callable[[list[int]], None] | None = None) -> PassReport:
        """Process what is due, batch after batch, until nothing is (or ``stop`` is set:
        the batches in hand are finished first; or ``limit`` documents were claimed).
        ``claimed`` is called with the ids of each batch claimed; ``progress`` with the
        number of documents settled after each batch (batches settle in the order they were
        claimed), once they are counted in ``report`` (returned; a new one when not given)."""
        report = report if report is not None else PassReport()
        self._announce()
        self.release_orphaned()
        count = 0

        def next_batch() -> list[Claim] | None:
            nonlocal count
            if stop is not None and stop.is_set():
                return None
            size = self.config.batch_size if limit is None else min(self.config.batch_size, limit - count)
            if size <= 0:
                return None
            claims = self.queue.claim_due(size, self._new_token(), self.clock(), self.LEASE)
            count += len(claims)
            if claims and claimed is not None:
                claimed([c.document_id for c in claims])
            return claims or None

        def settled(items: list[_Analysed]) -> None:
            for item in items:
                if item.outcome == states.FAILED:
                    report.failed += 1
                elif item.outcome is not None:
                    report.processed += 1
                    report.outcomes[item.outcome] += 1
            if progress is not None:
                progress(len(items))

        self._run(next_batch, "worker", settled)
        return report

    def run_pending_shared(self, processes: int, progress: Callable[[int], None] | None = None) -> PassReport:
        """:meth:`run_pending` in ``processes`` forked processes at once (each claims,
        analyses and loads its own batches), then here what they left: the claims of one
        that died are taken back and processed here, with the analysis in a pool, so the
        document that crashed it fails alone. Call only when ``parallel.can_fork()``."""
        so_far: dict[int, dict[str, Any]] = {}  # each process's report after its last batch
        unsettled: dict[int, deque[int]] = {}  # each process's claimed documents not reported yet, in claim order

        def work(own: Processor, send: parallel.Send, stop: threading.Event) -> None:
            mine = PassReport()
            own.run_pending(stop=stop, report=mine, claimed=lambda ids: send("claimed", ids),
                            progress=lambda n: send("settled", (n, mine.as_dict())))

        dead: list[int] = []
        with self.fork_siblings(processes, work) as children:
            for number, kind, payload in children.messages():
                if kind == "claimed":
                    unsettled.setdefault(number, deque()).extend(payload)
                elif kind == "settled":
                    so_far[number] = payload[1]
                    for _ in range(payload[0]):
                        unsettled[number].popleft()
                    if progress is not None:
                        progress(payload[0])
                elif kind == parallel.ENDED and not payload:
                    dead.append(number)
        report = PassReport()
        for part in so_far.values():
            report.add(part)
        if dead:
            # what a process that died had settled without saying so (it died after a commit)
            # is counted as stored; the rest of its claims are taken back and done here
            left = [i for number in dead for i in unsettled.get(number, ())]
            for doc in self.queue.documents(left).values():
                if doc.state == states.DONE:
                    report.processed += 1
                    report.outcomes[doc.outcome or doc.state] += 1
                elif doc.state == states.FAILED:
                    report.failed += 1
            self.recover_stale()
        report.add(self.run_pending(progress=progress).as_dict())
        return report

    def process_ids(self, ids: list[int], *, force: bool = False, actor: str = "worker",
                    progress: Callable[[int], None] | None = None) -> dict[int, str | None]:
        """Process the given documents in batches (``force``: whatever their state, as
        ``reprocess`` does). Returns each one's outcome (or kind), ``FAILED`` on a technical
        error, ``None`` when it was not due (or claimed by someone else)."""
        results: dict[int, str | None] = dict.fromkeys(ids)
        chunks = deque(ids[i:i + self.config.batch_size] for i in range(0, len(ids), self.config.batch_size))

        def next_batch() -> list[Claim] | None:
            while chunks:
                chunk = chunks.popleft()
                claims = self.queue.claim(chunk, self._new_token(), self.clock(), self.LEASE, force=force)
                if progress is not None and len(claims) < len(chunk):
                    progress(len(chunk) - len(claims))
                if claims:
                    return claims
            return None

        def settled(items: list[_Analysed]) -> None:
            for item in items:
                results[item.doc.id] = item.outcome
            if progress is not None:
                progress(len(items))

        self._run(next_batch, actor, settled)
        return results

    def process(self, doc_id: int, *, force: bool = False, actor: str = "worker") -> str | None:
        """Process one document. Returns its outcome (or kind), ``FAILED`` on a technical
        error, ``None`` when it was not due (or claimed by someone else)."""
        return self.process_ids([doc_id], force=force, actor=actor)[doc_id]

    def _run(self, next_batch: Callable[[], list[Claim] | None], actor: str, settled: Callable[[list[_Analysed]], None]) -> None:
        """Claim batches and settle them. With a pool, the next batch is analysed in the
        pool while this process loads the one before (two batches in hand at most, so
        memory does not grow with the backlog)."""
        in_hand: deque[_Batch] = deque()
        with self._pool():
            depth = 1 if self._pass_pool is None and not self._pool_wanted and self._thread is None else 2
            try:
                exhausted = False
                while True:
                    while not exhausted and len(in_hand) < depth:
                        claims = next_batch()
                        if claims is None:
                            exhausted = True
                        else:
                            _checkpoint("claimed")
                            in_hand.append(self._start(claims))
                    if not in_hand:
                        break
                    batch = in_hand[0]
                    self._finish(batch, actor)
                    in_hand.popleft()
                    settled(batch.items)
            except BaseException:
                # claims this process can no longer settle (the database lost, a crash of
                # the pool): given back at the next pass, not after their lease
                for batch in in_hand:
                    for item in batch.items:
                        if item.outcome is None:
                            self._orphaned[item.claim.document_id] = item.claim.token
                with contextlib.suppress(Exception):
                    if database_reachable(self.engine):
                        self.release_orphaned()
                raise

    def start_pool(self) -> bool:
        """Start the analysis pool for the life of this processor (the daemon: at start,
        while the process has a single thread; ``close`` ends it). Without it, each pass
        starts its own pool, and only when this process has a single thread; otherwise the
        analysis runs here. True when a pool was started now."""
        if self.config.workers > 1 and self._shared_pool is None:
            self._shared_pool = self._new_pool()
            return True
        return False

    @contextlib.contextmanager
    def command_pool(self, wanted: bool = True) -> Iterator[None]:
        """One analysis pool for a whole command, forked now (before a progress display
        starts its thread) and closed at its end; nothing when not ``wanted``, when this
        process runs other threads, or when a pool is already running."""
        started = wanted and threading.active_count() == 1 and self.start_pool()
        try:
            yield
        finally:
            if started:
                self.close()

    def close(self) -> None:
        pool, self._shared_pool = self._shared_pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _new_pool(self, workers: int | None = None) -> ProcessPoolExecutor:
        """A pool whose processes are forked now, while this process's objects are frozen
        for the garbage collector: a pool process never collects, and so never finalises,
        an object it inherited (an unfinished lock context of this process, collected
        there, would run its statement on this process's database connection)."""
        workdays.warm_up()  # the holiday calendar (≈ 0.15 s), loaded here once, not in each pool process
        pool = ProcessPoolExecutor(
            max_workers=workers or self.config.workers, mp_context=multiprocessing.get_context("fork"),
            initializer=_pool_init, initargs=(self.settings, self.stages_for, self.engine, self.store),
        )
        gc.freeze()
        try:
            pool.submit(int).result()  # a fork-context pool starts all its processes at the first task
        finally:
            gc.unfreeze()
        return pool

    @contextlib.contextmanager
    def _pool(self) -> Iterator[None]:
        """The analysis pool of this pass, as ``self._pass_pool`` (None: analysis in this
        process)."""
        if self._shared_pool is not None:
            self._pass_pool = self._shared_pool
        elif self._overlap:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ebok-analysis")
        elif self.config.workers > 1 and threading.active_count() == 1:
            # (forking a process that runs other threads could copy a lock one of them holds);
            # started with the first batch, so a pass with nothing to do forks nothing
            self._pool_wanted = True
        try:
            yield
        finally:
            self._pool_wanted = False
            thread, self._thread = self._thread, None
            if thread is not None:
                thread.shutdown(wait=True, cancel_futures=True)
            pool, self._pass_pool = self._pass_pool, None
            if pool is not None and pool is not self._shared_pool:
                pool.shutdown(wait=True, cancel_futures=True)

    def _replace_broken_pool(self, broken: ProcessPoolExecutor | None) -> None:
        """A pool process died: the pool is broken for good (every analysis in it fails).
        The pass (and the daemon, when it is the shared pool) goes on with a new one."""
        if broken is None or broken is not self._pass_pool:
            return  # already replaced
        with contextlib.suppress(Exception):
            broken.shutdown(wait=False, cancel_futures=True)
        fresh = self._new_pool()
        if broken is self._shared_pool:
            self._shared_pool = fresh
        self._pass_pool = fresh
        log.warning("analysis pool process ended abnormally; pool restarted", extra={"event": "processing.pool_broken"})

    def _isolate(self, items: list[_Analysed]) -> None:
        """Analyse again, one after another in a pool process of their own, the documents
        whose analysis was lost when a pool process died: the document that kills its
        process again is the one that fails (a technical failure, retried later); the
        others are analysed and loaded as usual, so one such document never costs its
        batchmates an attempt."""
        remaining = list(items)
        while remaining:
            pool = self._new_pool(workers=1)
            try:
                futures = [pool.submit(_pool_analyse, item.doc) for item in remaining]
                pending, remaining = remaining, []
                for k, (item, future) in enumerate(zip(pending, futures, strict=True)):
                    try:
                        result: _Remote = future.result()
                    except Exception:  # noqa: BLE001 - this one killed its own process
                        item.error = AnalysisProcessDied("the analysis process ended abnormally while analysing this document")
                        log.warning("a document ended its analysis process", extra={"event": "processing.analysis_died",
                                                                                   "document_id": item.doc.id})
                        remaining = pending[k + 1:]
                        break
                    item.error = None
                    self._take(item, result)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    # one batch

    def _new_token(self) -> str:
        return f"{self.instance}-{str(uuid.uuid4())[9:]}"  # 36 characters, like the column

    def _claim(self, doc_id: int, force: bool) -> tuple[str, int] | None:
        claims = self.queue.claim([doc_id], self._new_token(), self.clock(), self.LEASE, force=force)
        return (claims[0].token, claims[0].attempt_id) if claims else None

    def _start(self, claims: list[Claim]) -> _Batch:
        """Read the batch's documents and bytes and start their analysis (in the pool, or
        here and now)."""
        if self._pass_pool is None and self._pool_wanted:
            self._pass_pool = self._new_pool()
        pool = self._pass_pool
        docs = self.queue.documents([c.document_id for c in claims])
        items = [_Analysed(c, docs[c.document_id], time.perf_counter()) for c in claims]
        if pool is None and self._thread is not None:  # the whole batch by the analysis thread
            return _Batch(items, [(items, self._thread.submit(self._analyse_all_here, [item.doc for item in items]))], None)
        if pool is None:
            for item in items:
                raw = self._read(item)
                if raw is not None:
                    self._analyse_here(item, raw)
            return _Batch(items, [], None)
        # a few documents per task (about two tasks per pool process and batch): fewer
        # round trips through the pool's queues, the work still shared evenly
        size = max(1, -(-len(items) // (2 * self.config.workers)))
        parts: list[tuple[list[_Analysed], Future]] = []
        for start in range(0, len(items), size):
            part = items[start:start + size]
            docs_of_part = [item.doc for item in part]
            try:  # the pool process reads the documents' bytes itself
                future = pool.submit(_pool_analyse_all, docs_of_part)
            except BrokenProcessPool:  # a process of the pool died since the last batch
                self._replace_broken_pool(pool)
                pool = cast(ProcessPoolExecutor, self._pass_pool)
                future = pool.submit(_pool_analyse_all, docs_of_part)
            parts.append((part, future))
        return _Batch(items, parts, pool)

    def _analyse_all_here(self, docs: list[StoredDocument]) -> list[_Remote]:
        """Read and analyse documents in this process (the analysis thread): as a pool
        process does, without shipping the result anywhere."""
        out = []
        for doc in docs:
            self._may_analyse.wait()
            out.append(_analysis_of(self.store, doc, self.settings, self.stages_for))
        return out

    def _read(self, item: _Analysed) -> bytes | None:
        try:
            return read_stored(self.store, item.doc)
        except Exception as exc:  # a technical failure: recorded, retried, never a rejection
            item.error = exc
            return None

    def _analyse_here(self, item: _Analysed, raw: bytes) -> None:
        try:
            item.ctx = self._analyse(item.doc, raw, _step_logger(item.doc))
        except Exception as exc:  # a technical failure: recorded, retried, never a rejection
            item.error = exc

    def _finish(self, batch: _Batch, actor: str) -> None:
        """Wait for the batch's analysis, then commit it: one transaction for all of it;
        when that fails, each document alone, so one failure never loses the others' work."""
        lost: list[_Analysed] = []
        for part, future in batch.parts:
            try:
                results: list[_Remote] = future.result()
            except Exception as exc:  # a pool process died (killed, out of memory, a crash): its analyses are lost
                for item in part:
                    item.error = exc
                lost += part
                continue
            for item, result in zip(part, results, strict=True):
                self._take(item, result)
        if lost and batch.pool is not None:  # (the analysis thread fails no document but with its own error)
            self._replace_broken_pool(batch.pool)
            self._isolate(lost)
        _checkpoint("analysed")
        ok = [i for i in batch.items if i.error is None]
        if len(ok) > 1:
            try:
                self._commit(ok, actor)
            except Exception:  # noqa: BLE001 - each is committed (and a failure recorded) alone below
                for i in ok:
                    i.outcome = i.declaration_id = None
            ok = [i for i in ok if i.outcome is None]
        for item in ok:
            try:
                self._commit([item], actor)
            except Exception as exc:  # a technical failure: recorded, retried, never a rejection
                item.outcome = item.declaration_id = None
                item.error = exc
        for item in batch.items:
            if item.error is not None:
                self._record_failure(item)
            else:
                self._log_done(item)

    def _take(self, item: _Analysed, result: _Remote) -> None:
        """What a pool process sent back for ``item``: its log records, then its context or
        its failure."""
        for record in result.records:
            logging.getLogger(record.name).handle(record)
        if result.ctx is not None:
            item.ctx = dataclasses.replace(result.ctx, settings=self.settings)
        else:
            item.error = _AnalysisFailed(result.described.type if result.described else "")
            item.described, item.error_text = result.described, result.error_text

    def _record_failure(self, item: _Analysed) -> None:
        exc = item.error
        assert exc is not None
        try:
            self._fail(item, exc)
        except Exception:
            if database_lost(exc) or not database_reachable(self.engine):
                # the database went away mid-batch: give the claim back as soon as it is
                # back (the daemon's next pass), not after the lease
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
        return _analyse_document(doc, raw, self.settings, self.stages_for, on_stage)

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
            loads: list[_Analysed] = []
            for item in items:
                ctx = item.ctx
                assert ctx is not None
                item.outcome = ctx.outcome
                if ctx.kind in (TEST, CORRESPONDENCE):
                    item.outcome = ctx.kind  # not a declaration: shown as what it is, never as a rejection
                else:
                    loads.append(item)
            if loads:
                pairs = [(i.doc, i.ctx) for i in loads]
                # one signature, one filing: before loading, so that a copy changes nothing
                uow.record_signatures(pairs, ruleset=self.settings.ruleset, now=now, actor=actor)
                for i in loads:
                    fit_to_columns(cast(Context, i.ctx))
                results = uow.load(pairs, payments=self.payments, ruleset=self.settings.ruleset, now=now, actor=actor)
                for i, loaded in zip(loads, results, strict=True):
                    i.declaration_id, i.outcome = loaded.declaration_id, loaded.status
            _checkpoint("loaded")
            uow.mark_all_done([
                (i.claim, i.ctx.kind, i.outcome, [f.to_dict() for f in i.ctx.findings], _evidence(i.ctx)) for i in items if i.ctx is not None
            ], now)
            uow.count_processed(Counter(i.outcome or "NONE" for i in items if i.ctx is not None), now)
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
            outcome = ctx.kind
        else:
            fit_to_columns(ctx)
            with self.queue.unit_of_work(rollback=True) as uow:
                uow.record_signatures([(doc, ctx)], ruleset=self.settings.ruleset, now=self.clock(), actor="dry-run")
                outcome = uow.load([(doc, ctx)], payments=self.payments, ruleset=self.settings.ruleset, now=self.clock(), actor="dry-run")[0].status
        return {
            "document_id": doc_id,
            "old_outcome": doc.outcome if doc.state == states.DONE else doc.state,
            "new_outcome": outcome,
            "old_codes": sorted({f["code"] for f in (doc.findings or [])}),
            "new_codes": sorted({f.code for f in ctx.findings}),
            "computed_fee": str(ctx.computed_fee) if ctx.computed_fee is not None else None,
        }

    def _fail(self, item: _Analysed, exc: Exception) -> None:
        described = item.described or describe_technical_error(exc)
        error = described.text()[:2000]  # never SQL parameters or document content
        c = self.config
        claim = item.claim
        failure = self.queue.fail(claim, error, self.clock(), time.perf_counter() - item.t0, max_attempts=c.max_attempts,
                                  retry_initial_s=c.retry_initial_s, retry_max_s=c.retry_max_s)
        next_at = failure.next_attempt_at
        record = log.makeRecord(
            log.name, logging.ERROR, __file__, 0,
            "processing failed (technical error, will retry)" if next_at else "processing failed; retries exhausted", (),
            None if item.described else (type(exc), exc, exc.__traceback__),
            extra={"event": "document.failed", "document_id": claim.document_id, "attempts": failure.attempts,
                   "retry_at": next_at.isoformat() if next_at else None, **described.log_fields()},
        )
        if item.described:
            record.exc_text = item.error_text  # the pool worker's safe traceback
        log.handle(record)


# --- the pool's side ----------------------------------------------------------------------


def _analyse_document(doc: StoredDocument, raw: bytes, settings: ProcessingSettings,
                      stages_for: Callable[[str, dict[str, Any]], list[Stage]],
                      on_stage: Callable[[str, float], None] | None = None) -> Context:
    meta = doc.meta or {}
    return analyse(
        raw, channel=doc.channel, filed_at=doc.filed_at, metadata=meta, settings=settings,
        stages=None if meta.get("czyTestowe") is True else stages_for(doc.channel, meta),
        document_id=doc.id, on_stage=on_stage,
    )


def _step_logger(doc: StoredDocument) -> Callable[[str, float], None]:
    extra = {"document_id": doc.id, "channel": doc.channel, "mailbox": doc.source}

    def on_stage(name: str, dt: float) -> None:
        log.debug("step done", extra={"event": "document.step", "step": name, "duration_ms": round(dt * 1000, 2), **extra})

    return on_stage


class _AnalysisFailed(Exception):
    """The analysis raised in a pool worker (described there: see ``_Analysed.described``)."""


@dataclass
class _Remote:
    """What a pool worker sends back: the analysed context without its trees (or the
    failure, described there), and the log records of the analysis."""

    ctx: Context | None
    records: list[logging.LogRecord]
    described: TechnicalError | None = None
    error_text: str = ""


#: stands for a verified tree that stayed in the pool worker (the load only asks whether
#: there was one)
VERIFIED = "verified"

_POOL: dict[str, Any] = {}


class _Records(logging.Handler):
    """Collects a pool worker's log records for the parent to emit."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            record.exc_text = safe_exception_text(record.exc_info[1])
            record.exc_info = None
        record.msg, record.args = record.getMessage(), None
        _POOL.setdefault("records", []).append(record)


def read_stored(store: DocumentStore, doc: StoredDocument) -> bytes:
    """A stored document's bytes, checked against its SHA-256."""
    raw = store.get(doc.storage_key)
    if DocumentStore.digest(raw) != doc.sha256:
        raise StorageCorrupted(f"stored bytes of document {doc.id} do not match their SHA-256")
    return raw


def _pool_init(settings: ProcessingSettings, stages_for: Callable[[str, dict[str, Any]], list[Stage]], engine: Any,
               store: DocumentStore) -> None:
    """A pool worker's start (forked): it dies with its parent, never uses the parent's
    database connections, and sends its log records back with each result."""
    with contextlib.suppress(Exception):  # Linux: SIGKILL when the parent dies
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)
    # the parent decides when to stop (a stop signal sent to the whole group, as systemd
    # does, must not cut the batch in hand): the pool ends with the pass, or with the parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        engine.dispose(close=False)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_Records())
    _POOL.update(settings=settings, stages_for=stages_for, store=store)


def _analysis_of(store: DocumentStore, doc: StoredDocument, settings: ProcessingSettings,
                 stages_for: Callable[[str, dict[str, Any]], list[Stage]], ship: Callable[[Context], Context] = lambda ctx: ctx) -> _Remote:
    """Read a document's stored bytes and analyse them; a technical failure is described
    here (recorded by whoever loads the batch). ``ship``: what of the context is sent on."""
    try:
        return _Remote(ship(_analyse_document(doc, read_stored(store, doc), settings, stages_for, _step_logger(doc))), [])
    except Exception as exc:  # a technical failure: described here, recorded by the loader
        return _Remote(None, [], describe_technical_error(exc), safe_exception_text(exc))


def _pool_analyse(doc: StoredDocument) -> _Remote:
    """Read the document's stored bytes and analyse them (in a pool process), with the log
    records of the analysis for the parent to emit."""
    _POOL["records"] = []
    result = _analysis_of(_POOL["store"], doc, _POOL["settings"], _POOL["stages_for"], _shippable)
    result.records = _POOL.pop("records")
    return result


def _pool_analyse_all(docs: list[StoredDocument]) -> list[_Remote]:
    """:func:`_pool_analyse` for several documents, one after another."""
    return [_pool_analyse(doc) for doc in docs]


def _shippable(ctx: Context) -> Context:
    """The context without what cannot cross to the parent (lxml trees, the raw bytes):
    what the load, the findings and the evidence need stays."""

    def verified(root: Any) -> Any:
        return None if root is None else VERIFIED

    sig = ctx.signature
    if dataclasses.is_dataclass(sig) and hasattr(sig, "signed_root"):
        changes: dict[str, Any] = {"signed_root": verified(sig.signed_root)}
        if hasattr(sig, "checks"):
            changes["checks"] = tuple(dataclasses.replace(c, signed_root=verified(c.signed_root)) for c in sig.checks)
        sig = dataclasses.replace(cast(Any, sig), **changes)
    return dataclasses.replace(ctx, raw=b"", root=None, signed_root=verified(ctx.signed_root), scan_export=None, signature=sig,
                               settings=cast(Any, None), budget=None)  # the parent puts its own settings back


SIGNER_LIMIT = 300  # ebok_declaration.signer


def fit_to_columns(ctx: Context) -> None:
    """Cut the declaration to what the eBOK columns hold, with a finding for each value that
    did not fit (see ``worker.domain.limits``): content never fails the load."""
    sig = ctx.signature
    signer = getattr(sig, "signer_name", None)
    if isinstance(signer, str) and len(signer) > SIGNER_LIMIT and dataclasses.is_dataclass(sig):
        # a name from a certificate, not from the sender's form: shown cut, with no finding
        ctx.signature = dataclasses.replace(cast(Any, sig), signer_name=signer[:SIGNER_LIMIT])
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


class AnalysisProcessDied(SafeMessage):
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
