"""Durable intake: stored once, atomically, before anything else."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from adapters.db.tables import worker_document
from adapters.storage import DocumentStore
from worker import states
from worker.intake import Intake

RAW = b"<?xml version='1.0'?><doc>tre\xc5\x9b\xc4\x87</doc>"


@pytest.fixture
def intake(engine, tmp_path):
    return Intake(engine, DocumentStore(tmp_path / "documents"))


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(worker_document)).scalar_one()


def test_store_writes_bytes_exactly_and_one_row(intake, engine):
    filed = datetime(2025, 3, 10, 8, 41, 7, tzinfo=UTC)
    r = intake.store(channel="EPUAP", source_ref="/cr/dekl#abc", raw=RAW, filed_at=filed, metadata={"czyTestowe": False}, mailbox="/cr/dekl")
    assert r.created
    with engine.connect() as conn:
        row = conn.execute(select(worker_document).where(worker_document.c.id == r.document_id)).mappings().one()
    assert row["state"] == states.RECEIVED and row["filed_at"] == filed and row["meta"] == {"czyTestowe": False}
    assert intake.store_.get(row["storage_key"]) == RAW
    assert row["sha256"] == DocumentStore.digest(RAW)


def test_same_source_ref_twice_is_one_row(intake, engine):
    a = intake.store(channel="EPUAP", source_ref="/cr/dekl#1", raw=RAW, filed_at=None, metadata={}, mailbox="/cr/dekl")
    b = intake.store(channel="EPUAP", source_ref="/cr/dekl#1", raw=RAW, filed_at=None, metadata={}, mailbox="/cr/dekl")
    assert (a.created, b.created) == (True, False) and a.document_id == b.document_id
    assert count(engine) == 1


def test_same_bytes_from_the_same_source_is_one_row_but_other_source_is_not(intake, engine):
    a = intake.store(channel="PAPER", source_ref="scan-1", raw=RAW, filed_at=None, metadata={}, mailbox="inbox")
    b = intake.store(channel="PAPER", source_ref="scan-1-again", raw=RAW, filed_at=None, metadata={}, mailbox="inbox")
    c = intake.store(channel="EPUAP", source_ref="/other/box#1", raw=RAW, filed_at=None, metadata={}, mailbox="/other/box")
    assert b.document_id == a.document_id and not b.created
    assert c.created and c.document_id != a.document_id
    assert count(engine) == 2


def test_metadata_must_be_json_and_nothing_is_written_otherwise(intake, engine, tmp_path):
    with pytest.raises(TypeError):
        intake.store(channel="EPUAP", source_ref="x", raw=RAW, filed_at=None, metadata={"b": {1, 2}})
    assert count(engine) == 0
    assert not (tmp_path / "documents").exists()


def test_store_leaves_no_temporary_files(tmp_path):
    store = DocumentStore(tmp_path)
    sha, key = store.put(RAW)
    store.put(RAW)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [tmp_path / key]
    assert not any(f.name.startswith(".incoming-") for f in files)
    assert oct(os.stat(tmp_path / key).st_mode)[-3:] in ("600", "644", "640")


def test_record_pull(intake, engine):
    from adapters.db.tables import worker_mailbox

    t1 = datetime(2025, 1, 1, tzinfo=UTC)
    t2 = datetime(2025, 1, 2, tzinfo=UTC)
    intake.record_pull("/cr/dekl", t1)
    intake.record_pull("/cr/dekl", t2, error="HTTP 500")
    with engine.connect() as conn:
        row = conn.execute(select(worker_mailbox)).mappings().one()
    assert row["last_success_at"] == t1 and row["last_attempt_at"] == t2 and row["last_error"] == "HTTP 500"
