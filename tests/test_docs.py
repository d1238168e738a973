"""The office's guide (docs/obsluga.md) covers what the worker can say: every finding code
and every alert of `status --monitor` has its entry."""

from __future__ import annotations

import re
from pathlib import Path

from worker import monitor
from worker.domain.findings import CODES

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "obsluga.md"


def test_every_finding_code_is_explained():
    text = GUIDE.read_text(encoding="utf-8")
    missing = [code for code in CODES if f"`{code}`" not in text]
    assert missing == []


def test_every_monitor_alert_has_a_runbook():
    text = GUIDE.read_text(encoding="utf-8")
    keys = set(re.findall(r'Problem\((?:CRITICAL|WARNING), "(\w+)"', Path(monitor.__file__).read_text(encoding="utf-8")))
    assert keys == {"mailbox_blocked", "mailbox_stale", "failed_parked", "pending_old", "review_queue", "scan_quarantine", "database_unreachable", "outbox_error",
                    "trusted_list_missing", "trusted_list_update_failed", "trusted_list_stale", "revocation_responder_failing",
                    "storage_error", "disk_full", "config_invalid", "daemon_stale"}
    for key in keys:
        assert re.search(rf"^### `{key}` — (CRITICAL|WARNING)", text, re.M), key


def test_readme_links_the_guide():
    readme = (GUIDE.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/obsluga.md" in readme
