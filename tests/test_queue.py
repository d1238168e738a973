"""The document queue (adapters/db/queue.py): claims of several documents, their
settlement in a unit of work, taking claims back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from adapters.db.queue import DocumentQueue, StoredDocument
from adapters.db.tables import worker_attempt, worker_audit, worker_document
from adapters.storage import DocumentStore
from worker import states
from worker.intake import Intake

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


@pytest.fixture
def stored(engine, tmp_path):
    intake = Intake(engine, DocumentStore(tmp_path / "documents"))
    return [
        intake.store(channel="EPUAP", source_ref=f"r{i}", raw=f"<t building='{i}'/>".encode(), filed_at=NOW, metadata={"n": i},
                     mailbox="/cr/dekl").document_id
        for i in range(3)
    ]


def documents(engine):
    with engine.connect() as conn:
        return {r["id"]: r for r in conn.execute(select(worker_document)).mappings().all()}


def test_a_batch_is_claimed_once(engine, stored):
    queue = DocumentQueue(engine)
    claims = queue.claim(stored, "aaaaaaaa-one", NOW, LEASE)
    assert [c.document_id for c in claims] == sorted(stored) and len({c.attempt_id for c in claims}) == 3
    assert queue.claim(stored, "bbbbbbbb-two", NOW, LEASE) == []  # claimed: not due for anyone else
    assert queue.due_ids(NOW) == []
    assert queue.due_ids(NOW + LEASE + timedelta(seconds=1)) == sorted(stored)  # a lease that ran out
    rows = documents(engine)
    assert {r["state"] for r in rows.values()} == {states.PROCESSING} and {r["attempts"] for r in rows.values()} == {1}
    with engine.connect() as conn:
        assert len(conn.execute(select(worker_attempt)).all()) == 3


def test_documents_are_typed_frozen_records(engine, stored):
    doc = DocumentQueue(engine).document(stored[0])
    assert isinstance(doc, StoredDocument) and doc.channel == "EPUAP" and doc.meta == {"n": 0} and doc.state == states.RECEIVED
    assert doc["source_ref"] == doc.source_ref == "r0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.state = states.DONE  # type: ignore[misc]


def test_a_claim_is_taken_back_only_with_its_token(engine, stored):
    queue = DocumentQueue(engine)
    queue.claim(stored[:2], "aaaaaaaa-one", NOW, LEASE)
    assert queue.take_back([(stored[0], "cccccccc-someone-else")]) == 0
    assert queue.take_back([(stored[0], "aaaaaaaa-one"), (stored[2], "aaaaaaaa-one")]) == 1  # the third was never claimed
    assert sorted(queue.claims()) == [(stored[1], "aaaaaaaa-one")]
    assert documents(engine)[stored[0]]["state"] == states.RECEIVED


def test_a_unit_of_work_commits_all_or_nothing(engine, stored):
    queue = DocumentQueue(engine)
    claims = queue.claim(stored, "aaaaaaaa-one", NOW, LEASE)
    with pytest.raises(RuntimeError):
        with queue.unit_of_work() as uow:
            assert uow.confirm_claims(claims, NOW, LEASE) == sorted(stored)
            for c in claims:
                uow.mark_done(c, kind="DECLARATION", outcome="ACCEPTED", findings=[], evidence={}, now=NOW)
            uow.audit([dict(at=NOW, document_id=c.document_id, actor="worker", action="PROCESSED") for c in claims])
            raise RuntimeError("the process failed before the commit")
    assert {r["state"] for r in documents(engine).values()} == {states.PROCESSING}
    with queue.unit_of_work() as uow:
        for c in claims:
            uow.mark_done(c, kind="DECLARATION", outcome="ACCEPTED", findings=[], evidence={}, now=NOW)
        uow.audit([dict(at=NOW, document_id=c.document_id, actor="worker", action="PROCESSED") for c in claims])
    assert {r["state"] for r in documents(engine).values()} == {states.DONE}
    with engine.connect() as conn:
        assert len(conn.execute(select(worker_audit)).all()) == 3


def test_only_the_claims_still_ours_are_confirmed(engine, stored):
    queue = DocumentQueue(engine)
    claims = queue.claim(stored, "aaaaaaaa-one", NOW, LEASE)
    queue.take_back([(stored[1], "aaaaaaaa-one")])
    queue.claim([stored[1]], "bbbbbbbb-two", NOW, LEASE)
    with queue.unit_of_work() as uow:
        assert uow.confirm_claims(claims, NOW, LEASE) == [stored[0], stored[2]]


def test_a_failure_backs_off_then_parks(engine, stored):
    queue = DocumentQueue(engine)
    (claim,) = queue.claim([stored[0]], "aaaaaaaa-one", NOW, LEASE)
    failure = queue.fail(claim, "RuntimeError", NOW, 0.1, max_attempts=2, retry_initial_s=60, retry_max_s=3600)
    assert (failure.attempts, failure.next_attempt_at) == (1, NOW + timedelta(seconds=60))
    (claim,) = queue.claim([stored[0]], "aaaaaaaa-two", NOW + timedelta(seconds=61), LEASE)
    failure = queue.fail(claim, "RuntimeError", NOW, 0.1, max_attempts=2, retry_initial_s=60, retry_max_s=3600)
    assert (failure.attempts, failure.next_attempt_at) == (2, None)
    row = documents(engine)[stored[0]]
    assert row["state"] == states.FAILED and row["last_error"] == "RuntimeError" and row["claim_token"] is None
    with queue.unit_of_work() as uow:
        assert uow.requeue(stored) == 3
    assert sorted(queue.due_ids(NOW)) == sorted(stored)
