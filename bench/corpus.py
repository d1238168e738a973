"""A realistic signed corpus for the benchmarks: DO-1/2025 declarations, several per
property (a first declaration, then changes and corrections), one declarant per property,
every document signed separately by ``xmlsec1`` with the test PKI (Profil Zaufany seal),
so no two documents share a ``ds:SignatureValue``.

Signing is the slow part (one ``xmlsec1`` run per document), so it runs in threads (the
subprocesses use the cores) and the result is cached under ``/tmp`` keyed by the
parameters: the folder holds the trust files of the PKI that signed it, the documents and
``corpus.json`` (filing time, property, purpose of each).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sigtools import xmlsig  # noqa: E402
from tests.sigtools.pki import Person, TestPKI, make_pesel  # noqa: E402

CORPUS_VERSION = 2  # bump when the generated documents change
CACHE = Path(os.environ.get("EBOK_BENCH_CACHE", "/tmp/ebok-bench-corpus"))

FIRST = ["Anna", "Piotr", "Katarzyna", "Tomasz", "Magdalena", "Krzysztof", "Agnieszka", "Paweł", "Ewa", "Michał"]
LAST = ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Szymański", "Dąbrowski", "Kozłowski"]
STREETS = ["Krapkowicka", "Opolska", "Szkolna", "Ogrodowa", "Leśna", "Polna", "Kościelna", "Słoneczna"]
# purposes of the successive declarations of one property
SEQUENCE = ["PIERWSZA", "NOWA", "KOREKTA", "NOWA", "KOREKTA"]


@dataclass(frozen=True)
class Corpus:
    folder: Path
    anchors: Path
    seal: Path
    documents: list[dict]  # {"file", "filed_at", "property", "purpose"}
    signing_s: float  # 0 when taken from the cache

    def raw(self, i: int) -> bytes:
        return (self.folder / "docs" / self.documents[i]["file"]).read_bytes()

    def filed_at(self, i: int) -> datetime:
        return datetime.fromisoformat(self.documents[i]["filed_at"])


def _person(k: int) -> Person:
    born = date(1950 + k % 50, 1 + k % 12, 1 + k % 28)
    female = k % 2 == 0
    first = FIRST[k % len(FIRST)]
    last = LAST[(k // len(FIRST)) % len(LAST)]
    if female and last.endswith("ski"):
        last = last[:-1] + "a"
    return Person(first, last, make_pesel(born, k % 1000, female), born)


def plan(documents: int) -> list[dict]:
    """Which declaration each document is: properties get 1–5 declarations (2.5 on
    average: round robin over 1, 2, 3, 4, 5… cut at ``documents``), in filing order."""
    out: list[dict] = []
    prop = 0
    while len(out) < documents:
        n = 1 + prop % 4
        for j in range(n):
            if len(out) == documents:
                break
            residents = 1 + (prop + j) % 5
            filed = datetime(2025, 1, 6, 8, tzinfo=UTC) + timedelta(days=20 * j, minutes=prop % 600)
            applies = (filed.date().replace(day=1) if SEQUENCE[j] != "KOREKTA" else
                       (filed - timedelta(days=20)).date().replace(day=1))  # a correction of the previous one
            out.append({"property": prop, "seq": j, "purpose": SEQUENCE[j], "residents": residents,
                        "filed_at": filed.isoformat(), "applies": applies.isoformat()})
        prop += 1
    # arrival order: by filing time (several properties interleaved)
    out.sort(key=lambda d: (d["filed_at"], d["property"]))
    return out


def _document(item: dict) -> str:
    return xmlsig.declaration_at(
        _person(item["property"]), street=STREETS[item["property"] % len(STREETS)], building=str(item["property"] // len(STREETS) + 1),
        purpose=item["purpose"], applies=item["applies"], residents=item["residents"], created=item["filed_at"][:10],
    )


def load(documents: int, *, workers: int | None = None, refresh: bool = False) -> Corpus:
    """The corpus of ``documents`` documents: from the cache, or signed now."""
    key = hashlib.sha256(json.dumps({"v": CORPUS_VERSION, "n": documents}).encode()).hexdigest()[:16]
    folder = CACHE / f"do1-{documents}-{key}"
    index = folder / "corpus.json"
    if refresh and folder.exists():
        shutil.rmtree(folder)
    if index.exists():
        docs = json.loads(index.read_text())
        return Corpus(folder, folder / "trust" / "anchors.pem", folder / "trust" / "pz-seal.pem", docs, 0.0)

    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "docs").mkdir(parents=True)
    pki = TestPKI()
    pki.write_trust(tmp / "trust")
    items = plan(documents)

    def sign(n: int) -> None:
        item = items[n]
        filed = datetime.fromisoformat(item["filed_at"])
        who = _person(item["property"])
        raw = xmlsig.sign(_document(item), xmlsig.pz_signature(pki.seal, filed - timedelta(minutes=5), xmlsig.ep_signature(who)), pki.seal)
        name = f"{n:06d}.xml"
        (tmp / "docs" / name).write_bytes(raw)
        item["file"] = name

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(sign, range(len(items))))
    signing = time.perf_counter() - t0
    (tmp / "corpus.json").write_text(json.dumps(items))
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(folder)
    except OSError:  # another run cached it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        return load(documents)
    return Corpus(folder, folder / "trust" / "anchors.pem", folder / "trust" / "pz-seal.pem", items, signing)
