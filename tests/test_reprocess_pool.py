"""``reprocess`` of many documents: one analysis pool for the whole command (not one per
chunk of batches), every document processed again exactly once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from adapters.db.tables import worker_audit
from tests.test_e2e_declarations import deliver, signed
from worker import config as config_mod
from worker import reprocess
from worker.app import App


def test_reprocess_analyses_all_chunks_in_one_pool(db_url, tmp_path, trust_files, pki, caplog):
    anchors, seal = trust_files
    cfg = config_mod.from_dict(
        {
            "database": {"url": db_url},
            "storage": {"path": str(tmp_path / "documents")},
            "signatures": {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)]},
            "processing": {"workers": 2, "batch_size": 2},  # chunks of 20 documents
        },
        base=tmp_path,
    )
    app = App(cfg)
    try:
        for k in range(45):
            filed = datetime(2025, 3, 10, 9, tzinfo=UTC) + timedelta(days=k)
            deliver(app, signed(pki, residents=1 + k % 4, filed=filed), f"d{k}", filed)
        assert app.processor.run_pending().processed == 45
        caplog.set_level(logging.DEBUG)
        code = reprocess.reprocess(app, reprocess.Selection(channel="EPUAP"))
        assert code == 0
        steps = [r for r in caplog.records if getattr(r, "event", None) == "document.step"]
        assert len({r.document_id for r in steps}) == 45
        assert len({r.process for r in steps}) == 2  # the two processes of one pool, for all three chunks
        started_again = app.processor.start_pool()
        app.processor.close()
        assert started_again  # the command closed its pool when it ended
        with app.engine.connect() as conn:
            processed = conn.execute(select(func.count()).select_from(worker_audit).where(worker_audit.c.action == "PROCESSED")).scalar_one()
        assert processed == 90
    finally:
        app.processor.close()
        app.engine.dispose()
