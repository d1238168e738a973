"""Processing shared by forked processes (``[processing] workers`` > 1 for ``process`` /
``run --once`` and ``reprocess``): each process claims, analyses and loads its own
batches; every document is processed exactly once, and a process that dies (a document
that crashes its analysis) costs the others nothing — the command finishes its work, and
the document that crashes again fails alone."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from adapters.db.tables import ebok_declaration, worker_attempt, worker_audit
from adapters.storage import DocumentStore
from tests.pipeline_doubles import parse_test
from tests.pipeline_doubles import settings as double_settings
from tests.test_e2e_declarations import deliver, signed
from tests.test_processing_batches import count, states_of, store_all
from worker import config as config_mod
from worker import processing, reprocess, states
from worker.app import App
from worker.config import ProcessingConfig


def analyses(path: Path) -> list[tuple[int, int]]:
    """(process id, document id) of every analysis started, in every process."""
    if not path.exists():
        return []
    return [(int(p), int(d)) for p, d in (line.split() for line in path.read_text().splitlines())]


def noting_stages(path: Path, *, die_once: Path | None = None):
    """The doubles' stages, first noting which process analyses which document; a document
    containing DIE kills its process (every time, or only the first time with ``die_once``)."""

    def stages_for(channel, metadata):
        def note(ctx):
            with path.open("a") as f:
                f.write(f"{os.getpid()} {ctx.document_id}\n")
            if b"DIE" in ctx.raw and (die_once is None or not die_once.exists()):
                if die_once is not None:
                    die_once.touch()
                os._exit(9)

        note.name = "note"
        return [note, parse_test]

    return stages_for


def test_processes_share_the_backlog_and_each_document_is_processed_once(engine, tmp_path):
    ids = store_all(engine, tmp_path, [f"<t building='{i % 7}' residents='{1 + i % 3}' n='{i}'/>".encode() for i in range(40)])
    noted = tmp_path / "analyses.txt"
    proc = processing.Processor(engine, DocumentStore(tmp_path / "documents"), double_settings(),
                                ProcessingConfig(workers=2, batch_size=4), stages_for=noting_stages(noted))
    moved: list[int] = []
    report = proc.run_pending_shared(2, progress=moved.append)
    assert (report.processed, report.failed) == (40, 0) and sum(report.outcomes.values()) == 40
    assert sum(moved) == 40
    docs = states_of(engine)
    assert {d.state for d in docs.values()} == {states.DONE} and {d.attempts for d in docs.values()} == {1}
    seen = analyses(noted)
    assert sorted(d for _, d in seen) == sorted(ids)  # each analysed once
    workers = {p for p, _ in seen}
    assert len(workers) == 2 and os.getpid() not in workers  # two other processes, none of it here
    assert count(engine, ebok_declaration) == 40
    assert count(engine, worker_audit, worker_audit.c.action == "PROCESSED") == 40


def test_a_document_that_kills_its_process_fails_alone(engine, tmp_path, caplog):
    """The process that dies leaves its claims; the command takes them back and processes
    them itself with the analysis in a pool: the crashing document fails alone (parked
    after its attempts), every other one is loaded once."""
    bodies = [f"<t building='{i}'/>".encode() for i in range(20)]
    bodies[7] = b"<t building='7'>DIE</t>"
    ids = store_all(engine, tmp_path, bodies)
    noted = tmp_path / "analyses.txt"
    proc = processing.Processor(engine, DocumentStore(tmp_path / "documents"), double_settings(),
                                ProcessingConfig(workers=2, batch_size=3, max_attempts=1, retry_initial_s=0),
                                stages_for=noting_stages(noted))
    caplog.set_level(logging.INFO)
    report = proc.run_pending_shared(2)
    assert (report.processed, report.failed) == (19, 1)
    # the claim of the process it killed is no attempt (only technical failures count): its
    # attempt is closed as interrupted; the failure in the command's pool (AnalysisProcessDied)
    # is the one attempt max_attempts = 1 allows, and parks it
    with engine.connect() as conn:
        results = sorted(conn.execute(select(worker_attempt.c.result).where(worker_attempt.c.document_id == ids[7])).scalars())
    assert results == ["FAILED", "INTERRUPTED"]
    docs = states_of(engine)
    assert {d.state for i, d in docs.items() if i != ids[7]} == {states.DONE}
    poisoned = docs[ids[7]]
    assert poisoned.state == states.FAILED and poisoned.last_error.startswith("AnalysisProcessDied")
    assert poisoned.next_attempt_at is None and poisoned.attempts == 1  # parked
    assert count(engine, ebok_declaration) == 19 and count(engine, ebok_declaration, ebok_declaration.c.document_id == ids[7]) == 0
    assert count(engine, worker_audit, worker_audit.c.action == "PROCESSED") == 19  # each loaded once
    events = [getattr(r, "event", None) for r in caplog.records]
    assert "processing.process_died" in events and "processing.analysis_died" in events
    assert all(p != os.getpid() for p, _ in analyses(noted))  # never analysed in the command's own process


def _reprocess_app(db_url, tmp_path, trust_files, pki, n):
    anchors, seal = trust_files
    cfg = config_mod.from_dict(
        {
            "database": {"url": db_url},
            "storage": {"path": str(tmp_path / "documents")},
            "signatures": {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)]},
            "processing": {"workers": 2, "batch_size": 2},  # chunks of 4 documents, shared by 2 processes
        },
        base=tmp_path,
    )
    app = App(cfg)
    for k in range(n):
        filed = datetime(2025, 3, 10, 9, tzinfo=UTC) + timedelta(days=k)
        deliver(app, signed(pki, residents=1 + k % 4, filed=filed), f"d{k}", filed)
    assert app.processor.run_pending().processed == n
    return app


def _noting_analysis(monkeypatch, path: Path, *, die_for: int | None = None, once: Path | None = None):
    real = processing._analyse_document

    def analyse(doc, raw, *args, **kw):
        with path.open("a") as f:
            f.write(f"{os.getpid()} {doc.id}\n")
        if doc.id == die_for and once is not None and not once.exists():
            once.touch()
            os._exit(9)
        return real(doc, raw, *args, **kw)

    monkeypatch.setattr(processing, "_analyse_document", analyse)


def test_reprocess_is_shared_by_processes_and_each_document_runs_once(db_url, tmp_path, trust_files, pki, monkeypatch, capsys):
    app = _reprocess_app(db_url, tmp_path, trust_files, pki, 30)
    try:
        outcomes = {i: d.outcome for i, d in states_of(app.engine).items()}
        noted = tmp_path / "analyses.txt"
        _noting_analysis(monkeypatch, noted)
        capsys.readouterr()
        assert reprocess.reprocess(app, reprocess.Selection(channel="EPUAP"), as_json=True) == 0
        out = json.loads(capsys.readouterr().out)
        assert [item["document_id"] for item in out["reprocessed"]] == sorted(states_of(app.engine))
        assert all(item["old_outcome"] == item["new_outcome"] == outcomes[item["document_id"]] for item in out["reprocessed"])
        assert out["changed"] == 0 and out["failed"] == 0
        seen = analyses(noted)
        assert sorted(d for _, d in seen) == sorted(states_of(app.engine))
        assert len({p for p, _ in seen}) == 2 and os.getpid() not in {p for p, _ in seen}
        assert count(app.engine, worker_audit, worker_audit.c.action == "PROCESSED") == 60  # once at first, once again
    finally:
        app.close()


def test_reprocess_finishes_the_chunk_of_a_process_that_died(db_url, tmp_path, trust_files, pki, monkeypatch, capsys):
    """A process dies in the middle of its chunk: the command processes what it left (not
    what it had finished), and the lines show what was stored before the reprocessing."""
    app = _reprocess_app(db_url, tmp_path, trust_files, pki, 30)
    try:
        ids = sorted(states_of(app.engine))
        outcomes = {i: d.outcome for i, d in states_of(app.engine).items()}
        noted = tmp_path / "analyses.txt"
        _noting_analysis(monkeypatch, noted, die_for=ids[14], once=tmp_path / "died")  # the second batch of a chunk
        capsys.readouterr()
        assert reprocess.reprocess(app, reprocess.Selection(channel="EPUAP"), as_json=True) == 0
        out = json.loads(capsys.readouterr().out)
        assert [item["document_id"] for item in out["reprocessed"]] == ids
        assert all(item["old_outcome"] == item["new_outcome"] == outcomes[item["document_id"]] for item in out["reprocessed"])
        assert out["changed"] == 0 and out["failed"] == 0
        assert {d.state for d in states_of(app.engine).values()} == {states.DONE}
        with app.engine.connect() as conn:
            per_document = conn.execute(
                select(worker_audit.c.document_id, func.count()).where(worker_audit.c.action == "PROCESSED").group_by(worker_audit.c.document_id)
            ).all()
        assert {n for _, n in per_document} == {2} and len(per_document) == 30  # first run + exactly one reprocessing each
        assert (tmp_path / "died").exists()
    finally:
        app.close()


def test_each_process_analyses_its_next_batch_while_waiting_for_its_turn(db_url, tmp_path):
    """A forked processor's analysis runs in a thread of its own, one batch ahead of the
    loads; while the process holds its turn to write, the thread starts no further
    document (at most the one it had in hand goes on)."""
    from adapters.db.migrate import make_engine

    engine = make_engine(db_url)  # the sibling lets go of the engine's connections, as in a forked process
    try:
        ids = store_all(engine, tmp_path, [f"<t building='{i}'/>".encode() for i in range(12)])
        events: list[tuple[str, str]] = []

        def stages_for(channel, metadata):
            def note(ctx):
                events.append(("analyse", threading.current_thread().name))

            note.name = "note"
            return [note, parse_test]

        parent = processing.Processor(engine, DocumentStore(tmp_path / "documents"), double_settings(),
                                      ProcessingConfig(workers=2, batch_size=3), stages_for=stages_for)
        proc = parent.sibling()
        turn = proc.queue.on_turn

        def on_turn(holding):
            events.append(("turn", "held" if holding else "given back"))
            turn(holding)

        proc.queue.on_turn = on_turn
        assert proc.run_pending().processed == 12
        assert {states_of(engine)[i].state for i in ids} == {states.DONE}
        analysed_in = {name for kind, name in events if kind == "analyse"}
        assert len(analysed_in) == 1 and analysed_in != {threading.current_thread().name}
        holding, during = False, []
        for kind, what in events:
            if kind == "turn":
                holding = what == "held"
                during.append(0)
            elif holding:
                during[-1] += 1
        assert during and max(during) <= 1, during
        assert sum(1 for kind, what in events if kind == "turn" and what == "held") >= 8  # 4 claims + 4 loads
    finally:
        engine.dispose()


def test_a_process_that_dies_after_a_commit_is_still_counted(engine, tmp_path, monkeypatch):
    """The process dies between committing a batch and telling the command: the batch
    stays loaded once, and the command's report counts it from what was stored."""
    ids = store_all(engine, tmp_path, [f"<t building='{i}' residents='{1 + i % 3}'/>".encode() for i in range(9)])
    command = os.getpid()
    real = processing.PassReport.as_dict

    def as_dict(self):
        if os.getpid() != command:
            os._exit(9)  # right after its first commit, before its counts are sent
        return real(self)

    monkeypatch.setattr(processing.PassReport, "as_dict", as_dict)
    proc = processing.Processor(engine, DocumentStore(tmp_path / "documents"), double_settings(),
                                ProcessingConfig(workers=2, batch_size=3), stages_for=noting_stages(tmp_path / "analyses.txt"))
    report = proc.run_pending_shared(1)
    assert (report.processed, report.failed) == (9, 0) and sum(report.outcomes.values()) == 9
    assert {states_of(engine)[i].state for i in ids} == {states.DONE}
    assert count(engine, ebok_declaration) == 9 and count(engine, worker_audit, worker_audit.c.action == "PROCESSED") == 9
