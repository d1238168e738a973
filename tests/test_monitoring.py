"""Monitoring: `status --monitor` (Nagios), the Prometheus textfile and systemd's notify
protocol, all from one evaluation of the status snapshot."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from adapters.db.tables import worker_document
from worker import cli, monitor
from worker import config as config_mod
from worker.app import App
from worker.status import collect_status
from worker.systemd import Notifier


@pytest.fixture
def setup(write_config):
    cfg = write_config(
        processing={"max_attempts": 1},
        monitoring={"metrics_file": "metrics/ebok_worker.prom", "pending_warn_s": 600, "pull_stale_s": 3600},
    )
    app = App(config_mod.load(cfg))
    yield cfg, app
    app.engine.dispose()


def monitor_cli(cfg, capsys):
    code = cli.main(["--config", str(cfg), "status", "--monitor"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return code, out.strip()


def perfdata(line: str) -> dict[str, int]:
    """The values of the plugin line's perfdata (``label=value[unit];warn;crit;min``)."""
    return {k: int(v.split(";")[0].rstrip("s")) for k, v in (item.split("=") for item in line.split(" | ", 1)[1].split())}


def test_monitor_goes_ok_warning_critical(setup, capsys):
    cfg, app = setup
    code, line = monitor_cli(cfg, capsys)
    assert code == 0 and line.startswith("EBOK-WORKER OK - ")
    assert perfdata(line) == {"pending": 0, "failed_parked": 0, "oldest_pending_s": 0, "review_queue": 0, "scan_quarantined": 0, "mailboxes_blocked": 0, "mailboxes_stale": 0,
                              "correspondence_pending": 0, "disks_full": 0, "config_problems": 0}

    # a document waiting longer than pending_warn_s: WARNING
    stored = app.intake.store(channel="EPUAP", source_ref="r1", raw=b"<t/>", filed_at=None, metadata={}, mailbox="/cr/dekl")
    with app.engine.begin() as conn:
        conn.execute(update(worker_document).values(received_at=datetime.now(UTC) - timedelta(hours=2)))
    code, line = monitor_cli(cfg, capsys)
    assert code == 1 and line.startswith("EBOK-WORKER WARNING - najstarszy oczekujący dokument")
    assert perfdata(line)["pending"] == 1 and perfdata(line)["oldest_pending_s"] >= 7200

    # its storage corrupted: a technical failure, parked after max_attempts = 1: CRITICAL
    with app.engine.connect() as conn:
        key = conn.execute(select(worker_document.c.storage_key)).scalar_one()
    (app.config.storage.path / key).write_bytes(b"<t residents='9'/>")
    assert app.processor.run_pending().failed == 1
    code, line = monitor_cli(cfg, capsys)
    assert code == 2 and line.startswith("EBOK-WORKER CRITICAL - wstrzymane po wyczerpaniu prób: 1 dokument")
    assert perfdata(line)["failed_parked"] == 1
    assert stored.document_id

    # a blocked mailbox (its head cannot be confirmed) is CRITICAL on its own. The snapshot's
    # mailbox entries gain blocked_since/blocked_reason from worker_mailbox with the intake
    # change; until then the blocked state is set on the real snapshot here
    snapshot = collect_status(app)
    snapshot["failed_parked"] = 0
    snapshot["oldest_pending"] = None
    snapshot["mailboxes"] = [{"address": "/cr/dekl", "last_success_at": datetime.now(UTC).isoformat(), "last_attempt_at": None,
                              "last_error": "fault", "blocked_since": "2025-01-30T23:00:00+00:00", "blocked_reason": "nie można potwierdzić dokumentu"}]
    health = monitor.evaluate(snapshot, pending_warn_s=600, pull_stale_s=3600, now=datetime.now(UTC), watched_mailboxes=["/cr/dekl"])
    assert health.name == "CRITICAL" and [p.key for p in health.problems] == ["mailbox_blocked"]
    assert "zablokowana od 2025-01-31 00:00" in monitor.nagios_line(health)
    assert health.perfdata["mailboxes_blocked"] == 1


def test_evaluation_rules():
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    base = {
        "queue": {"RECEIVED": 0, "PROCESSING": 0, "FAILED": 0, "DONE": 5},
        "failed_parked": 0, "oldest_pending": None,
        "outcomes": {"ACCEPTED": 5, "NEEDS_REVIEW": 0, "REJECTED": 0, "SUPERSEDED": 0},
        "scans": {"inbox_xml": 0, "inbox_pdf": 0, "quarantined": 0},
        "mailboxes": [{"address": "/cr/a", "last_success_at": (now - timedelta(minutes=5)).isoformat(), "last_attempt_at": None, "last_error": None}],
    }

    def ev(**changes):
        return monitor.evaluate(dict(base, **changes), pending_warn_s=600, pull_stale_s=3600, now=now, watched_mailboxes=["/cr/a"])

    assert ev().name == "OK"
    assert [p.key for p in ev(outcomes=dict(base["outcomes"], NEEDS_REVIEW=2)).problems] == ["review_queue"]
    assert ev(scans={"inbox_xml": 0, "inbox_pdf": 0, "quarantined": 1}).name == "WARNING"
    assert ev(daemon={"database_ok": False}).name == "WARNING"
    waiting = ev(correspondence={"total": 3, "pending": 2, "handed_over": 1, "outbox_error": "PermissionError"})
    assert waiting.name == "WARNING" and [p.key for p in waiting.problems] == ["outbox_error"]
    assert waiting.perfdata["correspondence_pending"] == 2 and "2 pisma czekają" in waiting.problems[0].text
    assert ev(correspondence={"total": 3, "pending": 1, "handed_over": 2, "outbox_error": None}).name == "OK"
    stale = ev(mailboxes=[dict(base["mailboxes"][0], last_success_at=(now - timedelta(hours=2)).isoformat())])
    assert stale.name == "CRITICAL" and stale.problems[0].key == "mailbox_stale"
    never = ev(mailboxes=[dict(base["mailboxes"][0], last_success_at=None)])
    assert never.name == "CRITICAL"
    # a mailbox no longer configured is not watched for staleness, but blocked is blocked
    unwatched = {"address": "/old/box", "last_success_at": None, "last_attempt_at": None, "last_error": None}
    assert ev(mailboxes=base["mailboxes"] + [unwatched]).name == "OK"
    assert ev(mailboxes=base["mailboxes"] + [dict(unwatched, blocked_since=now.isoformat(), blocked_reason=None)]).name == "CRITICAL"


def test_monitor_is_unknown_on_a_configuration_error(tmp_path, capsys):
    bad = tmp_path / "config.toml"
    bad.write_text("[monitoring]\npending_warn_s = 0\n", encoding="utf-8")
    assert cli.main(["--config", str(bad), "status", "--monitor"]) == 3
    assert capsys.readouterr().out.startswith("EBOK-WORKER UNKNOWN - ")


def test_metrics_file_parses_and_equals_status_json(setup, capsys):
    cfg, app = setup
    stored = app.intake.store(channel="EPUAP", source_ref="r1", raw=b"<t/>", filed_at=None, metadata={}, mailbox="/cr/dekl")
    assert stored.document_id
    now = datetime.now(UTC) + timedelta(minutes=30)
    notified = []

    class Recorder:
        def status(self, text):
            notified.append(text)

    health = monitor.Publisher(app, Recorder()).publish(now=now)
    path = app.config.monitoring.metrics_file
    assert path.is_file() and not [p for p in path.parent.iterdir() if p != path]  # no temporary left behind
    samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    assert cli.main(["--config", str(cfg), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    for state, n in status["queue"].items():
        assert samples[("ebok_worker_documents", (("state", state),))] == n
    for st, n in status["outcomes"].items():
        assert samples[("ebok_worker_declarations", (("status", st),))] == n
    for outcome, n in status["processed"].items():
        assert samples[("ebok_worker_processed_total", (("outcome", outcome),))] == n
    assert samples[("ebok_worker_failed_parked", ())] == status["failed_parked"]
    assert samples[("ebok_worker_review_queue", ())] == status["outcomes"]["NEEDS_REVIEW"]
    assert samples[("ebok_worker_scan_quarantined", ())] == 0
    assert samples[("ebok_worker_oldest_pending_seconds", ())] == collect_status(app, now=now)["oldest_pending"]["age_s"] >= 1800
    assert samples[("ebok_worker_health", ())] == health.state == 1
    assert samples[("ebok_worker_database_up", ())] == 1
    assert notified == [monitor.status_line(collect_status(app, now=now), health)] and notified[0].startswith("oczekujące: 1,")


def test_metrics_report_mailboxes(tmp_path):
    snapshot = {
        "queue": {"RECEIVED": 0, "PROCESSING": 0, "FAILED": 0, "DONE": 0}, "failed_parked": 0, "oldest_pending": None,
        "outcomes": {"ACCEPTED": 0, "NEEDS_REVIEW": 0, "REJECTED": 0, "SUPERSEDED": 0}, "processed": {}, "scans": None,
        "mailboxes": [
            {"address": "/cr/a", "last_success_at": "2025-03-10T12:00:00+00:00", "last_attempt_at": None, "last_error": None},
            {"address": "/cr/b", "last_success_at": None, "last_attempt_at": None, "last_error": None, "blocked_since": "2025-03-10T11:00:00+00:00"},
        ],
    }
    health = monitor.evaluate(snapshot, pending_warn_s=1, pull_stale_s=1, now=datetime(2025, 3, 10, 12, 0, tzinfo=UTC))
    path = tmp_path / "m.prom"
    monitor.write_metrics(path, snapshot, health)
    samples = {(s.name, tuple(s.labels.items())): s.value for f in text_string_to_metric_families(path.read_text()) for s in f.samples}
    assert samples[("ebok_worker_mailbox_last_success_timestamp_seconds", (("mailbox", "/cr/a"),))] == datetime(2025, 3, 10, 12, tzinfo=UTC).timestamp()
    assert samples[("ebok_worker_mailbox_last_success_timestamp_seconds", (("mailbox", "/cr/b"),))] == 0
    assert samples[("ebok_worker_mailbox_blocked", (("mailbox", "/cr/a"),))] == 0
    assert samples[("ebok_worker_mailbox_blocked", (("mailbox", "/cr/b"),))] == 1
    assert samples[("ebok_worker_health", ())] == 2
    assert monitor.daemon_view(path) == {}


def test_notifier_speaks_the_sd_notify_protocol(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
        assert n.enabled and n.watchdog_s == 30
        assert n.ready("start") and n.watchdog() and n.status("oczekujące:\n 3") and n.stopping()
        got = [server.recv(4096).decode() for _ in range(4)]
    assert got == ["READY=1\nSTATUS=start", "WATCHDOG=1", "STATUS=oczekujące: 3", "STOPPING=1\nSTATUS=zatrzymywanie"]
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.ready() and quiet.watchdog_s is None


def test_apscheduler_records_become_worker_events(capsys):
    import io
    import logging

    from apscheduler.job import Job
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    from worker import daemon, logs

    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    sched = BackgroundScheduler()
    job = Job(sched, id=daemon.JOB_PULL, name=daemon.JOB_PULL, func=print, args=(), kwargs={}, trigger=IntervalTrigger(seconds=60), executor="default",
              misfire_grace_time=1, coalesce=True, max_instances=1, next_run_time=None)
    rec = logging.getLogger("apscheduler.scheduler").makeRecord(
        "apscheduler.scheduler", logging.WARNING, __file__, 1,
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)', (job, 1), None)
    handler.handle(rec)
    line = json.loads(stream.getvalue())
    assert line["event"] == "scheduler.job_skipped" and line["job"] == "epuap.pull"
    assert line["msg"].startswith('Execution of job "epuap.pull')


def test_daily_summary_covers_the_polish_day_and_names_the_problems(setup, caplog):
    cfg, app = setup
    from worker import daemon

    stored = app.intake.store(channel="EPUAP", source_ref="r1", raw=b"<t/>", filed_at=None, metadata={}, mailbox="/cr/dekl")
    # received 2025-03-09 23:30 UTC = 2025-03-10 00:30 in Poland: the 10th's summary counts it
    with app.engine.begin() as conn:
        conn.execute(update(worker_document).values(received_at=datetime(2025, 3, 9, 23, 30, tzinfo=UTC)))
    caplog.set_level("INFO", logger="worker.daemon")
    daemon.daily_summary(app, now=datetime(2025, 3, 10, 23, 0, 5, tzinfo=UTC))  # local midnight of the 11th
    (rec,) = [r for r in caplog.records if getattr(r, "event", None) == "summary.daily"]
    assert rec.day == "2025-03-10" and rec.received == 1
    assert rec.review_queue == 0 and rec.failed_parked == 0 and rec.scan_quarantined == 0 and rec.mailboxes_blocked == []
    assert rec.health == "WARNING" and "pending_old" in rec.problems
    caplog.clear()
    daemon.daily_summary(app, now=datetime(2025, 3, 9, 23, 0, 5, tzinfo=UTC))  # the 9th's day: nothing
    (rec,) = [r for r in caplog.records if getattr(r, "event", None) == "summary.daily"]
    assert rec.day == "2025-03-09" and rec.received == 0
    assert stored.document_id


def test_monitor_is_unknown_when_the_database_cannot_be_reached(tmp_path, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:1/none"\n', encoding="utf-8")
    assert cli.main(["--config", str(cfg), "status", "--monitor"]) == 3
    out = capsys.readouterr()
    assert out.out.startswith("EBOK-WORKER UNKNOWN - nie można ustalić stanu: nie można połączyć się z bazą danych (database.url)")
    assert cli.main(["--config", str(cfg), "status"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("ebok-worker: błąd: nie można połączyć się z bazą danych")
