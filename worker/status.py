"""The status snapshot: the dict behind ``status --json``, the Nagios line, the metrics
file and the daily summary. The queries are in :mod:`adapters.db.reports`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.db import reports
from adapters.db.remote_files import RemoteFiles
from adapters.scans import inbox_counts
from worker import states
from worker.app import App
from worker.correspondence import handed_over_kinds
from worker.domain.clock import utcnow
from worker.trust_cmd import snapshot as trust_snapshot

DECLARATION_OUTCOMES = ("ACCEPTED", "NEEDS_REVIEW", "REJECTED", "SUPERSEDED")


def collect_status(app: App, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with app.engine.connect() as conn:
        q = reports.queue_counts(conn)
        handover = reports.handover_counts(conn, handed_over_kinds(app))
    scans = inbox_counts(app.config.scans) if app.config.scans.enabled else None
    mailboxes = list(q.mailboxes)
    configured = {m.address for m in app.config.epuap.mailboxes}
    known = {m["address"] for m in mailboxes}
    for addr in sorted(configured - known):
        mailboxes.append({"address": addr, "last_success_at": None, "last_attempt_at": None, "last_error": None,
                          "blocked_since": None, "blocked_reason": None})
    by_kind = q.done_by_kind
    return {
        "queue": {s: q.by_state.get(s, 0) for s in states.ALL},
        "failed_parked": q.failed_parked,
        "oldest_pending": (
            {"document_id": q.oldest_pending[0], "received_at": q.oldest_pending[1].isoformat(),
             "age_s": int((now - q.oldest_pending[1]).total_seconds())}
            if q.oldest_pending
            else None
        ),
        "outcomes": {k: q.declarations_by_status.get(k, 0) for k in DECLARATION_OUTCOMES},
        "processed": {k or "NONE": v for k, v in sorted(q.done_by_outcome.items(), key=lambda kv: kv[0] or "")},
        "documents_by_kind": {k or "UNKNOWN": v for k, v in by_kind.items()},
        "correspondence": {"total": by_kind.get("CORRESPONDENCE", 0), **handover},
        "test_documents": by_kind.get("TEST", 0),
        "scans": scans,
        "referenced_files": RemoteFiles(app.engine).counts(),
        "trust": trust_snapshot(app.config, now),
        "mailboxes": [
            {
                "address": m["address"],
                "last_success_at": m["last_success_at"].isoformat() if m["last_success_at"] else None,
                "last_attempt_at": m["last_attempt_at"].isoformat() if m["last_attempt_at"] else None,
                "last_error": m["last_error"],
                "blocked_since": m["blocked_since"].isoformat() if m["blocked_since"] else None,
                "blocked_reason": m["blocked_reason"],
            }
            for m in mailboxes
        ],
    }
