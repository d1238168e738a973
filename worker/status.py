"""The status snapshot: the dict behind ``status --json``, the Nagios line, the metrics
file and the daily summary. The queries are in :mod:`adapters.db.reports`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.db import counters, reports
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
        counted = counters.read(conn)
    scans = inbox_counts(app.config.scans) if app.config.scans.enabled else None
    mailboxes = list(q.mailboxes)
    configured = {m.address for m in app.config.epuap.mailboxes}
    known = {m["address"] for m in mailboxes}
    for addr in sorted(configured - known):
        mailboxes.append({"address": addr, "last_success_at": None, "last_attempt_at": None, "last_error": None,
                          "blocked_since": None, "blocked_reason": None, "error_kind": None})
    by_kind = q.done_by_kind
    return {
        "queue": {s: q.by_state.get(s, 0) for s in states.ALL},
        "failed_parked": q.failed_parked,
        "oldest_pending": (
            {"document_id": q.oldest_pending[0], "received_at": q.oldest_pending[1].isoformat(), "state": q.oldest_pending[2],
             "age_s": int((now - q.oldest_pending[1]).total_seconds())}
            if q.oldest_pending
            else None
        ),
        "outcomes": {k: q.declarations_by_status.get(k, 0) for k in DECLARATION_OUTCOMES},
        "processed": {k or "NONE": v for k, v in sorted(q.done_by_outcome.items(), key=lambda kv: kv[0] or "")},
        "documents_by_kind": {k or "UNKNOWN": v for k, v in by_kind.items()},
        "correspondence": {"total": by_kind.get("CORRESPONDENCE", 0), **handover},
        # counted as the work was done, never decreasing (the metrics' _total counters)
        "counters": {
            "processed": dict(sorted(counted.get(counters.PROCESSED, {}).items())),
            "errors": {kind: counted.get(counters.ERRORS, {}).get(kind, 0) for kind in counters.ERROR_KINDS},
        },
        "test_documents": by_kind.get("TEST", 0),
        "scans": scans,
        "referenced_files": RemoteFiles(app.engine).counts(),
        "trust": trust_snapshot(app.config, now),
        "disks": disks(app.config),
        "mailboxes": [
            {
                "address": m["address"],
                "last_success_at": m["last_success_at"].isoformat() if m["last_success_at"] else None,
                "last_attempt_at": m["last_attempt_at"].isoformat() if m["last_attempt_at"] else None,
                "last_error": m["last_error"],
                "blocked_since": m["blocked_since"].isoformat() if m["blocked_since"] else None,
                "blocked_reason": m["blocked_reason"],
                "error_kind": m.get("error_kind"),
            }
            for m in mailboxes
        ],
    }


def write_paths(config: Any) -> list[tuple[str, Path]]:
    """The folders the worker writes to, by the key that names them."""
    paths: list[tuple[str, Path]] = [("storage.path", Path(config.storage.path))]
    url = config.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        paths.append(("database.url", Path(url.removeprefix("sqlite:///").split("?", 1)[0]).parent))
    if config.scans.enabled:
        paths += [("scans.archive", Path(config.scans.archive)), ("scans.quarantine", Path(config.scans.quarantine))]
    paths.append(("correspondence.outbox", Path(config.correspondence.outbox)))
    sig = config.signatures
    if sig.trusted_lists or sig.revocation_fetch:  # the trusted lists and revocation answers kept
        paths.append(("signatures.cache", Path(sig.cache)))
    return paths


def disks(config: Any) -> list[dict[str, Any]]:
    """Free space of each file system the worker writes to (the keys on it, one of their
    folders, free bytes, ``full`` below ``monitoring.min_free_bytes``)."""
    found: dict[int, dict[str, Any]] = {}
    for key, path in write_paths(config):
        p = path
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            st = os.statvfs(p)
            dev = os.stat(p).st_dev
        except OSError:
            continue
        entry = found.setdefault(dev, {"keys": [], "path": str(path), "free_bytes": st.f_bavail * st.f_frsize})
        entry["keys"].append(key)
    minimum = config.monitoring.min_free_bytes
    return [dict(d, full=d["free_bytes"] < minimum) for d in found.values()]
