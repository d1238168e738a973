"""The CLI's handlers: one function per (sub)command, bound in :mod:`worker.cli` with
``set_defaults(func=…)``. Each takes the built :class:`~worker.app.App` and the parsed
arguments, calls a service with typed arguments and returns the exit code
(:mod:`worker.output`). Nothing here is imported by the services."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from adapters.db.migrate import schema_is_current
from worker import check as check_mod
from worker import config_check as config_check_mod
from worker import correspondence_cmd, daemon, fmt, monitor, package, review, trust_cmd
from worker import reprocess as reprocess_mod
from worker.app import App, check_epuap, check_scans
from worker.config import Config
from worker.correspondence import local
from worker.domain.findings import ACCEPTED, REJECTED
from worker.errors import UsageError, errno_text
from worker.output import EXIT_FAILURE, EXIT_OK, print_json
from worker.status import collect_status

log = logging.getLogger("worker.commands")

Handler = Callable[[App, argparse.Namespace], int]


def dispatch(args: argparse.Namespace, cfg: Config) -> int:
    handler: Handler = args.func
    app = App(cfg)
    try:
        return handler(app, args)
    finally:
        app.close()


def _require_schema(app: App) -> None:
    if not schema_is_current(app.engine):
        raise UsageError("database.url: baza danych nie ma aktualnego schematu; najpierw uruchom `ebok-worker db upgrade`")


def _prepare_processing(app: App, *, epuap: bool = False, scans: bool = False, schema: bool = True, whole: bool = False) -> None:
    """The processing commands: settings and keys are validated before anything runs;
    ``whole``: everything ``config check`` checks but the database (``run``)."""
    if whole:
        config_check_mod.refuse(config_check_mod.collect(app.config, config_check_mod.Options(database=False, free_space=False)))
    _ = app.settings
    if epuap:
        config_check_mod.refuse(config_check_mod.epuap(app.config, config_check_mod.Options()))
        check_epuap(app.config)
    if scans:
        check_scans(app.config)
    if schema:
        _require_schema(app)


# --- database, check, status ------------------------------------------------------------


def db_upgrade(app: App, args: argparse.Namespace) -> int:
    app.upgrade_db()
    log.info("database migrated", extra={"event": "db.upgraded"})
    print("Baza danych jest aktualna.")
    return EXIT_OK


def check(app: App, args: argparse.Namespace) -> int:
    return check_mod.run_check(app, args.files, as_json=args.json, filed_at=args.filed_at)


def status(app: App, args: argparse.Namespace) -> int:
    return print_status(app, as_json=args.json, monitor=getattr(args, "monitor", False))


# --- processing -------------------------------------------------------------------------


def run(app: App, args: argparse.Namespace) -> int:
    _prepare_processing(app, epuap=True, scans=True, schema=False, whole=True)  # run migrates itself, waiting for the database
    return daemon.run(app, once=args.once)


def pull(app: App, args: argparse.Namespace) -> int:
    _prepare_processing(app, epuap=True)
    reports: list = []
    ok = daemon.pull(app, mailbox=args.mailbox, reports_out=reports)
    if sys.stdout.isatty():  # stdout is the log stream, which a terminal does not show: a result for the person
        if not app.config.epuap.enabled:
            print("Pobieranie z ePUAP jest wyłączone w konfiguracji ([epuap] enabled = false).")
        for r in reports:
            line = f"Skrytka {r.mailbox}: " + ("pominięta (pobiera ją inny proces)" if r.busy else
                                               f"pobrane {r.fetched}, nowe {r.stored_new}, już zapisane {r.duplicates}, potwierdzone {r.confirmed}")
            print(line + (f"; przerwano: {r.gave_up}" if r.gave_up else ""))
    return EXIT_OK if ok else EXIT_FAILURE


def scan(app: App, args: argparse.Namespace) -> int:
    _prepare_processing(app, scans=True)
    report = daemon.scan(app)
    if report is None:
        print("Skrzynka skanów jest wyłączona w konfiguracji ([scans] enabled = false).")
        return EXIT_OK
    print(
        f"Skany: przyjęte {report.stored}, już wcześniej przyjęte {report.duplicates}, "
        f"czekają na komplet {report.waiting}, w kwarantannie {report.quarantined}, błędy {report.errors}"
    )
    return EXIT_OK if report.ok else EXIT_FAILURE


def process(app: App, args: argparse.Namespace) -> int:
    _prepare_processing(app)
    app.processor.recover_stale()
    report = daemon.process_backlog(app, summary=False)  # the summary is the command's output
    log.info("processing pass done", extra={"event": "process.pass", **report.as_dict()})
    print(f"Przetworzono: {report.processed}, błędy techniczne: {report.failed}")
    return EXIT_OK if report.failed == 0 else EXIT_FAILURE


def reprocess(app: App, args: argparse.Namespace) -> int:
    _prepare_processing(app)
    selection = reprocess_mod.Selection(
        ids=list(args.id), declarations=list(getattr(args, "declaration", None) or []), status=args.status, code=args.code,
        since=args.since, until=args.until, channel=args.channel, filed_since=args.filed_since, filed_until=args.filed_until,
    )
    return reprocess_mod.reprocess(app, selection, dry_run=args.dry_run, as_json=getattr(args, "json", False))


def import_package(app: App, args: argparse.Namespace) -> int:
    _prepare_processing(app)
    return package.import_package(app, Path(args.file), args.mailbox, args.user)


# --- review -----------------------------------------------------------------------------


def review_list(app: App, args: argparse.Namespace) -> int:
    return review.list_queue(app)


def review_show(app: App, args: argparse.Namespace) -> int:
    return review.show(app, args.id)


def review_decide(app: App, args: argparse.Namespace) -> int:
    decision = ACCEPTED if args.review_command == "accept" else REJECTED
    return review.decide(app, args.id, decision, note=args.note, user=args.user)


def review_export_attachments(app: App, args: argparse.Namespace) -> int:
    return correspondence_cmd.export_declaration_attachments(app, args.id, Path(args.to), paper_image=review.scan_files)


def review_export_scan(app: App, args: argparse.Namespace) -> int:
    return review.export_scan(app, args.id, Path(args.to))


# --- correspondence ---------------------------------------------------------------------


def correspondence_list(app: App, args: argparse.Namespace) -> int:
    _require_schema(app)
    reprocess_mod.check_day_range(args.since, args.until, "--since", "--until")
    reprocess_mod.check_day_range(args.filed_since, args.filed_until, "--filed-since", "--filed-until")
    return correspondence_cmd.list_items(app, since=args.since, until=args.until, filed_since=args.filed_since,
                                         filed_until=args.filed_until, as_json=args.json)


def correspondence_show(app: App, args: argparse.Namespace) -> int:
    _require_schema(app)
    return correspondence_cmd.show(app, args.id)


def correspondence_export(app: App, args: argparse.Namespace) -> int:
    _require_schema(app)
    return correspondence_cmd.export(app, args.id, Path(args.to))


# --- trust ------------------------------------------------------------------------------


def trust_update(app: App, args: argparse.Namespace) -> int:
    return trust_cmd.update(app)


def trust_show(app: App, args: argparse.Namespace) -> int:
    return trust_cmd.show(app, as_json=args.json)


# --- configuration ----------------------------------------------------------------------


def config_check(app: App, args: argparse.Namespace) -> int:
    return config_check_mod.run(app)


# --- status -----------------------------------------------------------------------------


def print_status(app: App, *, as_json: bool, monitor: bool = False) -> int:
    _require_schema(app)
    s = collect_status(app)
    if monitor:
        return _print_monitor(app, s)
    if as_json:
        print_json(s)
        return EXIT_OK
    q = s["queue"]
    print("Kolejka dokumentów:")
    if q["FETCHING"]:
        print(f"  czekają na załączniki z repozytorium ePUAP (FETCHING): {q['FETCHING']}")
    print(f"  przyjęte, czekają na przetworzenie (RECEIVED): {q['RECEIVED']}")
    print(f"  w trakcie przetwarzania (PROCESSING):          {q['PROCESSING']}")
    print(f"  błąd techniczny, ponowienie (FAILED):          {q['FAILED']} (wstrzymane po wyczerpaniu prób: {s['failed_parked']})")
    print(f"  zakończone (DONE):                             {q['DONE']}")
    if s["oldest_pending"]:
        o = s["oldest_pending"]
        print(f"Najstarszy oczekujący: dokument {o['document_id']} — {fmt.status(o['state'])}, przyjęty {fmt.datetime_local(o['received_at'])} "
              f"({fmt.duration(o['age_s'])} temu)")
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
    rf = s["referenced_files"]
    if any(rf.values()):
        print(f"Załączniki przekazane przez odniesienie (repozytorium plików ePUAP): pobrane {rf['fetched']}, "
              f"niedostępne {rf['unavailable']}, do pobrania {rf['pending']}; dokumenty czekające na załączniki: {rf['documents_waiting']}")
    for d in s.get("disks") or []:
        if d["full"]:
            print(f"UWAGA: brak miejsca na dysku ({errno_text(errno.ENOSPC)}): {', '.join(d['keys'])} ({d['path']}), wolne {fmt.size(d['free_bytes'])}")
    if s["scans"] is not None:
        sc = s["scans"]
        print(f"Skrzynka skanów: w skrzynce {sc['inbox_xml']} eksportów XML i {sc['inbox_pdf']} plików PDF; w kwarantannie {sc['quarantined']}")
    if s["mailboxes"]:
        print("Skrytki ePUAP:")
        for m in s["mailboxes"]:
            line = f"  {m['address']}: ostatnie udane pobranie {fmt.datetime_local(m['last_success_at']) if m['last_success_at'] else 'brak'}"
            if m["last_error"]:
                where = " (dysk workera, nie ePUAP)" if m.get("error_kind") == "storage" else ""
                line += f"; ostatni błąd{where}: {m['last_error']}"
            print(line)
            if m.get("blocked_since"):
                reason = f" ({m['blocked_reason']})" if m.get("blocked_reason") else ""
                print(f"    ZABLOKOWANA od {fmt.datetime_local(m['blocked_since'])}: pierwszego dokumentu w kolejce nie da się przyjąć{reason}")
    t = s.get("trust") or {}
    if t.get("configured"):
        stale = sum(1 for c in t["lists"] if c["stale"])
        print(f"Zaufane listy (TSL): w użyciu {len(t['lists'])}, przeterminowane {stale}, nieprzyjęte przy ostatniej aktualizacji {len(t['failed'])} "
              "(szczegóły: ebok-worker trust show)")  # fmt: skip
    if t.get("responders_failing"):
        print(f"Serwery unieważnień (OCSP/CRL), które nie odpowiadają: {len(t['responders_failing'])} (szczegóły: ebok-worker trust show)")
    print("Daty i godziny: czas polski (Europe/Warsaw).")
    return EXIT_OK


def _print_monitor(app: App, s: dict) -> int:
    metrics_file = app.config.monitoring.metrics_file
    s["daemon"] = dict(monitor.daemon_view(metrics_file), published_at=monitor.published_at(metrics_file))
    # the checker's environment may not carry the key's password: such a key is not loaded here
    options = config_check_mod.Options(database=False, secrets=False, free_space=False)
    s["config_problems"] = [p.line() for p in config_check_mod.collect(app.config, options)]
    health = monitor.evaluate_for(app.config, s)
    print(monitor.nagios_line(health))
    return health.state


def _local(iso: str | None) -> str:
    return local(datetime.fromisoformat(iso)) if iso else "—"
