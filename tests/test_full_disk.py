"""A full disk, for real: a small tmpfs mounted for the test and filled to the last byte.

- The document storage on it: a pull stores nothing and confirms nothing; the mailbox is
  not "blocked" — the failure is the worker's own disk, named with its errno in Polish in
  the events, ``status`` and ``status --monitor``; once there is room again every document
  is taken in once.
- The SQLite database on it, the daemon running: one ``database.unavailable`` (reason
  ``disk_full``) and one ``database.available`` for the whole outage, however many passes
  it lasts; nothing lost, nothing twice.

Mounting needs root (or the capability); elsewhere the tests skip, saying so.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.db.migrate import make_engine, upgrade
from adapters.db.tables import worker_document
from adapters.epuap import devkeys, double
from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from worker import states

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
DEKL = "/czystyregion/deklaracje"

pytestmark = pytest.mark.slow  # a file system mounted for the test; the daemon in its own process


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (room for the SQLite database and its write-ahead log), unmounted afterwards."""
    where = tmp_path / "maly-dysk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the full-disk tests run where the suite runs as root, e.g. CI)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the disk refuses (ENOSPC), down to the last byte."""
    filler = folder / "wypelniacz.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_storage_on_a_full_disk_is_named_as_such_and_nothing_is_lost(small_disk, write_config, keys, epuap_double, tmp_path):
    server = epuap_double(DEMO / "epuap")
    expected = len(server.pending(DEKL))
    cfg = write_config(
        storage={"path": str(small_disk / "documents")},
        epuap=epuap_section(server, keys, DEKL.strip("/")),
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
        monitoring={"min_free_bytes": 65536},
    )
    env = epuap_env(keys)
    (small_disk / "documents").mkdir()
    filler = fill(small_disk)

    r = run_cli(cfg, "pull", env=env)
    assert r.returncode == 1
    failed = [e for e in events(r.stdout) if e["event"] == "epuap.store_failed"]
    assert failed and failed[0]["errno"] == errno.ENOSPC and failed[0]["error_kind"] == "storage"
    assert failed[0]["error_text"].startswith("errno 28: brak miejsca na dysku")
    assert not [e for e in events(r.stdout) if e["event"] == "epuap.mailbox_blocked"]
    assert server.confirmed(DEKL) == []  # nothing confirmed: ePUAP keeps every document
    assert [p for p in (small_disk / "documents").rglob("*") if p.is_file()] == []  # no half-written file left

    status = json.loads(run_cli(cfg, "status", "--json", env=env).stdout)
    (mb,) = status["mailboxes"]
    assert mb["error_kind"] == "storage" and mb["blocked_since"] is None and "errno 28: brak miejsca na dysku" in mb["last_error"]
    assert [d["keys"] for d in status["disks"] if d["full"]] == [["storage.path"]]
    line = run_cli(cfg, "status", "--monitor", env=env)
    assert line.returncode == 2
    assert f"skrytka {DEKL}: nie można przyjąć dokumentu na dysk workera: Nie udało się zapisać dokumentu z ePUAP: errno 28: brak miejsca na dysku" in line.stdout
    assert f"errno 28: brak miejsca na dysku: storage.path ({small_disk / 'documents'}): wolne " in line.stdout
    assert "zablokowana" not in line.stdout and "mailboxes_blocked=0;" in line.stdout and "disks_full=1;" in line.stdout

    filler.unlink()
    r = run_cli(cfg, "pull", env=env)
    assert r.returncode == 0, r.stderr
    assert len(server.confirmed(DEKL)) == expected and server.pending(DEKL) == []
    assert run_cli(cfg, "process", env=env).returncode == 0
    status = json.loads(run_cli(cfg, "status", "--json", env=env).stdout)
    assert status["queue"]["DONE"] == expected and status["mailboxes"][0]["error_kind"] is None
    assert status["counters"]["errors"]["storage"] == 1
    assert run_cli(cfg, "status", "--monitor", env=env).returncode == 0


@pytest.mark.parametrize("processing", ["busy", "idle"])
def test_the_sqlite_database_on_a_full_disk_is_one_outage(small_disk, write_config, tmp_path, processing):
    """``busy``: the processor meets the full disk too; ``idle`` (it runs once at start, then
    not for an hour): only the pull's store is refused — the outage is still one pair of
    events, not a failed store at every pass."""
    keys = devkeys.ensure(tmp_path / "keys")
    server = double.serve("127.0.0.1", 0, None, keys)
    letters = 60
    for i in range(letters):
        server.enqueue(DEKL, f"<Pismo><Tresc>Pismo nr {i}</Tresc></Pismo>".encode(), {}, f"pismo-{i:03d}.xml")
    url = f"sqlite:///{small_disk / 'ebok.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    cfg = write_config(
        database={"url": url},
        epuap=epuap_section(server, keys, DEKL.strip("/"), poll_interval_s=0.3, batch_limit=2, timeout_s=30),
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
        processing={"interval_s": 0.3 if processing == "busy" else 3600, "workers": 1},
        monitoring={"min_free_bytes": 65536},
    )
    env = dict(epuap_env(keys), PYTHONUNBUFFERED="1")
    out = tmp_path / "daemon.log"

    def count(cond=None) -> int:
        with engine.connect() as conn:
            q = select(func.count()).select_from(worker_document)
            return conn.execute(q.where(cond) if cond is not None else q).scalar_one()

    def wait_for(predicate, what, timeout=120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {out.read_text()[-3000:]}")

    def logged(name: str) -> list[dict]:
        return [e for e in events(out.read_text(encoding="utf-8")) if e["event"] == name]

    with open(out, "w") as fh:
        daemon = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        done = worker_document.c.state == states.DONE if processing == "busy" else None
        wait_for(lambda: count(done) >= 4, "the first letters stored (and processed)")
        filler = fill(small_disk)
        wait_for(lambda: logged("database.unavailable"), "database.unavailable")
        time.sleep(6)  # some twenty passes of every job while the disk is full
        assert daemon.poll() is None
        assert len(logged("database.unavailable")) == 1 and logged("database.available") == []
        (down,) = logged("database.unavailable")
        assert down["reason"] == "disk_full" and down["errno"] == errno.ENOSPC and down["error_text"] == "errno 28: brak miejsca na dysku"
        filler.unlink()
        wait_for(lambda: logged("database.available"), "database.available")
        wait_for(lambda: count(done) == letters and server.pending(DEKL) == [], "every letter", timeout=180)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=120) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        server.shutdown()
    assert len(logged("database.unavailable")) == 1 and len(logged("database.available")) == 1  # one pair for the outage
    assert count() == letters and len(server.confirmed(DEKL)) == letters  # nothing lost, nothing twice
    assert not [e for e in events(out.read_text(encoding="utf-8")) if e["event"] in ("job.failed", "cli.failed")]
    engine.dispose()
