"""Logs: JSON lines with stable keys; personal data masked whatever the caller passes."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.factories import PESEL
from worker import logs


@pytest.fixture
def capture():
    stream = io.StringIO()
    logs.setup("json", "DEBUG", stream=stream)
    yield stream
    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_ebok", False)]


def test_json_line_with_stable_keys(capture):
    logging.getLogger("worker.test").info("document stored", extra={"event": "intake.stored", "document_id": 7, "channel": "EPUAP"})
    (line,) = capture.getvalue().splitlines()
    rec = json.loads(line)
    assert rec["event"] == "intake.stored" and rec["document_id"] == 7 and rec["channel"] == "EPUAP"
    assert rec["level"] == "INFO" and rec["ts"].endswith("+00:00")


def test_pesel_never_reaches_the_log(capture):
    log = logging.getLogger("worker.test")
    log.info("PESEL %s w treści", PESEL, extra={"event": "x", "pesel": PESEL, "detail": f"id {PESEL}", "nested": {"a": [PESEL]}})
    log.info("nazwa", extra={"event": "y", "name_of_thing": "ok", "signer_name": "Jan Testowy", "address": "Piastowska 12"})
    try:
        raise ValueError(f"bad PESEL {PESEL}")
    except ValueError:
        log.exception("failed", extra={"event": "z"})
    out = capture.getvalue()
    assert PESEL not in out
    assert "440514*****" in out
    assert "Jan Testowy" not in out and "Piastowska" not in out


def test_text_format(capture):
    logs.setup("text", "INFO", stream=capture)
    logging.getLogger("worker.test").warning("uwaga", extra={"event": "w", "document_id": 3})
    line = capture.getvalue().splitlines()[-1]
    assert " WARNING w uwaga [document_id=3]" in line
