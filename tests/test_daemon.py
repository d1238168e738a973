"""The daemon: scheduled pulls and processing; SIGTERM finishes cleanly with exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import create_engine, func, select

from adapters.db.tables import ebok_declaration
from tests.test_e2e_cli import setup  # noqa: F401  (fixture)


def test_run_pulls_processes_and_stops_on_sigterm(setup, db_url):
    cfg, env, server = setup
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    engine = create_engine(db_url)
    try:
        deadline = time.monotonic() + 120
        count = 0
        while time.monotonic() < deadline and count < 6:
            time.sleep(0.5)
            try:
                with engine.connect() as conn:
                    count = conn.execute(select(func.count()).select_from(ebok_declaration)).scalar_one()
            except Exception:
                count = 0  # not migrated yet
            assert proc.poll() is None, proc.stderr.read()
        assert count == 6
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
    assert proc.returncode == 0, err
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[0] == "run.started" or "run.started" in events
    assert events[-1] == "run.stopped" and "run.stopping" in events
    assert "document.done" in events and "epuap.pass" in events
