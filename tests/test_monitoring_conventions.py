"""The monitoring conventions (``spec/operations.md``, "Monitoring"): the Prometheus
textfile parsed with ``prometheus_client`` — counters that never go down (also across the
office's decision), gauges for what is now, no ``total`` label beside its parts,
``build_info``, the last pass of each job, errors by kind, written by ``run --once`` too —
and ``status --monitor`` against the monitoring plugin guidelines."""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import worker
from tests.clitools import run_cli
from worker import config as config_mod
from worker import monitor
from worker.app import App

DEMO_SCANS = Path(__file__).resolve().parent.parent / "demo" / "scans"


def families(path: Path) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(path.read_text(encoding="utf-8"))}


def samples(path: Path) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families(path).values() for s in f.samples}


@pytest.fixture
def office(write_config, tmp_path):
    cfg = write_config(
        scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"},
        monitoring={"metrics_file": "metrics/ebok_worker.prom", "pending_warn_s": 600, "metrics_stale_s": 600},
        processing={"workers": 1},
    )
    (tmp_path / "scans" / "inbox").mkdir(parents=True)
    for f in DEMO_SCANS.iterdir():
        shutil.copyfile(f, tmp_path / "scans" / "inbox" / f.name)
    return cfg


def test_run_once_writes_the_metrics_and_no_counter_decreases_across_a_review_decision(office, tmp_path):
    metrics = tmp_path / "metrics" / "ebok_worker.prom"
    before = time.time()
    r = run_cli(office, "run", "--once")
    assert r.returncode == 0, r.stderr
    fam = families(metrics)
    first = samples(metrics)
    # counters and gauges, each by its convention
    assert fam["ebok_worker_processed"].type == "counter" and fam["ebok_worker_errors"].type == "counter"
    assert fam["ebok_worker_documents_by_outcome"].type == "gauge" and fam["ebok_worker_declarations"].type == "gauge"
    assert first[("ebok_worker_processed_total", (("outcome", "NEEDS_REVIEW"),))] == 1
    assert first[("ebok_worker_documents_by_outcome", (("outcome", "NEEDS_REVIEW"),))] == 1
    assert {k[1][0][1] for k in first if k[0] == "ebok_worker_errors_total"} == {"processing", "epuap", "storage", "scan", "handover", "database", "trust"}
    assert first[("ebok_worker_build_info", (("version", worker.version()),))] == 1
    jobs = {dict(k[1])["job"]: v for k, v in first.items() if k[0] == "ebok_worker_last_pass_timestamp_seconds"}
    assert set(jobs) == {"scans.poll", "worker.process"} and all(before <= t <= time.time() for t in jobs.values())
    # no label value "total" beside its parts, anywhere
    assert not [k for k in first if any(v == "total" for _, v in k[1])]
    assert ("ebok_worker_correspondence", (("state", "pending"),)) in first

    # the office decides: the current count moves, the counter stays
    app = App(config_mod.load(office))
    from adapters.db import review as queue

    with app.engine.connect() as conn:
        (decl,) = queue.review_queue(conn)
    assert run_cli(office, "review", "accept", str(decl.id), "--note", "PESEL zgodny z formularzem.").returncode == 0
    monitor.Publisher(app).publish()
    second = samples(metrics)
    app.engine.dispose()
    for key, value in first.items():
        if key[0].endswith("_total"):
            assert second[key] >= value, key  # a counter never goes down; its series never vanishes
    assert second[("ebok_worker_processed_total", (("outcome", "NEEDS_REVIEW"),))] == 1
    assert second[("ebok_worker_documents_by_outcome", (("outcome", "ACCEPTED"),))] == 1
    assert ("ebok_worker_documents_by_outcome", (("outcome", "NEEDS_REVIEW"),)) not in second
    # a later pass by another process (this one) keeps the jobs it did not run
    assert {dict(k[1])["job"] for k in second if k[0] == "ebok_worker_last_pass_timestamp_seconds"} == {"scans.poll", "worker.process"}

    # reprocessing counts again: processed is what was done, not what is
    assert run_cli(office, "reprocess", "--declaration", str(decl.id)).returncode == 0
    app = App(config_mod.load(office))
    monitor.Publisher(app).publish()
    app.engine.dispose()
    third = samples(metrics)
    assert third[("ebok_worker_processed_total", (("outcome", "ACCEPTED"),))] == first.get(("ebok_worker_processed_total", (("outcome", "ACCEPTED"),)), 0) + 1


def test_technical_failures_are_counted_by_kind(office, tmp_path):
    assert run_cli(office, "scan").returncode == 0
    app = App(config_mod.load(office))
    with app.engine.connect() as conn:
        from sqlalchemy import select

        from adapters.db.tables import worker_document

        key = conn.execute(select(worker_document.c.storage_key)).scalar_one()
    (app.config.storage.path / key).write_bytes(b"zepsute")  # corrupt storage: a technical failure
    assert app.processor.run_pending().failed == 1
    monitor.Publisher(app).publish()
    app.engine.dispose()
    assert samples(tmp_path / "metrics" / "ebok_worker.prom")[("ebok_worker_errors_total", (("kind", "processing"),))] == 1


# --- status --monitor and the plugin guidelines ------------------------------------------------

PLUGIN_LINE = re.compile(r"^EBOK-WORKER (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+) \| (.+)$")
PERF_ITEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(-?\d+(?:\.\d+)?)(s|ms|us|%|B|KB|MB|TB|c)?;([0-9.:~@]*);([0-9.:~@]*);(-?[0-9.]*);?(-?[0-9.]*)$")
CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def alerts(value: float, threshold: str) -> bool:
    """The plugin guidelines' range: ``N`` is 0..N, ``N:`` N..∞, ``~:N`` -∞..N, ``N:M``, ``@``
    inverts; an alert when the value is outside the range."""
    if not threshold:
        return False
    inside = threshold.startswith("@")
    t = threshold.lstrip("@")
    low, _, high = t.rpartition(":") if ":" in t else ("0", ":", t)
    lo = float("-inf") if low == "~" else float(low or 0)
    hi = float(high) if high else float("inf")
    outside = value < lo or value > hi
    return not outside if inside else outside


def monitor_line(cfg, env=None) -> tuple[int, str, dict[str, tuple]]:
    r = run_cli(cfg, "status", "--monitor", env=env)
    assert r.stdout.count("\n") == 1 and r.stderr == ""
    m = PLUGIN_LINE.match(r.stdout.rstrip("\n"))
    assert m, r.stdout
    assert CODES[m.group(1)] == r.returncode
    perf = {}
    for item in m.group(3).split(" "):
        p = PERF_ITEM.match(item)
        assert p, item
        perf[p.group(1)] = (float(p.group(2)), p.group(3) or "", p.group(4), p.group(5))
    return r.returncode, m.group(2), perf


def test_status_monitor_follows_the_plugin_guidelines(office, tmp_path):
    assert run_cli(office, "run", "--once").returncode == 0  # a paper declaration to review, the metrics file
    code, text, perf = monitor_line(office)
    assert code == 1 and text.startswith("do weryfikacji: 1 deklaracja")
    # units where a value has one, thresholds as the evaluation uses them
    assert perf["oldest_pending_s"][1:3] == ("s", "600") and perf["metrics_age_s"][1] == "s" and perf["metrics_age_s"][3] == "600"
    assert perf["review_queue"][2] == "0" and perf["failed_parked"][3] == "0" and perf["mailboxes_stale"][3] == "0"
    # the thresholds say what the state says: an item alerts exactly when its check does
    warned = {k for k, (v, _, warn, _) in perf.items() if alerts(v, warn)}
    critical = {k for k, (v, _, _, crit) in perf.items() if alerts(v, crit)}
    assert warned == {"review_queue"} and critical == set()


def test_a_stale_metrics_file_is_a_daemon_that_stopped_publishing(office, tmp_path):
    """A month-old file that once said the database was down: not believed any more."""
    metrics = tmp_path / "metrics" / "ebok_worker.prom"
    app = App(config_mod.load(office))
    snapshot = {"daemon": {"database_ok": False, "database_problem": "serwer nie przyjmuje połączeń"}}
    monitor.write_metrics(metrics, snapshot, monitor.Health(monitor.WARNING))
    app.engine.dispose()
    code, text, perf = monitor_line(office)
    assert code == 1 and "demon nie może połączyć się z bazą danych: serwer nie przyjmuje połączeń" in text  # fresh: believed
    month_ago = (datetime.now(UTC) - timedelta(days=31)).timestamp()
    os.utime(metrics, (month_ago, month_ago))
    code, text, perf = monitor_line(office)
    assert code == 2 and text.startswith("demon nie publikuje stanu od 31 d ") and "bazą danych" not in text
    assert perf["metrics_age_s"][0] >= 31 * 86400 and alerts(perf["metrics_age_s"][0], perf["metrics_age_s"][3])


def test_a_full_disk_and_a_storage_error_are_named_with_their_errno(office, tmp_path):
    cfg = config_mod.load(office)
    app = App(cfg)
    app.intake.record_pull("/cr/dekl", datetime.now(UTC),
                           error="Nie udało się zapisać dokumentu z ePUAP: errno 28: brak miejsca na dysku (/var/lib/ebok-worker/documents); dokument pozostaje w skrytce",
                           error_kind="storage")
    app.engine.dispose()
    code, text, perf = monitor_line(office)
    assert code == 2
    assert text.startswith("skrytka /cr/dekl: nie można przyjąć dokumentu na dysk workera: Nie udało się zapisać dokumentu z ePUAP: errno 28: brak miejsca na dysku")
    assert "zablokowana" not in text and perf["mailboxes_blocked"][0] == 0
    # less free than min_free_bytes on the disks the worker writes to
    huge = office.read_text(encoding="utf-8").replace("[monitoring]\n", "[monitoring]\nmin_free_bytes = 1000000000000000\n")
    office.write_text(huge, encoding="utf-8")
    code, text, perf = monitor_line(office)
    assert code == 2 and re.search(r"errno 28: brak miejsca na dysku: storage\.path, (database\.url, )?scans\.archive, scans\.quarantine, correspondence\.outbox \(.+\): wolne ", text)
    assert perf["disks_full"][0] >= 1 and alerts(perf["disks_full"][0], perf["disks_full"][3])
    r = run_cli(office, "status")
    assert "UWAGA: brak miejsca na dysku (errno 28: brak miejsca na dysku): storage.path" in r.stdout
    assert "ostatni błąd (dysk workera, nie ePUAP): Nie udało się zapisać dokumentu z ePUAP: errno 28" in r.stdout


# --- the neighbours' alerts by the same conventions ---------------------------------------------

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def _snapshot(**extra) -> dict:
    return {"queue": {"FETCHING": 0, "RECEIVED": 0, "PROCESSING": 0, "FAILED": 0, "DONE": 3}, "outcomes": {"NEEDS_REVIEW": 0},
            "failed_parked": 0, "oldest_pending": None, "mailboxes": [], **extra}


def _parsed(health: monitor.Health) -> tuple[str, dict[str, tuple]]:
    m = PLUGIN_LINE.match(monitor.nagios_line(health))
    assert m, monitor.nagios_line(health)
    perf = {}
    for item in m.group(3).split(" "):
        p = PERF_ITEM.match(item)
        assert p, item
        perf[p.group(1)] = (float(p.group(2)), p.group(3) or "", p.group(4), p.group(5))
    return m.group(2), perf


def _alerting(perf: dict[str, tuple]) -> tuple[set[str], set[str]]:
    return ({k for k, (v, _, warn, _) in perf.items() if alerts(v, warn)}, {k for k, (v, _, _, crit) in perf.items() if alerts(v, crit)})


def test_the_trusted_lists_and_revocation_alerts_follow_the_plugin_guidelines():
    """#22's alerts: the line names the list or responder and why, the perfdata carry the
    thresholds the evaluation uses (an item alerts exactly when its check does)."""
    lotl = "https://ec.europa.eu/tools/lotl/eu-lotl.xml"
    pl = "https://www.nccert.pl/tsl/PL_TSL.xml"
    failed = {"location": pl, "territory": "PL", "problem": "fetch", "reason": f"brak odpowiedzi z {pl} w ciągu 30 s", "at": "2025-03-10T08:00:00+00:00"}
    eu = {"kind": "lotl", "territory": "EU", "sequence": 300, "location": lotl, "next_update": "2025-09-01T00:00:00+00:00", "stale": False}
    # lists configured, only the LOTL verified: CRITICAL, the national list and why it is missing named
    trust = {"configured": True, "revocation_fetch": False, "lists": [eu], "failed": [failed], "missing": [pl], "responders_failing": []}
    h = monitor.evaluate(_snapshot(trust=trust), pending_warn_s=3600, pull_stale_s=3600, now=NOW)
    text, perf = _parsed(h)
    assert h.state == monitor.CRITICAL and [p.key for p in h.problems] == ["trusted_list_missing"]
    assert text == (f"żadna zaufana lista (TSL) nie jest pobrana i zweryfikowana: podpisy kwalifikowane trafiają do weryfikacji "
                    f"({pl}: nie można jej pobrać — brak odpowiedzi z {pl} w ciągu 30 s)")
    assert perf["trusted_lists_national"] == (0, "", "", "1:") and perf["trusted_lists"][2:] == ("", "")
    assert _alerting(perf) == ({"trusted_lists_missing", "trusted_lists_failed"}, {"trusted_lists_national"})

    # the national list kept but stale, its last update refused, a second list missing, a responder down: WARNING, each named
    tl = {"kind": "tl", "territory": "PL", "sequence": 41, "location": pl, "next_update": "2025-03-01T00:00:00+00:00", "stale": True}
    other = "listy/cz-tl.xml"
    trust = {"configured": True, "revocation_fetch": True, "lists": [eu, tl], "failed": [dict(failed, problem="signature", reason="podpis listy nie weryfikuje się")],
             "missing": [other], "responders_failing": [{"url": "http://ocsp.example/qca", "reason": "odpowiedź HTTP 503 z http://ocsp.example/qca",
                                                         "failing_since": "2025-03-10T07:30:00+00:00"}]}
    h = monitor.evaluate(_snapshot(trust=trust), pending_warn_s=3600, pull_stale_s=3600, now=NOW)
    text, perf = _parsed(h)
    assert h.state == monitor.WARNING
    assert {p.key: p.text for p in h.problems} == {
        "trusted_list_missing": f"zaufana lista {other} nie ma poprawnej kopii: jeszcze nie pobrana (ebok-worker trust update)",
        "trusted_list_stale": f"zaufana lista PL nr 41 ({pl}) przeterminowana od 2025-03-01 01:00",
        "trusted_list_update_failed": f"zaufana lista PL {pl} nieprzyjęta przy aktualizacji 2025-03-10 09:00: jej podpis nie zgadza się z przypiętymi "
                                      "certyfikatami podpisujących (trusted_list_signers albo wskazanymi w LOTL) — podpis listy nie weryfikuje się; "
                                      "w użyciu pozostaje ostatnia poprawna kopia",
        "revocation_responder_failing": "serwer unieważnień http://ocsp.example/qca nie odpowiada poprawnie od 2025-03-10 08:30: "
                                        "odpowiedź HTTP 503 z http://ocsp.example/qca",
    }
    assert _alerting(perf) == ({"trusted_lists_missing", "trusted_lists_stale", "trusted_lists_failed", "revocation_responders_failing"}, set())
    # all well: nothing alerts, the perfdata are still there
    trust = {"configured": True, "revocation_fetch": True, "lists": [eu, dict(tl, stale=False)], "failed": [], "missing": [], "responders_failing": []}
    h = monitor.evaluate(_snapshot(trust=trust), pending_warn_s=3600, pull_stale_s=3600, now=NOW)
    text, perf = _parsed(h)
    assert h.state == monitor.OK and _alerting(perf) == (set(), set()) and perf["trusted_lists_national"][0] == 1


def test_documents_waiting_for_files_by_reference_in_the_line_and_the_metrics(tmp_path):
    """#21's FETCHING documents are pending: the pending_old line says what the oldest one
    waits for; the files by reference are a gauge by state."""
    snap = _snapshot(oldest_pending={"document_id": 7, "received_at": "2025-03-10T06:00:00+00:00", "state": "FETCHING", "age_s": 10800},
                     referenced_files={"pending": 1, "fetched": 4, "unavailable": 2, "documents_waiting": 1})
    snap["queue"]["FETCHING"] = 1
    h = monitor.evaluate(snap, pending_warn_s=3600, pull_stale_s=3600, now=NOW)
    text, perf = _parsed(h)
    assert text == "najstarszy oczekujący dokument 7 czeka 3 h 0 min na załączniki z repozytorium plików ePUAP (FETCHING)"
    assert perf["pending"][0] == 1 and alerts(perf["oldest_pending_s"][0], perf["oldest_pending_s"][2])
    metrics = tmp_path / "m.prom"
    monitor.write_metrics(metrics, dict(snap, processed={}, correspondence={}), h)
    fam = families(metrics)
    assert fam["ebok_worker_referenced_files"].type == "gauge"
    got = samples(metrics)
    assert {k[1][0][1]: v for k, v in got.items() if k[0] == "ebok_worker_referenced_files"} == {"pending": 1, "fetched": 4, "unavailable": 2}
    assert got[("ebok_worker_documents", (("state", "FETCHING"),))] == 1


def test_the_trusted_lists_refresh_has_its_last_pass_and_its_errors(write_config, tmp_path):
    """``run --once`` refreshing the trusted lists (#22) records the ``trust.refresh`` job's
    last pass; a list not adopted counts as ``errors_total{kind="trust"}``; the trust cache
    is among the disks watched."""
    demo_trust = Path(__file__).resolve().parent.parent / "demo" / "trust"
    (tmp_path / "pl-tl.xml").write_text("<TrustServiceStatusList/>", encoding="utf-8")  # refused: not signed by the signers
    cfg = write_config(
        signatures={"trust_anchors": demo_trust / "test-anchors.pem", "trusted_profile_seals": [demo_trust / "test-pz-seal.pem"],
                    "trusted_lists": ["pl-tl.xml"], "trusted_list_signers": demo_trust / "test-anchors.pem", "cache": "trust-cache"},
        monitoring={"metrics_file": "metrics/ebok_worker.prom"}, processing={"workers": 1},
    )
    before = time.time()
    r = run_cli(cfg, "run", "--once")
    assert r.returncode == 0, r.stderr
    got = samples(tmp_path / "metrics" / "ebok_worker.prom")
    jobs = {dict(k[1])["job"]: v for k, v in got.items() if k[0] == "ebok_worker_last_pass_timestamp_seconds"}
    assert set(jobs) == {"trust.refresh", "worker.process"} and before <= jobs["trust.refresh"] <= time.time()
    assert got[("ebok_worker_errors_total", (("kind", "trust"),))] == 1
    assert ("ebok_worker_disk_free_bytes", (("key", "signatures.cache"),)) in got
    # not due again: the next run --once does not refresh, the job's last pass stays
    r = run_cli(cfg, "run", "--once")
    assert r.returncode == 0, r.stderr
    again = samples(tmp_path / "metrics" / "ebok_worker.prom")
    assert again[("ebok_worker_last_pass_timestamp_seconds", (("job", "trust.refresh"),))] == jobs["trust.refresh"]
    assert again[("ebok_worker_errors_total", (("kind", "trust"),))] == 1
