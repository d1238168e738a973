"""Configuration: typed, validated, unknown keys and bad values refused naming the key."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from worker import config
from worker.config import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_config_is_valid_and_documents_every_key():
    cfg = config.load(EXAMPLE)
    assert cfg.epuap.mailboxes and cfg.epuap.mailboxes[0].address.startswith("/")
    text = EXAMPLE.read_text(encoding="utf-8")
    for section, cls in config._SECTIONS.items():
        assert f"[{section}]" in text, section
        for f in config.fields(cls):
            assert f"{f.name} =" in text or f"# {f.name} =" in text or f.name == "mailboxes", f"{section}.{f.name} not documented"


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    p = write(tmp_path, '[storage]\npath = "docs"\n[signatures]\ntrust_anchors = "/abs/anchors.pem"\ntrusted_profile_seals = ["seal.pem"]\n')
    cfg = config.load(p)
    assert cfg.storage.path == tmp_path.resolve() / "docs"
    assert cfg.signatures.trust_anchors == Path("/abs/anchors.pem")
    assert cfg.signatures.trusted_profile_seals == (tmp_path.resolve() / "seal.pem",)


@pytest.mark.parametrize(
    "text, key",
    [
        ("[database]\nurl = 'sqlite:///x'\ncolour = 'red'\n", "database.colour"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[epuap]\ntimeout_s = 'slow'\n", "epuap.timeout_s"),
        ("[epuap]\ntimeout_s = 0\n", "epuap.timeout_s"),
        ("[logging]\nformat = 'xml'\n", "logging.format"),
        ("[scans]\nmin_confidence = 1.5\n", "scans.min_confidence"),
        ("[processing]\nmax_attempts = true\n", "processing.max_attempts"),
        ("[payments]\nbank_branch = '12345678'\n", "payments.bank_branch"),
        ("[epuap]\nenabled = true\nendpoint = 'http://x'\n", "epuap.certificate"),
        ("[[epuap.mailboxes]]\npodmiot = 'a/b'\nskrytka = 'c'\n", "epuap.mailboxes[0].podmiot"),
        ("[database]\nurl = 'mysql://x'\n", "database.url"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text))
    assert str(err.value).startswith(key + ":")
    assert "\n" not in str(err.value)


def test_decimal_and_defaults(tmp_path):
    cfg = config.load(write(tmp_path, "[scans]\nmin_confidence = 0.85\n"))
    assert cfg.scans.min_confidence == Decimal("0.85")
    assert cfg.logging.format == "json" and cfg.processing.max_attempts > 0


def test_database_password_comes_from_the_environment(tmp_path, monkeypatch):
    p = write(tmp_path, "[database]\nurl = 'postgresql+psycopg://ebok@db.example/ebok'\npassword_env = 'EBOK_DB_PW'\n")
    cfg = config.load(p)
    with pytest.raises(ConfigError, match="database.password_env"):
        cfg.database_url()
    monkeypatch.setenv("EBOK_DB_PW", "s3cret")
    assert cfg.database_url() == "postgresql+psycopg://ebok:s3cret@db.example/ebok"


def test_cli_exits_2_with_one_line_naming_the_key(tmp_path):
    p = write(tmp_path, "[epuap]\npoll_interval_s = -5\n")
    r = subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(p), "status"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "epuap.poll_interval_s" in r.stderr and "Traceback" not in r.stderr


def test_missing_config_file_is_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(tmp_path / "none.toml"), "status"], capture_output=True, text=True)
    assert r.returncode == 2 and "nie znaleziono" in r.stderr


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path):
    cfg = config.load(write(tmp_path, "[database]\nurl = 'sqlite:///var/ebok.sqlite3'\n"))
    assert cfg.database.url == f"sqlite:///{tmp_path.resolve()}/var/ebok.sqlite3"


def test_a_rate_above_its_statutory_maximum_stops_the_worker(tmp_path):
    from importlib import resources

    shipped = (resources.files("rules") / "czysty-region.toml").read_text(encoding="utf-8")
    assert "rate = 32.00" in shipped
    (tmp_path / "rules.toml").write_text(shipped.replace("rate = 32.00", "rate = 41.24", 1), encoding="utf-8")
    p = write(tmp_path, "[rules]\npath = 'rules.toml'\n[database]\nurl = 'sqlite:///ebok.sqlite3'\n")
    r = subprocess.run([sys.executable, "-m", "worker", "--config", str(p), "process"], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("ebok-worker: rules.path:") and "41.24" in r.stderr and r.stderr.count("\n") == 1
