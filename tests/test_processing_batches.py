"""Processing in batches (one transaction per batch) with the analysis in a pool of worker
processes: a technical failure of one document never loses the others' work, and every
document is loaded exactly once."""

from __future__ import annotations

import gc
import logging
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from adapters.db import ebok
from adapters.db.tables import ebok_declaration, worker_audit, worker_document
from adapters.storage import DocumentStore
from tests.pipeline_doubles import make_processor
from tests.pipeline_doubles import settings as double_settings
from worker import processing, states
from worker.config import ProcessingConfig
from worker.intake import Intake


def store_all(engine, tmp_path, bodies):
    intake = Intake(engine, DocumentStore(tmp_path / "documents"))
    return [
        intake.store(channel="EPUAP", source_ref=f"r{i}", raw=body, filed_at=datetime(2025, 3, 5, tzinfo=UTC), metadata={},
                     mailbox="/cr/dekl").document_id
        for i, body in enumerate(bodies)
    ]


def states_of(engine):
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(worker_document)).all()}


def count(engine, table, *where):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_document_whose_analysis_raises_fails_alone(engine, tmp_path, caplog, workers):
    bodies = [f"<t building='{i}'/>".encode() for i in range(5)]
    bodies[2] = b"<t building='2'>BOOM</t>"
    ids = store_all(engine, tmp_path, bodies)
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=workers, batch_size=10, retry_initial_s=60))
    caplog.set_level(logging.DEBUG)
    report = proc.run_pending()
    assert (report.processed, report.failed) == (4, 1)
    docs = states_of(engine)
    assert [docs[i].state for i in ids] == [states.DONE, states.DONE, states.FAILED, states.DONE, states.DONE]
    failed = docs[ids[2]]
    assert failed.next_attempt_at is not None and failed.last_error.startswith("RuntimeError") and "simulated" not in failed.last_error
    assert count(engine, ebok_declaration) == 4 and count(engine, ebok_declaration, ebok_declaration.c.document_id == ids[2]) == 0
    events = [r for r in caplog.records if getattr(r, "event", None) in ("document.failed", "document.done", "document.step")]
    assert sorted(r.document_id for r in events if r.event == "document.done") == sorted(set(ids) - {ids[2]})
    (failure,) = [r for r in events if r.event == "document.failed"]
    assert failure.document_id == ids[2] and failure.error == "RuntimeError"
    if workers > 1:  # the pool worker's traceback: frames and types only
        assert failure.exc_text and "simulated" not in failure.exc_text
    analysed_in = {r.process for r in events if r.event == "document.step"}
    # the analysis ran in other processes (its records were sent back), or here with one worker
    assert (analysed_in == {os.getpid()}) == (workers == 1)


def test_a_load_that_fails_loses_nothing_of_the_batch(engine, tmp_path, monkeypatch):
    ids = store_all(engine, tmp_path, [f"<t building='{i}'/>".encode() for i in range(4)])
    real_load = ebok.load_batch

    def load(conn, loads, **kw):
        if any(doc["id"] == ids[1] for doc, _ in loads):
            raise RuntimeError("the database refused this one")
        return real_load(conn, loads, **kw)

    monkeypatch.setattr(ebok, "load_batch", load)
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=2, batch_size=10))
    report = proc.run_pending()
    assert (report.processed, report.failed) == (3, 1)
    docs = states_of(engine)
    assert [docs[i].state for i in ids] == [states.DONE, states.FAILED, states.DONE, states.DONE]
    assert sorted(count(engine, ebok_declaration, ebok_declaration.c.document_id == i) for i in ids) == [0, 1, 1, 1]
    assert count(engine, worker_audit) == 3  # each loaded once, audited once


def test_a_batch_is_one_transaction(engine, tmp_path, monkeypatch):
    """What a batch wrote before its commit failed is gone: every document is then loaded
    and audited exactly once."""
    store_all(engine, tmp_path, [f"<t building='{i}'/>".encode() for i in range(6)])
    calls = []

    def fail_first_commit(name):
        if name == "before_commit":
            calls.append(name)
            if len(calls) == 1:
                raise RuntimeError("the commit of the whole batch failed")

    monkeypatch.setattr(processing, "_checkpoint", fail_first_commit)
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=1, batch_size=10))
    report = proc.run_pending()
    assert (report.processed, report.failed) == (6, 0)
    assert len(calls) == 1 + 6  # the batch once, then each document alone
    assert {d.state for d in states_of(engine).values()} == {states.DONE}
    assert count(engine, ebok_declaration) == 6 and count(engine, worker_audit) == 6


def test_batches_are_claimed_in_order_and_limited(engine, tmp_path):
    ids = store_all(engine, tmp_path, [f"<t building='{i}'/>".encode() for i in range(7)])
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=2, batch_size=3))
    seen = []
    report = proc.run_pending(limit=5, progress=seen.append)
    assert report.processed == 5 and seen == [3, 2]
    assert [i for i, d in sorted(states_of(engine).items()) if d.state == states.DONE] == ids[:5]
    assert proc.run_pending().processed == 2


def test_a_stop_finishes_the_batch_in_hand(engine, tmp_path):
    import threading

    store_all(engine, tmp_path, [f"<t building='{i}'/>".encode() for i in range(6)])
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=1, batch_size=2))
    stop = threading.Event()
    report = proc.run_pending(stop=stop, progress=lambda n: stop.set())
    assert report.processed == 2
    assert sorted(d.state for d in states_of(engine).values()) == [states.DONE] * 2 + [states.RECEIVED] * 4


def _dying_stages(channel, metadata):
    from tests.pipeline_doubles import parse_test

    def die(ctx):
        if b"DIE" in ctx.raw:
            os._exit(9)  # the pool worker is killed in the middle of a document

    die.name = "die"
    return [die, parse_test]


def test_a_pool_worker_that_dies_leaves_no_document_claimed(engine, tmp_path):
    ids = store_all(engine, tmp_path, [b"<t building='1'/>", b"<t building='2'>DIE</t>", b"<t building='3'/>"])
    proc = processing.Processor(engine, DocumentStore(tmp_path / "documents"), double_settings(),
                                ProcessingConfig(workers=2, batch_size=10), stages_for=_dying_stages)
    report = proc.run_pending()
    docs = states_of(engine)
    assert report.processed + report.failed == 3 and report.failed >= 1
    assert docs[ids[1]].state == states.FAILED and docs[ids[1]].next_attempt_at is not None
    assert {d.state for d in docs.values()} <= {states.DONE, states.FAILED}  # nothing left claimed
    assert count(engine, ebok_declaration, ebok_declaration.c.document_id == ids[1]) == 0


@pytest.mark.parametrize("shared", [False, True], ids=["pass-pool", "daemon-pool"])
def test_a_document_that_kills_its_pool_process_costs_its_batchmates_nothing(engine, tmp_path, caplog, shared):
    """The analyses lost with the dead process are done again, one by one in a process of
    their own: only the document that kills its process again fails, and the pool goes on
    for the batches after it."""
    bodies = [f"<t building='{i}'/>".encode() for i in range(12)]
    bodies[3] = b"<t building='3'>DIE</t>"
    ids = store_all(engine, tmp_path, bodies)
    proc = processing.Processor(engine, DocumentStore(tmp_path / "documents"), double_settings(),
                                ProcessingConfig(workers=2, batch_size=5, max_attempts=2, retry_initial_s=0), stages_for=_dying_stages)
    if shared:
        proc.start_pool()
    caplog.set_level(logging.DEBUG)
    try:
        for _ in range(3):  # the poisonous one until its attempts run out
            proc.run_pending()
    finally:
        proc.close()
    docs = states_of(engine)
    assert [docs[i].state for i in ids] == [states.DONE] * 3 + [states.FAILED] + [states.DONE] * 8
    assert [docs[i].attempts for i in ids] == [1] * 3 + [2] + [1] * 8  # no batchmate paid an attempt
    assert docs[ids[3]].next_attempt_at is None and docs[ids[3]].last_error.startswith("AnalysisProcessDied")  # parked
    assert count(engine, ebok_declaration) == 11 and count(engine, worker_audit) == 11
    died = [r.document_id for r in caplog.records if getattr(r, "event", None) == "processing.analysis_died"]
    assert died == [ids[3], ids[3]]
    # every analysis, also after the break, ran in a pool process, never in this one
    analysed_in = {r.process for r in caplog.records if getattr(r, "event", None) == "document.step"}
    assert analysed_in and os.getpid() not in analysed_in


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stored_file_that_no_longer_matches_its_digest_fails_alone(engine, tmp_path, workers):
    ids = store_all(engine, tmp_path, [f"<t building='{i}'/>".encode() for i in range(4)])
    store = DocumentStore(tmp_path / "documents")
    key = states_of(engine)[ids[1]].storage_key
    store.path_of(key).write_bytes(b"<t building='9'/>")  # a bad disk, a botched restore
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=workers, batch_size=10, retry_initial_s=60))
    report = proc.run_pending()
    assert (report.processed, report.failed) == (3, 1)
    docs = states_of(engine)
    assert [docs[i].state for i in ids] == [states.DONE, states.FAILED, states.DONE, states.DONE]
    assert docs[ids[1]].last_error.startswith("StorageCorrupted") and count(engine, ebok_declaration) == 3


class _FinalisedOnce:
    """Unreachable garbage with a finaliser (a reference cycle): records the process that
    finalises it, as an unfinished lock context would run its SQL there."""

    def __init__(self, path):
        self.path = path
        self.cycle = self

    def __del__(self):
        with open(self.path, "a") as fh:
            fh.write(f"{os.getpid()}\n")


def _collect_garbage_here():
    gc.collect()
    return os.getpid()


def test_a_pool_process_never_finalises_what_it_inherited(engine, tmp_path):
    marker = tmp_path / "finalised-by"
    proc = make_processor(engine, tmp_path / "documents", config=ProcessingConfig(workers=2))
    gc.disable()
    try:
        _FinalisedOnce(str(marker))  # garbage now, collected only by a collection
        assert proc.start_pool()
        pool_pids = {proc._shared_pool.submit(_collect_garbage_here).result() for _ in range(4)}
        assert os.getpid() not in pool_pids
        assert not marker.exists()  # the pool processes collected without finalising it
    finally:
        proc.close()
        gc.enable()
    gc.collect()
    assert marker.read_text().split() == [str(os.getpid())]  # this process finalises it, once
