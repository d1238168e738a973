"""The daemon (``run``) and the one-pass commands it is made of.

``run`` schedules, with APScheduler: a pull of every ePUAP mailbox every
``epuap.poll_interval_s``, a pass over the scan inbox every ``scans.poll_interval_s`` (when
``[scans] enabled``), processing of what is pending every ``processing.interval_s``
and a daily summary line. Jobs never overlap themselves (``max_instances=1``) and missed
runs coalesce. SIGTERM/SIGINT set a stop flag: the document in hand is finished and
committed, the scheduler shuts down waiting for running jobs, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select

from adapters.db.tables import worker_document
from worker import states
from worker.app import App
from worker.cli import EXIT_FAILURE, EXIT_OK

log = logging.getLogger("worker.daemon")


def pull(app: App, mailbox: str | None = None, stop: threading.Event | None = None) -> bool:
    """One pull pass over the configured mailboxes. True when every mailbox was drained
    (or its batch limit reached) without giving up."""
    cfg = app.config.epuap
    if not cfg.enabled:
        log.info("ePUAP disabled in the configuration", extra={"event": "epuap.disabled"})
        return True
    if mailbox is not None and mailbox not in {m.address for m in cfg.mailboxes}:
        from worker.errors import UsageError

        raise UsageError(f"--mailbox: {mailbox} is not a configured mailbox (epuap.mailboxes)")
    from adapters.epuap.pull import pull_mailboxes

    reports = pull_mailboxes(cfg, app.intake, mailbox=mailbox, stop=stop)  # each pass is logged there
    return all(r.ok for r in reports)


def scan(app: App, stop: threading.Event | None = None):
    """One pass over the scan inbox; its :class:`adapters.scans.ScanReport`, or ``None``
    when scans are disabled in the configuration."""
    cfg = app.config.scans
    if not cfg.enabled:
        log.info("scan inbox disabled in the configuration", extra={"event": "scan.disabled"})
        return None
    from adapters.scans import scan_inbox

    return scan_inbox(cfg, app.intake, app.store, stop=stop, max_xml_bytes=app.config.processing.max_document_bytes)


def process(app: App, stop: threading.Event | None = None) -> None:
    report = app.processor.run_pending(stop=stop)
    if report.processed or report.failed:
        log.info("processing pass done", extra={"event": "process.pass", **report.as_dict()})
    hand_over(app, stop)


def hand_over(app: App, stop: threading.Event | None = None, *, force: bool = False):
    """Hand correspondence over to the office's outbox (``worker.correspondence``)."""
    from worker.correspondence import hand_over_pending

    return hand_over_pending(app, stop=stop, force=force)


def daily_summary(app: App) -> None:
    since = datetime.now(timezone.utc) - timedelta(days=1)
    d = worker_document.c
    with app.engine.connect() as conn:
        received = conn.execute(select(func.count()).where(d.received_at >= since)).scalar_one()
        outcomes = dict(conn.execute(select(d.outcome, func.count()).where(d.processed_at >= since).group_by(d.outcome)).all())
        queue = dict(conn.execute(select(d.state, func.count()).group_by(d.state)).all())
    log.info(
        "daily summary",
        extra={"event": "summary.daily", "received_24h": received, "outcomes_24h": {k or "NONE": v for k, v in outcomes.items()},
               "queue": {s: queue.get(s, 0) for s in states.ALL}},
    )


def run(app: App, *, once: bool = False) -> int:
    app.processor.recover_stale()
    from worker.fees import recompute_if_rates_changed

    recompute_if_rates_changed(app.engine, app.settings.ruleset)  # the rates may have changed since the last run
    if once:
        ok = True
        try:
            ok = pull(app)
        except Exception:  # an unavailable ePUAP never keeps what is stored from processing
            log.exception("pull pass failed", extra={"event": "epuap.pass_failed"})
            ok = False
        scan_ok = True
        try:
            scanned = scan(app)
            scan_ok = scanned is None or scanned.ok
        except Exception:  # an unreadable inbox never keeps what is stored from processing
            log.exception("scan pass failed", extra={"event": "scan.pass_failed"})
            scan_ok = False
        report = app.processor.run_pending()
        handover = hand_over(app, force=True)
        log.info("run --once done", extra={"event": "run.once", **report.as_dict(), "pull_ok": ok, "scan_ok": scan_ok, "handover_ok": handover.ok})
        return EXIT_OK if ok and scan_ok and report.failed == 0 and handover.ok else EXIT_FAILURE

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("stop requested", extra={"event": "run.stopping", "signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sched = BackgroundScheduler(timezone=timezone.utc, job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 60})
    now = datetime.now(timezone.utc)

    def guarded(name, func, *args):
        def job():
            if stop.is_set():
                return
            try:
                func(*args)
            except Exception:
                log.exception("scheduled job failed", extra={"event": "job.failed", "job": name})

        return job

    sched.add_job(guarded("process", process, app, stop), IntervalTrigger(seconds=app.config.processing.interval_s), id="process", next_run_time=now)
    if app.config.epuap.enabled:
        sched.add_job(guarded("pull", pull, app, None, stop), IntervalTrigger(seconds=app.config.epuap.poll_interval_s), id="pull", next_run_time=now)
    if app.config.scans.enabled:
        sched.add_job(guarded("scan", scan, app, stop), IntervalTrigger(seconds=app.config.scans.poll_interval_s), id="scan", next_run_time=now)
    sched.add_job(guarded("summary", daily_summary, app), CronTrigger(hour=23, minute=59, timezone=timezone.utc), id="summary")
    sched.start()
    log.info("worker started", extra={"event": "run.started", "epuap": app.config.epuap.enabled, "scans": app.config.scans.enabled, "mailboxes": len(app.config.epuap.mailboxes)})
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sched.shutdown(wait=True)
        log.info("worker stopped", extra={"event": "run.stopped"})
    return EXIT_OK
