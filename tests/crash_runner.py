"""Run intake or processing in a separate process and kill it (os._exit) at a named
checkpoint: the crash tests' way of stopping the worker "between any two steps".

    python tests/crash_runner.py DB_URL STORAGE ACTION [CHECKPOINT]

ACTION is ``store:<building>`` (store one test document), ``process`` or ``process-shared``
(two forked processes share the work, as the ``process`` command does; the checkpoint in
either of them kills the whole command with SIGKILL, and its processes with it).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import storage as storage_mod  # noqa: E402
from adapters.db.migrate import make_engine  # noqa: E402
from adapters.storage import DocumentStore  # noqa: E402
from tests.pipeline_doubles import make_processor  # noqa: E402
from worker import intake as intake_mod  # noqa: E402
from worker import processing  # noqa: E402
from worker.config import ProcessingConfig  # noqa: E402


def main(url: str, storage: str, action: str, checkpoint: str | None = None) -> int:
    command = os.getpid()

    def die(name: str) -> None:
        if name == checkpoint:
            if os.getpid() != command:  # a forked process of the command: the command is killed
                os.kill(command, signal.SIGKILL)
            os._exit(137)

    processing._checkpoint = die
    intake_mod._checkpoint = die
    storage_mod._checkpoint = die
    engine = make_engine(url)
    if action.startswith("store:"):
        building = action.split(":", 1)[1]
        raw = f"<t building='{building}'/>".encode()
        intake_mod.Intake(engine, DocumentStore(Path(storage))).store(
            channel="EPUAP", source_ref=f"/cr/dekl#{building}", raw=raw,
            filed_at=datetime(2025, 3, 5, tzinfo=UTC), metadata={}, mailbox="/cr/dekl",
        )
    elif action == "process-shared":
        proc = make_processor(engine, Path(storage), config=ProcessingConfig(workers=2, batch_size=1))
        proc.recover_stale()
        proc.run_pending_shared(2)
    else:
        proc = make_processor(engine, Path(storage))
        proc.recover_stale()
        proc.run_pending()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
