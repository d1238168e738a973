"""Database outages (issue #9) on a private PostgreSQL server that the tests stop and start:
a document whose processing was cut by the lost connection is released as soon as the
database is back (not after its lease); the daemon started while the database is down waits
for it; the daemon survives the database stopped and restarted mid-run with one
``database.unavailable`` and one ``database.available`` event and nothing stuck."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.db.migrate import make_engine, upgrade
from adapters.db.tables import ebok_declaration, worker_document
from adapters.epuap import devkeys, double
from adapters.storage import DocumentStore
from tests import pipeline_doubles
from tests.private_pg import PrivatePostgres, find_bin
from tests.test_intake_instances import daemon_config
from worker import states
from worker.intake import Intake
from worker.pipeline import stage

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
BIN = find_bin()

pytestmark = [pytest.mark.skipif(BIN is None, reason="PostgreSQL server binaries not installed (initdb, pg_ctl)"), pytest.mark.slow]


@pytest.fixture
def pg():
    server = PrivatePostgres(BIN)
    server.start()
    yield server
    server.destroy()


def test_a_document_cut_by_a_lost_connection_is_released_when_the_database_is_back(pg, tmp_path):
    engine = make_engine(pg.url)
    upgrade(engine)
    intake = Intake(engine, DocumentStore(tmp_path / "documents"))
    doc_id = intake.store(channel="EPUAP", source_ref="r1", raw=b"<t building='7'/>", filed_at=datetime(2025, 3, 5, tzinfo=UTC),
                          metadata={}, mailbox="/cr/dekl").document_id
    cut = []

    @stage("test_parse")
    def parse_then_lose_the_database(ctx):
        pipeline_doubles.parse_test(ctx)
        if not cut:
            cut.append(True)
            pg.stop("fast")  # every connection is cut while the document is in hand (committed claims kept)

    from worker.config import PaymentsConfig, ProcessingConfig
    from worker.processing import Processor

    # the analysis in this process (workers = 1): the stage that stops the server runs once
    proc = Processor(engine, DocumentStore(tmp_path / "documents"), pipeline_doubles.settings(), ProcessingConfig(workers=1),
                     payments=PaymentsConfig("10901014", "4000"), stages_for=lambda c, m: [parse_then_lose_the_database])
    with pytest.raises(Exception):  # noqa: B017  (whatever the driver raises for a lost server)
        proc.run_pending()
    pg.start()
    with engine.connect() as conn:
        row = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
    assert row["state"] == states.PROCESSING  # the claim the outage cut, lease still running
    assert proc.run_pending().processed == 1  # released at once, not after the 10-minute lease
    with engine.connect() as conn:
        row = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
        assert conn.execute(select(func.count()).select_from(ebok_declaration)).scalar_one() == 1
    assert row["state"] == states.DONE and row["outcome"] == "ACCEPTED" and row["last_error"] is None
    engine.dispose()


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


def wait_for(predicate, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_daemon_waits_for_the_database_and_survives_it_stopping_mid_run(pg, tmp_path, write_config):
    keys = devkeys.ensure(tmp_path / "keys")
    server = double.serve("127.0.0.1", 0, DEMO / "epuap", keys)
    boxes = ("/czystyregion/deklaracje", "/czystyregion/korespondencja")
    for i in range(120):
        server.enqueue(boxes[i % 2], f"<Pismo><Tresc>Pismo nr {i}</Tresc></Pismo>".encode(), {}, f"pismo-{i:03d}.xml")
    expected = sum(len(server.pending(a)) for a in boxes)
    cfg = daemon_config(write_config, server, keys, scans=False, database={"url": pg.url})
    env = dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)
    out = tmp_path / "daemon.log"
    pg.stop()  # the daemon starts while the database is down
    engine = make_engine(pg.url)

    def events(name: str) -> list[dict]:
        return [e for e in events_of(out) if e["event"] == name]

    def count(cond=None) -> int:
        try:
            with engine.connect() as conn:
                q = select(func.count()).select_from(worker_document)
                return conn.execute(q.where(cond) if cond is not None else q).scalar_one()
        except Exception:
            return -1

    with open(out, "w") as fh:
        daemon = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: events("database.unavailable"), "database.unavailable at start")
        time.sleep(2)  # it keeps waiting (backoff), it does not exit
        assert daemon.poll() is None, out.read_text()[-3000:]
        pg.start()
        wait_for(lambda: events("database.available"), "database.available after start")
        # mid-run: stop the database while documents are being taken in and processed
        wait_for(lambda: count(worker_document.c.state == states.DONE) >= 10, "the first documents processed")
        pg.stop()
        wait_for(lambda: len(events("database.unavailable")) >= 2, "database.unavailable mid-run")
        time.sleep(2)
        assert daemon.poll() is None, out.read_text()[-3000:]
        pg.start()
        wait_for(lambda: len(events("database.available")) >= 2, "database.available mid-run")
        wait_for(lambda: count(worker_document.c.state == states.DONE) == expected and not any(server.pending(a) for a in boxes),
                 "every document processed after the outage", timeout=240)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        server.shutdown()
    assert daemon.returncode == 0
    with engine.connect() as conn:
        docs = conn.execute(select(worker_document)).mappings().all()
    engine.dispose()
    assert len(docs) == expected and {d["state"] for d in docs} == {states.DONE}  # nothing stuck, nothing twice
    for address in boxes:
        assert len(server.confirmed(address)) == len({d.name for d in server.confirmed(address)})
    evs = events_of(out)
    unavailable, available = events("database.unavailable"), events("database.available")
    assert len(unavailable) == 2 and len(available) == 2  # one of each per outage, not one per pass
    assert not [e for e in evs if e["event"] in ("job.failed", "cli.failed")]
    # the outage is said once each way; at most a document caught mid-commit is a technical failure
    assert {e["event"] for e in evs if e["level"] in ("ERROR", "CRITICAL")} <= {"database.unavailable", "document.failed"}
    released = sum(e.get("count", 0) for e in events("processing.released"))
    print(f"\nFIGURES outage: documents={expected} outages=2 database.unavailable={len(unavailable)} "
          f"database.available={len(available)} claims_released_at_once={released} "
          f"errors_logged={sum(1 for e in evs if e['level'] == 'ERROR')} "
          f"redeliveries={sum(server.mailboxes[a].deliveries for a in boxes) - expected}")


def test_the_daemon_waiting_for_its_database_at_start_tells_systemd_and_the_metrics(pg, tmp_path, write_config):
    """Down at start: READY (the service is up, waiting), a STATUS naming why, watchdog beats
    and a metrics file saying ``ebok_worker_database_up 0`` — then the usual STATUS once the
    database is there; one database.unavailable and one database.available."""
    import socket

    from prometheus_client.parser import text_string_to_metric_families

    cfg = write_config(database={"url": pg.url}, processing={"interval_s": 0.5}, monitoring={"metrics_file": "metrics.prom"})
    metrics = tmp_path / "metrics.prom"
    pg.stop()
    path = str(tmp_path / "notify.sock")
    out = tmp_path / "daemon.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(120)  # a bound against a hung test, not a measurement
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
        env.pop("WATCHDOG_PID", None)
        with open(out, "w") as fh:
            daemon = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=fh, stderr=subprocess.STDOUT, env=env)
        seen: list[str] = []

        def until(predicate) -> None:
            while not predicate():
                seen.extend(sock.recv(4096).decode().split("\n"))

        try:
            until(lambda: "READY=1" in seen and seen.count("WATCHDOG=1") >= 2)
            waiting = [s for s in seen if s.startswith("STATUS=")]
            assert waiting and all(s.startswith("STATUS=czeka na bazę danych: serwer nie przyjmuje połączeń") for s in waiting), waiting
            assert daemon.poll() is None
            wait_for(lambda: metrics.is_file(), "the metrics file while waiting")
            got = {f.name: f for f in text_string_to_metric_families(metrics.read_text(encoding="utf-8"))}
            assert got["ebok_worker_database_up"].samples[0].value == 0
            assert got["ebok_worker_database_problem_info"].samples[0].labels["problem"].startswith("serwer nie przyjmuje połączeń")
            assert got["ebok_worker_health"].samples[0].value == 1
            pg.start()
            until(lambda: any(s.startswith("STATUS=oczekujące: 0, do weryfikacji: 0, stan: OK") for s in seen))
            wait_for(lambda: "ebok_worker_database_up 1.0" in metrics.read_text(encoding="utf-8"), "the metrics file after the start")
            daemon.send_signal(signal.SIGTERM)
            until(lambda: "STOPPING=1" in seen)
            assert daemon.wait(timeout=120) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    evs = events_of(out)
    assert [e["event"] for e in evs if e["event"].startswith("database.")] == ["database.unavailable", "database.available"]
    assert not [e for e in evs if e["event"] in ("job.failed", "cli.failed")]
