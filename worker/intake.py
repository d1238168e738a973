"""Durable intake: a document is stored once, before anything else happens to it.

``Intake.store`` writes the raw bytes atomically under ``storage.path`` (content-addressed),
then inserts the document's row with its source metadata in one transaction. Storing the
same document again — the same channel and source reference, or the same bytes from the
same source — returns the existing row (``created=False``). Only after ``store`` returns may
a channel acknowledge the document (confirm it to ePUAP, move the scan to the archive).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.db.tables import worker_document, worker_mailbox
from adapters.storage import DocumentStore
from worker import states
from worker.domain.clock import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreResult:
    document_id: int
    created: bool  # False: it was already stored (a re-delivery)


def _checkpoint(name: str) -> None:
    """A named point between two steps of intake (the crash tests kill the process here)."""


class Intake:
    """The durable document sink every channel stores into."""

    def __init__(self, engine: Engine, store: DocumentStore) -> None:
        self.engine = engine
        self.store_ = store

    def store(
        self,
        *,
        channel: str,
        source_ref: str,
        raw: bytes,
        filed_at: datetime | None,
        metadata: dict[str, Any],
        mailbox: str | None = None,
    ) -> StoreResult:
        meta = json.loads(json.dumps(metadata))  # must be plain JSON: fail before writing anything
        if filed_at is not None and filed_at.tzinfo is None:
            raise ValueError("filed_at must be timezone-aware")
        existing = self._find(channel, source_ref, mailbox, raw)
        if existing is not None:
            log.info("document already stored", extra={"event": "intake.duplicate", "document_id": existing, "channel": channel, "mailbox": mailbox})
            return StoreResult(existing, False)
        sha, key = self.store_.put(raw)  # durable before the row points at it
        _checkpoint("file_written")
        row = dict(
            channel=channel,
            source_ref=source_ref,
            source=mailbox,
            sha256=sha,
            size=len(raw),
            storage_key=key,
            filed_at=filed_at,
            received_at=utcnow(),
            meta=meta,
            state=states.RECEIVED,
            attempts=0,
        )
        try:
            with self.engine.begin() as conn:
                doc_id = conn.execute(insert(worker_document).values(**row).returning(worker_document.c.id)).scalar_one()
        except IntegrityError:
            # stored concurrently by another process: that row wins
            existing = self._find(channel, source_ref, mailbox, raw)
            if existing is None:
                raise
            return StoreResult(existing, False)
        log.info("document stored", extra={"event": "intake.stored", "document_id": doc_id, "channel": channel, "mailbox": mailbox, "size": len(raw)})
        return StoreResult(doc_id, True)

    def _find(self, channel: str, source_ref: str, source: str | None, raw: bytes) -> int | None:
        sha = DocumentStore.digest(raw)
        d = worker_document.c
        with self.engine.connect() as conn:
            found = conn.execute(select(d.id).where(d.channel == channel, d.source_ref == source_ref)).scalar()
            if found is None:
                cond = [d.channel == channel, d.sha256 == sha]
                cond.append(d.source == source if source is not None else d.source.is_(None))
                found = conn.execute(select(d.id).where(*cond).order_by(d.id).limit(1)).scalar()
        return found

    def record_pull(self, mailbox: str, at: datetime, error: str | None = None, blocked: str | None = None) -> None:
        """Remember the last pull of a mailbox: successful (``error`` None) or not; ``blocked``:
        its head document could not be taken in (``blocked_since`` keeps the first such pass,
        a successful pass clears it)."""
        m = worker_mailbox.c
        values: dict[str, Any] = {"last_attempt_at": at}
        if error is None:
            values["last_success_at"] = at
            values["last_error"] = None
            values["blocked_since"] = None
            values["blocked_reason"] = None
        else:
            values["last_error"] = error[:2000]
        if blocked is not None:
            values["blocked_reason"] = blocked[:2000]
        with self.engine.begin() as conn:
            update_values = dict(values)
            if blocked is not None:
                update_values["blocked_since"] = func.coalesce(m.blocked_since, at)
                values["blocked_since"] = at
            n = conn.execute(update(worker_mailbox).where(m.address == mailbox).values(**update_values)).rowcount
            if not n:
                conn.execute(insert(worker_mailbox).values(address=mailbox, **values))
