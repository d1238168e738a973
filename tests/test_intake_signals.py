"""Signals to the daemon (issues #9, #20): SIGHUP is logged and ignored, never kills it;
SIGTERM while a pull hangs on ePUAP cuts the call and the daemon exits 0 at once; a second
SIGTERM stops it at once (exit 1) — and nothing is lost either way: the next run takes in
every document."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

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


def start_daemon(cfg: Path, env: dict, out: Path) -> subprocess.Popen:
    with open(out, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=fh, stderr=subprocess.STDOUT, env=env)


def assert_nothing_lost(db_url, server, cfg: Path, env: dict) -> None:
    server.faults.clear()
    r = subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run", "--once"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        docs = conn.execute(select(worker_document)).mappings().all()
    engine.dispose()
    assert len(docs) == 8 and {d["state"] for d in docs} == {"DONE"}  # the demo's six declarations and two letters
    assert all(not m.queue for m in server.mailboxes.values())


def double_for_the_daemon(tmp_path: Path, write_config, fault: str, **faults) -> tuple:
    """The local double serving the demo mailboxes with ``fault`` on every fetch, and the
    daemon's configuration for it (``epuap.timeout_s`` 60 s): (server, config, environment)."""
    keys = devkeys.ensure(tmp_path / "keys")
    server = double.serve("127.0.0.1", 0, DEMO / "epuap", keys)
    for name, value in faults.items():
        setattr(server.faults, name, value)
    server.faults.add(fault, "pobierzNastepny", times=-1)
    cfg = daemon_config(write_config, server, keys, batch_limit=100, timeout_s=60)
    return server, cfg, dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)


def stopped_by_sigterm(daemon: subprocess.Popen, timeout: float) -> float:
    """Send SIGTERM and wait for the daemon to end: how many seconds it took (it is killed
    when it has not ended within ``timeout``)."""
    sent = time.monotonic()
    try:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=timeout)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    return time.monotonic() - sent


def test_sighup_is_ignored_and_sigterm_during_a_hanging_pull_stops_at_once_losing_nothing(db_url, tmp_path, write_config):
    # issue #20: the first SIGTERM cuts the ePUAP call in hand (it used to wait for it: a
    # stop then took the whole epuap.timeout_s, or a second SIGTERM and exit 1)
    server, cfg, env = double_for_the_daemon(tmp_path, write_config, "hang", hang_s=60)
    out = tmp_path / "daemon.log"
    try:
        daemon = start_daemon(cfg, env, out)
        names = lambda: {e["event"] for e in events_of(out)}  # noqa: E731
        try:
            wait_for(lambda: "run.started" in names(), "run.started")
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "run.sighup" in names(), "run.sighup")
            assert daemon.poll() is None
            wait_for(lambda: any(r.operation == "pobierzNastepny" for r in list(server.requests)), "a hanging pull")
        finally:
            took = stopped_by_sigterm(daemon, 30)  # well before the 60 s hang (and the 60 s timeout) ends
        assert daemon.returncode == 0
        assert took < 20, took
        events = events_of(out)
        assert {"run.stopping", "run.stopped"} <= {e["event"] for e in events}
        assert "run.stopped_now" not in {e["event"] for e in events}
        assert_nothing_lost(db_url, server, cfg, env)
    finally:
        server.shutdown()


def test_a_second_sigterm_stops_at_once_losing_nothing(db_url, tmp_path, write_config):
    # the first stop waits for what cannot be cut: here connecting to an endpoint whose
    # accept queue is full (bounded by epuap.connect_timeout_s, not cut by a stop); the
    # second SIGTERM does not wait for it
    keys = devkeys.ensure(tmp_path / "keys")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):  # the accept queue full: every further connection hangs in its handshake
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    stuck = SimpleNamespace(url=f"http://127.0.0.1:{listener.getsockname()[1]}/pk_external_ws/services/pull",
                            filerepo_url=f"http://127.0.0.1:{listener.getsockname()[1]}/repo-ws-ext/FileRepoService")
    cfg = daemon_config(write_config, stuck, keys, timeout_s=60, connect_timeout_s=40)
    env = dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)
    out = tmp_path / "daemon.log"
    try:
        daemon = start_daemon(cfg, env, out)
        try:
            names = lambda: {e["event"] for e in events_of(out)}  # noqa: E731
            wait_for(lambda: "run.started" in names(), "run.started")
            time.sleep(1.0)  # the pull is connecting
            daemon.send_signal(signal.SIGTERM)
            wait_for(lambda: "run.stopping" in names(), "run.stopping")
            assert daemon.poll() is None  # still connecting
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)  # well before the 40 s connect timeout
        finally:
            if daemon.poll() is None:
                daemon.kill()
        assert daemon.returncode == 1
        assert "run.stopped_now" in names()
    finally:
        for sock in (listener, *fillers):
            sock.close()
    # nothing was taken from the double's mailboxes meanwhile: the next run takes in all
    server = double.serve("127.0.0.1", 0, DEMO / "epuap", keys)
    try:
        cfg = daemon_config(write_config, server, keys, batch_limit=100, timeout_s=60)
        assert_nothing_lost(db_url, server, cfg, env)
    finally:
        server.shutdown()
