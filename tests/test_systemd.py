"""The systemd side: the example unit, sysusers and tmpfiles entries of contrib/systemd/
(checked by systemd's own tools where they exist), and the daemon speaking the notify
protocol (READY, STATUS, WATCHDOG, STOPPING) to a socket as systemd would listen."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from worker import config as config_mod

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib" / "systemd"
UNIT = CONTRIB / "ebok-worker.service"


def unit_values() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def test_unit_survives_what_the_administrator_meets():
    v = unit_values()
    assert v["Service.Type"] == ["notify"] and v["Service.WatchdogSec"]
    assert v["Service.RestartPreventExitStatus"] == ["2"] and int(v["Service.RestartSec"][0]) >= 10
    assert "network-online.target" in v["Unit.Wants"][0] and "network-online.target" in v["Unit.After"][0]
    example = config_mod.load(ROOT / "config.example.toml").epuap
    assert int(v["Service.TimeoutStopSec"][0]) > example.connect_timeout_s + example.timeout_s
    assert v["Service.ProtectSystem"] == ["strict"] and v["Service.NoNewPrivileges"] == ["yes"]
    writable = " ".join(v["Service.ReadWritePaths"]).split()
    tmpfiles = [line.split()[1] for line in (CONTRIB / "tmpfiles.d" / "ebok-worker.conf").read_text().splitlines() if line.startswith("d ")]
    for folder in tmpfiles:
        if not folder.startswith("/etc/"):
            assert any(folder == w or folder.startswith(w + "/") for w in writable), folder
    user = v["Service.User"][0]
    assert (CONTRIB / "sysusers.d" / "ebok-worker.conf").read_text().count(f"\nu {user} ") == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here (apt-get install systemd)")
def test_systemd_analyze_verify_is_clean(tmp_path):
    # the unit names the production install path; verify checks that ExecStart exists, so
    # the copy points at this environment's entry point
    exe = Path(sys.executable).parent / "ebok-worker"
    assert exe.exists()
    unit = tmp_path / "ebok-worker.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/ebok-worker/bin/ebok-worker", str(exe)), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
                    reason="systemd-sysusers/systemd-tmpfiles are not installed here")
@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-tmpfiles --root needs root to give the folders to the service user")
def test_sysusers_and_tmpfiles_create_the_user_and_folders(tmp_path):
    (tmp_path / "etc").mkdir()
    r = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(CONTRIB / "sysusers.d" / "ebok-worker.conf")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    assert passwd["ebok"][6] == "/usr/sbin/nologin"
    r = subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}", str(CONTRIB / "tmpfiles.d" / "ebok-worker.conf")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    inbox = tmp_path / "var" / "spool" / "ebok-worker" / "scans" / "inbox"
    assert inbox.is_dir() and inbox.stat().st_uid == int(passwd["ebok"][2]) and inbox.stat().st_mode & 0o7777 == 0o2770
    assert (tmp_path / "var" / "lib" / "ebok-worker" / "documents").is_dir()


@pytest.mark.slow
def test_daemon_notifies_ready_status_watchdog_and_stopping(write_config, tmp_path):
    cfg = write_config(processing={"interval_s": 1}, monitoring={"metrics_file": "metrics.prom"})
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(120)  # a bound against a hung test, not a measurement
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), "run"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        try:
            seen: list[str] = []
            while not ({"READY=1", "WATCHDOG=1"} <= set(seen) and any(s.startswith("STATUS=oczekujące") for s in seen)):
                seen += sock.recv(4096).decode().split("\n")
            proc.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in seen:
                seen += sock.recv(4096).decode().split("\n")
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    status = next(s for s in seen if s.startswith("STATUS=oczekujące"))
    assert status.startswith("STATUS=oczekujące: 0, do weryfikacji: 0, stan: OK")
    assert (tmp_path / "metrics.prom").read_text().count("ebok_worker_health 0.0") == 1
