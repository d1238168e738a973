"""Signals to the daemon (issue #9): SIGHUP is logged and ignored, never kills it; a second
SIGTERM stops it at once — here while a pull hangs on ePUAP — and nothing is lost: the next
run takes in every document."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from adapters.db.tables import worker_document
from adapters.epuap import devkeys, double
from tests.test_intake_instances import daemon_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"

pytestmark = pytest.mark.slow  # real daemons: signals, two instances


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


def wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sighup_is_ignored_and_a_second_sigterm_stops_at_once_losing_nothing(db_url, tmp_path, write_config):
    keys = devkeys.ensure(tmp_path / "keys")
    server = double.serve("127.0.0.1", 0, DEMO / "epuap", keys)
    server.faults.hang_s = 60
    server.faults.add("hang", "pobierzNastepny", times=-1)
    cfg = daemon_config(write_config, server, keys, batch_limit=100)
    env = dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)
    out = tmp_path / "daemon.log"
    try:
        with open(out, "w") as fh:
            daemon = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            names = lambda: {e["event"] for e in events_of(out)}  # noqa: E731
            wait_for(lambda: "run.started" in names(), "run.started")
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "run.sighup" in names(), "run.sighup")
            assert daemon.poll() is None
            wait_for(lambda: any(r.operation == "pobierzNastepny" for r in list(server.requests)), "a hanging pull")
            daemon.send_signal(signal.SIGTERM)
            wait_for(lambda: "run.stopping" in names(), "run.stopping")
            assert daemon.poll() is None  # the first SIGTERM waits for the pull in hand
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)  # well before the 60 s hang ends
        finally:
            if daemon.poll() is None:
                daemon.kill()
        assert daemon.returncode == 1
        assert "run.stopped_now" in {e["event"] for e in events_of(out)}

        server.faults.clear()
        r = subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run", "--once"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:]
    finally:
        server.shutdown()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        docs = conn.execute(select(worker_document)).mappings().all()
    engine.dispose()
    assert len(docs) == 8 and {d["state"] for d in docs} == {"DONE"}  # the demo's six declarations and two letters
    assert all(not m.queue for m in server.mailboxes.values())
