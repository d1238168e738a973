"""The read-only queries behind the reports: the status snapshot (``status``, ``status
--json``, the monitoring metrics) and the daily summary. The services shape and print
them; the SQL is here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from adapters.db.tables import ebok_declaration, worker_correspondence, worker_document, worker_mailbox
from worker import states
from worker.domain.clock import day_bounds


@dataclass(frozen=True)
class QueueCounts:
    """The document queue and the eBOK declarations as counted for the status snapshot."""

    by_state: dict[str, int]
    done_by_kind: dict[str | None, int]
    done_by_outcome: dict[str | None, int]
    failed_parked: int
    oldest_pending: tuple[int, datetime, str] | None  # (document id, received at, state)
    declarations_by_status: dict[str, int]
    mailboxes: list[dict[str, Any]]


def queue_counts(conn: Connection) -> QueueCounts:
    d, e = worker_document.c, ebok_declaration.c
    by_state: dict[Any, int] = dict(conn.execute(select(d.state, func.count()).group_by(d.state)).all())
    by_kind: dict[Any, int] = dict(conn.execute(select(d.kind, func.count()).where(d.state == states.DONE).group_by(d.kind)).all())
    processed: dict[Any, int] = dict(conn.execute(select(d.outcome, func.count()).where(d.state == states.DONE).group_by(d.outcome)).all())
    parked = conn.execute(select(func.count()).where(d.state == states.FAILED, d.next_attempt_at.is_(None))).scalar_one()
    oldest = conn.execute(
        select(d.id, d.received_at, d.state).where(d.state.in_((states.FETCHING, states.RECEIVED, states.PROCESSING, states.FAILED))).order_by(d.received_at).limit(1)
    ).first()
    by_outcome: dict[Any, int] = dict(conn.execute(select(e.status, func.count()).group_by(e.status)).all())
    mailboxes = [dict(r._mapping) for r in conn.execute(select(worker_mailbox).order_by(worker_mailbox.c.address))]
    return QueueCounts(by_state, by_kind, processed, parked, (oldest.id, oldest.received_at, oldest.state) if oldest else None, by_outcome, mailboxes)


def handover_counts(conn: Connection, kinds: Iterable[str]) -> dict[str, Any]:
    """Items pending hand-over, handed over, and the outbox's last error (of an item still
    pending), if any."""
    d, c = worker_document.c, worker_correspondence.c
    handed = conn.execute(select(func.count()).select_from(worker_correspondence).where(c.handed_over_at.is_not(None))).scalar_one()
    pending = conn.execute(
        select(func.count()).select_from(worker_document)
        .outerjoin(worker_correspondence, c.document_id == d.id)
        .where(d.state == states.DONE, d.kind.in_(list(kinds)), c.handed_over_at.is_(None))
    ).scalar_one()
    err = conn.execute(
        select(c.last_error, c.last_attempt_at).where(c.handed_over_at.is_(None), c.last_error.is_not(None)).order_by(c.last_attempt_at.desc()).limit(1)
    ).first()
    return {
        "pending": pending,
        "handed_over": handed,
        "outbox_error": err.last_error if err else None,
        "outbox_error_at": err.last_attempt_at.isoformat() if err else None,
    }


def day_counts(conn: Connection, since: datetime, until: datetime) -> tuple[int, dict[str | None, int]]:
    """Documents received in [since, until), and those processed then by outcome."""
    d = worker_document.c
    received = conn.execute(select(func.count()).where(d.received_at >= since, d.received_at < until)).scalar_one()
    outcomes: dict[Any, int] = dict(conn.execute(select(d.outcome, func.count()).where(d.processed_at >= since, d.processed_at < until).group_by(d.outcome)).all())
    return received, outcomes


def received_between(since: date | None, until: date | None) -> ColumnElement[bool] | None:
    """Documents received from the Polish day ``since`` to the day ``until`` inclusive."""
    return _between(worker_document.c.received_at, since, until)


def filed_between(since: date | None, until: date | None) -> ColumnElement[bool] | None:
    """Documents filed (ePUAP ``dataNadania``, a scan's receipt date) from the Polish day
    ``since`` to the day ``until`` inclusive."""
    return _between(worker_document.c.filed_at, since, until)


def _between(column: Any, since: date | None, until: date | None) -> ColumnElement[bool] | None:
    cond = []
    if since:
        cond.append(column >= day_bounds(since)[0])
    if until:
        cond.append(column < day_bounds(until)[1])
    return and_(*cond) if cond else None
