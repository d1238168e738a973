"""Benchmark: attachments by reference downloaded from the ePUAP double's file repository.

Each file goes through what the pull does with it: ``downloadFile`` signed with the system
key, the answer's WS-Security signature verified against the pinned certificate, the base64
decoded by zeep, the bytes stored durably (fsync'd, content-addressed) with their note, and
the file recorded by fileId (SQLite). Prints MiB/s and this process's peak RSS, so the cost
of a big file (``epuap.filerepo_max_file_bytes``) is known before it arrives.

    .venv/bin/python bench/bench_filerepo.py [--files 5] [--mib 20]

The double runs in a thread of this process here (its signing shares the interpreter), so
the figure is a lower bound of the client's own speed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.db.migrate import make_engine, upgrade  # noqa: E402
from adapters.db.remote_files import RemoteFiles  # noqa: E402
from adapters.epuap import devkeys, double  # noqa: E402
from adapters.epuap.filerepo import FileRepoClient  # noqa: E402
from adapters.epuap.referenced import ReferencedFiles  # noqa: E402
from adapters.storage import DocumentStore  # noqa: E402
from worker.config import EpuapConfig  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=5)
    p.add_argument("--mib", type=float, default=20.0, help="size of each file")
    args = p.parse_args()
    size = int(args.mib * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keys = devkeys.ensure(root / "keys")
        server = double.serve("127.0.0.1", 0, None, keys, mailboxes=["/bench/skrytka"])
        try:
            ids = [f"BENCH-{i}" for i in range(args.files)]
            for i, file_id in enumerate(ids):
                server.add_file(file_id, b"%PDF-1.4\n" + os.urandom(size - 9) if i % 2 else b"%PDF-1.4\n" + bytes(size - 9))
            os.environ["BENCH_KEY_PASSWORD"] = keys.system_key_password
            cfg = EpuapConfig(enabled=True, endpoint=server.url, filerepo_endpoint=server.filerepo_url,
                              certificate=keys.system_certificate, private_key=keys.system_key,
                              private_key_password_env="BENCH_KEY_PASSWORD", response_certificate=keys.double_certificate,
                              timeout_s=300.0, filerepo_max_file_bytes=max(size, 1024 * 1024))
            engine = make_engine(f"sqlite:///{root / 'bench.sqlite3'}")
            upgrade(engine)
            fetcher = ReferencedFiles.for_config(cfg, RemoteFiles(engine), DocumentStore(root / "documents"),
                                                 lambda: FileRepoClient.for_config(cfg))
            fetcher.ledger.ensure(ids, "bench", None, fetcher.clock())  # linked by no stored document
            started = time.perf_counter()
            with fetcher:
                settled = fetcher.settle(0, "bench", ids)
            elapsed = time.perf_counter() - started
        finally:
            server.shutdown()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total_mib = args.files * size / (1024 * 1024)
    print(f"files: {args.files} × {args.mib:g} MiB, settled: {settled}, downloaded: {fetcher.report.downloaded}")
    print(f"time: {elapsed:.2f} s, {total_mib / elapsed:.1f} MiB/s, {elapsed / args.files:.2f} s per file")
    print(f"peak RSS (this process, the double included): {peak_mib:.0f} MiB")
    return 0 if settled and fetcher.report.downloaded == args.files else 1


if __name__ == "__main__":
    raise SystemExit(main())
