"""The daemon (``run``) and the one-pass commands it is made of.

``run`` schedules, with APScheduler: a pull of every ePUAP mailbox every
``epuap.poll_interval_s``, a pass over the scan inbox every ``scans.poll_interval_s`` (when
``[scans] enabled``), processing of what is pending every ``processing.interval_s``
and a daily summary line at local midnight (Europe/Warsaw). Jobs never overlap themselves (``max_instances=1``) and missed
runs coalesce. SIGTERM/SIGINT set a stop flag: the document in hand is finished and
committed, the scheduler shuts down waiting for running jobs, and the process exits 0. A
second SIGTERM/SIGINT stops at once (exit 1): nothing is lost — a document is confirmed or
moved only after it was stored, and the claim of a document cut short is taken back at the
next start. SIGHUP is logged and ignored (logs go to stdout, nothing to reopen; a changed
configuration needs a restart).

Database outages: ``run`` started while the database is down waits for it with backoff
(``database.unavailable`` once, then ``database.available``), telling systemd (``READY=1``,
``STATUS=czeka na bazę danych: …``, watchdog beats) and the metrics file
(``ebok_worker_database_up 0``) meanwhile. While it runs, a lost database is one
``database.unavailable`` event (no traceback each pass; a full disk named as such,
``reason: disk_full``, and over only when writes go through again); pulls and scans are
skipped until it is back (nothing can be stored), and claims cut by the outage are
released at once when it is back (``processing.released``).

At start, what processes that are gone left behind is removed (:func:`tidy_up`).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from adapters.db import counters, reports
from adapters.db.errors import connection_failure, connection_problem, database_lost
from adapters.db.settings import database_writable
from adapters.scans import ScanReport, scan_inbox
from worker import fmt, monitor, parallel, trust_cmd
from worker.app import App, structure_limits
from worker.correspondence import HandoverReport, hand_over_pending
from worker.errors import UsageError, describe_technical_error, errno_text, is_disk_full
from worker.fees import recompute_if_rates_changed
from worker.fmt import LOCAL as LOCAL_ZONE
from worker.monitor import Publisher
from worker.output import EXIT_FAILURE, EXIT_OK
from worker.processing import PassReport
from worker.progress import progress_bar
from worker.status import collect_status
from worker.systemd import Notifier

log = logging.getLogger("worker.daemon")

# the scheduler's jobs, as they appear in its log records and the worker's events
JOB_PROCESS, JOB_PULL, JOB_SCAN = "worker.process", "epuap.pull", "scans.poll"
JOB_SUMMARY, JOB_WATCHDOG = "summary.daily", "systemd.watchdog"
JOB_TRUST = "trust.refresh"


def pull(app: App, mailbox: str | None = None, stop: threading.Event | None = None, *, reports_out: list | None = None) -> bool:
    """One pull pass over the configured mailboxes. True when every mailbox was drained
    (or its batch limit reached) without giving up. ``reports_out`` receives the
    mailboxes' reports."""
    cfg = app.config.epuap
    if not cfg.enabled:
        log.info("ePUAP disabled in the configuration", extra={"event": "epuap.disabled"})
        return True
    if mailbox is not None and mailbox not in {m.address for m in cfg.mailboxes}:
        raise UsageError(f"--mailbox: {mailbox} nie jest skonfigurowaną skrytką (epuap.mailboxes)")
    from adapters.epuap.pull import pull_mailboxes  # the SOAP client's libraries only where it is used

    reports = pull_mailboxes(cfg, app.intake, mailbox=mailbox, stop=stop, lock=app.locks.hold,  # each pass is logged there
                             files=lambda client: app.referenced_files(client, stop=stop))
    if reports_out is not None:
        reports_out.extend(reports)
    failed: dict[str, int] = {}
    for r in reports:
        if r.error_kind is not None and r.error_kind != "database":  # an outage is counted once, when it is over
            kind = "storage" if r.error_kind == "storage" else "epuap"
            failed[kind] = failed.get(kind, 0) + 1
    for kind, n in failed.items():
        counters.record(app.engine, counters.ERRORS, kind, n)
    return all(r.ok for r in reports)


def scan(app: App, stop: threading.Event | None = None):
    """One pass over the scan inbox; its :class:`adapters.scans.ScanReport`, or ``None``
    when scans are disabled in the configuration."""
    cfg = app.config.scans
    if not cfg.enabled:
        log.info("scan inbox disabled in the configuration", extra={"event": "scan.disabled"})
        return None
    with app.locks.hold("scan") as mine:
        if not mine:  # another process is going over the inbox right now
            log.info("scan pass skipped: another process is scanning", extra={"event": "scan.busy"})
            return ScanReport()
        report = scan_inbox(cfg, app.intake, app.store, stop=stop, max_xml_bytes=app.config.processing.max_document_bytes,
                            limits=structure_limits(app.config))
    counters.record(app.engine, counters.ERRORS, "scan", report.errors)
    return report


def process(app: App, stop: threading.Event | None = None) -> None:
    report = app.processor.run_pending(stop=stop)
    if report.processed or report.failed:
        log.info("processing pass done", extra={"event": "process.pass", **report.as_dict()})
    hand_over(app, stop)


def hand_over(app: App, stop: threading.Event | None = None, *, force: bool = False):
    """Hand correspondence over to the office's outbox (``worker.correspondence``); one
    process at a time on one database (a pass that finds another one at it is skipped)."""
    with app.locks.hold("correspondence") as mine:
        if not mine:
            log.info("another process is handing correspondence over", extra={"event": "correspondence.busy"})
            return HandoverReport()
        report = hand_over_pending(app, stop=stop, force=force)
    counters.record(app.engine, counters.ERRORS, "handover", report.failed)
    return report


def refresh_trust(app: App, *, only_when_due: bool = False) -> bool | None:
    """Fetch and verify the trusted lists (``trust_cmd.refresh``): True when every list was
    adopted or unchanged, False when one was not (the last good copies stay in use;
    counted as ``errors{kind="trust"}``), None when there was nothing to do (none
    configured, or not due with ``only_when_due``)."""
    outcomes = trust_cmd.refresh(app.config, only_when_due=only_when_due)
    if outcomes is None:
        return None
    counters.record(app.engine, counters.ERRORS, "trust", sum(1 for o in outcomes if not o.ok))
    return all(o.ok for o in outcomes)


def daily_summary(app: App, now: datetime | None = None) -> None:
    """The summary of the Polish day that has just ended (the job runs at local midnight):
    documents received and processed that day, the queue, parked failures, blocked or stale
    mailboxes, the review queue and the scan quarantine."""
    now = now or datetime.now(UTC)
    end_local = now.astimezone(fmt.LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    start_local = end_local - timedelta(days=1)  # wall-clock arithmetic: 23 or 25 hours at DST changes
    since, until = start_local.astimezone(UTC), end_local.astimezone(UTC)
    with app.engine.connect() as conn:
        received, outcomes = reports.day_counts(conn, since, until)
    snapshot = collect_status(app, now=now)
    health = monitor.evaluate_for(app.config, snapshot, now)
    problems: dict[str, list[str]] = {}
    for p in health.problems:
        problems.setdefault(p.key, []).append(p.text)
    log.info(
        "daily summary",
        extra={"event": "summary.daily", "day": start_local.date().isoformat(), "received": received,
               "outcomes": {k or "NONE": v for k, v in outcomes.items()}, "queue": snapshot["queue"],
               "failed_parked": snapshot["failed_parked"], "review_queue": monitor.review_queue(snapshot),
               "scan_quarantined": monitor.scan_quarantined(snapshot),
               "mailboxes_blocked": [m["address"] for m in snapshot["mailboxes"] if m.get("blocked_since")],
               "mailboxes_stale": health.perfdata["mailboxes_stale"], "health": health.name, "problems": problems},
    )


class DatabaseHealth:
    """One ``database.unavailable`` when the database is lost, one ``database.available``
    when it is back — instead of a traceback every pass (jobs run in threads). A database
    that refuses writes for want of space (SQLite on a full disk still answers reads) is
    back only when a write succeeds again and its disk has room: one pair per outage."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.down_since: datetime | None = None
        self.reason: str | None = None  # "disk_full" or None
        self.problem: str | None = None  # why, in Polish (the metrics, systemd's STATUS)
        self._lock = threading.Lock()

    def probe(self) -> bool:
        try:
            with self.app.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            if self.reason == "disk_full" and not self._writes_again():
                return False
        except Exception as exc:  # noqa: BLE001 - any failure to reach it counts
            self.lost(exc)
            return False
        self.back()
        return True

    def _writes_again(self) -> bool:
        """After a full disk: room on the database's disk, and a write goes through."""
        url = self.app.config.database.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            from worker.status import disks

            if any(d["full"] and "database.url" in d["keys"] for d in disks(self.app.config)):
                return False
        return database_writable(self.app.engine)

    def lost(self, exc: BaseException | None = None) -> None:
        with self._lock:
            if self.down_since is not None:
                return
            self.down_since = datetime.now(UTC)
            full = is_disk_full(exc)
            self.reason = "disk_full" if full else None
            self.problem = errno_text(errno.ENOSPC) if full else (connection_problem(exc) if exc is not None and connection_failure(exc) is not None else "baza danych niedostępna")
        fields = describe_technical_error(exc).log_fields() if exc is not None else {}
        if full:
            fields.update(reason="disk_full", errno=errno.ENOSPC, error_text=self.problem)
        log.error("database unavailable; waiting for it", extra={"event": "database.unavailable", **fields})

    def back(self) -> None:
        with self._lock:
            if self.down_since is None:
                return
            since, self.down_since = self.down_since, None
            reason, self.reason, self.problem = self.reason, None, None
        self.app.processor.reset_liveness()  # its lock may have gone with the old connections
        log.warning("database available again", extra={"event": "database.available", "reason": reason,
                                                         "down_s": round((datetime.now(UTC) - since).total_seconds(), 1)})
        counters.record(self.app.engine, counters.ERRORS, "database")  # one outage, counted once it is over


def wait_for_database(app: App, stop: threading.Event, health: DatabaseHealth, *, initial_s: float = 1.0, max_s: float = 60.0,
                      notifier: Notifier | None = None, publisher: Publisher | None = None) -> bool:
    """Migrate the database, waiting for it with exponential backoff while it cannot be
    reached. False when asked to stop first. While it waits, systemd and the metrics say
    so: ``READY=1`` (the service is up, waiting), ``STATUS=czeka na bazę danych: …``,
    ``WATCHDOG=1`` beats, and the metrics file with ``ebok_worker_database_up 0``."""
    delay = initial_s
    announced = False
    while not stop.is_set():
        try:
            with app.locks.hold("migrate") as mine:  # two daemons starting together: one migrates
                if mine:
                    app.upgrade_db()
                    health.back()
                    return True
            if stop.wait(0.5):
                break
            continue
        except Exception as exc:
            if not database_lost(exc):
                raise
            health.lost(exc)
        if notifier is not None and not announced:
            notifier.ready(f"czeka na bazę danych: {health.problem}")
            announced = True
        if publisher is not None:
            publisher.publish_waiting(health.problem or "baza danych niedostępna")
        if _wait_beating(stop, delay, notifier):
            break
        delay = min(max_s, delay * 2)
    return False


def _wait_beating(stop: threading.Event, seconds: float, notifier: Notifier | None) -> bool:
    """Wait ``seconds`` (True when asked to stop), with watchdog beats meanwhile."""
    step = notifier.watchdog_s / 2 if notifier is not None and notifier.watchdog_s else seconds
    deadline = time.monotonic() + seconds
    while True:
        if notifier is not None and notifier.watchdog_s:
            notifier.watchdog()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if stop.wait(min(step, left)):
            return True


def run(app: App, *, once: bool = False) -> int:
    if once:
        app.upgrade_db()
        tidy_up(app)
        return _run_once(app)
    stop = threading.Event()
    signals_seen = []

    def on_signal(signum, _frame):
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            log.warning("second stop signal: stopping at once", extra={"event": "run.stopped_now", "signal": signal.Signals(signum).name})
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(EXIT_FAILURE)
        log.info("stop requested", extra={"event": "run.stopping", "signal": signal.Signals(signum).name})
        stop.set()

    def on_hup(signum, _frame):
        log.info("SIGHUP ignored: logs go to stdout; restart to apply a changed configuration", extra={"event": "run.sighup"})

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    health = DatabaseHealth(app)
    notifier = Notifier()
    publisher = Publisher(app, notifier)
    if not wait_for_database(app, stop, health, notifier=notifier, publisher=publisher):
        notifier.stopping()
        log.info("worker stopped", extra={"event": "run.stopped"})
        return EXIT_OK
    return _daemon(app, stop, health, notifier, publisher)


def process_backlog(app: App, *, summary: bool = True) -> PassReport:
    """Process everything pending; on a terminal (stderr), with a progress bar and a summary
    line at the end (stdout stays the logs' or the command's result)."""
    interactive = sys.stderr.isatty()
    cfg = app.config.processing
    # how much there is (on a terminal: all of it, for the bar; else enough to decide how
    # many processes to fork)
    total = len(app.processor.pending_ids(None if interactive else cfg.batch_size * cfg.workers))
    processes = min(cfg.workers, -(-total // cfg.batch_size)) if cfg.workers > 1 and parallel.can_fork() else 0
    with progress_bar(total, interactive, "przetwarzanie", stderr=True) as (advance, _):
        if processes:  # one process per core, each claiming, analysing and loading its own batches
            report = app.processor.run_pending_shared(processes, progress=advance)
        else:
            report = app.processor.run_pending(progress=advance)
    if interactive and summary:
        outcomes = ", ".join(f"{fmt.status(k)} {v}" for k, v in sorted(report.outcomes.items()))
        print(f"Przetworzono: {report.processed}" + (f" ({outcomes})" if outcomes else "") + f", błędy techniczne: {report.failed}",
              file=sys.stderr)
    return report


def _recompute_rates(app: App) -> None:
    """The rates may have changed since the last run: one process recomputes (a second one
    starting at the same moment leaves it to the first)."""
    with app.locks.hold("fees-recompute") as mine:
        if mine:
            recompute_if_rates_changed(app.engine, app.settings.ruleset)


def tidy_up(app: App) -> None:
    """At start: what processes that are gone left behind — temporary files of a document
    being written when the process was killed, the lock files of their sign of life."""
    removed = app.store.remove_stale_incoming()
    locks = app.locks.remove_stale_files()
    if removed or locks:
        log.info("left-overs of processes that are gone removed", extra={"event": "run.tidied", "incoming": removed, "lock_files": locks})


def _run_once(app: App) -> int:
    app.processor.recover_stale()
    _recompute_rates(app)
    publisher = Publisher(app)
    try:  # the trusted lists, when due: a failure keeps the last good copies and is reported by monitoring
        if refresh_trust(app, only_when_due=True) is not None:
            publisher.passed(JOB_TRUST)
    except Exception:
        log.exception("trusted list refresh failed", extra={"event": "trust.refresh_failed"})
    ok = True
    try:
        ok = pull(app)
    except Exception:  # an unavailable ePUAP never keeps what is stored from processing
        log.exception("pull pass failed", extra={"event": "epuap.pass_failed"})
        ok = False
    if app.config.epuap.enabled:
        publisher.passed(JOB_PULL)
    scan_ok = True
    try:
        scanned = scan(app)
        scan_ok = scanned is None or scanned.ok
    except Exception:  # an unreadable inbox never keeps what is stored from processing
        log.exception("scan pass failed", extra={"event": "scan.pass_failed"})
        scan_ok = False
    if app.config.scans.enabled:
        publisher.passed(JOB_SCAN)
    report = process_backlog(app)
    handover = hand_over(app, force=True)
    publisher.passed(JOB_PROCESS)
    if app.config.monitoring.metrics_file is not None:
        publisher.publish()  # as run from a timer: the metrics file too
    log.info("run --once done", extra={"event": "run.once", **report.as_dict(), "pull_ok": ok, "scan_ok": scan_ok, "handover_ok": handover.ok})
    return EXIT_OK if ok and scan_ok and report.failed == 0 and handover.ok else EXIT_FAILURE


def _daemon(app: App, stop: threading.Event, health: DatabaseHealth, notifier: Notifier, publisher: Publisher) -> int:
    # the scheduler only where it runs (the one-shot commands start without it)
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    tidy_up(app)
    app.processor.recover_stale()
    _recompute_rates(app)
    # the analysis pool is forked now, while this process has one thread (forking later,
    # from a scheduler thread while others run, could copy a lock held by one of them)
    app.processor.start_pool()
    sched = BackgroundScheduler(timezone=UTC, job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 60})
    now = datetime.now(UTC)

    def pull_pass() -> None:
        reports: list = []
        pull(app, None, stop, reports_out=reports)
        refused = next((r.database_refused for r in reports if r.database_refused is not None), None)
        if refused is not None:  # e.g. SQLite on a full disk with nothing left to process: still one outage, said once
            raise refused

    def guarded(name, func, *args, publish=True, needs_database=True):
        def job():
            if stop.is_set():
                return
            # a lost database: nothing can be stored or loaded now; one event says so
            if not needs_database or health.probe():
                try:
                    func(*args)
                    publisher.passed(name)
                except Exception as exc:
                    if database_lost(exc):  # a full disk under the database too (SQLITE_FULL, SQLSTATE 53100)
                        health.lost(exc)
                    else:
                        log.exception("scheduled job failed", extra={"event": "job.failed", "job": name})
            if publish:  # after every pass, also without a database: the metrics file and systemd's STATUS
                try:
                    publisher.publish(database_problem=health.problem)
                except Exception:
                    log.exception("monitoring publish failed", extra={"event": "monitor.failed", "job": name})

        job.__name__ = job.__qualname__ = name  # APScheduler's own log lines name the job by it
        return job

    # readable job ids and names: APScheduler's own warnings ("… was missed", "… skipped")
    # name the job, and worker.logs maps them to scheduler.* events with the job id
    sched.add_job(guarded(JOB_PROCESS, process, app, stop), IntervalTrigger(seconds=app.config.processing.interval_s), id=JOB_PROCESS, name=JOB_PROCESS, next_run_time=now)
    if app.config.epuap.enabled:
        sched.add_job(guarded(JOB_PULL, pull_pass), IntervalTrigger(seconds=app.config.epuap.poll_interval_s), id=JOB_PULL, name=JOB_PULL, next_run_time=now)
    if app.config.scans.enabled:
        sched.add_job(guarded(JOB_SCAN, scan, app, stop), IntervalTrigger(seconds=app.config.scans.poll_interval_s), id=JOB_SCAN, name=JOB_SCAN, next_run_time=now)
    if app.config.signatures.trusted_lists:  # at start (the lists may be due), then every trusted_list_refresh_s
        sched.add_job(guarded(JOB_TRUST, refresh_trust, app, needs_database=False), IntervalTrigger(seconds=app.config.signatures.trusted_list_refresh_s),
                      id=JOB_TRUST, name=JOB_TRUST, next_run_time=now)  # fmt: skip
    sched.add_job(guarded(JOB_SUMMARY, daily_summary, app, publish=False), CronTrigger(hour=0, minute=0, timezone=LOCAL_ZONE), id=JOB_SUMMARY, name=JOB_SUMMARY)
    if notifier.watchdog_s:  # WatchdogSec=: a beat from the scheduler's own threads, twice per period
        sched.add_job(notifier.watchdog, IntervalTrigger(seconds=notifier.watchdog_s / 2), id=JOB_WATCHDOG, name=JOB_WATCHDOG, next_run_time=now)
    sched.start()
    log.info("worker started", extra={"event": "run.started", "epuap": app.config.epuap.enabled, "scans": app.config.scans.enabled, "mailboxes": len(app.config.epuap.mailboxes)})
    notifier.ready("uruchomiony")  # (again, when it waited for its database: systemd ignores the repeat)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        notifier.stopping()
        sched.shutdown(wait=True)
        app.processor.close()
        log.info("worker stopped", extra={"event": "run.stopped"})
    return EXIT_OK
