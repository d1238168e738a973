"""Benchmark: documents per second pulled from the ePUAP double, against the protocol bound.

The double adds ``--latency-ms`` (default 20) before every SOAP answer. ePUAP returns the head
of the queue until it is confirmed, so a document costs two sequential round trips
(``pobierzNastepny`` + ``potwierdzOdebranie``): the bound is 1/(2·RTT) documents per second per
mailbox. RTT is measured here too (``oczekujaceDokumenty`` round trips, signed and verified
like every call), so the bound printed is the one for this machine, not only the ideal
1/(2·latency).

    .venv/bin/python bench/bench_epuap_pull.py [--documents 60] [--latency-ms 20] [--sink memory|sqlite]

The double runs in its own process (as ePUAP would be remote), so its CPU time does not
compete with the client's for one interpreter. ``--sink sqlite`` stores into the real durable intake (SQLite + files, fsync'd) instead of a
dictionary, to see the store's share.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.epuap import devkeys, double  # noqa: E402
from adapters.epuap.client import PullClient  # noqa: E402
from adapters.epuap.pull import pull_mailboxes  # noqa: E402
from worker.config import EpuapConfig, Mailbox  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "spec" / "samples" / "signed"


@dataclass(frozen=True)
class _Stored:
    document_id: int
    created: bool


class MemorySink:
    def __init__(self) -> None:
        self.docs: dict[str, int] = {}

    def store(self, *, channel, source_ref, raw, filed_at, metadata, mailbox=None):  # noqa: ANN001
        if source_ref in self.docs:
            return _Stored(self.docs[source_ref], False)
        self.docs[source_ref] = len(self.docs) + 1
        return _Stored(self.docs[source_ref], True)

    def record_pull(self, mailbox, at, error=None, **_kw):  # noqa: ANN001, ANN003
        pass


def _sqlite_sink(tmp: Path):
    from adapters.db.migrate import make_engine, upgrade
    from adapters.storage import DocumentStore
    from worker.intake import Intake

    engine = make_engine(f"sqlite:///{tmp / 'bench.sqlite3'}")
    upgrade(engine)
    return Intake(engine, DocumentStore(tmp / "documents"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--documents", type=int, default=60)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--sink", choices=("memory", "sqlite"), default="memory")
    p.add_argument("--rtt-samples", type=int, default=20)
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-epuap-"))
    keys = devkeys.ensure(tmp / "keys")
    box = Mailbox("czystyregion", "deklaracje")
    queue = tmp / "queue" / box.podmiot / box.skrytka
    queue.mkdir(parents=True)
    samples = sorted(SAMPLES.glob("*.xml"))
    for i in range(args.documents):
        base = samples[i % len(samples)].read_bytes() if samples else b"<dokument/>"
        (queue / f"doc-{i:04d}.xml").write_bytes(base + f"\n<!-- {i} -->".encode())
    with socket.socket() as probe:  # a free port for the double
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-c", "import sys; from adapters.epuap.double import main; sys.exit(main(sys.argv[1:]))",
           "--port", str(port), "--keys", str(tmp / "keys"), "--queue-dir", str(tmp / "queue"),
           "--latency-ms", str(args.latency_ms)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}{double.PATH}"
    cfg = EpuapConfig(
        enabled=True, endpoint=url, certificate=keys.system_certificate, private_key=keys.system_key,
        response_certificate=keys.double_certificate, timeout_s=30, batch_limit=args.documents + 10, mailboxes=(box,),
    )
    try:
        for _ in range(200):  # wait until it answers
            try:
                if requests.get(url + "?wsdl", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        with PullClient.from_config(cfg, password=keys.system_key_password) as client:
            client.count(box)  # warm-up: connection, first-call costs
            rtts = []
            for _ in range(args.rtt_samples):
                t = time.perf_counter()
                client.count(box)
                rtts.append(time.perf_counter() - t)
        rtt = statistics.median(rtts)
        sink = MemorySink() if args.sink == "memory" else _sqlite_sink(tmp)
        started = time.perf_counter()
        (report,) = pull_mailboxes(cfg, sink, password=keys.system_key_password)
        elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    assert report.ok and report.confirmed == args.documents, report.as_dict()
    rate = report.confirmed / elapsed
    bound_measured = 1 / (2 * rtt)
    bound_ideal = 1 / (2 * args.latency_ms / 1000) if args.latency_ms else float("inf")
    print(f"documents pulled          : {report.confirmed} (sink: {args.sink}, injected latency {args.latency_ms:.0f} ms)")
    print(f"pass duration             : {elapsed:.3f} s (includes building the zeep client once)")
    print(f"throughput                : {rate:.2f} documents/s")
    print(f"measured RTT (median)     : {rtt * 1000:.1f} ms  (signed request + verified response)")
    print(f"protocol bound 1/(2·RTT)  : {bound_measured:.2f} documents/s measured RTT; {bound_ideal:.2f} with RTT = latency")
    print(f"efficiency vs bound       : {rate / bound_measured:.0%} (measured RTT), {rate / bound_ideal:.0%} (ideal)")
    print(f"ePUAP round trips         : {report.round_trips} = {report.round_trips / report.confirmed:.3f} per document "
          f"(2 per document + 1 final empty fetch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
