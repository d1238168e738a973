"""Monitoring: one evaluation of the status snapshot for every watcher.

The snapshot is the dict behind ``status --json`` (:func:`worker.status.collect_status`).
:func:`evaluate` is a pure function over it and the ``[monitoring]`` thresholds; its
:class:`Health` feeds ``status --monitor`` (the Nagios plugin line and exit status), the
Prometheus textfile (:func:`write_metrics`) and the systemd ``STATUS=`` line
(:func:`status_line`), so the three never disagree (``spec/operations.md``, "Monitoring").

Rules: CRITICAL when a mailbox is blocked (``blocked_since`` set: its head cannot be
confirmed), a mailbox's last pass could not store a document on the worker's own disk
(``storage_error``, with the errno in Polish), a watched mailbox has had no successful pull
for ``pull_stale_s`` (or never had one), documents are parked after exhausting their
retries, a folder the worker writes to is on a full disk (``disk_full``: less than
``min_free_bytes`` free), ``config check`` finds a problem (``config_invalid``), or the
daemon has stopped publishing (its metrics file older than ``metrics_stale_s``:
``daemon_stale``; what the old file says is then not believed); WARNING when the oldest
pending document is older than ``pending_warn_s``, the review queue or the scan quarantine
is not empty, the office's outbox refuses correspondence (the hand-over is retried), or the
daemon reported the database unreachable (and why). With trusted lists or fetched
revocation configured (:func:`trust_problems`): CRITICAL when no national list is verified,
WARNING for a list without a good copy, past its NextUpdate or not adopted at its last
update, and for a failing revocation responder — each line naming the list or responder
and why. Text is Polish (the administrator reads it); perfdata labels and metric names are
English. The plugin line follows the
plugin guidelines: one line, perfdata with units and the warning/critical thresholds.

The metrics follow Prometheus' conventions: a ``_total`` is a counter kept in the database
(``adapters/db/counters.py``), never decreasing; a count as it is now is a gauge; no label
value ``total`` beside its parts; ``ebok_worker_build_info{version}``,
``ebok_worker_last_pass_timestamp_seconds{job}``, ``ebok_worker_errors_total{kind}``.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.db.errors import is_database_error
from worker import fmt, version
from worker.errors import errno_text, file_error_text
from worker.status import collect_status

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
PENDING_STATES = ("FETCHING", "RECEIVED", "PROCESSING", "FAILED")


@dataclass(frozen=True)
class Problem:
    level: int
    key: str  # stable English key (runbooks in docs/obsluga.md are named after it)
    text: str  # Polish, for the administrator


@dataclass(frozen=True)
class Perf:
    """One perfdata item of the plugin line: ``label=value[unit];[warn];[crit];[min]``
    (thresholds in the plugin guidelines' range form: ``3600`` alerts above 3600, ``0``
    above 0)."""

    label: str
    value: int
    unit: str = ""
    warn: str = ""
    crit: str = ""
    minimum: str = "0"

    def text(self) -> str:
        return f"{self.label}={self.value}{self.unit};{self.warn};{self.crit};{self.minimum}"


@dataclass
class Health:
    state: int
    problems: list[Problem] = field(default_factory=list)
    perf: list[Perf] = field(default_factory=list)

    @property
    def name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def perfdata(self) -> dict[str, int]:
        """The perfdata values by label."""
        return {p.label: p.value for p in self.perf}


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def pending_count(snapshot: Mapping[str, Any]) -> int:
    return sum(int(snapshot["queue"].get(s, 0)) for s in PENDING_STATES)


def review_queue(snapshot: Mapping[str, Any]) -> int:
    return int(snapshot["outcomes"].get("NEEDS_REVIEW", 0))


def scan_quarantined(snapshot: Mapping[str, Any]) -> int:
    return int((snapshot.get("scans") or {}).get("quarantined", 0))


def correspondence(snapshot: Mapping[str, Any]) -> Mapping[str, Any]:
    """The snapshot's correspondence counts (``total``, ``pending``, ``handed_over``,
    ``outbox_error``)."""
    return snapshot.get("correspondence") or {}


#: what the oldest pending document waits for, by its state (the pending_old line)
_WAITING = {
    "FETCHING": " na załączniki z repozytorium plików ePUAP (FETCHING)",
    "RECEIVED": " na przetworzenie (RECEIVED)",
    "PROCESSING": " w trakcie przetwarzania (PROCESSING)",
    "FAILED": " na ponowienie po błędzie technicznym (FAILED)",
}


def _threshold(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _mailbox_problems(snapshot: Mapping[str, Any], watched: set[str], pull_stale_s: float, now: datetime) -> tuple[list[Problem], int, int]:
    """A blocked mailbox (CRITICAL whether watched or not), one whose last pass could not
    store a document on the worker's own disk (CRITICAL: the right runbook is the disk's,
    not ePUAP's), one without a successful pull for ``pull_stale_s``."""
    problems: list[Problem] = []
    blocked = stale = 0
    for m in snapshot.get("mailboxes", []):
        addr = m["address"]
        last = _ts(m.get("last_success_at"))
        attempt = _ts(m.get("last_attempt_at"))
        failing = bool(m.get("last_error")) and (last is None or (attempt is not None and attempt > last))
        since = _ts(m.get("blocked_since"))
        if failing and m.get("error_kind") == "storage":
            problems.append(Problem(CRITICAL, "storage_error", f"skrytka {addr}: nie można przyjąć dokumentu na dysk workera: {m['last_error']}"))
        elif since is not None:
            blocked += 1
            reason = f" ({m['blocked_reason']})" if m.get("blocked_reason") else ""
            problems.append(Problem(CRITICAL, "mailbox_blocked", f"skrytka {addr} zablokowana od {fmt.datetime_local(since)}{reason}"))
            continue
        if addr not in watched:
            continue
        why = f"; ostatni błąd: {m['last_error']}" if m.get("last_error") else ""
        if last is None:
            stale += 1
            problems.append(Problem(CRITICAL, "mailbox_stale", f"skrytka {addr}: jeszcze ani jednego udanego pobrania{why}"))
        elif (now - last).total_seconds() > pull_stale_s:
            stale += 1
            problems.append(Problem(CRITICAL, "mailbox_stale", f"skrytka {addr}: ostatnie udane pobranie {fmt.datetime_local(last)}{why}"))
    return problems, blocked, stale


def evaluate(
    snapshot: Mapping[str, Any],
    *,
    pending_warn_s: float,
    pull_stale_s: float,
    now: datetime,
    watched_mailboxes: Iterable[str] = (),
    metrics_stale_s: float = 900.0,
) -> Health:
    """The health of the worker as the snapshot shows it (no I/O).

    ``watched_mailboxes``: the addresses whose pulls must be fresh (the configured
    mailboxes when ePUAP is enabled); a blocked mailbox is CRITICAL whether watched or not.
    ``snapshot["daemon"]``: what the daemon last published (its metrics file): older than
    ``metrics_stale_s``, the daemon has stopped publishing (CRITICAL) and what it said is
    not believed any more.
    """
    problems, blocked, stale = _mailbox_problems(snapshot, set(watched_mailboxes), pull_stale_s, now)
    config_problems = list(snapshot.get("config_problems") or [])
    for line in config_problems:
        problems.append(Problem(CRITICAL, "config_invalid", f"konfiguracja: {line}"))
    full = [d for d in snapshot.get("disks") or [] if d.get("full")]
    for d in full:
        problems.append(Problem(CRITICAL, "disk_full", f"{errno_text(errno.ENOSPC)}: {', '.join(d['keys'])} ({d['path']}): wolne {fmt.size(int(d['free_bytes']))}"))
    parked = int(snapshot.get("failed_parked", 0))
    if parked:
        problems.append(Problem(CRITICAL, "failed_parked", f"wstrzymane po wyczerpaniu prób: {fmt.count(parked, 'dokument', 'dokumenty', 'dokumentów')}"))
    oldest = snapshot.get("oldest_pending")
    oldest_s = int(oldest["age_s"]) if oldest else 0
    if oldest and oldest_s > pending_warn_s:
        waits = _WAITING.get(oldest.get("state") or "", "")
        problems.append(Problem(WARNING, "pending_old", f"najstarszy oczekujący dokument {oldest['document_id']} czeka {fmt.duration(oldest_s)}{waits}"))
    rq = review_queue(snapshot)
    if rq:
        problems.append(Problem(WARNING, "review_queue", f"do weryfikacji: {fmt.count(rq, 'deklaracja', 'deklaracje', 'deklaracji')}"))
    sq = scan_quarantined(snapshot)
    if sq:
        problems.append(Problem(WARNING, "scan_quarantine", f"w kwarantannie skanów: {fmt.count(sq, 'para', 'pary', 'par')}"))
    corr = correspondence(snapshot)
    if corr.get("outbox_error"):
        problems.append(Problem(WARNING, "outbox_error", f"korespondencja nie trafia do folderu biura ({fmt.count(int(corr.get('pending', 0)), 'pismo czeka', 'pisma czekają', 'pism czeka')}): {corr['outbox_error']}"))
    daemon = snapshot.get("daemon") or {}
    published = _ts(daemon.get("published_at"))
    age = int((now - published).total_seconds()) if published is not None else None
    if age is not None and age > metrics_stale_s:
        problems.append(Problem(CRITICAL, "daemon_stale", f"demon nie publikuje stanu od {fmt.duration(age)} (plik metryk z {fmt.datetime_local(published)}): "
                                                        "nie działa albo się zawiesił"))
    elif daemon.get("database_ok") is False:
        why = f": {daemon['database_problem']}" if daemon.get("database_problem") else ""
        problems.append(Problem(WARNING, "database_unreachable", f"demon nie może połączyć się z bazą danych{why}"))
    trust_perf = trust_problems(snapshot.get("trust") or {}, problems)
    state = max((p.level for p in problems), default=OK)
    perf = [
        Perf("pending", pending_count(snapshot)),
        Perf("failed_parked", parked, crit="0"),
        Perf("oldest_pending_s", oldest_s, "s", warn=_threshold(pending_warn_s)),
        Perf("review_queue", rq, warn="0"),
        Perf("scan_quarantined", sq, warn="0"),
        Perf("mailboxes_blocked", blocked, crit="0"),
        Perf("mailboxes_stale", stale, crit="0"),
        Perf("correspondence_pending", int(corr.get("pending", 0))),
        Perf("disks_full", len(full), crit="0"),
        Perf("config_problems", len(config_problems), crit="0"),
        *trust_perf,
    ]
    if age is not None:
        perf.append(Perf("metrics_age_s", max(age, 0), "s", crit=_threshold(metrics_stale_s)))
    return Health(state, sorted(problems, key=lambda p: -p.level), perf)


def trust_problems(trust: Mapping[str, Any], problems: list[Problem]) -> list[Perf]:
    """The trusted lists and revocation responders (``worker.trust_cmd.snapshot``): CRITICAL
    when lists are configured but none is verified (every qualified signature then goes to
    review); WARNING for a list past its NextUpdate, an update that failed (the last good
    copy stays in use), a configured list without a good copy, a failing revocation
    responder. Each line names the list or responder and why (the last attempt's reason).
    Perfdata with their thresholds, only when lists or fetched revocation are configured:
    ``trusted_lists_national`` (CRITICAL below 1), ``trusted_lists_missing``,
    ``trusted_lists_stale``, ``trusted_lists_failed``, ``revocation_responders_failing``
    (WARNING above 0), ``trusted_lists`` (every list in use, the LOTL too)."""
    if not trust or not (trust.get("configured") or trust.get("revocation_fetch")):
        return []
    from worker.trust_cmd import PROBLEMS

    lists = trust.get("lists") or []
    failed = trust.get("failed") or []
    why = {f["location"]: f"{PROBLEMS.get(f.get('problem') or '', 'błąd')}" + (f" — {f['reason']}" if f.get("reason") else "") for f in failed}
    national = sum(1 for c in lists if c.get("kind") == "tl")
    missing = list(trust.get("missing") or [])
    if trust.get("configured") and not national:  # a LOTL alone decides nothing
        detail = "; ".join(f"{loc}: {why.get(loc, 'jeszcze nie pobrana (ebok-worker trust update)')}" for loc in missing)
        problems.append(Problem(CRITICAL, "trusted_list_missing", "żadna zaufana lista (TSL) nie jest pobrana i zweryfikowana: podpisy kwalifikowane "
                                                                 "trafiają do weryfikacji" + (f" ({detail})" if detail else "")))
    else:
        for location in missing:
            problems.append(Problem(WARNING, "trusted_list_missing", f"zaufana lista {location} nie ma poprawnej kopii: "
                                                                     f"{why.get(location, 'jeszcze nie pobrana (ebok-worker trust update)')}"))
    stale = [c for c in lists if c.get("stale")]
    for c in stale:
        problems.append(Problem(WARNING, "trusted_list_stale", f"zaufana lista {c['territory']} nr {c['sequence']} ({c['location']}) "
                                                               f"przeterminowana od {fmt.datetime_local(c['next_update'])}"))
    for f in failed:
        if f["location"] in missing:
            continue  # said once, above: the list has no good copy
        problems.append(Problem(WARNING, "trusted_list_update_failed",
                                f"zaufana lista {f.get('territory') or ''} {f['location']} nieprzyjęta"
                                f"{' przy aktualizacji ' + fmt.datetime_local(f['at']) if f.get('at') else ''}: "
                                f"{why[f['location']]}; w użyciu pozostaje ostatnia poprawna kopia".replace("  ", " ")))
    responders = trust.get("responders_failing") or []
    for r in responders:
        since = f" od {fmt.datetime_local(r['failing_since'])}" if r.get("failing_since") else ""
        problems.append(Problem(WARNING, "revocation_responder_failing", f"serwer unieważnień {r['url']} nie odpowiada poprawnie{since}: {r.get('reason')}"))
    perf = []
    if trust.get("configured"):
        perf += [Perf("trusted_lists", len(lists)), Perf("trusted_lists_national", national, crit="1:"),
                 Perf("trusted_lists_missing", len(missing), warn="0"), Perf("trusted_lists_stale", len(stale), warn="0"),
                 Perf("trusted_lists_failed", len(failed), warn="0")]  # fmt: skip
    if trust.get("revocation_fetch"):
        perf.append(Perf("revocation_responders_failing", len(responders), warn="0"))
    return perf


def nagios_line(health: Health) -> str:
    """``EBOK-WORKER OK - … | pending=0;;;0 failed_parked=0;;0;0 …`` (one line)."""
    if health.problems:
        text = "; ".join(p.text for p in health.problems)
    else:
        text = f"oczekujące {health.perfdata['pending']}, bez problemów"
    text = " ".join(text.replace("|", "/").split())  # one line, and no "|" before the perfdata
    perf = " ".join(p.text() for p in health.perf)
    return f"EBOK-WORKER {health.name} - {text} | {perf}"


def status_line(snapshot: Mapping[str, Any], health: Health) -> str:
    """The systemd ``STATUS=`` text: the queue depth and the health, Polish, one line."""
    line = f"oczekujące: {pending_count(snapshot)}, do weryfikacji: {review_queue(snapshot)}, stan: {health.name}"
    if health.problems:
        line += f" ({health.problems[0].text})"
    return line


def evaluate_for(config: Any, snapshot: Mapping[str, Any], now: datetime | None = None) -> Health:
    """:func:`evaluate` with the configuration's thresholds and watched mailboxes."""
    m = config.monitoring
    watched = [mb.address for mb in config.epuap.mailboxes] if config.epuap.enabled else []
    return evaluate(snapshot, pending_warn_s=m.pending_warn_s, pull_stale_s=m.pull_stale_s,
                    now=now or datetime.now(UTC), watched_mailboxes=watched, metrics_stale_s=m.metrics_stale_s)


# --- Prometheus textfile ----------------------------------------------------------------------

#: the daemon's scheduled jobs, as ``ebok_worker_last_pass_timestamp_seconds{job}`` names them
JOBS = ("epuap.pull", "scans.poll", "worker.process", "trust.refresh")


class _SnapshotCollector:
    """Exposes one snapshot (and its health) as Prometheus metric families. ``_total``
    families are the database's counters (never decreasing); a count as it is now is a
    gauge."""

    def __init__(self, snapshot: Mapping[str, Any] | None, health: Health, passes: Mapping[str, float] | None = None):
        self.snapshot, self.health, self.passes = snapshot, health, passes or {}

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        g = GaugeMetricFamily("ebok_worker_build_info", "The worker's version.", labels=["version"])
        g.add_metric([version()], 1)
        yield g
        g = GaugeMetricFamily("ebok_worker_last_pass_timestamp_seconds", "End of the last pass of each job.", labels=["job"])
        for job, at in sorted(self.passes.items()):
            g.add_metric([job], at)
        yield g
        yield GaugeMetricFamily("ebok_worker_health", "status --monitor: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", value=self.health.state)
        s = self.snapshot
        daemon = (s or {}).get("daemon") or {}
        if "database_ok" in daemon:
            yield GaugeMetricFamily("ebok_worker_database_up", "1 when the daemon reached the database on its last pass.", value=1 if daemon["database_ok"] else 0)
            if not daemon["database_ok"] and daemon.get("database_problem"):
                g = GaugeMetricFamily("ebok_worker_database_problem_info", "Why the daemon cannot use the database.", labels=["problem"])
                g.add_metric([str(daemon["database_problem"])[:200]], 1)
                yield g
        if s is None or "queue" not in s:  # waiting for the database at start: nothing is known yet
            return
        g = GaugeMetricFamily("ebok_worker_documents", "Documents by processing state.", labels=["state"])
        for state, n in s["queue"].items():
            g.add_metric([state], n)
        yield g
        g = GaugeMetricFamily("ebok_worker_declarations", "eBOK declarations by status.", labels=["status"])
        for status, n in s["outcomes"].items():
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily("ebok_worker_documents_by_outcome", "Processed documents by their current outcome.", labels=["outcome"])
        for outcome, n in (s.get("processed") or {}).items():
            g.add_metric([outcome], n)
        yield g
        counted = s.get("counters") or {}
        c = CounterMetricFamily("ebok_worker_processed", "Documents processed (each processing counts), by the outcome it gave.", labels=["outcome"])
        for outcome, n in (counted.get("processed") or {}).items():
            c.add_metric([outcome], n)
        yield c
        c = CounterMetricFamily("ebok_worker_errors", "Errors by kind: processing (a document's technical failure), epuap, storage, scan, handover, database (an outage).", labels=["kind"])
        for kind, n in (counted.get("errors") or {}).items():
            c.add_metric([kind], n)
        yield c
        yield GaugeMetricFamily("ebok_worker_oldest_pending_seconds", "Age of the oldest pending document (0: none).", value=self.health.perfdata["oldest_pending_s"])
        yield GaugeMetricFamily("ebok_worker_failed_parked", "Documents parked after exhausting their retries.", value=s["failed_parked"])
        rf = s.get("referenced_files")
        if rf is not None:  # attachments by reference, by the state of their file (documents waiting: ebok_worker_documents{state="FETCHING"})
            g = GaugeMetricFamily("ebok_worker_referenced_files", "Files of attachments by reference, by state (pending, fetched, unavailable).",
                                  labels=["state"])  # fmt: skip
            for state in ("pending", "fetched", "unavailable"):
                g.add_metric([state], int(rf.get(state, 0)))
            yield g
        yield GaugeMetricFamily("ebok_worker_review_queue", "Declarations waiting for the office's review.", value=review_queue(s))
        yield GaugeMetricFamily("ebok_worker_scan_quarantined", "Scan pairs in the quarantine folder.", value=scan_quarantined(s))
        g = GaugeMetricFamily("ebok_worker_correspondence", "Correspondence items waiting for the hand-over and handed over.", labels=["state"])
        corr = correspondence(s)
        for state in ("pending", "handed_over"):
            g.add_metric([state], int(corr.get(state, 0)))
        yield g
        last = GaugeMetricFamily("ebok_worker_mailbox_last_success_timestamp_seconds", "Last successful pull of a mailbox (0: never).", labels=["mailbox"])
        blocked = GaugeMetricFamily("ebok_worker_mailbox_blocked", "1 when the mailbox's head cannot be confirmed.", labels=["mailbox"])
        for m in s.get("mailboxes", []):
            t = _ts(m.get("last_success_at"))
            last.add_metric([m["address"]], t.timestamp() if t else 0)
            blocked.add_metric([m["address"]], 1 if m.get("blocked_since") else 0)
        yield last
        yield blocked
        g = GaugeMetricFamily("ebok_worker_disk_free_bytes", "Free space on the disk of each folder the worker writes to.", labels=["key"])
        for d in s.get("disks") or []:
            for key in d["keys"]:
                g.add_metric([key], d["free_bytes"])
        yield g
        if "config_problems" in s:
            yield GaugeMetricFamily("ebok_worker_config_problems", "Problems config check finds (0: none).", value=len(s["config_problems"]))
        trust = s.get("trust") or {}
        if trust.get("configured"):
            g = GaugeMetricFamily("ebok_worker_trusted_list_next_update_timestamp_seconds", "NextUpdate of each trusted list in use.", labels=["territory", "location"])
            for c in trust.get("lists") or []:
                nxt = _ts(c.get("next_update"))
                g.add_metric([c["territory"], c["location"]], nxt.timestamp() if nxt else 0)
            yield g
            yield GaugeMetricFamily("ebok_worker_trusted_lists_failed", "Trusted lists whose last update was not adopted.", value=len(trust.get("failed") or []))
        if trust.get("revocation_fetch"):
            yield GaugeMetricFamily("ebok_worker_revocation_responders_failing", "Revocation responders (OCSP, CRL) failing now.", value=len(trust.get("responders_failing") or []))


def metrics_text(snapshot: Mapping[str, Any] | None, health: Health, passes: Mapping[str, float] | None = None) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(_SnapshotCollector(snapshot, health, passes))
    return generate_latest(registry).decode("utf-8")


def write_metrics(path: Path, snapshot: Mapping[str, Any] | None, health: Health, passes: Mapping[str, float] | None = None) -> None:
    """Write the textfile atomically (a temporary file beside it, then rename). The last
    pass of each job is the latest of ``passes`` and of what the file held (another
    process — a ``run --once`` from a timer, a second daemon — may have run a job since)."""
    from prometheus_client import CollectorRegistry, write_to_textfile

    merged = dict(last_passes(path))
    for job, at in (passes or {}).items():
        merged[job] = max(at, merged.get(job, 0.0))
    registry = CollectorRegistry()
    registry.register(_SnapshotCollector(snapshot, health, merged))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def _families(path: Path | None) -> list[Any]:
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return list(text_string_to_metric_families(text))
    except ValueError:
        return []


def last_passes(path: Path | None) -> dict[str, float]:
    """``ebok_worker_last_pass_timestamp_seconds`` of a metrics file, by job."""
    return {s.labels["job"]: s.value for f in _families(path) if f.name == "ebok_worker_last_pass_timestamp_seconds" for s in f.samples}


# --- the daemon's publishing -------------------------------------------------------------------

#: how often the daemon runs ``config check`` for its metrics (it is not free: keys, rules)
CONFIG_CHECK_EVERY_S = 300.0


class Publisher:
    """After every pass of the daemon (and at the end of ``run --once``): the snapshot →
    the metrics file and systemd's ``STATUS=``. When the database cannot be reached, the
    last snapshot is published again with ``daemon.database_ok = False`` (WARNING,
    ``ebok_worker_database_up 0``) and why; before there is any snapshot (the daemon waits
    for its database at start) the file says just that."""

    def __init__(self, app: Any, notifier: Any = None):
        self.app, self.notifier = app, notifier
        self.last: dict[str, Any] | None = None
        self.passes: dict[str, float] = {}
        self._config: tuple[float, list[str]] | None = None

    def passed(self, job: str, at: datetime | None = None) -> None:
        """A pass of ``job`` has ended."""
        self.passes[job] = (at or datetime.now(UTC)).timestamp()

    def _config_problems(self) -> list[str]:
        from worker import config_check

        now = time.monotonic()
        if self._config is None or now - self._config[0] > CONFIG_CHECK_EVERY_S:
            try:
                found = [p.line() for p in config_check.collect(self.app.config, config_check.Options(database=False, free_space=False))]
            except Exception:  # noqa: BLE001 - a check that breaks is no reason to stop publishing
                found = self._config[1] if self._config else []
            self._config = (now, found)
        return self._config[1]

    def publish(self, now: datetime | None = None, *, database_problem: str | None = None) -> Health | None:
        import logging

        log = logging.getLogger("worker.monitor")
        try:
            snapshot = collect_status(self.app, now=now)
            snapshot["daemon"] = {"database_ok": True}
        except Exception as exc:  # the database is down: publish what was last known
            if not is_database_error(exc) or self.last is None:
                log.warning("status snapshot failed", extra={"event": "monitor.snapshot_failed", "error": type(exc).__name__})
                if is_database_error(exc) and self.last is None:
                    return self.publish_waiting(database_problem or "baza danych niedostępna")
                if self.notifier is not None:
                    self.notifier.status("baza danych niedostępna" if is_database_error(exc) else "nie można ustalić stanu")
                return None
            snapshot = dict(self.last, daemon={"database_ok": False, "database_problem": database_problem})
        snapshot["config_problems"] = self._config_problems()
        self.last = {k: v for k, v in snapshot.items() if k != "daemon"}
        health = evaluate_for(self.app.config, snapshot, now)
        self._write(snapshot, health)
        if self.notifier is not None:
            self.notifier.status(status_line(snapshot, health))
        return health

    def publish_waiting(self, problem: str) -> Health:
        """The daemon waits for a database that is down at start: the metrics file and
        systemd say so (``ebok_worker_database_up 0``, WARNING)."""
        snapshot: dict[str, Any] = {"daemon": {"database_ok": False, "database_problem": problem}}
        health = Health(WARNING, [Problem(WARNING, "database_unreachable", f"demon czeka na bazę danych: {problem}")])
        self._write(snapshot, health)
        if self.notifier is not None:
            self.notifier.status(f"czeka na bazę danych: {problem}")
        return health

    def _write(self, snapshot: Mapping[str, Any], health: Health) -> None:
        import logging

        path = self.app.config.monitoring.metrics_file
        if path is None:
            return
        try:
            write_metrics(Path(path), snapshot, health, self.passes)
        except OSError as exc:
            logging.getLogger("worker.monitor").warning(
                "metrics file not written", extra={"event": "monitor.metrics_failed", "error": file_error_text(exc)})


def daemon_view(metrics_file: Path | None) -> dict[str, Any]:
    """What the daemon last published about itself (``ebok_worker_database_up`` and, when
    it is 0, why), read back from the metrics file for ``status --monitor``; empty when
    there is no file or it says nothing about the database."""
    view: dict[str, Any] = {}
    for family in _families(metrics_file):
        if family.name == "ebok_worker_database_up" and family.samples:
            view["database_ok"] = bool(family.samples[0].value)
        elif family.name == "ebok_worker_database_problem_info" and family.samples:
            view["database_problem"] = family.samples[0].labels.get("problem")
    return view if "database_ok" in view else {}


def published_at(metrics_file: Path | None) -> str | None:
    """When the metrics file was last written (its modification time), ISO; None without one."""
    if metrics_file is None:
        return None
    try:
        return datetime.fromtimestamp(Path(metrics_file).stat().st_mtime, UTC).isoformat()
    except OSError:
        return None
