"""``reprocess``: run stored documents again from their raw bytes.

Selection (all given filters must match): ``--id`` (document ids, as in the logs and
``status``), ``--status`` (an eBOK outcome, ``FAILED``, or a kind: ``CORRESPONDENCE``,
``TEST``, ``UNREADABLE``), ``--code`` (a finding code), ``--since``/``--until`` (received
date, UTC) and ``--channel``. ``--dry-run`` computes each document's new outcome inside a
transaction that is rolled back and prints old → new; without it the documents go back to
RECEIVED and are processed at once, each in its own transaction.
"""

from __future__ import annotations

import argparse
import logging

from sqlalchemy import or_, select

from adapters.db.tables import ebok_declaration, worker_document
from worker import states
from worker.app import App
from worker.cli import EXIT_FAILURE, EXIT_OK, print_json
from worker.errors import UsageError
from worker.commands import received_between
from worker.processing import requeue, utcnow

log = logging.getLogger("worker.reprocess")

_KINDS = {"CORRESPONDENCE", "TEST", "UNREADABLE", "DECLARATION"}


def select_documents(app: App, args: argparse.Namespace) -> list[int]:
    d = worker_document.c
    q = select(d.id, d.findings).outerjoin(ebok_declaration, ebok_declaration.c.document_id == d.id)
    if not (args.id or args.status or args.code or args.since or args.until or args.channel):
        raise UsageError("reprocess: give at least one of --id, --status, --code, --since, --until, --channel")
    if args.id:
        q = q.where(d.id.in_(args.id))
    if args.status:
        s = args.status.upper()
        if s == states.FAILED:
            q = q.where(d.state == states.FAILED)
        elif s in _KINDS:
            q = q.where(d.kind == s)
        elif s in ("ACCEPTED", "NEEDS_REVIEW", "REJECTED", "SUPERSEDED"):
            q = q.where(or_(ebok_declaration.c.status == s, (d.outcome == s) & ebok_declaration.c.id.is_(None)))
        else:
            raise UsageError(f"--status: unknown status {args.status}")
    if args.channel:
        q = q.where(d.channel == args.channel)
    window = received_between(args.since, args.until)
    if window is not None:
        q = q.where(window)
    q = q.where(d.state != states.PROCESSING).order_by(d.id)
    with app.engine.connect() as conn:
        rows = conn.execute(q).all()
    if args.code:
        rows = [r for r in rows if any(f.get("code") == args.code for f in (r.findings or []))]
    return [r.id for r in rows]


def reprocess(app: App, args: argparse.Namespace) -> int:
    ids = select_documents(app, args)
    if args.dry_run:
        previews = [app.processor.preview(i) for i in ids]
        print_json({"dry_run": True, "documents": previews, "would_change": sum(p["old_outcome"] != p["new_outcome"] or p["old_codes"] != p["new_codes"] for p in previews)})
        return EXIT_OK
    with app.engine.begin() as conn:
        requeue(conn, ids, utcnow())
    failed = 0
    results = []
    for i in ids:
        outcome = app.processor.process(i, actor="reprocess")
        failed += outcome == states.FAILED
        results.append({"document_id": i, "outcome": outcome})
    log.info("reprocess done", extra={"event": "reprocess.done", "count": len(ids), "failed": failed})
    print_json({"reprocessed": results})
    return EXIT_OK if not failed else EXIT_FAILURE
