"""Issue #20: what the worker creates holds personal data and is created without any access
for other users (``o-rwx``), also under the common umask of 022 — the SQLite database (and
its WAL), the stored documents, the lock files, the correspondence outbox (group-readable
only with ``correspondence.outbox_group_readable``), the scan folders and reason files.
They used to be 0644/0755. A real ``run --once`` in a process of its own, with the local
ePUAP double and a real scan inbox."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import epuap_env, epuap_section

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
SCANS = Path(__file__).parent / "data" / "scans"

pytestmark = pytest.mark.slow  # a real process with its own umask


def created(base: Path, skip: set[Path]) -> list[Path]:
    return [p for p in sorted(base.rglob("*")) if p not in skip and not any(parent in skip for parent in p.parents)]


@pytest.mark.parametrize("group_readable", [False, True])
def test_nothing_the_worker_creates_is_open_to_others(write_config, keys, epuap_double, tmp_path, group_readable):
    work = tmp_path / "var"  # everything the worker makes, and nothing else
    server = epuap_double(DEMO / "epuap")
    cfg = write_config(
        database={"url": f"sqlite:///{work / 'db' / 'ebok.sqlite3'}"},
        epuap=epuap_section(server, keys, "czystyregion/deklaracje", "czystyregion/korespondencja"),
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
        scans={"enabled": True, "inbox": str(tmp_path / "inbox"), "archive": str(work / "archive"), "quarantine": str(work / "quarantine")},
        correspondence={"outbox": str(work / "outbox"), "outbox_group_readable": group_readable},
        storage={"path": str(work / "documents")},
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("skan-2025-02-03-0001-0007.xml", "skan-2025-02-03-0001-0007.pdf"):
        shutil.copyfile(SCANS / name, inbox / name)
    # a second export whose image is missing for too long: quarantined with a reason file
    (inbox / "niepelny.xml").write_text((SCANS / "skan-2025-02-03-0001-0007.xml").read_text(encoding="utf-8")
                                        .replace('id="2025-02-03-0001-0007"', 'id="niepelny"')
                                        .replace('plik="skan-2025-02-03-0001-0007.pdf"', 'plik="niepelny.pdf"'), encoding="utf-8")
    os.utime(inbox / "niepelny.xml", (0, 0))
    moved_in = {work / "archive" / n for n in os.listdir(inbox)} | {work / "quarantine" / "niepelny.xml"}  # the station's files

    r = subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run", "--once"], capture_output=True, text=True,
                       env=epuap_env(keys), umask=0o022, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]

    paths = created(work, moved_in)
    names = {p.name for p in paths}
    assert {"ebok.sqlite3", "dokument.xml", "metadane.json", "niepelny.reason.txt"} <= names, sorted(names)
    assert any(n.endswith(".lock") for n in names), sorted(names)
    open_to_others = [(str(p.relative_to(work)), oct(p.stat().st_mode & 0o777)) for p in paths if p.stat().st_mode & 0o007]
    assert open_to_others == []
    outbox = work / "outbox"
    for p in [outbox, *outbox.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        if p.is_dir():
            assert mode == (0o750 if group_readable else 0o700), (p, oct(mode))
        else:
            assert mode == (0o640 if group_readable else 0o600), (p, oct(mode))
    for p in (work / "documents").rglob("*"):
        assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    assert stat.S_IMODE((work / "db" / "ebok.sqlite3").stat().st_mode) == 0o600
