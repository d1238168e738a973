"""Killing the worker between any two steps loses nothing and loads nothing twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.db.tables import ebok_declaration, ebok_fee_period, worker_document
from worker import states

RUNNER = Path(__file__).resolve().parent / "crash_runner.py"

pytestmark = pytest.mark.slow  # processes killed at named points


def run(db_url, storage, action, checkpoint=None):
    args = [sys.executable, str(RUNNER), db_url, str(storage), action] + ([checkpoint] if checkpoint else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def rows(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(table)).mappings().all()


@pytest.mark.parametrize("checkpoint", ["claimed", "analysed", "loaded", "before_commit"])
def test_crash_during_processing_then_restart_processes_exactly_once(db_url, engine, tmp_path, checkpoint):
    storage = tmp_path / "documents"
    assert run(db_url, storage, "store:1").returncode == 0
    assert run(db_url, storage, "store:2").returncode == 0
    crashed = run(db_url, storage, "process", checkpoint)
    assert crashed.returncode == 137, crashed.stderr
    # nothing half-loaded: the killed transaction left no eBOK rows for the document in hand
    assert len(rows(engine, ebok_declaration)) == 0
    restarted = run(db_url, storage, "process")
    assert restarted.returncode == 0, restarted.stderr
    docs = rows(engine, worker_document)
    assert [d["state"] for d in docs] == [states.DONE, states.DONE]
    decls = rows(engine, ebok_declaration)
    assert sorted(d["document_id"] for d in decls) == sorted(d["id"] for d in docs)
    assert len(rows(engine, ebok_fee_period)) == 2  # one property each, one open period each


@pytest.mark.parametrize("checkpoint", ["claimed", "analysed", "loaded", "before_commit"])
def test_a_command_killed_while_its_processes_work_then_restart_processes_exactly_once(db_url, engine, tmp_path, checkpoint):
    """The command is killed (SIGKILL) while one of its forked processes is at the
    checkpoint: its processes die with it (the other one may have committed batches), and
    the next run takes their claims back and finishes the work."""
    storage = tmp_path / "documents"
    for building in range(1, 7):
        assert run(db_url, storage, f"store:{building}").returncode == 0
    crashed = run(db_url, storage, "process-shared", checkpoint)
    assert crashed.returncode == -9, crashed.stderr
    # nothing half-loaded: a declaration only for a document whose transaction committed
    done = {d["id"] for d in rows(engine, worker_document) if d["state"] == states.DONE}
    assert {d["document_id"] for d in rows(engine, ebok_declaration)} == done
    assert len(done) < 6
    restarted = run(db_url, storage, "process-shared")
    assert restarted.returncode == 0, restarted.stderr
    docs = rows(engine, worker_document)
    assert [d["state"] for d in docs] == [states.DONE] * 6
    decls = rows(engine, ebok_declaration)
    assert sorted(d["document_id"] for d in decls) == sorted(d["id"] for d in docs)  # each loaded once
    assert len(rows(engine, ebok_fee_period)) == 6


def test_crash_after_the_file_is_written_before_the_row(db_url, engine, tmp_path):
    storage = tmp_path / "documents"
    crashed = run(db_url, storage, "store:1", "file_written")
    assert crashed.returncode == 137
    assert rows(engine, worker_document) == []  # not stored: the channel has not confirmed it
    # the channel delivers it again; the stored file is reused, one row results
    assert run(db_url, storage, "store:1").returncode == 0
    assert run(db_url, storage, "store:1").returncode == 0
    assert len(rows(engine, worker_document)) == 1
    assert len([p for p in storage.rglob("*") if p.is_file()]) == 1
    assert run(db_url, storage, "process").returncode == 0
    assert [d["state"] for d in rows(engine, worker_document)] == [states.DONE]


def test_a_claim_taken_back_from_a_killed_process_is_no_attempt(db_url, engine, tmp_path):
    """Killed again and again while it holds the claim: each claim taken back is closed as
    interrupted and not counted, so a real technical failure afterwards is the first
    attempt, retried — not parked early."""
    from adapters.db.tables import worker_attempt

    storage = tmp_path / "documents"
    assert run(db_url, storage, "store:1").returncode == 0
    for _ in range(8):  # processing.max_attempts times
        crashed = run(db_url, storage, "process", "claimed")
        assert crashed.returncode == 137, crashed.stderr
        (doc,) = rows(engine, worker_document)
        assert doc["state"] == states.PROCESSING and doc["attempts"] == 1  # the claim in hand, never more
    (doc,) = rows(engine, worker_document)
    (storage / doc["storage_key"]).write_bytes(b"<t building='1' zepsute='tak'/>")  # now a real technical failure
    assert run(db_url, storage, "process").returncode == 0
    (doc,) = rows(engine, worker_document)
    assert doc["state"] == states.FAILED and doc["attempts"] == 1 and doc["next_attempt_at"] is not None  # retried, not parked
    attempts = sorted(rows(engine, worker_attempt), key=lambda a: a["id"])
    assert [a["result"] for a in attempts] == ["INTERRUPTED"] * 8 + ["FAILED"]
    assert all(a["finished_at"] is not None for a in attempts)  # every attempt closed


def test_what_killed_processes_leave_is_removed_at_start(db_url, engine, tmp_path, write_config):
    """A write killed between its temporary file and the rename, processes killed holding
    their sign of life: the next start removes their left-overs, and only theirs."""
    import os
    import time

    from tests.clitools import run_cli

    storage = tmp_path / "documents"
    assert run(db_url, storage, "store:1").returncode == 0
    crashed = run(db_url, storage, "store:2", "incoming_written")
    assert crashed.returncode == 137
    incoming = storage / ".incoming"
    (left,) = list(incoming.iterdir())
    assert left.name.startswith(f"{os.uname().nodename.split('.')[0]}") or "-" in left.name
    assert run(db_url, storage, "process", "claimed").returncode == 137
    cfg = write_config(database={"url": db_url}, storage={"path": str(storage)}, processing={"workers": 1})
    locks: list = []
    if db_url.startswith("sqlite"):
        db = tmp_path / "ebok.sqlite3"
        locks = sorted(db.parent.glob(f"{db.name}.processor_*.lock"))
        assert locks  # one per process that ran, left behind by the kernel's release
        old = time.time() - 120
        for path in locks:
            os.utime(path, (old, old))
    alive = incoming / f"{left.name.rsplit('-', 2)[0]}-{os.getpid()}-living"  # a writer that still runs (this process)
    alive.write_bytes(b"x")
    r = run_cli(cfg, "run", "--once")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in incoming.iterdir()) == [alive.name]  # only the dead writer's file removed
    assert not [p for p in locks if p.exists()]
    tidied = [e for e in (__import__("json").loads(line) for line in r.stdout.splitlines() if line.startswith("{")) if e["event"] == "run.tidied"]
    assert tidied and tidied[0]["incoming"] == 1 and tidied[0]["lock_files"] == len(locks)
    docs = rows(engine, worker_document)
    assert [d["state"] for d in docs] == [states.DONE]  # the killed write was never stored; the killed claim done once
