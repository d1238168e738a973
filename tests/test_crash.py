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
