"""The document queue (``worker_document`` as a work queue): which documents are due,
claims, their settlement, and taking claims back.

States (``worker.states``): RECEIVED → PROCESSING (claimed: a token and a lease) → DONE |
FAILED. Every method takes or returns several documents where that is natural, so the
service can work in batches; a claim is settled either inside a :class:`UnitOfWork` (one
transaction: the claim re-checked, the eBOK load, DONE, the audit) or by :meth:`fail`.

Documents are read as :class:`StoredDocument` records, never as rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, and_, bindparam, case, insert, or_, select, text, update

from adapters.db import counters, ebok, signature_digests
from adapters.db.locks import PassLocks, lock_key
from adapters.db.tables import worker_attempt, worker_audit, worker_document
from worker import states


@dataclass(frozen=True)
class StoredDocument:
    """A stored document as processing needs it (one ``worker_document`` row, read once)."""

    id: int
    channel: str
    source: str | None
    source_ref: str
    sha256: str
    storage_key: str
    filed_at: datetime | None
    received_at: datetime
    meta: dict[str, Any]
    state: str
    outcome: str | None
    attempts: int
    findings: list[dict[str, Any]] | None
    review_decision: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | RowMapping) -> StoredDocument:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["meta"] = values["meta"] or {}
        return cls(**values)

    def __getitem__(self, name: str) -> Any:
        """Read like the row it replaces (the loaders also take rows)."""
        return getattr(self, name)


_COLUMNS = [worker_document.c[f.name] for f in fields(StoredDocument)]


@dataclass(frozen=True)
class Claim:
    """A claimed document: the token that proves the claim and its attempt's record."""

    document_id: int
    token: str
    attempt_id: int


@dataclass(frozen=True)
class Failure:
    """What :meth:`DocumentQueue.fail` recorded."""

    attempts: int
    next_attempt_at: datetime | None


class DocumentQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._turn = PassLocks(engine).writer_turn  # claims and loads of several processes on one SQLite file
        #: called with True once this process's turn to write has come, with False when its
        #: transaction is over (the processor pauses its analysis thread meanwhile)
        self.on_turn: Callable[[bool], None] | None = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        with self._turn():
            if self.on_turn is not None:
                self.on_turn(True)
            try:
                yield
            finally:
                if self.on_turn is not None:
                    self.on_turn(False)

    @staticmethod
    def _due(now: datetime) -> Any:
        d = worker_document.c
        return or_(
            d.state == states.RECEIVED,
            and_(d.state == states.FAILED, d.next_attempt_at.is_not(None), d.next_attempt_at <= now),
            and_(d.state == states.PROCESSING, d.lease_until < now),
        )

    # --- reading --------------------------------------------------------------------------

    def due_ids(self, now: datetime, limit: int | None = None) -> list[int]:
        """The documents due now, oldest first."""
        d = worker_document.c
        q = select(d.id).where(self._due(now)).order_by(d.received_at, d.id)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def documents(self, ids: Sequence[int]) -> dict[int, StoredDocument]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_COLUMNS).where(worker_document.c.id.in_(list(ids)))).mappings().all()
        return {r["id"]: StoredDocument.from_row(r) for r in rows}

    def document(self, document_id: int) -> StoredDocument:
        return self.documents([document_id])[document_id]

    def claims(self) -> list[tuple[int, str | None]]:
        """(document id, claim token) of every PROCESSING document."""
        d = worker_document.c
        with self.engine.connect() as conn:
            return [(r.id, r.claim_token) for r in conn.execute(select(d.id, d.claim_token).where(d.state == states.PROCESSING))]

    # --- claiming -------------------------------------------------------------------------

    def claim(self, ids: Sequence[int], token: str, now: datetime, lease: timedelta, *, force: bool = False) -> list[Claim]:
        """Claim those of ``ids`` that are due (all of them with ``force``) in one short
        transaction: PROCESSING with ``token`` and a lease, one attempt each. Rows another
        process is claiming at this moment are skipped (PostgreSQL), never waited for."""
        if not ids:
            return []
        d = worker_document.c
        cond: list[Any] = [d.id.in_(list(ids))]
        if not force:
            cond.append(self._due(now))
        else:  # a document still waiting for its attachments by reference is not processed yet
            cond.append(d.state != states.FETCHING)
        with self._writing(), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # a lost claim only means the document is claimed again: no WAL flush wait
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                cond = [d.id.in_(select(d.id).where(*cond).with_for_update(skip_locked=True).scalar_subquery())]
            return self._claim_in(conn, and_(*cond), token, now, lease)

    @staticmethod
    def _claim_in(conn: Connection, cond: Any, token: str, now: datetime, lease: timedelta) -> list[Claim]:
        """Claim the rows matching ``cond``: one attempt each. A row still PROCESSING (its
        holder's lease ran out: the holder is gone or hung) is taken over without counting
        a new attempt — only technical failures count toward ``max_attempts`` — and the
        holder's open attempt is closed as interrupted."""
        d = worker_document.c
        claimed = sorted(conn.execute(
            update(worker_document).where(cond)
            .values(state=states.PROCESSING, claim_token=token, lease_until=now + lease,
                    attempts=case((d.state == states.PROCESSING, d.attempts), else_=d.attempts + 1))
            .returning(d.id)
        ).scalars())
        if not claimed:
            return []
        _close_open_attempts(conn, claimed, now)
        attempt_ids = conn.execute(
            insert(worker_attempt).returning(worker_attempt.c.id, sort_by_parameter_order=True),
            [{"document_id": i, "started_at": now} for i in claimed],
        ).scalars().all()
        return [Claim(i, token, a) for i, a in zip(claimed, attempt_ids, strict=True)]

    def claim_due(self, limit: int, token: str, now: datetime, lease: timedelta) -> list[Claim]:
        """Claim up to ``limit`` of the documents due now, oldest first (see :meth:`claim`):
        on PostgreSQL rows another process holds are skipped, so several processes never
        collide."""
        d = worker_document.c
        due = select(d.id).where(self._due(now)).order_by(d.received_at, d.id).limit(limit)
        with self._writing(), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                due = due.with_for_update(skip_locked=True)
            return self._claim_in(conn, d.id.in_(due.scalar_subquery()), token, now, lease)

    def take_back(self, claims: Iterable[tuple[int, str | None]], *, clear_retry: bool = False) -> int:
        """Put claimed documents back to RECEIVED, each only if its claim is still the one
        given (``None``: a claim without a token). ``clear_retry``: also forget a retry time
        (a claim cut by a lost connection). Used to recover the claims of a process that is
        gone and to release the claims this process could not settle."""
        d = worker_document.c
        # an interrupted claim is no attempt: only technical failures count toward max_attempts
        values: dict[str, Any] = dict(state=states.RECEIVED, claim_token=None, lease_until=None,
                                      attempts=case((d.attempts > 0, d.attempts - 1), else_=0))
        if clear_retry:
            values["next_attempt_at"] = None
        taken: list[int] = []
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            for doc_id, token in claims:
                cond = [d.id == doc_id, d.state == states.PROCESSING]
                cond.append(d.claim_token == token if token is not None else d.claim_token.is_(None))
                if conn.execute(update(worker_document).where(*cond).values(**values)).rowcount:
                    taken.append(doc_id)
            _close_open_attempts(conn, taken, now)
        return len(taken)

    # --- settling -------------------------------------------------------------------------

    def fail(self, claim: Claim, error: str, now: datetime, duration_s: float, *, max_attempts: int, retry_initial_s: float,
             retry_max_s: float) -> Failure:
        """A technical failure: FAILED, to be retried with exponential backoff, parked (no
        retry time) after ``max_attempts``."""
        d = worker_document.c
        with self.engine.begin() as conn:
            attempts = conn.execute(select(d.attempts).where(d.id == claim.document_id)).scalar_one()
            if attempts >= max_attempts:
                next_at = None  # parked: `reprocess` brings it back
            else:
                next_at = now + timedelta(seconds=min(retry_max_s, retry_initial_s * (2 ** (attempts - 1))))
            conn.execute(
                update(worker_document)
                .where(d.id == claim.document_id, d.claim_token == claim.token)
                .values(state=states.FAILED, claim_token=None, lease_until=None, next_attempt_at=next_at, last_error=error)
            )
            conn.execute(
                update(worker_attempt).where(worker_attempt.c.id == claim.attempt_id)
                .values(finished_at=now, result=states.FAILED, error=error, duration_s=duration_s)
            )
            counters.add(conn, counters.ERRORS, {"processing": 1}, now)
        return Failure(attempts, next_at)

    @contextlib.contextmanager
    def unit_of_work(self, *, rollback: bool = False) -> Iterator[UnitOfWork]:
        """One transaction, committed when the block ends (rolled back on an exception, or
        always with ``rollback``: a dry run)."""
        with self._writing(), self.engine.connect() as conn:
            tx = conn.begin()
            try:
                yield UnitOfWork(conn)
            except BaseException:
                tx.rollback()
                raise
            if rollback:
                tx.rollback()
            else:
                tx.commit()


#: what an attempt cut short (its process killed, its connection lost) is recorded as
INTERRUPTED = "INTERRUPTED"


def _close_open_attempts(conn: Connection, document_ids: Sequence[int], now: datetime) -> None:
    """The attempts of these documents still open (their process is gone) closed as
    interrupted — they are no technical failure."""
    if document_ids:
        a = worker_attempt.c
        conn.execute(update(worker_attempt).where(a.document_id.in_(list(document_ids)), a.finished_at.is_(None))
                     .values(finished_at=now, result=INTERRUPTED))


_MARK_DONE = (
    update(worker_document).where(worker_document.c.id == bindparam("b_id"))
    .values(state=states.DONE, kind=bindparam("b_kind"), outcome=bindparam("b_outcome"), processed_at=bindparam("b_now"),
            claim_token=None, lease_until=None, next_attempt_at=None, last_error=None, findings=bindparam("b_findings"),
            evidence=bindparam("b_evidence"))
)
_ATTEMPT_DONE = (
    update(worker_attempt).where(worker_attempt.c.id == bindparam("b_id")).values(finished_at=bindparam("b_now"), result=states.DONE)
)


class UnitOfWork:
    """The statements of one processing transaction (see :meth:`DocumentQueue.unit_of_work`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that an exception undoes alone."""
        with self.conn.begin_nested():
            yield

    def confirm_claims(self, claims: Sequence[Claim], now: datetime, lease: timedelta) -> list[int]:
        """The documents of ``claims`` whose claim is still ours, their lease renewed (on
        PostgreSQL this takes their row locks)."""
        d = worker_document.c
        ours: list[int] = []
        for token in sorted({c.token for c in claims}):
            ids = [c.document_id for c in claims if c.token == token]
            ours += self.conn.execute(
                update(worker_document).where(d.id.in_(ids), d.claim_token == token, d.state == states.PROCESSING)
                .values(lease_until=now + lease).returning(d.id)
            ).scalars().all()
        return sorted(ours)

    def serialize_loads(self) -> None:
        """Loads of several processes one after another until this transaction ends (their
        analysis stays parallel): two declarations of one new payer or property never race
        for the same row. Nothing to do on SQLite (one writer at a time)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("ebok-load")})

    def record_signatures(self, docs: Sequence[tuple[StoredDocument, Any]], *, ruleset: Any, now: datetime, actor: str) -> None:
        """The duplicate-signature rule (:mod:`adapters.db.signature_digests`) for the
        documents ``(doc, ctx)``: before the load, so that a copy changes nothing."""
        signature_digests.apply_batch(self.conn, docs, ruleset=ruleset, now=now, actor=actor)

    def load(self, docs: Sequence[tuple[StoredDocument, Any]], *, payments: Any, ruleset: Any, now: datetime,
             actor: str) -> list[ebok.Loaded]:
        """The eBOK load of the documents ``(doc, ctx)``, in order, and the reconciliation
        of the properties they touch (:func:`adapters.db.ebok.load_batch`)."""
        return ebok.load_batch(self.conn, docs, payments=payments, ruleset=ruleset, now=now, actor=actor)

    def mark_done(self, claim: Claim, *, kind: str | None, outcome: str | None, findings: list[dict[str, Any]],
                  evidence: dict[str, Any], now: datetime) -> None:
        self.mark_all_done([(claim, kind, outcome, findings, evidence)], now)

    def mark_all_done(self, done: Sequence[tuple[Claim, str | None, str | None, list[dict[str, Any]], dict[str, Any]]],
                      now: datetime) -> None:
        """Documents DONE (claim, kind, outcome, findings, evidence each) and their attempts
        finished: two statements for all of them."""
        if not done:
            return
        self.conn.execute(_MARK_DONE, [
            {"b_id": c.document_id, "b_kind": kind, "b_outcome": outcome, "b_now": now, "b_findings": findings, "b_evidence": evidence}
            for c, kind, outcome, findings, evidence in done
        ])
        self.conn.execute(_ATTEMPT_DONE, [{"b_id": c.attempt_id, "b_now": now} for c, *_ in done])

    def count_processed(self, outcomes: Mapping[str, int], now: datetime) -> None:
        """The documents of this transaction in the ``processed`` counter, by outcome."""
        counters.add(self.conn, counters.PROCESSED, outcomes, now)

    def audit(self, rows: Sequence[dict[str, Any]]) -> None:
        """Audit records (``at``, ``document_id``, ``declaration_id``, ``actor``, ``action``,
        ``old_status``, ``new_status``)."""
        if rows:
            self.conn.execute(insert(worker_audit), list(rows))

    def requeue(self, ids: Iterable[int]) -> int:
        """DONE or FAILED documents back to RECEIVED, to be processed again from raw."""
        ids = list(ids)
        if not ids:
            return 0
        d = worker_document.c
        return self.conn.execute(
            update(worker_document)
            .where(d.id.in_(ids), d.state.in_((states.DONE, states.FAILED, states.RECEIVED)))
            .values(state=states.RECEIVED, attempts=0, next_attempt_at=None, last_error=None)
        ).rowcount


def requeue(conn: Connection, ids: Iterable[int]) -> int:
    """:meth:`UnitOfWork.requeue` within the caller's transaction."""
    return UnitOfWork(conn).requeue(ids)


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False
