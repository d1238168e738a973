"""Two daemons on one database (issue #9): real processes, the real ePUAP double, a real scan
inbox. Every document is pulled, stored, confirmed and processed exactly once; the second
daemon is a harmless helper (it skips the mailboxes and the inbox the first one is busy
with and shares the processing); no error events, no unique-key violations. Then two
`scan` commands at once over a fresh inbox."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from adapters.db.tables import ebok_declaration, worker_document
from adapters.epuap import devkeys, double
from tests.conftest import epuap_section

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"

pytestmark = pytest.mark.slow  # real daemons: signals, two instances
LETTERS = 30
MAILBOXES = ("/czystyregion/deklaracje", "/czystyregion/korespondencja")


def daemon_config(write_config, server, keys, *, scans: bool = True, database: dict | None = None, **epuap) -> Path:
    """The daemon's configuration for these tests: both mailboxes of the double, short
    intervals; ``epuap`` overrides keys of the ``[epuap]`` section."""
    sections = {
        "epuap": epuap_section(server, keys, "czystyregion/deklaracje", "czystyregion/korespondencja",
                               **{"timeout_s": 30, "poll_interval_s": 0.5, "batch_limit": 5, "max_attempts": 3, "backoff_max_s": 0.2, **epuap}),
        "signatures": {"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
        "payments": {"bank_branch": "10901014"},
        "processing": {"interval_s": 0.5},
    }
    if scans:
        sections["scans"] = {"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine", "poll_interval_s": 0.5}
    if database is not None:
        sections["database"] = database
    return write_config(**sections)


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


def test_two_daemons_on_one_database_take_in_a_backlog_exactly_once(db_url, tmp_path, write_config):
    keys = devkeys.ensure(tmp_path / "keys")
    server = double.serve("127.0.0.1", 0, DEMO / "epuap", keys)
    for i in range(LETTERS):
        server.enqueue(MAILBOXES[i % 2], f"<Pismo><Tresc>Pismo nr {i}</Tresc></Pismo>".encode(), {}, f"pismo-{i:03d}.xml")
    queued = {a: [d.name for d in server.pending(a)] for a in MAILBOXES}
    expected_docs = sum(len(v) for v in queued.values()) + 1  # + the scanned paper form
    cfg = daemon_config(write_config, server, keys)
    inbox = tmp_path / "scans/inbox"
    inbox.mkdir(parents=True)
    for f in (DEMO / "scans").iterdir():
        shutil.copy(f, inbox / f.name)
    env = dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)
    outs = [tmp_path / "daemon-a.log", tmp_path / "daemon-b.log"]
    procs = []
    engine = create_engine(db_url)
    try:
        for out in outs:
            with open(out, "w") as fh:
                procs.append(subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"],
                                              stdout=fh, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + 240
        done = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            for p, out in zip(procs, outs, strict=False):
                assert p.poll() is None, "a daemon exited: " + out.read_text(encoding="utf-8")[-3000:]
            try:
                with engine.connect() as conn:
                    done = conn.execute(select(func.count()).where(worker_document.c.state == "DONE")).scalar_one()
            except Exception:
                continue  # not migrated yet
            if done >= expected_docs and not any(server.pending(a) for a in MAILBOXES):
                break
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.shutdown()
    assert [p.returncode for p in procs] == [0, 0]

    with engine.connect() as conn:
        docs = conn.execute(select(worker_document)).mappings().all()
        decls = conn.execute(select(ebok_declaration)).mappings().all()
    engine.dispose()
    # every document exactly once: stored once, delivered once, confirmed once, processed once
    assert len(docs) == expected_docs and {d["state"] for d in docs} == {"DONE"}
    assert len({(d["channel"], d["source_ref"]) for d in docs}) == expected_docs
    for address in MAILBOXES:
        assert [d.name for d in server.confirmed(address)] == queued[address]
        assert server.mailboxes[address].deliveries == len(queued[address])  # never pulled twice
    assert sorted(Counter(d["status"] for d in decls).items()) == [("ACCEPTED", 6), ("NEEDS_REVIEW", 1)]
    assert sorted(p.name for p in (tmp_path / "scans/archive").iterdir()) == sorted(p.name for p in (DEMO / "scans").iterdir())
    assert list((tmp_path / "scans/quarantine").iterdir()) == []

    all_events = [events_of(o) for o in outs]
    for evs, out in zip(all_events, outs, strict=False):
        bad = [e for e in evs if e["level"] in ("ERROR", "CRITICAL")]
        assert bad == [], bad[:3]
        text = out.read_text(encoding="utf-8")
        assert "UniqueViolation" not in text and "IntegrityError" not in text and "Traceback" not in text
    processed = [sum(1 for e in evs if e["event"] == "document.done") for evs in all_events]
    assert sum(processed) == expected_docs  # each document processed by exactly one of them
    attempts = [sum(1 for e in evs if e["event"] == "document.failed") for evs in all_events]
    busy = [sum(1 for e in evs if e["event"] in ("epuap.busy", "scan.busy")) for evs in all_events]
    print(f"\nFIGURES two-daemons: documents={expected_docs} processed_by={processed} failed={attempts} "
          f"skipped_busy_passes={busy} deliveries={[server.mailboxes[a].deliveries for a in MAILBOXES]}")


def test_two_scan_commands_at_once_never_error_or_quarantine_a_stored_pair(db_url, tmp_path, write_config):
    keys = devkeys.ensure(tmp_path / "keys")
    server = double.serve("127.0.0.1", 0, None, keys, mailboxes=list(MAILBOXES))
    cfg = daemon_config(write_config, server, keys)
    inbox = tmp_path / "scans/inbox"
    inbox.mkdir(parents=True)
    env = dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)
    subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(cfg), "db", "upgrade"], env=env, check=True, capture_output=True)
    try:
        for _round in range(3):
            for f in (DEMO / "scans").iterdir():
                shutil.copy(f, inbox / f.name)
            procs = [subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "scan"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
            results = [p.communicate(timeout=120) for p in procs]
            assert [p.returncode for p in procs] == [0, 0], results
            for out, err in results:
                assert "błędy 0" in out and "w kwarantannie 0" in out, out
                logged = [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]
                assert not [e for e in logged if e["level"] in ("ERROR", "CRITICAL")]
            assert list(inbox.iterdir()) == []
    finally:
        server.shutdown()
    assert list((tmp_path / "scans/quarantine").iterdir()) == []
    assert len(list((tmp_path / "scans/archive").iterdir())) == 6  # three rounds, the later copies numbered
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(worker_document)).scalar_one() == 1
    engine.dispose()
