"""Issue #20: a scan image is read by streaming, and one larger than
``scans.max_image_bytes`` is never read at all: the pair is quarantined with the reason
``image_too_large`` (a 1 GB sparse PDF whose export gives the right SHA-256 used to be read
whole into memory, 1.17 GB of RSS, and stored). Real files in a real inbox folder; ``check``
and ``run --once``; the 1 GB case in a process of its own, its peak memory measured."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from adapters.db.tables import worker_document
from tests.clitools import run_cli

DATA = Path(__file__).parent / "data" / "scans"
XML = "skan-2025-02-03-0001-0007.xml"
PDF = "skan-2025-02-03-0001-0007.pdf"
SCANS = {"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"}


def sparse_pdf(path: Path, size: int) -> str:
    """A PDF header followed by a hole of ``size`` bytes in all (no disk used); its SHA-256,
    computed a MiB at a time."""
    with open(path, "wb") as fh:
        fh.write(b"%PDF-1.7\n")
        fh.truncate(size)
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def export_for(inbox: Path, pdf_name: str, sha256: str) -> Path:
    text = (DATA / XML).read_text(encoding="utf-8")
    original = hashlib.sha256((DATA / PDF).read_bytes()).hexdigest()
    text = text.replace(f'plik="{PDF}" sha256="{original}"', f'plik="{pdf_name}" sha256="{sha256}"')
    assert pdf_name in text and sha256 in text
    path = inbox / (pdf_name[:-4] + ".xml")
    path.write_text(text, encoding="utf-8")
    return path


def rows(db_url) -> list[dict]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        out = [dict(r) for r in conn.execute(select(worker_document)).mappings()]
    engine.dispose()
    return out


def test_a_large_image_is_quarantined_unread_and_a_smaller_one_stored_streamed(write_config, db_url, tmp_path, monkeypatch):
    cfg = write_config(scans={**SCANS, "max_image_bytes": 3 * 1024 * 1024})
    inbox = tmp_path / "scans" / "inbox"
    inbox.mkdir(parents=True)
    big_sha = sparse_pdf(inbox / "duzy.pdf", 8 * 1024 * 1024)
    export_for(inbox, "duzy.pdf", big_sha)
    small_sha = sparse_pdf(inbox / "maly.pdf", 2 * 1024 * 1024)
    export_for(inbox, "maly.pdf", small_sha).write_text(
        (inbox / "maly.xml").read_text(encoding="utf-8").replace('id="2025-02-03-0001-0007"', 'id="2025-02-03-0001-0008"'), encoding="utf-8")

    # nothing reads an image whole into memory
    real_read_bytes = Path.read_bytes

    def read_bytes(self):
        assert self.suffix != ".pdf", f"{self.name} read whole"
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    r = run_cli(cfg, "run", "--once")
    assert r.returncode == 0, r.stdout[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [e["reason"] for e in events if e["event"] == "scan.quarantined"] == ["image_too_large"]
    quarantine = tmp_path / "scans" / "quarantine"
    assert sorted(p.name for p in quarantine.iterdir()) == ["duzy.pdf", "duzy.reason.txt", "duzy.xml"]
    reason = (quarantine / "duzy.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("reason: image_too_large\n") and "scans.max_image_bytes" in reason
    (doc,) = rows(db_url)  # only the smaller pair was stored
    assert doc["meta"]["pdf"]["sha256"] == small_sha and doc["meta"]["pdf"]["size"] == 2 * 1024 * 1024
    stored = tmp_path / "documents" / doc["meta"]["pdf"]["storage_key"]
    with open(stored, "rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == small_sha
    assert sorted(p.name for p in (tmp_path / "scans" / "archive").iterdir()) == ["maly.pdf", "maly.xml"]


def test_check_says_an_image_is_too_large_without_reading_it(write_config, tmp_path):
    cfg = write_config(scans={**SCANS, "max_image_bytes": 1024 * 1024})
    folder = tmp_path / "pair"
    folder.mkdir()
    export = export_for(folder, "duzy.pdf", sparse_pdf(folder / "duzy.pdf", 4 * 1024 * 1024))
    r = run_cli(cfg, "check", str(export), "--json")
    assert r.returncode == 1  # the pair would not be taken in as it is
    (out,) = json.loads(r.stdout)
    assert out["image"]["ok"] is False and out["image"]["reason"] == "image_too_large"
    assert "scans.max_image_bytes" in out["image"]["problem"]


@pytest.mark.slow
def test_the_issue_s_1_gb_sparse_image_is_quarantined_in_bounded_memory(write_config, db_url, tmp_path):
    cfg = write_config(scans=SCANS)  # the default limit, 50 MB
    inbox = tmp_path / "scans" / "inbox"
    inbox.mkdir(parents=True)
    export_for(inbox, "gigabajt.pdf", sparse_pdf(inbox / "gigabajt.pdf", 1024**3))
    # the worker in a process of its own, under a parent that reports the peak memory of its children
    runner = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", runner, sys.executable, "-m", "worker.cli", "--config", str(cfg), "run", "--once"],
                       capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    peak_mb = int(r.stderr.strip().splitlines()[-1]) / 1024
    assert peak_mb < 300, peak_mb  # it was 1.17 GB: the image never enters memory
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [e["reason"] for e in events if e["event"] == "scan.quarantined"] == ["image_too_large"]
    assert rows(db_url) == []
    stored = [p for p in (tmp_path / "documents").rglob("*") if p.is_file()] if (tmp_path / "documents").exists() else []
    assert stored == []
    assert (tmp_path / "scans" / "quarantine" / "gigabajt.pdf").stat().st_size == 1024**3
