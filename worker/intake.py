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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.db import documents, mailboxes
from adapters.storage import DocumentStore
from worker import states
from worker.domain.clock import utcnow

if TYPE_CHECKING:
    from sqlalchemy import Engine

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
        awaiting: bool = False,
    ) -> StoreResult:
        """Store the document once (see the module docstring). ``awaiting``: it links
        attachments by reference still to be fetched — it waits (FETCHING) and is not processed
        until they are settled (``adapters.epuap.referenced``)."""
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
            state=states.FETCHING if awaiting else states.RECEIVED,
            attempts=0,
        )
        try:
            doc_id = documents.insert_received(self.engine, row)
        except documents.AlreadyStored as exc:
            # stored concurrently by another process: that row wins
            existing = self._find(channel, source_ref, mailbox, raw)
            if existing is None:
                raise exc.__cause__ or exc  # noqa: B904  (the driver's own error, as it was raised)
            return StoreResult(existing, False)
        log.info("document stored", extra={"event": "intake.stored", "document_id": doc_id, "channel": channel, "mailbox": mailbox, "size": len(raw)})
        return StoreResult(doc_id, True)

    def _find(self, channel: str, source_ref: str, source: str | None, raw: bytes) -> int | None:
        with self.engine.connect() as conn:
            return documents.find_stored(conn, channel=channel, source_ref=source_ref, source=source, sha256=DocumentStore.digest(raw))

    def record_pull(self, mailbox: str, at: datetime, error: str | None = None, blocked: str | None = None,
                    error_kind: str | None = None) -> None:
        """Remember the last pull of a mailbox (:func:`adapters.db.mailboxes.record_pull`)."""
        mailboxes.record_pull(self.engine, mailbox, at, error=error, blocked=blocked, error_kind=error_kind)
