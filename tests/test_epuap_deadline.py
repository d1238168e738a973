"""Issue #20: every ePUAP call has an overall deadline (``epuap.timeout_s`` bounds the
whole call, also an answer that trickles in a byte at a time, which no per-read timeout
ever cuts); a stop (SIGTERM) cuts the call under way; a plain ``http://`` endpoint is a
WARNING at start-up. Real HTTP between the zeep client and the local double, the real
durable intake, and for the daemon a real process and real signals."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace

import pytest

from tests.clitools import run_cli
from tests.conftest import epuap_env, epuap_section
from tests.test_epuap_pull import DEKL, assert_exactly_once, cfg, intake, pull, samples, server  # noqa: F401  (fixtures)
from tests.test_intake_signals import DEMO, assert_nothing_lost, double_for_the_daemon, events_of, start_daemon, stopped_by_sigterm, wait_for


def test_a_trickling_answer_is_cut_at_the_deadline_and_retried(server, cfg, intake, engine):
    # headers at once, then one byte every 0.2 s: each read makes progress, so only a
    # deadline of the whole call can end it (the answer would take ~20 minutes)
    expected = {DEKL.address: server.pending(DEKL.address)}
    server.faults.trickle_s = 0.2
    server.faults.add("trickle", "pobierzNastepny", times=1, after=1)
    started = time.monotonic()
    report = pull(replace(cfg, mailboxes=(DEKL,), timeout_s=1.0), intake)[DEKL.address]
    took = time.monotonic() - started
    assert report.ok and report.drained and report.retries == 1
    assert "czas oczekiwania" in report.errors[0] and "pobierzNastepny" in report.errors[0]
    assert "epuap.timeout_s = 1 s" in report.errors[0]
    assert took < 15, took
    assert_exactly_once(server, intake, engine, expected)


def test_a_trickling_confirmation_is_cut_and_the_document_is_not_lost(server, cfg, intake, engine):
    expected = {DEKL.address: server.pending(DEKL.address)}
    server.faults.trickle_s = 0.2
    server.faults.add("trickle", "potwierdzOdebranie", times=1)
    report = pull(replace(cfg, mailboxes=(DEKL,), timeout_s=1.0), intake)[DEKL.address]
    # the double had taken the confirmation before its answer trickled: the next fetch
    # shows it took effect (another document at the head), nothing is fetched twice
    assert report.ok and report.retries == 1 and report.confirmed == len(expected[DEKL.address])
    assert_exactly_once(server, intake, engine, expected)


def test_a_stop_cuts_the_call_under_way(server, cfg, intake, engine):
    expected = {DEKL.address: server.pending(DEKL.address)}
    server.faults.trickle_s = 0.5
    server.faults.add("trickle", "pobierzNastepny", times=-1, after=2)
    stop = threading.Event()
    reports: list = []
    worker = threading.Thread(target=lambda: reports.append(pull(replace(cfg, mailboxes=(DEKL,), timeout_s=120), intake, stop=stop)))
    worker.start()
    wait_for(lambda: [k for _, k in server.faults.injected] == ["trickle"], "the trickling answer", timeout=30)
    stopped = time.monotonic()
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert time.monotonic() - stopped < 2.0  # not the 120 s of the deadline
    report = reports[0][DEKL.address]
    assert not report.ok and report.gave_up.startswith("Przerwano") and report.blocked is None
    assert report.confirmed == 2  # the documents before it; the one in hand stays on ePUAP
    assert len(server.pending(DEKL.address)) == len(expected[DEKL.address]) - 2
    server.faults.clear()
    again = pull(replace(cfg, mailboxes=(DEKL,)), intake)[DEKL.address]
    assert again.ok and again.drained
    assert_exactly_once(server, intake, engine, expected)


def test_run_once_cuts_a_trickling_answer_and_takes_every_document_in(write_config, keys, epuap_double, trust_files, db_url):
    # the hang case of the issue through the command line: the first answer trickles; the
    # pass goes on after the deadline and the mailbox is drained, every document processed
    server = epuap_double(DEMO / "epuap")
    server.faults.trickle_s = 3.0
    server.faults.add("trickle", "pobierzNastepny", times=1)
    anchors = DEMO / "trust" / "test-anchors.pem"
    seal = DEMO / "trust" / "test-pz-seal.pem"
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje", "czystyregion/korespondencja", timeout_s=2),
        signatures={"trust_anchors": anchors, "trusted_profile_seals": [seal]},
        processing={"workers": 1},
    )
    started = time.monotonic()
    r = run_cli(cfg, "run", "--once", env=epuap_env(keys))
    assert r.returncode == 0, r.stdout[-2000:]
    assert time.monotonic() - started < 60
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    # the endpoint of the local double is plain HTTP: said loudly at start-up
    warnings = {e["key"]: e for e in events if e["event"] == "epuap.insecure_endpoint"}
    assert set(warnings) == {"epuap.endpoint", "epuap.filerepo_endpoint"}
    assert all(w["level"] == "WARNING" and w["endpoint"].startswith("http://127.0.0.1") for w in warnings.values())
    retries = [e for e in events if e["event"] == "epuap.retry"]
    assert len(retries) == 1
    assert all(not m.queue for m in server.mailboxes.values())
    done = [e for e in events if e["event"] == "document.done"]
    assert len(done) == 8


def test_no_warning_for_an_https_endpoint(write_config, keys, caplog):
    from worker.app import check_epuap
    from worker.config import load

    cfg = write_config(epuap={**epuap_section(type("S", (), {"url": "https://epuap.example.invalid/pk_external_ws/services/pull",
                                                                "filerepo_url": "https://epuap.example.invalid/FileRepoService"})(),
                                              keys, "czystyregion/deklaracje")})
    with caplog.at_level("WARNING"):
        os.environ["TEST_EPUAP_KEY_PASSWORD"] = keys.system_key_password
        try:
            check_epuap(load(cfg))
        finally:
            del os.environ["TEST_EPUAP_KEY_PASSWORD"]
    assert not [r for r in caplog.records if getattr(r, "event", "") == "epuap.insecure_endpoint"]


@pytest.mark.slow
def test_sigterm_while_an_answer_trickles_exits_0_within_the_deadline_losing_nothing(db_url, tmp_path, write_config):
    # as the issue found it: headers, then a byte every 3 s; the daemon stopped only at a
    # second SIGTERM (exit 1) after 95 s
    server, cfg, env = double_for_the_daemon(tmp_path, write_config, "trickle", trickle_s=3.0)
    out = tmp_path / "daemon.log"
    try:
        daemon = start_daemon(cfg, env, out)
        try:
            wait_for(lambda: "trickle" in [k for _, k in server.faults.injected], "a trickling answer")
            time.sleep(4)  # a few bytes have come
        finally:
            took = stopped_by_sigterm(daemon, 60)
        assert daemon.returncode == 0
        assert took < 10, took
        assert "run.stopped" in {e["event"] for e in events_of(out)}
        assert_nothing_lost(db_url, server, cfg, env)
    finally:
        server.shutdown()


def test_the_watch_thread_ends_with_the_call(server, cfg):
    # no thread outlives a call (a command forks its processors after the pull)
    from adapters.epuap.client import PullClient

    def watching() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name == "epuap-deadline"]

    with PullClient.from_config(replace(cfg, mailboxes=(DEKL,))) as client:
        client.count(DEKL)
        client.fetch(DEKL)
        assert watching() == []
