"""The paper channel through the command line, in its own processes: `scan` then `process`
on a real inbox folder into the database, `run --once`, `status`, and `check --json` of
the sample scan export with its PDF beside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from adapters.db.tables import ebok_declaration
from tests.clitools import run_cli

DATA = Path(__file__).parent / "data" / "scans"
XML = "skan-2025-02-03-0001-0007.xml"
PDF = "skan-2025-02-03-0001-0007.pdf"


@pytest.fixture
def setup(write_config, tmp_path):
    cfg = write_config(scans={
        "enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine",
        "min_confidence": 0.90, "incomplete_grace_s": 3600,
    })
    return cfg, tmp_path


def cli(cfg, *args):
    return run_cli(cfg, *args)


def test_scan_then_process_loads_the_paper_declaration(setup, db_url):
    cfg, base = setup
    assert cli(cfg, "db", "upgrade").returncode == 0
    r = cli(cfg, "scan")  # creates the folders; nothing there yet
    assert r.returncode == 0, r.stderr
    assert (base / "scans" / "archive").is_dir() and (base / "scans" / "quarantine").is_dir()
    for name in (XML, PDF):
        shutil.copyfile(DATA / name, base / "scans" / "inbox" / name)
    r = cli(cfg, "scan")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    stored = [e for e in events if e["event"] == "scan.stored"]
    assert len(stored) == 1 and stored[0]["file"] == XML
    assert "Skany: przyjęte 1" in r.stdout
    assert "02211307589" not in r.stdout + r.stderr and "Przykładowa" not in r.stdout + r.stderr
    assert sorted(p.name for p in (base / "scans" / "archive").iterdir()) == [PDF, XML]

    p = cli(cfg, "process")
    assert p.returncode == 0 and "Przetworzono: 1" in p.stdout, p.stderr
    assert "02211307589" not in p.stdout + p.stderr

    engine = create_engine(db_url)
    with engine.connect() as conn:
        (row,) = conn.execute(select(ebok_declaration)).mappings().all()
    engine.dispose()
    assert (row["channel"], row["status"], row["signature"], row["signature_status"]) == ("PAPER", "NEEDS_REVIEW", "HANDWRITTEN", "NOT_APPLICABLE")

    # the same pair once more, through run --once: recognised, nothing new
    for name in (XML, PDF):
        shutil.copyfile(DATA / name, base / "scans" / "inbox" / name)
    r = cli(cfg, "run", "--once")
    assert r.returncode == 0, r.stderr
    assert any(json.loads(line)["event"] == "scan.duplicate" for line in r.stdout.splitlines() if line.startswith("{"))
    s = cli(cfg, "status", "--json")
    status = json.loads(s.stdout)
    assert status["scans"] == {"inbox_xml": 0, "inbox_pdf": 0, "quarantined": 0}
    assert status["outcomes"]["NEEDS_REVIEW"] == 1 and status["queue"]["DONE"] == 1


def test_an_inbox_that_is_a_file_is_a_configuration_error(setup):
    cfg, base = setup
    (base / "scans").mkdir()
    (base / "scans" / "inbox").write_text("not a folder")
    r = cli(cfg, "scan")
    assert r.returncode == 2 and r.stderr.startswith("ebok-worker: scans.inbox: ") and r.stderr.count("\n") == 1


def test_check_json_of_the_sample_scan_export(setup, tmp_path):
    cfg, _ = setup
    folder = tmp_path / "check"
    folder.mkdir()
    for name in (XML, PDF):
        shutil.copyfile(DATA / name, folder / name)
    r = cli(cfg, "check", "--json", str(folder / XML))
    assert r.returncode == 0, r.stderr
    (out,) = json.loads(r.stdout)
    assert out == {
        "file": str(folder / XML), "form": "DO-1/2025", "channel": "PAPER", "status": "NEEDS_REVIEW",
        "findings": [{
            "code": "LOW_CONFIDENCE", "severity": "warning", "field": "skladajacy.pesel",
            "message": out["findings"][0]["message"],
        }],
        "declared_fee": "114.00", "computed_fee": "114.00", "signature": "HANDWRITTEN",
        "signature_status": "NOT_APPLICABLE", "signer": None,
        "image": {"file": PDF, "ok": True, "problem": None},
    }
    assert "0,83" in out["findings"][0]["message"]
    # the PDF changed: the findings are still given, but check fails
    (folder / PDF).write_bytes(b"%PDF-1.4 other")
    r = cli(cfg, "check", "--json", str(folder / XML))
    assert r.returncode == 1
    (out,) = json.loads(r.stdout)
    assert out["status"] == "NEEDS_REVIEW" and out["image"]["ok"] is False and "SHA-256" in out["image"]["problem"]
