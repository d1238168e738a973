"""Benchmark: documents per second end to end (store → verify → check → load) and memory
at a large backlog. Not a test: it prints figures.

    .venv/bin/python bench/bench_pipeline.py [--documents 2000] [--distinct 200] [--database URL]

Documents are DO-1 2025 declarations signed by xmlsec1 with the test PKI (distinct
properties, one payer); ``--distinct`` of them are signed, the rest are copies of those
delivered through other mailboxes (so each is a separate document with the same cost).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sigtools import xmlsig  # noqa: E402
from tests.sigtools.pki import ALICJA, TestPKI  # noqa: E402
from worker import config as config_mod  # noqa: E402
from worker.app import App  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", type=int, default=2000)
    ap.add_argument("--distinct", type=int, default=200)
    ap.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ebok-bench-"))
    pki = TestPKI()
    anchors, seal = pki.write_trust(tmp / "trust")
    url = args.database or f"sqlite:///{tmp / 'bench.sqlite3'}"
    cfg = config_mod.from_dict(
        {"database": {"url": url}, "storage": {"path": str(tmp / "documents")},
         "signatures": {"trust_anchors": str(anchors), "trusted_profile_seals": [str(seal)]}},
        base=tmp,
    )
    app = App(cfg)
    app.upgrade_db()

    filed = datetime(2025, 3, 10, 9, tzinfo=UTC)
    t0 = time.perf_counter()
    signed = []
    for i in range(args.distinct):
        doc = xmlsig.declaration(ALICJA).replace("<adr:Budynek>12</adr:Budynek>", f"<adr:Budynek>{i + 1}</adr:Budynek>")
        signed.append(xmlsig.sign(doc, xmlsig.pz_signature(pki.seal, filed - timedelta(minutes=5), xmlsig.ep_signature(ALICJA)), pki.seal))
    t_sign = time.perf_counter() - t0

    t0 = time.perf_counter()
    for n in range(args.documents):
        raw = signed[n % args.distinct]
        box = f"/bench/box{n // args.distinct}"
        app.intake.store(channel="EPUAP", source_ref=f"{box}#{n}", raw=raw, filed_at=filed, metadata={"czyTestowe": False}, mailbox=box)
    t_store = time.perf_counter() - t0
    rss_after_store = rss_mb()

    t0 = time.perf_counter()
    report = app.processor.run_pending()
    t_proc = time.perf_counter() - t0

    n = args.documents
    print(f"database: {url.split(':', 1)[0]}, documents: {n} ({args.distinct} distinct signed; signing took {t_sign:.1f} s)")
    print(f"intake:     {n / t_store:8.1f} documents/s  ({t_store:.1f} s)")
    print(f"processing: {n / t_proc:8.1f} documents/s  ({t_proc:.1f} s; outcomes {dict(report.outcomes)}, failed {report.failed})")
    print(f"end to end: {n / (t_store + t_proc):8.1f} documents/s")
    print(f"peak RSS:   {rss_after_store:.0f} MB after storing the backlog, {rss_mb():.0f} MB after processing it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
