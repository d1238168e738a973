"""``ebok-worker config check``: the configuration and everything it names, one Polish
line per problem naming the key (exit 0 / 2); ``run`` refuses to start on the same
problems; ``status --monitor`` reports them as CRITICAL."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.clitools import run_cli
from tests.conftest import epuap_env
from worker import fmt

DEMO = Path(__file__).resolve().parent.parent / "demo"


@pytest.fixture
def good(write_config, keys, tmp_path):
    """A complete configuration: ePUAP with the development keys (the key's password from
    its variable), the demo trust anchors and seal, the scan folders, the database."""
    trust = tmp_path / "trust"
    shutil.copytree(DEMO / "trust", trust)

    def write(epuap=None, signatures=None, scans=None, **sections):
        """``signatures=False``: no [signatures] section."""
        return write_config(
            epuap={"enabled": True, "endpoint": "https://epuap.example/pk_external_ws/services/pull",
                   "filerepo_endpoint": "https://epuap.example/repo-ws-ext/FileRepoService", "certificate": keys.system_certificate,
                   "private_key": keys.system_key, "private_key_password_env": "TEST_EPUAP_KEY_PASSWORD",
                   "response_certificate": keys.double_certificate, "mailboxes": [{"podmiot": "cr", "skrytka": "deklaracje"}], **(epuap or {})},
            signatures=None if signatures is False else
            {"trust_anchors": trust / "test-anchors.pem", "trusted_profile_seals": [trust / "test-pz-seal.pem"], **(signatures or {})},
            scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine", **(scans or {})},
            monitoring={"metrics_file": "metrics/ebok.prom"},
            **sections,
        )

    return write, epuap_env(keys), trust


def test_a_good_configuration_passes(good):
    write, env, _ = good
    r = run_cli(write(), "config", "check", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("Konfiguracja ") and r.stdout.endswith("jest poprawna: pliki, klucze, foldery i baza danych sprawdzone.\n")
    assert r.stderr == ""


def test_a_broken_configuration_lists_every_problem_under_its_key(good, tmp_path, keys, db_url):
    write, env, trust = good
    (trust / "broken-seal.pem").write_text("-----BEGIN CERTIFICATE-----\nnie certyfikat\n-----END CERTIFICATE-----\n")
    (tmp_path / "archive-is-a-file").write_text("x")
    missing_cert = tmp_path / "keys" / "missing.pem"
    cfg = write(
        epuap={"certificate": missing_cert},
        signatures={"trusted_profile_seals": [trust / "test-pz-seal.pem", trust / "broken-seal.pem"], "crls": [tmp_path / "nie-ma.crl"]},
        scans={"archive": "archive-is-a-file", "quarantine": "scans/inbox"},
        rules={"path": tmp_path / "zasady.toml"},
    )
    r = run_cli(cfg, "config", "check", env=dict(env, TEST_EPUAP_KEY_PASSWORD="złe hasło"))
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines[:-1] == [
        f"epuap.certificate: nie ma pliku {missing_cert}",
        f"signatures.trusted_profile_seals[1]: {trust / 'broken-seal.pem'} nie zawiera certyfikatów X.509 (PEM albo DER)",
        f"signatures.crls[0]: nie ma pliku {tmp_path / 'nie-ma.crl'}",
        f"scans.archive: {tmp_path / 'archive-is-a-file'} nie jest folderem",
        f"scans.quarantine: ten sam folder co scans.inbox ({tmp_path / 'scans' / 'inbox'})",
        f"rules.path: nie ma pliku {tmp_path / 'zasady.toml'}",
    ]
    assert lines[-1].endswith("6 problemów do poprawienia.")

    # the key's password: wrong, then not given at all
    cfg = write()
    r = run_cli(cfg, "config", "check", env=dict(env, TEST_EPUAP_KEY_PASSWORD="złe hasło"))
    assert r.returncode == 2 and r.stdout.splitlines()[0] == "epuap.private_key_password_env: hasło klucza epuap.private_key jest błędne (zmienna TEST_EPUAP_KEY_PASSWORD)"
    bare = {k: v for k, v in env.items() if k != "TEST_EPUAP_KEY_PASSWORD"}
    r = run_cli(cfg, "config", "check", env=bare)
    assert r.stdout.splitlines()[0] == "epuap.private_key_password_env: zmienna środowiskowa TEST_EPUAP_KEY_PASSWORD (hasło klucza epuap.private_key) nie jest ustawiona"
    # a key of another certificate
    r = run_cli(write(epuap={"certificate": keys.double_certificate}), "config", "check", env=env)
    assert r.stdout.splitlines()[0] == "epuap.private_key: klucz prywatny nie pasuje do certyfikatu epuap.certificate"


def test_the_file_repository_the_export_package_and_the_trusted_lists_are_checked(good, tmp_path):
    """The keys of attachments by reference (#21) and of the trusted lists and fetched
    revocation (#22), broken every way config check can see: one line per problem under
    its key, and run refuses to start on them."""
    write, env, trust = good
    (tmp_path / "signers.pem").write_text("-----BEGIN CERTIFICATE-----\nnie certyfikat\n-----END CERTIFICATE-----\n")
    (tmp_path / "duza-lista.xml").write_bytes(b"<x/>" * 100)
    (tmp_path / "cache-is-a-file").write_text("x")
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # a file as large as this machine's memory
    cfg = write(
        epuap={"filerepo_endpoint": "https://EPUAP.example:443/pk_external_ws/services/pull/", "filerepo_max_file_bytes": memory,
               "package_max_entry_bytes": 1024, "package_max_total_bytes": 512},
        signatures={"trusted_lists": ["listy/pl.xml", "https:///eu-lotl.xml", "listy/pl.xml", "duza-lista.xml"], "fetch_max_bytes": 100,
                    "trusted_list_signers": tmp_path / "signers.pem", "cache": "cache-is-a-file", "revocation": "required"},
    )
    r = run_cli(cfg, "config", "check", env=env)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines[:-1] == [
        "epuap.filerepo_endpoint: to ten sam adres co epuap.endpoint (usługa pobierania dokumentów): repozytorium plików ePUAP ma własny adres "
        "(…/FileRepoService) — usługa pobierania odmówiłaby wydania pliku i każdy załącznik przekazany przez odniesienie zostałby uznany za niedostępny",
        f"epuap.filerepo_max_file_bytes: pobranie pliku {fmt.size(memory)} potrzebuje do 7 razy tyle pamięci, a ten komputer ma "
        f"{fmt.size(memory)}: proces workera zostałby zabity przy każdej próbie pobrania",
        "epuap.package_max_total_bytes: 512 B to mniej niż epuap.package_max_entry_bytes (1,0 KiB)",
        f"signatures.trusted_lists[0]: nie ma pliku {tmp_path / 'listy' / 'pl.xml'}",
        "signatures.trusted_lists[1]: adres https:///eu-lotl.xml nie wskazuje serwera",
        f"signatures.trusted_lists[2]: ta sama lista co signatures.trusted_lists[0] ({tmp_path / 'listy' / 'pl.xml'})",
        f"signatures.trusted_lists[3]: plik {tmp_path / 'duza-lista.xml'} ma 400 B, więcej niż signatures.fetch_max_bytes (100 B)",
        f"signatures.trusted_list_signers: {tmp_path / 'signers.pem'} nie zawiera certyfikatów X.509 (PEM albo DER)",
        f"signatures.cache: {tmp_path / 'cache-is-a-file'} nie jest folderem",
        'signatures.revocation: ustawiono "required", ale nie podano signatures.crls ani signatures.revocation_fetch = true: '
        "nie byłoby czym sprawdzić unieważnienia i każdy podpis trafiłby do weryfikacji",
    ]
    assert lines[-1].endswith("10 problemów do poprawienia.")
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[0] == f"ebok-worker: {lines[0]}" and len(r.stderr.splitlines()) == 10

    # a list of another kind of address is refused when the file is read, by every command
    r = run_cli(write(signatures={"trusted_lists": ["ftp://lotl.example/eu-lotl.xml"], "trusted_list_signers": trust / "test-anchors.pem"}),
                "config", "check", env=env)
    assert r.returncode == 2
    assert r.stderr == "ebok-worker: signatures.trusted_lists[0]: ftp://lotl.example/eu-lotl.xml — lista to adres http:// lub https:// albo ścieżka do pliku\n"


def test_the_database_must_be_reachable_and_current(good, tmp_path):
    write, env, _ = good
    r = run_cli(write(database={"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}), "config", "check", env=env)
    assert r.returncode == 2
    assert r.stdout.splitlines()[0] == "database.url: nie można połączyć się z bazą danych (127.0.0.1:1/none): serwer nie przyjmuje połączeń (czy PostgreSQL działa i słucha pod tym adresem?)"
    r = run_cli(write(database={"url": "sqlite:///nowa.sqlite3"}), "config", "check", env=env)
    assert r.stdout.splitlines()[0] == f"database.url: plik bazy {tmp_path / 'nowa.sqlite3'} jeszcze nie istnieje: uruchom `ebok-worker db upgrade`"
    assert not (tmp_path / "nowa.sqlite3").exists()  # the check creates nothing
    from adapters.db.migrate import make_engine, upgrade

    old = make_engine(f"sqlite:///{tmp_path / 'stara.sqlite3'}")
    upgrade(old, "0005")
    old.dispose()
    r = run_cli(write(database={"url": "sqlite:///stara.sqlite3"}), "config", "check", env=env)
    assert r.stdout.splitlines()[0] == "database.url: baza danych jest w wersji 0005, a ta wersja workera potrzebuje 0008: uruchom `ebok-worker db upgrade`"
    r = run_cli(write(database={"url": "postgresql+psycopg://nobody@127.0.0.1:1/none", "password_env": "EBOK_TEST_NO_SUCH_VARIABLE"}), "config", "check", env=env)
    assert r.stdout.splitlines()[0] == "database.password_env: zmienna środowiskowa EBOK_TEST_NO_SUCH_VARIABLE (hasło bazy danych) nie jest ustawiona"


def test_a_mailbox_configured_twice_is_refused_by_every_command(good):
    write, env, _ = good
    cfg = write(epuap={"mailboxes": [{"podmiot": "cr", "skrytka": "a"}, {"podmiot": "cr", "skrytka": "b"}, {"podmiot": "cr", "skrytka": "a"}]})
    for argv in (("config", "check"), ("run", "--once"), ("status",)):
        r = run_cli(cfg, *argv, env=env)
        assert r.returncode == 2
        assert r.stderr == "ebok-worker: epuap.mailboxes[2]: skrytka /cr/a jest już skonfigurowana (epuap.mailboxes[0])\n"


def test_every_load_error_is_listed(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[epuap]\ntimeout_s = 0\nbatch_limit = \"10\"\n[monitoring]\npending_warn_s = -1\n", encoding="utf-8")
    r = run_cli(cfg, "config", "check")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "ebok-worker: epuap.timeout_s: musi być większe od 0",
        "ebok-worker: epuap.batch_limit: musi być liczbą całkowitą",
        "ebok-worker: monitoring.pending_warn_s: musi być większe od 0",
    ]


def test_run_refuses_to_start_on_the_same_problems(good, tmp_path):
    write, env, _ = good
    missing = tmp_path / "brak.pem"
    cfg = write(epuap={"certificate": missing}, scans={"quarantine": "scans/inbox"})
    r = run_cli(cfg, "run", "--once", env=env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"ebok-worker: epuap.certificate: nie ma pliku {missing}",
        f"ebok-worker: scans.quarantine: ten sam folder co scans.inbox ({tmp_path / 'scans' / 'inbox'})",
    ]
    # ePUAP on without trust anchors: no declaration's signature could be verified
    r = run_cli(write(signatures=False), "run", "--once", env=env)
    assert r.returncode == 2 and r.stderr.startswith("ebok-worker: signatures.trust_anchors: wymagane, gdy epuap.enabled = true")


def test_status_monitor_reports_a_broken_configuration_as_critical(good, tmp_path):
    write, env, trust = good
    cfg = write()
    r = run_cli(cfg, "status", "--monitor", env=env)
    assert "config_problems=0;;0;0" in r.stdout and "konfiguracja:" not in r.stdout
    os.remove(trust / "test-pz-seal.pem")  # the seal's file gone after start
    r = run_cli(cfg, "status", "--monitor", env=env)
    assert r.returncode == 2 and r.stdout.startswith("EBOK-WORKER CRITICAL - ")
    assert f"; konfiguracja: signatures.trusted_profile_seals[0]: nie ma pliku {trust / 'test-pz-seal.pem'} |" in r.stdout
    assert "config_problems=1;;0;0" in r.stdout
    # the checker's environment without the key's password: the key is not loaded, no false alarm
    os.symlink(trust / "test-anchors.pem", trust / "test-pz-seal.pem")
    bare = {k: v for k, v in env.items() if k != "TEST_EPUAP_KEY_PASSWORD"}
    r = run_cli(cfg, "status", "--monitor", env=bare)
    assert "config_problems=0;;0;0" in r.stdout
