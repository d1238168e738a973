"""Configuration: typed, validated, unknown keys and bad values refused naming the key."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.clitools import run_cli
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


@pytest.mark.parametrize(
    "text, message",
    [  # one line each: the dotted key (tables in arrays counted from 0), then the Polish text
        ("[[epuap.mailboxes]]\npodmiot = 'a'\nskrytka = 'b'\n[[epuap.mailboxes]]\npodmiot = 'a/b'\nskrytka = 'c'\n",
         "epuap.mailboxes[1].podmiot: musi być niepustą nazwą bez '/' (najwyżej 100 znaków)"),
        ("[[epuap.mailboxes]]\npodmiot = 'a'\nskrytka = 'b'\nkolor = 'x'\n", "epuap.mailboxes[0].kolor: nieznany klucz"),
        ("[[epuap.mailboxes]]\npodmiot = 'a'\n", "epuap.mailboxes[0].skrytka: brak wymaganego klucza"),
        ("[nonsense]\nx = 1\n", "nonsense: nieznana sekcja konfiguracji"),
        ("path = 'elsewhere.toml'\n", "path: nieznana sekcja konfiguracji"),
        ("epuap = 'on'\n", "epuap: musi być tabelą"),
        ("[epuap]\ntimeout_s = 'slow'\n", "epuap.timeout_s: musi być liczbą"),
        ("[epuap]\ntimeout_s = 0\n", "epuap.timeout_s: musi być większe od 0"),
        ("[epuap]\nbatch_limit = 2.5\n", "epuap.batch_limit: musi być liczbą całkowitą"),
        ("[epuap]\nbatch_limit = '10'\n", "epuap.batch_limit: musi być liczbą całkowitą"),
        ("[epuap]\nmailboxes = 'deklaracje'\n", "epuap.mailboxes: musi być listą"),
        ("[database]\necho = 1\n", "database.echo: musi być true albo false"),
        ("[database]\nurl = 5\n", "database.url: musi być tekstem"),
        ("[logging]\nformat = 'xml'\n", "logging.format: dozwolone wartości: json, text (podano 'xml')"),
        ("[storage]\npath = ''\n", "storage.path: musi być ścieżką (niepustym tekstem)"),
        ("[signatures]\ncrls = ['a.crl', 3]\n", "signatures.crls[1]: musi być ścieżką (niepustym tekstem)"),
        ("[scans]\nmin_confidence = 1.5\n", "scans.min_confidence: nie może być większe od 1"),
        ("[payments]\naccount_prefix = '12a'\n", "payments.account_prefix: najwyżej 8 cyfr"),
    ],
)
def test_error_text_is_polish_and_names_the_dotted_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text))
    assert str(err.value) == message


@pytest.mark.parametrize("section", sorted(config._SECTIONS))
def test_every_section_refuses_unknown_keys(tmp_path, section):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, f"[{section}]\nkolor = 'x'\n"))
    assert str(err.value) == f"{section}.kolor: nieznany klucz"


def test_values_are_not_coerced_from_other_types(tmp_path):
    cfg = config.load(write(tmp_path, "[epuap]\ntimeout_s = 90\n[scans]\nmin_confidence = 0.9\n"))
    assert cfg.epuap.timeout_s == 90.0 and isinstance(cfg.epuap.timeout_s, float)
    assert cfg.scans.min_confidence == Decimal("0.9")  # from the TOML text, never through binary float noise
    for text in ("[epuap]\nenabled = 'true'\n", "[processing]\nmax_attempts = 8.0\n", "[payments]\naccount_prefix = 4000\n"):
        with pytest.raises(ConfigError):
            config.load(write(tmp_path, text))


def test_paths_in_arrays_and_defaults_are_relative_to_the_config_file(tmp_path):
    cfg = config.load(write(tmp_path, "[signatures]\ncrls = ['a.crl', '/abs/b.crl']\n"))
    assert cfg.signatures.crls == (tmp_path.resolve() / "a.crl", Path("/abs/b.crl"))
    assert cfg.correspondence.outbox == tmp_path.resolve() / "var" / "outbox"
    assert cfg.path == tmp_path.resolve() / "config.toml"


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
    r = run_cli(p, "status")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "epuap.poll_interval_s" in r.stderr and "Traceback" not in r.stderr


def test_missing_config_file_is_exit_2(tmp_path):
    r = run_cli(tmp_path / "none.toml", "status")
    assert r.returncode == 2 and "nie znaleziono" in r.stderr


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path):
    cfg = config.load(write(tmp_path, "[database]\nurl = 'sqlite:///var/ebok.sqlite3'\n"))
    assert cfg.database.url == f"sqlite:///{tmp_path.resolve()}/var/ebok.sqlite3"


@pytest.mark.slow
def test_a_rate_above_its_statutory_maximum_stops_the_worker(tmp_path):
    """Through the module entry point (``python -m worker``) in its own process."""
    from importlib import resources

    shipped = (resources.files("rules") / "czysty-region.toml").read_text(encoding="utf-8")
    assert "rate = 32.00" in shipped
    (tmp_path / "rules.toml").write_text(shipped.replace("rate = 32.00", "rate = 41.24", 1), encoding="utf-8")
    p = write(tmp_path, "[rules]\npath = 'rules.toml'\n[database]\nurl = 'sqlite:///ebok.sqlite3'\n")
    r = subprocess.run([sys.executable, "-m", "worker", "--config", str(p), "process"], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("ebok-worker: rules.path:") and "41.24" in r.stderr and r.stderr.count("\n") == 1
