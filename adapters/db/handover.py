"""The hand-over of correspondence to the office's outbox, as recorded in
``worker_correspondence`` (one row per document: attempts, folder, when handed over, the
last error)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.db.tables import worker_correspondence, worker_document
from worker import states


def pending(conn: Connection, kinds: Iterable[str]) -> Sequence[RowMapping]:
    """Processed documents of the given kinds not yet handed over, in id order, with their
    attempts so far (``id``, ``handover_attempts``, ``handover_last_attempt_at``)."""
    d, c = worker_document.c, worker_correspondence.c
    return conn.execute(
        select(d.id, c.attempts.label("handover_attempts"), c.last_attempt_at.label("handover_last_attempt_at"))
        .outerjoin(worker_correspondence, c.document_id == d.id)
        .where(d.state == states.DONE, d.kind.in_(list(kinds)), c.handed_over_at.is_(None))
        .order_by(d.id)
    ).mappings().all()


def record_handed_over(engine: Engine, document_id: int, folder: str, now: datetime) -> None:
    """The item is in the outbox: its folder and time, its error cleared (own transaction)."""
    c = worker_correspondence.c
    values = dict(folder=folder, handed_over_at=now, last_attempt_at=now, last_error=None)
    try:
        with engine.begin() as conn:
            n = conn.execute(update(worker_correspondence).where(c.document_id == document_id).values(attempts=c.attempts + 1, **values)).rowcount
            if not n:
                conn.execute(insert(worker_correspondence).values(document_id=document_id, attempts=1, **values))
    except IntegrityError:  # another process recorded it (or its failure) at the same moment
        with engine.begin() as conn:
            conn.execute(update(worker_correspondence).where(c.document_id == document_id).values(attempts=c.attempts + 1, **values))


def record_failure(engine: Engine, document_id: int, error: str, now: datetime) -> None:
    """A failed attempt and its error (bounded; own transaction)."""
    c = worker_correspondence.c
    with engine.begin() as conn:
        n = conn.execute(
            update(worker_correspondence).where(c.document_id == document_id).values(attempts=c.attempts + 1, last_attempt_at=now, last_error=error[:2000])
        ).rowcount
        if not n:
            conn.execute(insert(worker_correspondence).values(document_id=document_id, attempts=1, last_attempt_at=now, last_error=error[:2000]))
