"""Technical errors carry no personal data (issue #9): a real SQL failure whose statement
parameters hold a PESEL, a name and an address ends in ``last_error`` and in the log as the
exception type and the table only. And corrupt storage is never reused for a document."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from sqlalchemy import insert, select

from adapters.db import ebok
from adapters.db.tables import ebok_payer, worker_document
from adapters.storage import DocumentStore
from tests.pipeline_doubles import make_processor
from worker import logs, states
from worker.intake import Intake

PESEL = "44051401458"
NAME = "Zofia Brzęczyszczykiewicz"
STREET = "Ulica Tajemnicza 13"


def test_a_failed_sql_statement_leaves_no_personal_data_in_last_error_or_the_log(engine, tmp_path, monkeypatch):
    intake = Intake(engine, DocumentStore(tmp_path / "documents"))
    doc_id = intake.store(channel="EPUAP", source_ref="r1", raw=b"<t building='7'/>", filed_at=datetime(2025, 3, 5, tzinfo=UTC),
                          metadata={}, mailbox="/cr/dekl").document_id

    def load_that_fails(conn, *args, **kw):
        # a real constraint violation whose parameters are personal data (name is NOT NULL)
        conn.execute(insert(ebok_payer).values(kind="PERSON", pesel=PESEL, name=None, last_name=NAME, street=STREET,
                                               created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))

    monkeypatch.setattr(ebok, "load_batch", load_that_fails)
    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        proc = make_processor(engine, tmp_path / "documents")
        assert proc.process(doc_id) == states.FAILED
    finally:
        root.removeHandler(handler)
    with engine.connect() as conn:
        row = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
    error = row["last_error"]
    assert error.startswith("IntegrityError") and "ebok_payer" in error
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [r for r in records if r["event"] == "document.failed"]
    assert failed and failed[0]["table"] == "ebok_payer" and failed[0]["document_id"] == doc_id
    assert "Traceback" in failed[0]["error"]  # frames are kept for the developers
    text = error + stream.getvalue()
    for secret in (PESEL, PESEL[:6], "Brzęczyszczykiewicz", "Tajemnicza", "INSERT INTO"):
        assert secret not in text, [(r["event"], r["logger"], r["msg"][:80]) for r in records if secret in json.dumps(r, ensure_ascii=False)]


def test_a_corrupt_file_at_a_documents_address_is_rewritten_not_reused(tmp_path):
    store = DocumentStore(tmp_path / "documents")
    raw = b"<Deklaracja>tresc</Deklaracja>"
    sha, key = store.put(raw)
    path = store.path_of(key)
    path.write_bytes(b"X" * len(raw))  # same size, other bytes (a bad disk, a botched restore)
    assert store.put(raw) == (sha, key)
    assert path.read_bytes() == raw
