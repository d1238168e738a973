"""What each CLI command does (``worker.cli`` parses; this module acts)."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, select

from adapters.db.tables import ebok_declaration, worker_document, worker_mailbox
from worker import states
from worker.app import App
from worker.cli import EXIT_FAILURE, EXIT_OK, print_json
from worker.errors import UsageError
from worker.config import Config

log = logging.getLogger("worker.commands")


def dispatch(args: argparse.Namespace, cfg: Config) -> int:
    app = App(cfg)
    cmd = args.command
    if cmd == "db":
        app.upgrade_db()
        log.info("database migrated", extra={"event": "db.upgraded"})
        print("Baza danych jest aktualna.")
        return EXIT_OK
    if cmd == "check":
        from worker.check import run_check

        return run_check(app, args.files, as_json=args.json, filed_at=args.filed_at)
    if cmd == "status":
        return status(app, as_json=args.json, monitor=getattr(args, "monitor", False))
    if cmd == "review":
        from worker import review

        return review.command(app, args)
    if cmd == "correspondence":
        from worker.correspondence_cmd import command

        _require_schema(app)
        return command(app, args)
    # the processing commands: settings and keys are validated before anything runs
    _ = app.settings
    if cmd in ("run", "pull"):
        from worker.app import check_epuap

        check_epuap(cfg)
    if cmd in ("run", "scan"):
        from worker.app import check_scans

        check_scans(cfg)
    if cmd != "run":  # run migrates itself, waiting for the database when it is down
        _require_schema(app)
    if cmd == "run":
        from worker.daemon import run

        return run(app, once=args.once)
    if cmd == "pull":
        from worker.daemon import pull

        return EXIT_OK if pull(app, mailbox=args.mailbox) else EXIT_FAILURE
    if cmd == "scan":
        from worker.daemon import scan

        report = scan(app)
        if report is None:
            print("Skrzynka skanów jest wyłączona w konfiguracji ([scans] enabled = false).")
            return EXIT_OK
        print(
            f"Skany: przyjęte {report.stored}, już wcześniej przyjęte {report.duplicates}, "
            f"czekają na komplet {report.waiting}, w kwarantannie {report.quarantined}, błędy {report.errors}"
        )
        return EXIT_OK if report.ok else EXIT_FAILURE
    if cmd == "process":
        app.processor.recover_stale()
        report = app.processor.run_pending()
        log.info("processing pass done", extra={"event": "process.pass", **report.as_dict()})
        print(f"Przetworzono: {report.processed}, błędy techniczne: {report.failed}")
        return EXIT_OK if report.failed == 0 else EXIT_FAILURE
    if cmd == "reprocess":
        from worker.reprocess import reprocess

        return reprocess(app, args)
    raise UsageError(f"unknown command {cmd}")  # pragma: no cover - argparse prevents it


def _require_schema(app: App) -> None:
    from adapters.db.migrate import current_revision, head_revision

    if current_revision(app.engine) != head_revision():
        raise UsageError("database.url: baza danych nie ma aktualnego schematu; najpierw uruchom `ebok-worker db upgrade`")


# --- status ------------------------------------------------------------------------------


def collect_status(app: App, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    d = worker_document.c
    with app.engine.connect() as conn:
        by_state = dict(conn.execute(select(d.state, func.count()).group_by(d.state)).all())
        by_kind = dict(conn.execute(select(d.kind, func.count()).where(d.state == states.DONE).group_by(d.kind)).all())
        processed = dict(conn.execute(select(d.outcome, func.count()).where(d.state == states.DONE).group_by(d.outcome)).all())
        parked = conn.execute(select(func.count()).where(d.state == states.FAILED, d.next_attempt_at.is_(None))).scalar_one()
        oldest = conn.execute(
            select(d.id, d.received_at).where(d.state.in_((states.RECEIVED, states.PROCESSING, states.FAILED))).order_by(d.received_at).limit(1)
        ).first()
        e = ebok_declaration.c
        by_outcome = dict(conn.execute(select(e.status, func.count()).group_by(e.status)).all())
        mailboxes = [dict(r._mapping) for r in conn.execute(select(worker_mailbox).order_by(worker_mailbox.c.address))]
        from worker.correspondence import status_counts

        handover = status_counts(app, conn)
    scans = None
    if app.config.scans.enabled:
        from adapters.scans import inbox_counts

        scans = inbox_counts(app.config.scans)
    configured = {m.address for m in app.config.epuap.mailboxes}
    known = {m["address"] for m in mailboxes}
    for addr in sorted(configured - known):
        mailboxes.append({"address": addr, "last_success_at": None, "last_attempt_at": None, "last_error": None,
                          "blocked_since": None, "blocked_reason": None})
    return {
        "queue": {s: by_state.get(s, 0) for s in states.ALL},
        "failed_parked": parked,
        "oldest_pending": (
            {"document_id": oldest.id, "received_at": oldest.received_at.isoformat(), "age_s": int((now - oldest.received_at).total_seconds())}
            if oldest
            else None
        ),
        "outcomes": {k: by_outcome.get(k, 0) for k in ("ACCEPTED", "NEEDS_REVIEW", "REJECTED", "SUPERSEDED")},
        "processed": {k or "NONE": v for k, v in sorted(processed.items(), key=lambda kv: kv[0] or "")},
        "documents_by_kind": {k or "UNKNOWN": v for k, v in by_kind.items()},
        "correspondence": {"total": by_kind.get("CORRESPONDENCE", 0), **handover},
        "test_documents": by_kind.get("TEST", 0),
        "scans": scans,
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


def status(app: App, *, as_json: bool, monitor: bool = False) -> int:
    _require_schema(app)
    s = collect_status(app)
    if monitor:
        from worker import monitor as mon

        s["daemon"] = mon.daemon_view(app.config.monitoring.metrics_file)
        health = mon.evaluate_for(app.config, s)
        print(mon.nagios_line(health))
        return health.state
    if as_json:
        print_json(s)
        return EXIT_OK
    from worker import fmt

    q = s["queue"]
    print("Kolejka dokumentów:")
    print(f"  przyjęte, czekają na przetworzenie (RECEIVED): {q['RECEIVED']}")
    print(f"  w trakcie przetwarzania (PROCESSING):          {q['PROCESSING']}")
    print(f"  błąd techniczny, ponowienie (FAILED):          {q['FAILED']} (wstrzymane po wyczerpaniu prób: {s['failed_parked']})")
    print(f"  zakończone (DONE):                             {q['DONE']}")
    if s["oldest_pending"]:
        o = s["oldest_pending"]
        print(f"Najstarszy oczekujący: dokument {o['document_id']}, przyjęty {fmt.datetime_local(o['received_at'])} ({fmt.duration(o['age_s'])} temu)")
    out = s["outcomes"]
    print("Deklaracje w eBOK:")
    print(f"  przyjęte (ACCEPTED): {out['ACCEPTED']}")
    print(f"  do weryfikacji (NEEDS_REVIEW): {out['NEEDS_REVIEW']}")
    print(f"  odrzucone (REJECTED): {out['REJECTED']}")
    print(f"  zastąpione korektą (SUPERSEDED): {out['SUPERSEDED']}")
    c = s["correspondence"]
    print(f"Korespondencja inna niż deklaracje (do biura): {c['total']}; przekazana do biura: {c['handed_over']}, czeka na przekazanie: {c['pending']}")
    if c["outbox_error"]:
        print(f"  UWAGA: nie można zapisać do skrzynki biura (ostatnia próba {_local(c['outbox_error_at'])}): {c['outbox_error']}")
    print(f"Dokumenty testowe ePUAP (niewczytane): {s['test_documents']}")
    if s["scans"] is not None:
        sc = s["scans"]
        print(f"Skrzynka skanów: w skrzynce {sc['inbox_xml']} eksportów XML i {sc['inbox_pdf']} plików PDF; w kwarantannie {sc['quarantined']}")
    if s["mailboxes"]:
        print("Skrytki ePUAP:")
        for m in s["mailboxes"]:
            line = f"  {m['address']}: ostatnie udane pobranie {fmt.datetime_local(m['last_success_at']) if m['last_success_at'] else 'brak'}"
            if m["last_error"]:
                line += f"; ostatni błąd: {m['last_error']}"
            print(line)
            if m.get("blocked_since"):
                reason = f" ({m['blocked_reason']})" if m.get("blocked_reason") else ""
                print(f"    ZABLOKOWANA od {fmt.datetime_local(m['blocked_since'])}: pierwszego dokumentu w kolejce nie da się przyjąć{reason}")
    print("Daty i godziny: czas polski (Europe/Warsaw).")
    return EXIT_OK


def _local(iso: str | None) -> str:
    from worker.correspondence import local

    return local(datetime.fromisoformat(iso)) if iso else "—"


def day_bounds(day) -> tuple[datetime, datetime]:
    """A Polish calendar day as a UTC interval [start, end) (23 or 25 hours at DST changes)."""
    from worker.fmt import LOCAL

    start = datetime.combine(day, time(0), tzinfo=LOCAL)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def received_between(since, until):
    d = worker_document.c
    cond = []
    if since:
        cond.append(d.received_at >= day_bounds(since)[0])
    if until:
        cond.append(d.received_at < day_bounds(until)[1])
    return and_(*cond) if cond else None
