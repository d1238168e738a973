"""What the trust checks of issue #22 cost per signature: ``verify_document`` of qualified
declarations (signed by ``xmlsec1`` with the online test PKI of ``tests/sigtools/online.py``,
its OCSP responder, CRLs and a trusted list served on 127.0.0.1), in four configurations:

* ``anchors``: trust anchors only, revocation off (what the worker did before);
* ``lists``: the qualified CA from a verified trusted list (path to a listed CA/QC service,
  the qualification at the filing time);
* ``lists+revocation``: and revocation fetched — warm (the answers in this process's memory),
  cold cache (every process's first document: the answer read from the disk cache and
  judged), and fetched (the responder asked over HTTP).

Usage: ``.venv/bin/python bench/bench_trust.py [--documents 200]``. Prints milliseconds per
signature (median of the runs). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sigtools import xmlsig  # noqa: E402
from tests.sigtools.online import FILED, SIGNED, OnlinePKI, TrustServer  # noqa: E402
from tests.sigtools.pki import ALICJA  # noqa: E402
from tests.sigtools.tl import GRANTED, Service, national_tl, sign_list  # noqa: E402
from worker.signatures import TrustConfig, verify_document  # noqa: E402
from worker.signatures.fetch import Fetcher  # noqa: E402
from worker.signatures.revocation import RevocationConfig, RevocationFetcher  # noqa: E402
from worker.signatures.trusted_lists import TrustedListConfig, TrustedLists, update  # noqa: E402


def per_signature(trust_factory, doc: bytes, n: int, fresh_each: bool = False) -> float:
    times = []
    trust = trust_factory()
    verify_document(doc, trust, filed_at=FILED)  # warm-up: imports, the path cache
    for _ in range(n):
        if fresh_each:
            trust = trust_factory()
        t = time.perf_counter()
        r = verify_document(doc, trust, filed_at=FILED)
        times.append(time.perf_counter() - t)
        assert r.status == "VALID", r.evidence["reason"]
    return statistics.median(times) * 1000


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--documents", type=int, default=200)
    args = p.parse_args()
    server = TrustServer()
    online = OnlinePKI(server)
    tmp = Path(tempfile.mkdtemp(prefix="bench-trust-"))
    now = datetime.now(UTC)
    tl_url = server.serve("/tl/pl.xml", sign_list(national_tl("PL", 1, now, now + timedelta(days=30),
                                                              [Service("Q", online.qca.ca, GRANTED, datetime(2020, 1, 1, tzinfo=UTC))]),
                                                  online.tl_signer, now))  # fmt: skip
    lists_cfg = TrustedListConfig(sources=(tl_url,), signers=(online.tl_signer.cert,), cache=tmp)
    update(lists_cfg)
    doc = xmlsig.sign(xmlsig.declaration(ALICJA), xmlsig.qualified_signature(online.good, SIGNED), online.good)
    base = TrustConfig(anchors=(online.root.cert,))
    lists = TrustedLists(lists_cfg)
    fetch_cfg = RevocationConfig(cache=tmp, fetcher=Fetcher(timeout_s=5))
    shared_fetcher = RevocationFetcher(fetch_cfg)

    def with_lists(**kw):
        return TrustConfig(anchors=(online.root.cert,), trusted_lists=lists, **kw)

    rows = [
        ("anchors (revocation off)", per_signature(lambda: base, doc, args.documents)),
        ("lists (revocation off)", per_signature(with_lists, doc, args.documents)),
        ("lists + revocation, warm", per_signature(lambda: with_lists(revocation="required", revocation_fetcher=shared_fetcher), doc, args.documents)),
        ("lists + revocation, disk cache", per_signature(
            lambda: with_lists(revocation="required", revocation_fetcher=RevocationFetcher(fetch_cfg)), doc, args.documents, fresh_each=True)),
    ]
    cold_runs = []
    for _ in range(max(5, args.documents // 20)):
        cfg = RevocationConfig(cache=Path(tempfile.mkdtemp(prefix="bench-trust-cold-")), fetcher=Fetcher(timeout_s=5))
        trust = with_lists(revocation="required", revocation_fetcher=RevocationFetcher(cfg))
        t = time.perf_counter()
        assert verify_document(doc, trust, filed_at=FILED).status == "VALID"
        cold_runs.append(time.perf_counter() - t)
    rows.append(("lists + revocation, fetched over HTTP", statistics.median(cold_runs) * 1000))
    server.stop()
    for name, ms in rows:
        print(f"{name:40s} {ms:8.2f} ms/signature")
    return 0


if __name__ == "__main__":
    sys.exit(main())
