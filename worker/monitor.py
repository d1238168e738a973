"""Monitoring: one evaluation of the status snapshot for every watcher.

The snapshot is the dict behind ``status --json`` (:func:`worker.status.collect_status`).
:func:`evaluate` is a pure function over it and the ``[monitoring]`` thresholds; its
:class:`Health` feeds ``status --monitor`` (the Nagios plugin line and exit status), the
Prometheus textfile (:func:`write_metrics`) and the systemd ``STATUS=`` line
(:func:`status_line`), so the three never disagree (``spec/operations.md``, "Monitoring").

Rules: CRITICAL when a mailbox is blocked (``blocked_since`` set: its head cannot be
confirmed), a watched mailbox has had no successful pull for ``pull_stale_s`` (or never
had one), or documents are parked after exhausting their retries; WARNING when the oldest
pending document is older than ``pending_warn_s``, the review queue or the scan quarantine
is not empty, the office's outbox refuses correspondence (the hand-over is retried), or the
daemon reported the database unreachable. Text is Polish (the
administrator reads it); perfdata labels and metric names are English.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.db.errors import is_database_error
from worker import fmt
from worker.status import collect_status

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
PENDING_STATES = ("FETCHING", "RECEIVED", "PROCESSING", "FAILED")


@dataclass(frozen=True)
class Problem:
    level: int
    key: str  # stable English key (runbooks in docs/obsluga.md are named after it)
    text: str  # Polish, for the administrator


@dataclass
class Health:
    state: int
    problems: list[Problem] = field(default_factory=list)
    perfdata: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return STATE_NAMES[self.state]


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


def evaluate(
    snapshot: Mapping[str, Any],
    *,
    pending_warn_s: float,
    pull_stale_s: float,
    now: datetime,
    watched_mailboxes: Iterable[str] = (),
) -> Health:
    """The health of the worker as the snapshot shows it (no I/O).

    ``watched_mailboxes``: the addresses whose pulls must be fresh (the configured
    mailboxes when ePUAP is enabled); a blocked mailbox is CRITICAL whether watched or not.
    """
    problems: list[Problem] = []
    watched = set(watched_mailboxes)
    blocked = stale = 0
    for m in snapshot.get("mailboxes", []):
        addr = m["address"]
        since = _ts(m.get("blocked_since"))
        if since is not None:
            blocked += 1
            reason = f" ({m['blocked_reason']})" if m.get("blocked_reason") else ""
            problems.append(Problem(CRITICAL, "mailbox_blocked", f"skrytka {addr} zablokowana od {fmt.datetime_local(since)}{reason}"))
            continue
        if addr not in watched:
            continue
        last = _ts(m.get("last_success_at"))
        if last is None:
            stale += 1
            problems.append(Problem(CRITICAL, "mailbox_stale", f"skrytka {addr}: jeszcze ani jednego udanego pobrania"))
        elif (now - last).total_seconds() > pull_stale_s:
            stale += 1
            problems.append(Problem(CRITICAL, "mailbox_stale", f"skrytka {addr}: ostatnie udane pobranie {fmt.datetime_local(last)}"))
    parked = int(snapshot.get("failed_parked", 0))
    if parked:
        problems.append(Problem(CRITICAL, "failed_parked", f"wstrzymane po wyczerpaniu prób: {fmt.count(parked, 'dokument', 'dokumenty', 'dokumentów')}"))
    oldest = snapshot.get("oldest_pending")
    oldest_s = int(oldest["age_s"]) if oldest else 0
    if oldest and oldest_s > pending_warn_s:
        problems.append(Problem(WARNING, "pending_old", f"najstarszy oczekujący dokument {oldest['document_id']} czeka {fmt.duration(oldest_s)}"))
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
    if daemon.get("database_ok") is False:
        problems.append(Problem(WARNING, "database_unreachable", "demon nie może połączyć się z bazą danych"))
    trust_perf = trust_problems(snapshot.get("trust") or {}, problems)
    state = max((p.level for p in problems), default=OK)
    perfdata = {
        "pending": pending_count(snapshot),
        "failed_parked": parked,
        "oldest_pending_s": oldest_s,
        "review_queue": rq,
        "scan_quarantined": sq,
        "mailboxes_blocked": blocked,
        "mailboxes_stale": stale,
        "correspondence_pending": int(corr.get("pending", 0)),
        **trust_perf,
    }
    return Health(state, sorted(problems, key=lambda p: -p.level), perfdata)


def trust_problems(trust: Mapping[str, Any], problems: list[Problem]) -> dict[str, int]:
    """The trusted lists and revocation responders (``worker.trust_cmd.snapshot``): CRITICAL
    when lists are configured but none is verified (every qualified signature then goes to
    review); WARNING for a list past its NextUpdate, an update that failed (the last good
    copy stays in use), a configured list without a good copy, a failing revocation
    responder. Perfdata only when lists or fetched revocation are configured."""
    if not trust or not (trust.get("configured") or trust.get("revocation_fetch")):
        return {}
    from worker.trust_cmd import PROBLEMS

    lists = trust.get("lists") or []
    if trust.get("configured") and not any(c.get("kind") == "tl" for c in lists):  # a LOTL alone decides nothing
        problems.append(Problem(CRITICAL, "trusted_list_missing", "żadna zaufana lista (TSL) nie jest pobrana i zweryfikowana: podpisy kwalifikowane trafiają do weryfikacji"))
    elif trust.get("missing"):
        for location in trust["missing"]:
            problems.append(Problem(WARNING, "trusted_list_missing", f"zaufana lista {location} nie ma poprawnej kopii"))
    stale = [c for c in lists if c.get("stale")]
    for c in stale:
        problems.append(Problem(WARNING, "trusted_list_stale", f"zaufana lista {c['territory']} nr {c['sequence']} przeterminowana od {fmt.datetime_local(c['next_update'])}"))
    failed = trust.get("failed") or []
    for f in failed:
        problems.append(Problem(WARNING, "trusted_list_update_failed",
                                f"zaufana lista {f.get('territory') or ''} {f['location']} nieprzyjęta: {PROBLEMS.get(f.get('problem') or '', 'błąd')}".replace("  ", " ")))
    responders = trust.get("responders_failing") or []
    for r in responders:
        problems.append(Problem(WARNING, "revocation_responder_failing", f"serwer unieważnień {r['url']} nie odpowiada poprawnie: {r.get('reason')}"))
    return {"trusted_lists": len(lists), "trusted_lists_stale": len(stale), "trusted_lists_failed": len(failed),
            "revocation_responders_failing": len(responders)}  # fmt: skip


def nagios_line(health: Health) -> str:
    """``EBOK-WORKER OK - … | pending=… failed_parked=… …`` (one line)."""
    if health.problems:
        text = "; ".join(p.text for p in health.problems)
    else:
        text = f"oczekujące {health.perfdata['pending']}, bez problemów"
    perf = " ".join(f"{k}={v}" for k, v in health.perfdata.items())
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
                    now=now or datetime.now(UTC), watched_mailboxes=watched)


# --- Prometheus textfile ----------------------------------------------------------------------


class _SnapshotCollector:
    """Exposes one snapshot (and its health) as Prometheus metric families."""

    def __init__(self, snapshot: Mapping[str, Any], health: Health):
        self.snapshot, self.health = snapshot, health

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.snapshot
        g = GaugeMetricFamily("ebok_worker_documents", "Documents by processing state.", labels=["state"])
        for state, n in s["queue"].items():
            g.add_metric([state], n)
        yield g
        g = GaugeMetricFamily("ebok_worker_declarations", "eBOK declarations by status.", labels=["status"])
        for status, n in s["outcomes"].items():
            g.add_metric([status], n)
        yield g
        c = CounterMetricFamily("ebok_worker_processed", "Documents processed, by their current outcome.", labels=["outcome"])
        for outcome, n in (s.get("processed") or {}).items():
            c.add_metric([outcome], n)
        yield c
        yield GaugeMetricFamily("ebok_worker_oldest_pending_seconds", "Age of the oldest pending document (0: none).", value=self.health.perfdata["oldest_pending_s"])
        yield GaugeMetricFamily("ebok_worker_failed_parked", "Documents parked after exhausting their retries.", value=s["failed_parked"])
        yield GaugeMetricFamily("ebok_worker_review_queue", "Declarations waiting for the office's review.", value=review_queue(s))
        yield GaugeMetricFamily("ebok_worker_scan_quarantined", "Scan pairs in the quarantine folder.", value=scan_quarantined(s))
        g = GaugeMetricFamily("ebok_worker_correspondence", "Correspondence items: all kept, waiting for the hand-over, handed over.", labels=["state"])
        corr = correspondence(s)
        for state in ("total", "pending", "handed_over"):
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
        yield GaugeMetricFamily("ebok_worker_health", "status --monitor: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", value=self.health.state)
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
        daemon = s.get("daemon") or {}
        if "database_ok" in daemon:
            yield GaugeMetricFamily("ebok_worker_database_up", "1 when the daemon reached the database on its last pass.", value=1 if daemon["database_ok"] else 0)


def metrics_text(snapshot: Mapping[str, Any], health: Health) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(_SnapshotCollector(snapshot, health))
    return generate_latest(registry).decode("utf-8")


def write_metrics(path: Path, snapshot: Mapping[str, Any], health: Health) -> None:
    """Write the textfile atomically (a temporary file beside it, then rename)."""
    from prometheus_client import CollectorRegistry, write_to_textfile

    registry = CollectorRegistry()
    registry.register(_SnapshotCollector(snapshot, health))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


# --- the daemon's publishing -------------------------------------------------------------------


class Publisher:
    """After every pass of the daemon: the snapshot → the metrics file and systemd's
    ``STATUS=``. When the database cannot be reached, the last snapshot is published again
    with ``daemon.database_ok = False`` (WARNING, ``ebok_worker_database_up 0``)."""

    def __init__(self, app: Any, notifier: Any = None):
        self.app, self.notifier = app, notifier
        self.last: dict[str, Any] | None = None

    def publish(self, now: datetime | None = None) -> Health | None:
        import logging

        log = logging.getLogger("worker.monitor")
        try:
            snapshot = collect_status(self.app, now=now)
            snapshot["daemon"] = {"database_ok": True}
        except Exception as exc:  # the database is down: publish what was last known
            if not is_database_error(exc) or self.last is None:
                log.warning("status snapshot failed", extra={"event": "monitor.snapshot_failed", "error": type(exc).__name__})
                if self.notifier is not None:
                    self.notifier.status("baza danych niedostępna" if is_database_error(exc) else "nie można ustalić stanu")
                return None
            snapshot = dict(self.last, daemon={"database_ok": False})
        self.last = snapshot
        health = evaluate_for(self.app.config, snapshot, now)
        path = self.app.config.monitoring.metrics_file
        if path is not None:
            try:
                write_metrics(Path(path), snapshot, health)
            except OSError as exc:
                log.warning("metrics file not written", extra={"event": "monitor.metrics_failed", "error": str(exc)})
        if self.notifier is not None:
            self.notifier.status(status_line(snapshot, health))
        return health


def daemon_view(metrics_file: Path | None) -> dict[str, Any]:
    """What the daemon last published about itself (``ebok_worker_database_up``), read back
    from the metrics file for ``status --monitor``; empty when there is no file."""
    if metrics_file is None:
        return {}
    try:
        text = Path(metrics_file).read_text(encoding="utf-8")
    except OSError:
        return {}
    from prometheus_client.parser import text_string_to_metric_families

    try:
        for family in text_string_to_metric_families(text):
            if family.name == "ebok_worker_database_up":
                return {"database_ok": bool(family.samples[0].value)}
    except ValueError:
        return {}
    return {}
