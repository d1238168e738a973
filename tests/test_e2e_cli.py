"""The real thing through the command line: `ebok-worker run --once` and the daemon `run`
in their own processes, pulling over real HTTP from the local ePUAP double (two mailboxes
with the project's copy of the signed samples and a general letter) into the database; then
`status`, `reprocess`, `check`; SIGTERM stops the daemon cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from adapters.db.tables import ebok_declaration, ebok_fee_period, ebok_payer, worker_document
from tests.clitools import run_cli, run_cli_process
from tests.conftest import epuap_env, epuap_section

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"


@pytest.fixture
def setup(write_config, keys, epuap_double):
    server = epuap_double(DEMO / "epuap")
    cfg = write_config(
        epuap=epuap_section(server, keys, "czystyregion/deklaracje", "czystyregion/korespondencja"),
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]},
        payments={"bank_branch": "10901014"},
        logging={"level": "DEBUG"},
    )
    return cfg, epuap_env(keys), server


def cli(cfg, env, *args):
    """In this process: what the command does, not how a process starts."""
    return run_cli(cfg, *args, env=env)


def all_pesels() -> set[str]:
    found = set()
    for p in (DEMO / "epuap").rglob("*.xml"):
        found |= set(re.findall(r"<[\w:]*PESEL>(\d{11})<", p.read_text(encoding="utf-8")))
    return found


@pytest.mark.slow
def test_run_once_drains_both_mailboxes_exactly_once(setup, db_url):
    """The whole way in real processes: the console's logs, exit codes and outputs."""
    cfg, env, server = setup
    cli = run_cli_process
    r = cli(cfg, "run", "--once", env=env)
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert {"epuap.fetch", "intake.stored", "document.step", "document.done", "run.once", "form.unknown", "signature.verified"} <= {e["event"] for e in events}
    assert all(e["event"] != "log" and "." in e["event"] for e in events)  # every record has a stable event name
    # no personal data in the logs
    pesels = all_pesels()
    assert len(pesels) >= 6
    for pesel in pesels:
        assert pesel not in r.stdout and pesel not in r.stderr
    for name in ("Hajduk", "Bednarz", "Kubica", "Paderewskiego"):
        assert name not in r.stdout

    engine = create_engine(db_url)
    with engine.connect() as conn:
        docs = conn.execute(select(worker_document)).mappings().all()
        decls = conn.execute(select(ebok_declaration)).mappings().all()
        payers = conn.execute(select(ebok_payer)).mappings().all()
        fee_periods = conn.execute(select(ebok_fee_period)).mappings().all()
    # six declarations, the general letter and the letter with an attachment by reference
    assert len(docs) == 8 and {d["state"] for d in docs} == {"DONE"}
    assert sorted(d["kind"] for d in docs) == ["CORRESPONDENCE"] * 2 + ["DECLARATION"] * 6
    assert len(decls) == 6 and {d["status"] for d in decls} == {"ACCEPTED"}
    assert sorted(f"{d['computed_fee']:.2f}" for d in decls) == ["144.00", "157.33", "211.00", "260.50", "743.17", "76.00"]
    assert len(payers) == 6 and all(len(p["bank_account"]) == 26 for p in payers)
    assert len(fee_periods) == 6
    assert all(not m.queue for m in server.mailboxes.values())  # every document confirmed

    # everything delivered again (a lost confirmation): recognised, nothing new
    server.load_tree(DEMO / "epuap")
    r2 = cli(cfg, "run", "--once", env=env)
    assert r2.returncode == 0, r2.stderr
    with engine.connect() as conn:
        assert len(conn.execute(select(worker_document)).all()) == 8
        assert len(conn.execute(select(ebok_declaration)).all()) == 6
    assert all(not m.queue for m in server.mailboxes.values())

    s = cli(cfg, "status", "--json", env=env)
    assert s.returncode == 0, s.stderr
    status = json.loads(s.stdout)
    assert status["queue"]["DONE"] == 8 and status["correspondence"]["total"] == 2
    assert status["correspondence"]["handed_over"] == 2 and status["correspondence"]["pending"] == 0
    # the letters reached the office's outbox (default: var/outbox beside the config), once each
    letters = sorted((p for p in (cfg.parent / "var" / "outbox").glob("*/*") if p.is_dir()), key=lambda p: int(p.name))
    assert [p.parent.name for p in letters] == ["2025-09-01", "2025-09-01"]
    sent = {(p / "dokument.xml").read_bytes() for p in letters}
    assert sent == {(DEMO / "epuap" / "czystyregion" / "korespondencja" / name).read_bytes()
                    for name in ("pismo-ogolne.xml", "pismo-z-zalacznikiem.xml")}
    assert status["outcomes"]["ACCEPTED"] == 6
    assert {m["address"] for m in status["mailboxes"] if m["last_success_at"]} == {"/czystyregion/deklaracje", "/czystyregion/korespondencja"}

    dry = cli(cfg, "reprocess", "--status", "ACCEPTED", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    out = json.loads(dry.stdout)
    assert len(out["documents"]) == 6 and out["would_change"] == 0

    again = cli(cfg, "reprocess", "--channel", "EPUAP", env=env)
    assert again.returncode == 0, again.stderr
    with engine.connect() as conn:
        assert len(conn.execute(select(ebok_declaration)).all()) == 6
        assert len(conn.execute(select(ebok_fee_period)).all()) == 6
    engine.dispose()


def test_unreachable_epuap_does_not_stop_processing(setup, db_url, tmp_path):
    cfg, env, server = setup
    server.shutdown()
    r = cli(cfg, env, "run", "--once")
    assert r.returncode == 1  # the pass could not drain the mailboxes
    assert "Traceback" not in r.stderr
    s = json.loads(cli(cfg, env, "status", "--json").stdout)
    assert all(m["last_success_at"] is None and m["last_error"] for m in s["mailboxes"])


def test_wrong_key_password_is_a_configuration_error(setup):
    cfg, env, server = setup
    r = cli(cfg, dict(env, TEST_EPUAP_KEY_PASSWORD="wrong"), "pull")
    assert r.returncode == 2
    assert r.stderr.startswith("ebok-worker: epuap.") and r.stderr.count("\n") == 1


def test_pull_then_process_and_an_unknown_mailbox(setup):
    cfg, env, server = setup
    assert cli(cfg, env, "pull", "--mailbox", "/nie/ma").returncode == 2
    r = cli(cfg, env, "pull", "--mailbox", "/czystyregion/korespondencja")
    assert r.returncode == 0, r.stderr
    assert len(server.mailboxes["/czystyregion/korespondencja"].queue) == 0 and len(server.mailboxes["/czystyregion/deklaracje"].queue) == 6
    p = cli(cfg, env, "process")
    assert p.returncode == 0 and "Przetworzono: 2" in p.stdout  # the general letter and the letter with an attachment by reference


def test_check_json_prints_the_contract_shape(setup, shared_dir):
    cfg, env, _ = setup
    signed = shared_dir / "spec" / "samples" / "signed"
    expected = {e["file"]: e for e in json.loads((signed / "expected.json").read_text(encoding="utf-8"))}
    for name, exp in expected.items():
        r = cli(cfg, env, "check", str(signed / name), "--json", "--filed-at", exp["filed_at"])
        assert r.returncode == 0, r.stderr
        (out,) = json.loads(r.stdout)
        assert set(out) == {"file", "form", "channel", "status", "findings", "declared_fee", "computed_fee", "signature", "signature_status", "signer"}
        for key in ("form", "status", "findings", "declared_fee", "computed_fee", "signature", "signature_status"):
            assert out[key] == exp[key], (name, key)
        assert out["channel"] == "EPUAP" and out["signer"] and not any(ch.isdigit() for ch in out["signer"])
    attack = shared_dir / "reference" / "xml-attacks" / "xmlbomb.xml"
    (out,) = json.loads(cli(cfg, env, "check", str(attack), "--json").stdout)
    assert out["status"] == "REJECTED" and [f["code"] for f in out["findings"]] == ["XML_MALFORMED"]


def test_reprocess_by_received_date(setup):
    cfg, env, _ = setup
    assert cli(cfg, env, "run", "--once").returncode == 0
    none = json.loads(cli(cfg, env, "reprocess", "--until", "2000-01-01", "--dry-run", "--json").stdout)
    assert none["documents"] == []
    today = json.loads(cli(cfg, env, "reprocess", "--since", "2000-01-01", "--dry-run", "--json").stdout)
    assert len(today["documents"]) == 8  # six declarations, two letters
    assert {d["new_outcome"] for d in today["documents"]} == {"ACCEPTED", "CORRESPONDENCE"}  # the letters are no rejected declarations
    assert cli(cfg, env, "reprocess", "--dry-run").returncode == 2  # no selection given


@pytest.mark.slow
def test_run_pulls_processes_and_stops_on_sigterm(setup, db_url):
    cfg, env, server = setup
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    engine = create_engine(db_url)
    try:
        deadline = time.monotonic() + 120
        count, handed = 0, False
        while time.monotonic() < deadline and (count < 6 or not handed):
            time.sleep(0.5)
            handed = any(p.is_dir() for p in (cfg.parent / "var" / "outbox").glob("*/*"))  # the letter, handed over by the daemon
            try:
                with engine.connect() as conn:
                    count = conn.execute(select(func.count()).select_from(ebok_declaration)).scalar_one()
            except Exception:
                count = 0  # not migrated yet
            assert proc.poll() is None, proc.stderr.read()
        assert count == 6 and handed
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
    assert proc.returncode == 0, err
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[0] == "run.started" or "run.started" in events
    assert events[-1] == "run.stopped" and "run.stopping" in events
    assert "document.done" in events and "epuap.pass" in events and "correspondence.handed_over" in events
