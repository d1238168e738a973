"""The record of attachments sent by reference (``worker_remote_file``): one row per ePUAP
``fileId``, since the repository hands a file out once; and the release of a document that
waited for its files (FETCHING → RECEIVED). Each method is one short transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.db.tables import worker_document, worker_remote_file
from worker import states

PENDING = "PENDING"
FETCHED = "FETCHED"
UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class RemoteFile:
    file_id: str
    subject: str
    state: str
    reason: str | None
    sha256: str | None
    size: int | None
    storage_key: str | None
    filename: str | None
    mime_type: str | None
    detected_type: str | None
    attempts: int
    failed_passes: int
    last_error: str | None

    @property
    def settled(self) -> bool:
        return self.state != PENDING

    def snapshot(self) -> dict[str, Any]:
        """What a document keeps of it (``meta["referenced_files"]``), for its analysis."""
        return {"state": self.state, "reason": self.reason, "error": self.last_error if self.state == UNAVAILABLE else None,
                "sha256": self.sha256, "size": self.size, "storage_key": self.storage_key, "filename": self.filename,
                "mime_type": self.mime_type, "detected_type": self.detected_type}


_FIELDS = [c for c in RemoteFile.__dataclass_fields__]


class RemoteFiles:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure(self, file_ids: Iterable[str], subject: str, document_id: int | None, now: datetime) -> None:
        """A PENDING row for each file not recorded yet (the first document linking it)."""
        t = worker_remote_file.c
        for file_id in dict.fromkeys(file_ids):
            with self.engine.begin() as conn:
                if conn.execute(select(t.file_id).where(t.file_id == file_id)).first() is not None:
                    continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(worker_remote_file).values(
                        file_id=file_id, subject=subject[:100], state=PENDING, attempts=0, failed_passes=0,
                        first_document_id=document_id, first_seen_at=now))
            except IntegrityError:
                pass  # recorded at the same moment by another process: that row stands

    def get(self, file_ids: Sequence[str]) -> dict[str, RemoteFile]:
        cols = [worker_remote_file.c[name] for name in _FIELDS]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(worker_remote_file.c.file_id.in_(list(file_ids)))).mappings().all()
        return {r["file_id"]: RemoteFile(**{name: r[name] for name in _FIELDS}) for r in rows}

    def _update(self, file_id: str, **values: Any) -> None:
        t = worker_remote_file.c
        with self.engine.begin() as conn:
            conn.execute(update(worker_remote_file).where(t.file_id == file_id, t.state == PENDING).values(**values))

    def attempt(self, file_id: str, now: datetime) -> None:
        """A download is about to be asked for (committed before the request)."""
        self._update(file_id, attempts=worker_remote_file.c.attempts + 1, last_attempt_at=now)

    def fetched(self, file_id: str, *, sha256: str, size: int, storage_key: str, filename: str | None, mime_type: str | None,
                encoding: str | None, detected_type: str | None, now: datetime) -> None:
        self._update(file_id, state=FETCHED, reason=None, sha256=sha256, size=size, storage_key=storage_key,
                     filename=(filename or None) and filename[:300], mime_type=(mime_type or None) and mime_type[:200],
                     encoding=(encoding or None) and encoding[:50], detected_type=detected_type, settled_at=now, last_error=None)

    def unavailable(self, file_id: str, reason: str, error: str | None, now: datetime) -> None:
        self._update(file_id, state=UNAVAILABLE, reason=reason[:20], last_error=(error or "")[:2000] or None, settled_at=now)

    def failed_pass(self, file_id: str, error: str, now: datetime) -> int:
        """One more pass with the repository unreachable for this file; how many there were."""
        self._update(file_id, failed_passes=worker_remote_file.c.failed_passes + 1, last_error=error[:2000])
        with self.engine.connect() as conn:
            return int(conn.execute(select(worker_remote_file.c.failed_passes)
                                    .where(worker_remote_file.c.file_id == file_id)).scalar_one())

    # --- documents waiting for their files -----------------------------------------------

    def waiting_documents(self, source: str | None) -> list[tuple[int, list[str]]]:
        """(document id, its fileIds) of the FETCHING documents of ``source`` (a mailbox), oldest first."""
        d = worker_document.c
        q = select(d.id, d.meta).where(d.state == states.FETCHING).order_by(d.id)
        if source is not None:
            q = q.where(d.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [(r.id, [str(f) for f in (r.meta or {}).get("files_by_reference") or []]) for r in rows]

    def release(self, document_id: int, records: dict[str, RemoteFile]) -> bool:
        """A FETCHING document whose files are all settled becomes RECEIVED, keeping what each
        file was stored as (or why it is unavailable) for its analysis. False: it was not
        FETCHING (already released)."""
        d = worker_document.c
        with self.engine.begin() as conn:
            meta = conn.execute(select(d.meta).where(d.id == document_id, d.state == states.FETCHING)).scalar()
            if meta is None:
                return False
            meta = dict(meta)
            meta["referenced_files"] = {fid: r.snapshot() for fid, r in records.items()}
            n = conn.execute(update(worker_document).where(d.id == document_id, d.state == states.FETCHING)
                             .values(state=states.RECEIVED, meta=meta)).rowcount
        return bool(n)

    def counts(self) -> dict[str, int]:
        """Files by state, and documents waiting for them (``status``)."""
        t = worker_remote_file.c
        with self.engine.connect() as conn:
            by_state: dict[str, int] = {str(k): int(v) for k, v in conn.execute(select(t.state, func.count()).group_by(t.state)).all()}
            waiting = conn.execute(select(func.count()).select_from(worker_document)
                                   .where(worker_document.c.state == states.FETCHING)).scalar_one()
        return {"pending": by_state.get(PENDING, 0), "fetched": by_state.get(FETCHED, 0),
                "unavailable": by_state.get(UNAVAILABLE, 0), "documents_waiting": int(waiting)}
