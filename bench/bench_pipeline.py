"""Benchmark: documents per second end to end and for ``reprocess``, against the floor
measured in the same run, with the peak memory of the worker. Not a test: it prints figures.

    .venv/bin/python bench/bench_pipeline.py [--documents 1000] [--database sqlite|pg|URL]
        [--processes 1] [--cores 2] [--floor-sample 100] [--json out.json] [--profile out.prof]

* **corpus** (``bench/corpus.py``): DO-1/2025 declarations, 1–4 per property (first
  declaration, changes, corrections), every one signed separately (distinct signature
  values), cached under ``/tmp/ebok-bench-corpus``.
* **end to end**: the documents are stored through the durable intake (timed, reported
  separately), then ``ebok-worker process`` runs in ``--processes`` subprocesses on the same
  database until nothing is pending: stored → checked → loaded, committed. docs/s = documents
  ÷ wall time of that phase.
* **reprocess**: ``ebok-worker reprocess --channel EPUAP`` over every stored document (its
  summary line; ``--json`` holds every document's line in one answer, so its memory grows
  with the selection by design).
* **startup**: one ``ebok-worker process`` run on the empty queue before the intake — the
  fixed cost (interpreter, imports, configuration, pool) inside every end-to-end figure.
* **floor**: the essential library work per document — safe parse, lxml XSD validation of
  the signed content, signxml XAdES verification, one committed insert into the same
  database — timed on ``--floor-sample`` documents in this process (one core), then × ``--cores``.
  The floor is measured before each phase and after the last one; a phase's ratio uses the
  mean of the two floors around it (the disk's commit latency drifts on a shared machine).
* **scaling** (not part of the ratio): the floor's parse + signature + XSD timed alone and
  in ``--cores`` processes at once (at the start and at the end): how far this machine
  itself gets from one core to all of them — the ratio a pipeline that did nothing but the
  floor's work could reach here.
* **ratio** = docs/s ÷ floor; **peak RSS**: the largest resident set of a worker subprocess
  (``getrusage(RUSAGE_CHILDREN)``), so the benchmark's own memory is not counted.
* **CPU ms per document** of the worker subprocesses (user + system, ``RUSAGE_CHILDREN``)
  next to the floor's CPU ms per document: unlike wall time, it does not move with the
  fsync latency of a disk shared with others, so it is the figure to compare levers that
  save CPU.

``--database pg`` creates a private database ``ebok_bench_<pid>`` on
``postgresql+psycopg://postgres@127.0.0.1:5432`` (``$EBOK_BENCH_PG``) and drops it at the
end. ``--profile FILE`` runs the ``process`` phase in this process under cProfile instead
(and prints the top functions and the SQL statements per document).
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import corpus as corpus_mod  # noqa: E402
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, create_engine, event, text  # noqa: E402

from worker import config as config_mod  # noqa: E402
from worker.app import App  # noqa: E402

PG_SERVER = os.environ.get("EBOK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


# -- database ---------------------------------------------------------------------------


class Database:
    def __init__(self, spec: str, tmp: Path) -> None:
        self.private = None
        if spec == "sqlite":
            self.url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        elif spec == "pg":
            self.private = f"ebok_bench_{os.getpid()}"
            admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.private}"'))
                c.execute(text(f'CREATE DATABASE "{self.private}"'))
            admin.dispose()
            self.url = f"{PG_SERVER}/{self.private}"
        else:
            self.url = spec

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def drop(self) -> None:
        if self.private:
            admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.private}" WITH (FORCE)'))
            admin.dispose()


def write_config(tmp: Path, url: str, anchors: Path, seal: Path, processing: str = "") -> Path:
    path = tmp / "config.toml"
    path.write_text(
        f"""[database]
url = "{url}"
[storage]
path = "{tmp / 'documents'}"
[signatures]
trust_anchors = "{anchors}"
trusted_profile_seals = ["{seal}"]
[payments]
bank_branch = "10901014"
account_prefix = "4000"
[logging]
format = "json"
level = "INFO"
"""
        + (f"[processing]\n{processing}" if processing else "")
    )
    return path


# -- floor ------------------------------------------------------------------------------


def measure_floor(app: App, corpus: corpus_mod.Corpus, sample: int, *, insert: bool = True, offset: int = 0) -> dict:
    """Seconds per document of the essential library work, on one core (``insert``: with
    the committed insert; ``offset``: the first document of the sample)."""
    from cryptography import x509

    from worker.forms.registry import DEFAULT_REGISTRY
    from worker.forms.safe_xml import parse_untrusted
    from worker.signatures import xades
    from worker.signatures.verify import _strip_signatures

    seal = x509.load_pem_x509_certificate(corpus.seal.read_bytes())
    md = MetaData()
    table = Table("bench_floor", md, Column("id", Integer, primary_key=True), Column("sha", String(64)), Column("body", LargeBinary))
    if insert:
        md.create_all(app.engine)
    n = min(sample, len(corpus.documents) - offset)
    raws = [corpus.raw(offset + i) for i in range(n)]
    spec = None
    parts = {"parse": 0.0, "xsd": 0.0, "signature": 0.0, "insert": 0.0}
    cpu0 = time.process_time()
    for raw in raws:
        t0 = time.perf_counter()
        root = parse_untrusted(raw, max_bytes=10 * 1024 * 1024)
        t1 = time.perf_counter()
        sigs = xades.signature_elements(root)
        res = xades.verify_crypto(raw, 0, seal)
        content = _strip_signatures(res.document_root)
        t2 = time.perf_counter()
        if spec is None:
            spec = DEFAULT_REGISTRY.identify(content)
        ok = spec.lxml_schema().validate(content)
        t3 = time.perf_counter()
        if insert:
            with app.engine.begin() as conn:
                conn.execute(table.insert().values(sha=hashlib.sha256(raw).hexdigest(), body=raw[:256]))
        t4 = time.perf_counter()
        assert sigs and ok, "the floor sample must be valid documents"
        parts["parse"] += t1 - t0
        parts["signature"] += t2 - t1
        parts["xsd"] += t3 - t2
        parts["insert"] += t4 - t3
    cpu = (time.process_time() - cpu0) / n
    if insert:
        md.drop_all(app.engine)
    per_doc = sum(parts.values()) / n
    return {"sample": n, "ms_per_document": round(per_doc * 1000, 3), "cpu_ms_per_document": round(cpu * 1000, 3),
            "ms_parts": {k: round(v / n * 1000, 3) for k, v in parts.items()}}


_SCALING: dict = {}


def _floor_cpu_part(k: int) -> float:
    """ms per document of the floor's parse + signature + XSD, in a forked process."""
    app, corpus, sample = _SCALING["args"]
    return measure_floor(app, corpus, sample, insert=False, offset=k * sample)["ms_per_document"]


def floor_scaling(app: App, corpus: corpus_mod.Corpus, sample: int, cores: int) -> dict:
    """How this machine scales the floor's own CPU work (parse, signature, XSD; no insert,
    so no database lock) from one core to ``cores`` processes at once: the ratio a perfect
    pipeline could reach here if its only cost were the floor's work. Not part of the
    ratio: it tells how much of the gap to 1.0 is the machine's."""
    import multiprocessing

    alone = [measure_floor(app, corpus, sample, insert=False, offset=k * sample)["ms_per_document"] for k in range(cores)]
    _SCALING["args"] = (app, corpus, sample)
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        together = pool.map(_floor_cpu_part, range(cores))
    single = sum(alone) / len(alone)
    return {"alone_ms": round(single, 3), "together_ms": [round(t, 3) for t in together],
            "scaling": round(sum(single / t for t in together) / cores, 3)}


# -- phases -----------------------------------------------------------------------------


def store_all(app: App, corpus: corpus_mod.Corpus) -> float:
    t0 = time.perf_counter()
    for n in range(len(corpus.documents)):
        box = "/czysty_region/deklaracje"
        app.intake.store(channel="EPUAP", source_ref=f"{box}#{n}", raw=corpus.raw(n), filed_at=corpus.filed_at(n),
                         metadata={"czyTestowe": False}, mailbox=box)
    return time.perf_counter() - t0


def run_workers(config: Path, argv: list[str], processes: int, log: Path) -> tuple[float, list[int], list[str]]:
    """Start ``processes`` worker subprocesses with ``argv``; wall time, exit codes, outputs."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    procs = []
    for k in range(processes):
        out = open(log.with_suffix(f".{k}.log"), "wb")
        procs.append((subprocess.Popen([sys.executable, "-m", "worker", *argv, "--config", str(config)],
                                       stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT)), out))
    codes = []
    sampler = RssSampler([p.pid for p, _ in procs])
    sampler.start()
    for p, out in procs:
        codes.append(p.wait())
        out.close()
    dt = time.perf_counter() - t0
    sampler.stop()
    SAMPLED[argv[0]] = sampler.peaks
    outputs = [log.with_suffix(f".{k}.log").read_text(errors="replace") for k in range(processes)]
    return dt, codes, outputs


SAMPLED: dict[str, dict[str, float]] = {}


class RssSampler(threading.Thread):
    """Samples the resident set of the worker processes and of their pool processes
    (``/proc``, every 20 ms): which of them the peak belongs to, and when."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peaks: dict[str, float] = {"worker_mb": 0.0, "pool_mb": 0.0}
        self._stop_event = threading.Event()

    @staticmethod
    def _rss_mb(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as fh:
                return [int(x) for x in fh.read().split()]
        except OSError:
            return []

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            for pid in self.pids:
                self.peaks["worker_mb"] = max(self.peaks["worker_mb"], self._rss_mb(pid))
                for child in self._children(pid):
                    self.peaks["pool_mb"] = max(self.peaks["pool_mb"], self._rss_mb(child))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def outcomes(app: App) -> dict:
    with app.engine.connect() as conn:
        rows = conn.execute(text("SELECT state, outcome, count(*) FROM worker_document GROUP BY state, outcome")).all()
    return {f"{s}/{o}": n for s, o, n in rows}


def events(outputs: list[str]) -> dict:
    counts: dict[str, int] = {}
    for out in outputs:
        for line in out.splitlines():
            try:
                ev = json.loads(line).get("event")
            except ValueError:
                continue
            counts[ev] = counts.get(ev, 0) + 1
    return counts


def profile_process(app: App, path: Path, n: int) -> dict:
    import cProfile
    import io
    import pstats

    statements = [0]

    @event.listens_for(app.engine, "before_cursor_execute")
    def _count(*_a, **_k):  # noqa: ANN002, ANN003
        statements[0] += 1

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    report = app.processor.run_pending()
    prof.disable()
    dt = time.perf_counter() - t0
    prof.dump_stats(str(path))
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(45)
    print(buf.getvalue())
    return {"seconds": round(dt, 2), "documents_per_s": round(n / dt, 1), "statements_per_document": round(statements[0] / n, 1),
            "outcomes": dict(report.outcomes), "failed": report.failed}


# -- main -------------------------------------------------------------------------------


def versions(db: Database, app: App) -> dict:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "nproc": os.cpu_count()}
    if db.kind == "postgresql":
        with app.engine.connect() as conn:
            out["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", type=int, default=1000)
    ap.add_argument("--database", default="sqlite", help="sqlite (temporary file), pg (private database), or a SQLAlchemy URL")
    ap.add_argument("--processes", type=int, default=1, help="worker processes sharing the database (PostgreSQL for > 1)")
    ap.add_argument("--cores", type=int, default=2, help="cores the floor is scaled to (the issue's machine: 2)")
    ap.add_argument("--floor-sample", type=int, default=100)
    ap.add_argument("--skip-reprocess", action="store_true")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--profile", type=Path, help="profile the process phase in this process (cProfile) instead of subprocesses")
    ap.add_argument("--label", default="", help="a name for this run in the JSON (e.g. baseline)")
    ap.add_argument("--workers", type=int, default=0, help="[processing] workers: the processes sharing each command's work (0: the default, the cores)")
    ap.add_argument("--batch-size", type=int, default=0, help="[processing] batch_size (0: the default)")
    args = ap.parse_args()

    corpus = corpus_mod.load(args.documents)
    # the worker as installed (pip compiles the modules it installs): its subprocesses read
    # compiled modules instead of compiling ~100 of them at every start when the
    # environment says PYTHONDONTWRITEBYTECODE
    for package in ("worker", "adapters", "rules"):
        compileall.compile_dir(ROOT / package, quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="ebok-bench-"))
    db = Database(args.database, tmp)
    try:
        processing = "".join(f"{k} = {v}\n" for k, v in (("workers", args.workers), ("batch_size", args.batch_size)) if v)
        config = write_config(tmp, db.url, corpus.anchors, corpus.seal, processing)
        app = App(config_mod.load(config))
        app.upgrade_db()
        n = len(corpus.documents)
        res: dict = {"label": args.label, "database": db.kind, "documents": n, "processes": args.processes,
                     "cores": args.cores, "signing_s": round(corpus.signing_s, 1), "versions": versions(db, app)}

        floors = []

        def floor_now() -> float:
            f = measure_floor(app, corpus, args.floor_sample)
            f["documents_per_s"] = round(args.cores * 1000 / f["ms_per_document"], 1)
            floors.append(f)
            return f["documents_per_s"]

        floor_now()
        res["floors"] = floors
        res["floor_scaling"] = [floor_scaling(app, corpus, args.floor_sample, args.cores)]

        # the fixed cost of one `process` run (interpreter, imports, configuration, pool),
        # on the empty queue: part of every end-to-end figure below
        dt, codes, _ = run_workers(config, ["process"], 1, tmp / "startup")
        res["startup"] = {"seconds": round(dt, 2), "exit_codes": codes}

        t_store = store_all(app, corpus)
        res["intake"] = {"seconds": round(t_store, 2), "documents_per_s": round(n / t_store, 1)}

        def phase(argv: list[str], processes: int, name: str) -> tuple[dict, list[str]]:
            """One timed run of the worker's command, with the floor measured after it."""
            cpu0 = children_cpu_s()
            dt, codes, outs = run_workers(config, argv, processes, tmp / name)
            cpu = (children_cpu_s() - cpu0) / n
            floor_rate = (floors[-1]["documents_per_s"] + floor_now()) / 2
            rate = n / dt
            return {"seconds": round(dt, 2), "documents_per_s": round(rate, 1), "floor": round(floor_rate, 1),
                    "ratio": round(rate / floor_rate, 3), "cpu_ms_per_document": round(cpu * 1000, 2),
                    "peak_rss_mb": round(children_peak_rss_mb(), 1), "sampled_rss_mb": SAMPLED.get(argv[0]),
                    "exit_codes": codes}, outs

        if args.profile:
            res["profile"] = profile_process(app, args.profile, n)
            res["end_to_end"] = {"documents_per_s": res["profile"]["documents_per_s"], "profiled": True}
        else:
            res["end_to_end"], outs = phase(["process"], args.processes, "process")
            res["end_to_end"]["log_events"] = events(outs)
        res["outcomes_after_process"] = outcomes(app)

        if not args.skip_reprocess and not args.profile:
            res["reprocess"], _ = phase(["reprocess", "--channel", "EPUAP"], 1, "reprocess")
            res["outcomes_after_reprocess"] = outcomes(app)
        res["floor_scaling"].append(floor_scaling(app, corpus, args.floor_sample, args.cores))
        app.engine.dispose()
    finally:
        db.drop()

    print(f"{db.kind}, {n} documents, {args.processes} process(es); corpus signing {corpus.signing_s:.1f} s (0 = cached)")
    for f in res["floors"]:
        print(f"floor:       {f['documents_per_s']:8.1f} documents/s ({f['ms_per_document']:.2f} ms/document/core × {args.cores}, "
              f"CPU {f['cpu_ms_per_document']:.2f} ms; {f['ms_parts']})")
    for f in res["floor_scaling"]:
        print(f"scaling:     {f['scaling']:8.3f} (the floor's parse + signature + XSD: {f['alone_ms']:.2f} ms/document alone, "
              f"{f['together_ms']} in {args.cores} processes at once)")
    print(f"startup:     {res['startup']['seconds']:8.2f} s (one `process` run on the empty queue, exit {res['startup']['exit_codes']})")
    print(f"intake:      {res['intake']['documents_per_s']:8.1f} documents/s")
    for phase in ("end_to_end", "reprocess"):
        r = res.get(phase)
        if r and "ratio" in r:
            print(f"{phase + ':':12} {r['documents_per_s']:8.1f} documents/s  floor {r['floor']:.1f}  ratio {r['ratio']:.3f}  "
                  f"CPU {r['cpu_ms_per_document']:.1f} ms/document  peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(sampled: worker {r['sampled_rss_mb']['worker_mb']:.0f}, pool {r['sampled_rss_mb']['pool_mb']:.0f})  exit {r['exit_codes']}")
    print(f"outcomes: {res['outcomes_after_process']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
