"""The ePUAP mailboxes' pull record (``worker_mailbox``: last attempt, last success, last
error, blocked since)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, update

from adapters.db.tables import worker_mailbox


def record_pull(engine: Engine, mailbox: str, at: datetime, error: str | None = None, blocked: str | None = None,
                error_kind: str | None = None) -> None:
    """Remember the last pull of a mailbox: successful (``error`` None) or not, and what
    kind of error it was (``error_kind``: epuap, storage, database, config); ``blocked``:
    its head document could not be taken in (``blocked_since`` keeps the first such pass,
    a successful pass clears it)."""
    m = worker_mailbox.c
    values: dict[str, Any] = {"last_attempt_at": at}
    if error is None:
        values["last_success_at"] = at
        values["last_error"] = None
        values["error_kind"] = None
        values["blocked_since"] = None
        values["blocked_reason"] = None
    else:
        values["last_error"] = error[:2000]
        values["error_kind"] = error_kind
    if blocked is not None:
        values["blocked_reason"] = blocked[:2000]
    with engine.begin() as conn:
        update_values = dict(values)
        if blocked is not None:
            update_values["blocked_since"] = func.coalesce(m.blocked_since, at)
            values["blocked_since"] = at
        n = conn.execute(update(worker_mailbox).where(m.address == mailbox).values(**update_values)).rowcount
        if not n:
            conn.execute(insert(worker_mailbox).values(address=mailbox, **values))
