"""Channels as data: processing, the loader and ``check`` ask the registry, so a channel
registered from one module (tests/email_channel.py) goes all the way through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from adapters.db.tables import ebok_declaration, worker_document
from adapters.storage import DocumentStore
from tests import email_channel
from tests.pipeline_doubles import settings
from worker import channels, check, states
from worker.intake import Intake
from worker.processing import Processor
from worker.stages import stages_for


@pytest.fixture
def email():
    channels.register(email_channel.CHANNEL)
    yield email_channel.CHANNEL
    channels.unregister(email_channel.NAME)


def test_the_registry_holds_epuap_and_paper_and_their_pipelines():
    assert channels.names()[:2] == ["EPUAP", "PAPER"]
    assert [s.name for s in stages_for("EPUAP")] == [
        "parse", "identify", "verify_signature", "validate", "map_declaration", "declaration_checks", "check_signer", "fee_rules"]
    assert [s.name for s in stages_for("PAPER")][:2] == ["parse", "scan_export"]
    with pytest.raises(ValueError, match="no pipeline for channel 'EMAIL'"):
        stages_for("EMAIL")


def test_a_registered_channel_is_stored_processed_and_loaded(email, engine, tmp_path):
    store = DocumentStore(tmp_path / "documents")
    doc_id = Intake(engine, store).store(channel="EMAIL", source_ref="msg-1", raw=b"<t building='7' residents='3'/>",
                                         filed_at=datetime(2025, 3, 5, tzinfo=UTC), metadata={}).document_id
    report = Processor(engine, store, settings()).run_pending()  # the default stages: the registry's
    assert report.processed == 1 and report.outcomes == {"ACCEPTED": 1}
    with engine.connect() as conn:
        doc = conn.execute(select(worker_document).where(worker_document.c.id == doc_id)).mappings().one()
        decl = conn.execute(select(ebok_declaration)).mappings().one()
    assert doc["state"] == states.DONE and doc["channel"] == "EMAIL"
    assert (decl["channel"], decl["document_id"], decl["signature"], decl["signature_status"]) == ("EMAIL", doc_id, None, "NOT_APPLICABLE")


def test_check_asks_the_registry_which_channel_a_file_belongs_to(email, tmp_path):
    class App:  # what check needs of the application: the processing settings
        pass

    app = App()
    app.settings = settings()
    path = tmp_path / "mail.xml"
    path.write_bytes(b"<t building='7' residents='3'/>")
    result = check.check_file(app, path, None)
    assert (result["channel"], result["status"], result["signature"], result["signature_status"]) == ("EMAIL", "ACCEPTED", None, "NOT_APPLICABLE")
    assert "image" not in result
