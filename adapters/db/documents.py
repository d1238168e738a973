"""Reading stored documents (``worker_document``) for the office's commands: choosing
documents to reprocess, their current outcome, correspondence rows. Every function takes
an open connection and several ids where that is natural, so callers can batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, insert, literal, or_, select
from sqlalchemy.exc import IntegrityError

from adapters.db.reports import filed_between, received_between
from adapters.db.tables import ebok_declaration, worker_correspondence, worker_document
from worker import states

DECLARATION_STATUSES = ("ACCEPTED", "NEEDS_REVIEW", "REJECTED", "SUPERSEDED")


@dataclass(frozen=True)
class DocumentOutcome:
    """A stored document's outcome as it is now, with its eBOK declaration, if any."""

    state: str
    outcome: str | None
    findings: list[dict[str, Any]]
    declaration_id: int | None
    declaration_status: str | None
    computed_fee: Decimal | None


def existing_ids(conn: Connection, document_ids: Iterable[int]) -> set[int]:
    """Those of ``document_ids`` that are stored documents."""
    d = worker_document.c
    return set(conn.execute(select(d.id).where(d.id.in_(list(document_ids)))).scalars())


def documents_of_declarations(conn: Connection, declaration_ids: Iterable[int]) -> dict[int, int]:
    """eBOK declaration id → its document id, for those that exist."""
    e = ebok_declaration.c
    return {decl: doc for decl, doc in conn.execute(select(e.id, e.document_id).where(e.id.in_(list(declaration_ids)))).all()}


def select_for_reprocessing(
    conn: Connection, *, ids: Sequence[int] | None = None, failed: bool = False, kind: str | None = None,
    declaration_status: str | None = None, channel: str | None = None, since: date | None = None, until: date | None = None,
    code: str | None = None, filed_since: date | None = None, filed_until: date | None = None,
) -> list[int]:
    """The ids of the documents matching every given filter (``code``: a finding with
    that code), not being processed right now, in id order. Only the ids are kept: the
    selection of a whole archive stays small."""
    d = worker_document.c
    q = select(d.id, d.findings if code else literal(None)).outerjoin(ebok_declaration, ebok_declaration.c.document_id == d.id)
    if ids is not None:
        q = q.where(d.id.in_(sorted(ids)))
    if failed:
        q = q.where(d.state == states.FAILED)
    if kind is not None:
        q = q.where(d.kind == kind)
    if declaration_status is not None:
        q = q.where(or_(ebok_declaration.c.status == declaration_status,
                        (d.outcome == declaration_status) & ebok_declaration.c.id.is_(None)))
    if channel:
        q = q.where(d.channel == channel)
    for window in (received_between(since, until), filed_between(filed_since, filed_until)):
        if window is not None:
            q = q.where(window)
    q = q.where(d.state.not_in((states.PROCESSING, states.FETCHING))).order_by(d.id)
    rows = conn.execute(q.execution_options(yield_per=1000))
    if not code:
        return [r[0] for r in rows]
    return [r[0] for r in rows if any(f.get("code") == code for f in (r[1] or []))]


def outcomes(conn: Connection, document_ids: Iterable[int]) -> dict[int, DocumentOutcome]:
    d, e = worker_document.c, ebok_declaration.c
    rows = conn.execute(
        select(d.id, d.state, d.outcome, d.findings, e.id.label("declaration_id"), e.status, e.computed_fee)
        .outerjoin(ebok_declaration, e.document_id == d.id)
        .where(d.id.in_(list(document_ids)))
    ).all()
    return {r.id: DocumentOutcome(r.state, r.outcome, r.findings or [], r.declaration_id, r.status, r.computed_fee) for r in rows}


def _correspondence_query() -> Any:
    c = worker_correspondence.c
    return (select(worker_document, c.folder, c.handed_over_at, c.last_error.label("handover_error"))
            .outerjoin(worker_correspondence, c.document_id == worker_document.c.id))


def correspondence_rows(conn: Connection, kinds: Iterable[str]) -> Sequence[RowMapping]:
    """The processed documents of the given kinds with their hand-over, in filing order."""
    d = worker_document.c
    return conn.execute(
        _correspondence_query().where(d.state == states.DONE, d.kind.in_(list(kinds))).order_by(d.filed_at, d.id)
    ).mappings().all()


def document_with_handover(conn: Connection, document_id: int) -> RowMapping | None:
    return conn.execute(_correspondence_query().where(worker_document.c.id == document_id)).mappings().first()


def document_of_declaration(conn: Connection, declaration_id: int) -> RowMapping | None:
    """The stored document an eBOK declaration was loaded from; None: no such declaration."""
    doc_id = conn.execute(select(ebok_declaration.c.document_id).where(ebok_declaration.c.id == declaration_id)).scalar()
    if doc_id is None:
        return None
    return conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()


def get(conn: Connection, document_id: int) -> RowMapping:
    """One stored document's row (it must exist)."""
    return conn.execute(select(worker_document).where(worker_document.c.id == document_id)).mappings().one()


# --- intake: a document stored once ---------------------------------------------------------


class AlreadyStored(Exception):
    """Inserting the document's row broke a unique key: another process may have stored it
    at the same moment (the database's error is the cause)."""


def find_stored(conn: Connection, *, channel: str, source_ref: str, source: str | None, sha256: str) -> int | None:
    """The id of a document already stored: the same channel and source reference, or the
    same bytes from the same source."""
    d = worker_document.c
    found = conn.execute(select(d.id).where(d.channel == channel, d.source_ref == source_ref)).scalar()
    if found is None:
        cond = [d.channel == channel, d.sha256 == sha256]
        cond.append(d.source == source if source is not None else d.source.is_(None))
        found = conn.execute(select(d.id).where(*cond).order_by(d.id).limit(1)).scalar()
    return found


def insert_received(engine: Engine, row: dict[str, Any]) -> int:
    """A new document's row (state RECEIVED), in its own transaction; its id. Raises
    :class:`AlreadyStored` when a unique key refuses it."""
    try:
        with engine.begin() as conn:
            return int(conn.execute(insert(worker_document).values(**row).returning(worker_document.c.id)).scalar_one())
    except IntegrityError as exc:
        raise AlreadyStored(str(type(exc).__name__)) from exc


def record_imported(engine: Engine, document_id: int, *, actor: str, note: str, at: Any) -> None:
    """The audit record of a document taken in from a package by a person (``import-package``)."""
    from adapters.db.tables import worker_audit

    with engine.begin() as conn:
        conn.execute(insert(worker_audit).values(at=at, document_id=document_id, actor=actor[:100], action="IMPORTED", note=note))
