"""The office's review queue in the database: the NEEDS_REVIEW declarations, one
declaration's details, and recording a decision (the service decides whether it may be
taken; the property's reconciliation follows in the same transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, RowMapping, insert, select, update

from adapters.db.tables import ebok_declaration, ebok_payer, ebok_property, worker_audit, worker_document
from worker.domain.findings import ACCEPTED, NEEDS_REVIEW


@dataclass(frozen=True)
class DecisionTarget:
    """A declaration locked for a decision (its property locked first, as processing does)."""

    declaration_id: int
    status: str
    payer_id: int | None
    property_id: int | None
    document_id: int


def review_queue(conn: Connection) -> Sequence[Row[Any]]:
    d, pr = ebok_declaration.c, ebok_property.c
    rows = conn.execute(
        select(d.id, d.filed_at, d.form, d.purpose, d.findings, pr.town, pr.street, pr.building)
        .outerjoin(ebok_property, pr.id == d.property_id)
        .where(d.status == NEEDS_REVIEW)
        .order_by(d.filed_at, d.id)
    ).all()
    return cast("Sequence[Row[Any]]", rows)


def declaration_details(conn: Connection, declaration_id: int) -> RowMapping | None:
    d, p, pr, w = ebok_declaration.c, ebok_payer.c, ebok_property.c, worker_document.c
    return conn.execute(
        select(ebok_declaration, p.name.label("payer_name"), pr.gmina, pr.town, pr.street, pr.building, pr.flat, w.evidence, w.review_note,
               w.reviewed_by, w.reviewed_at, w.meta, w.storage_key)
        .outerjoin(ebok_payer, p.id == d.payer_id)
        .outerjoin(ebok_property, pr.id == d.property_id)
        .outerjoin(worker_document, w.id == d.document_id)
        .where(d.id == declaration_id)
    ).mappings().first()


def lock_for_decision(conn: Connection, declaration_id: int) -> DecisionTarget | None:
    d = ebok_declaration.c
    property_id = conn.execute(select(d.property_id).where(d.id == declaration_id)).scalar()
    if property_id is not None:
        conn.execute(select(ebok_property.c.id).where(ebok_property.c.id == property_id).with_for_update())
    row = conn.execute(select(d.id, d.status, d.payer_id, d.property_id, d.document_id).where(d.id == declaration_id).with_for_update()).first()
    if row is None:
        return None
    return DecisionTarget(row.id, row.status, row.payer_id, row.property_id, row.document_id)


def record_decision(conn: Connection, target: DecisionTarget, decision: str, *, user: str, note: str, now: datetime) -> None:
    """The declaration's new status, the decision on its document, and the audit entry."""
    d = ebok_declaration.c
    conn.execute(update(ebok_declaration).where(d.id == target.declaration_id).values(status=decision, processed_at=now))
    conn.execute(
        update(worker_document).where(worker_document.c.id == target.document_id).values(
            review_decision=decision, reviewed_by=user, reviewed_at=now, review_note=note, outcome=decision
        )
    )
    action = "REVIEW_ACCEPT" if decision == ACCEPTED else "REVIEW_REJECT"
    conn.execute(insert(worker_audit).values(at=now, document_id=target.document_id, declaration_id=target.declaration_id, actor=user,
                                             action=action, old_status=target.status, new_status=decision, note=note))
