"""The processing state machine: one transaction per document, retries, claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from adapters.db.tables import ebok_declaration, ebok_fee_period, ebok_payer, ebok_property, worker_attempt, worker_audit, worker_document
from adapters.storage import DocumentStore
from tests.pipeline_doubles import make_processor
from worker import processing, states
from worker.config import PaymentsConfig, ProcessingConfig
from worker.intake import Intake


class Clock:
    def __init__(self):
        self.now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def env(engine, tmp_path):
    clock = Clock()
    store_path = tmp_path / "documents"
    intake = Intake(engine, DocumentStore(store_path))
    proc = make_processor(engine, store_path, config=ProcessingConfig(max_attempts=3, retry_initial_s=60), payments=PaymentsConfig("10901014", "4000"), clock=clock)
    return intake, proc, clock


def store(intake, raw: bytes, ref: str, **meta):
    return intake.store(channel="EPUAP", source_ref=ref, raw=raw, filed_at=datetime(2025, 3, 5, tzinfo=UTC), metadata=meta, mailbox="/cr/dekl").document_id


def one(engine, query):
    with engine.connect() as conn:
        return conn.execute(query).mappings().all()


def test_processing_loads_payer_property_declaration_and_periods(env, engine):
    intake, proc, _ = env
    doc = store(intake, b"<t building='7' residents='3'/>", "r1")
    report = proc.run_pending()
    assert report.processed == 1 and report.outcomes == {"ACCEPTED": 1}
    (d,) = one(engine, select(ebok_declaration))
    assert d["status"] == "ACCEPTED" and d["document_id"] == doc and d["declared_fee"] == d["computed_fee"]
    (payer,) = one(engine, select(ebok_payer))
    assert payer["pesel"] == "44051401359" and len(payer["bank_account"]) == 26
    (prop,) = one(engine, select(ebok_property))
    assert prop["gmina"] == "Kędzierzyn-Koźle" and prop["building"] == "7"
    periods = one(engine, select(ebok_fee_period))
    assert [(p["valid_from"].isoformat(), p["valid_to"], str(p["monthly_fee"])) for p in periods] == [("2025-03-01", None, "114.00")]
    (w,) = one(engine, select(worker_document))
    assert w["state"] == states.DONE and w["outcome"] == "ACCEPTED" and w["declaration"]["purpose"] == "FIRST"


def test_processing_again_updates_the_row_never_adds_one(env, engine):
    intake, proc, _ = env
    doc = store(intake, b"<t building='7'/>", "r1")
    proc.run_pending()
    payer_before = one(engine, select(ebok_payer))[0]["bank_account"]
    with engine.begin() as conn:
        processing.requeue(conn, [doc], proc.clock())
    assert proc.run_pending().processed == 1
    assert len(one(engine, select(ebok_declaration))) == 1
    assert len(one(engine, select(ebok_payer))) == 1 and one(engine, select(ebok_payer))[0]["bank_account"] == payer_before
    assert len(one(engine, select(ebok_fee_period))) == 1
    assert [a["action"] for a in one(engine, select(worker_audit).order_by(worker_audit.c.id))] == ["PROCESSED", "PROCESSED"]


def test_a_rejected_declaration_is_loaded_without_a_payer_when_its_identifier_is_bad(env, engine):
    intake, proc, _ = env
    store(intake, b"<t building='7'>REJECT</t>", "r1")
    assert proc.run_pending().outcomes == {"REJECTED": 1}
    (d,) = one(engine, select(ebok_declaration))
    assert d["status"] == "REJECTED" and d["payer_id"] is None and d["findings"][0]["code"] == "PESEL_INVALID"
    assert one(engine, select(ebok_fee_period)) == []


def test_technical_failure_is_retried_with_backoff_then_parked(env, engine):
    intake, proc, clock = env
    doc = store(intake, b"<t>BOOM</t>", "r1")
    assert proc.run_pending().failed == 1
    (w,) = one(engine, select(worker_document))
    assert w["state"] == states.FAILED and w["outcome"] is None and w["last_error"].startswith("RuntimeError") and "simulated" not in w["last_error"]
    assert w["next_attempt_at"] == clock.now + timedelta(seconds=60)
    assert one(engine, select(ebok_declaration)) == []  # never mistaken for a rejection
    assert proc.pending_ids() == []  # not before the backoff
    clock.now += timedelta(seconds=61)
    assert proc.run_pending().failed == 1
    assert one(engine, select(worker_document))[0]["next_attempt_at"] == clock.now + timedelta(seconds=120)
    clock.now += timedelta(seconds=121)
    proc.run_pending()
    (w,) = one(engine, select(worker_document))
    assert w["attempts"] == 3 and w["state"] == states.FAILED and w["next_attempt_at"] is None  # parked
    clock.now += timedelta(days=30)
    assert proc.pending_ids() == []
    assert [a["result"] for a in one(engine, select(worker_attempt).where(worker_attempt.c.document_id == doc))] == ["FAILED"] * 3


def test_a_stale_claim_is_taken_back(env, engine, tmp_path):
    intake, proc, clock = env
    doc = store(intake, b"<t/>", "r1")
    gone = make_processor(engine, tmp_path / "documents", clock=clock)
    gone._announce()
    assert gone._claim(doc, force=False) is not None  # another process claimed it and died
    gone.locks.let_go(gone._instance_lock(gone.instance))
    assert proc.pending_ids() == []
    assert proc.recover_stale() == 1
    assert proc.run_pending().processed == 1


def test_the_claim_of_a_living_process_is_left_alone(env, engine, tmp_path):
    """A second daemon starting on the same database does not take the first one's work."""
    intake, proc, clock = env
    doc = store(intake, b"<t/>", "r1")
    other = make_processor(engine, tmp_path / "documents", clock=clock)
    other._announce()
    assert other._claim(doc, force=False) is not None
    assert proc.recover_stale() == 0
    other.locks.let_go(other._instance_lock(other.instance))
    assert proc.recover_stale() == 1


def test_a_lost_claim_cannot_commit(env, engine, monkeypatch):
    intake, proc, _ = env
    doc = store(intake, b"<t/>", "r1")

    def steal(name):
        if name == "analysed":  # another process takes the document over meanwhile
            with engine.begin() as conn:
                conn.execute(update(worker_document).where(worker_document.c.id == doc).values(claim_token="someone-else"))

    monkeypatch.setattr(processing, "_checkpoint", steal)
    assert proc.process(doc) == states.FAILED
    assert one(engine, select(ebok_declaration)) == []


def test_test_documents_are_stored_but_never_loaded(env, engine):
    intake, proc, _ = env
    store(intake, b"<t/>", "r1", czyTestowe=True)
    assert proc.run_pending().outcomes == {"TEST": 1}
    (w,) = one(engine, select(worker_document))
    assert w["kind"] == "TEST" and w["findings"][0]["code"] == "TEST_DOCUMENT"
    assert one(engine, select(ebok_declaration)) == [] and one(engine, select(ebok_payer)) == []


def test_corrupted_storage_is_a_technical_failure(env, engine, tmp_path):
    intake, proc, _ = env
    store(intake, b"<t/>", "r1")
    (w,) = one(engine, select(worker_document))
    (tmp_path / "documents" / w["storage_key"]).write_bytes(b"<t residents='9'/>")
    assert proc.run_pending().failed == 1
    assert "SHA-256" in one(engine, select(worker_document))[0]["last_error"]
