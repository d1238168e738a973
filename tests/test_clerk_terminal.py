"""A clerk's session at a real terminal (a pseudo-terminal: the commands' stdout and stderr
are the terminal, as at the office's desk), through the real command line in its own
process: everything on the screen is Polish, no JSON log line between the lines of a
result or under the progress bar, never a traceback — also with the database down
(``spec/operations.md``, "What a clerk sees")."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli_polish import ENGLISH

pytestmark = pytest.mark.slow  # every command in its own process, on a terminal

DEMO = Path(__file__).resolve().parent.parent / "demo"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
#: what English would reach the screen through: log records, a traceback, the driver's text
MORE_ENGLISH = {"failed", "stored", "document", "traceback", "connection", "refused", "running", "server", "exception", "most", "recent", "call"}


def on_terminal(cfg: Path, *args: str, env: dict | None = None) -> tuple[int, str]:
    """``ebok-worker --config CFG ARGS…`` with a pseudo-terminal as stdin, stdout and stderr:
    the exit code and what the clerk saw."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "--config", str(cfg), *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env or dict(os.environ), close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command has ended and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    code = proc.wait(timeout=120)
    os.close(master)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def polish_screen(text: str) -> None:
    assert "Traceback" not in text and "None" not in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith("{")], text  # no JSON log line
    plain = re.sub(r"--?[\w-]+|\b[a-z_]+(?:\.[a-z_0-9\[\]]+)+", " ", text)  # options and dotted keys are names
    words = set(re.findall(r"(?<![-\w])[a-z']{4,}(?![-\w])", plain))
    assert sorted(words & (ENGLISH | MORE_ENGLISH)) == [], text


@pytest.fixture
def desk(write_config, tmp_path):
    cfg = write_config(scans={"enabled": True, "inbox": "scans/inbox", "archive": "scans/archive", "quarantine": "scans/quarantine"},
                       processing={"workers": 2, "batch_size": 1})
    (tmp_path / "scans" / "inbox").mkdir(parents=True)
    for f in (DEMO / "scans").iterdir():
        shutil.copyfile(f, tmp_path / "scans" / "inbox" / f.name)
    return cfg


def test_a_clerks_session_on_a_terminal_is_polish_and_free_of_logs(desk, tmp_path):
    code, screen = on_terminal(desk, "scan")
    assert code == 0 and screen.strip() == "Skany: przyjęte 1, już wcześniej przyjęte 0, czekają na komplet 0, w kwarantannie 0, błędy 0"
    # a pair that cannot be read: the warning is one short line in Polish words, the result below it
    (tmp_path / "scans" / "inbox" / "zly.xml").write_text("<nie-skan/>", encoding="utf-8")
    code, screen = on_terminal(desk, "scan")
    assert code == 0
    assert screen.splitlines()[0] == "uwaga: scan.quarantined (file=zly.xml, reason=not_scan_export)"
    assert screen.splitlines()[-1].startswith("Skany: przyjęte 0,")
    polish_screen(screen)

    code, screen = on_terminal(desk, "process")
    assert code == 0 and screen.strip().splitlines()[-1] == "Przetworzono: 1, błędy techniczne: 0"
    polish_screen(screen)
    code, screen = on_terminal(desk, "run", "--once")  # as a clerk would try it: the summary, no log stream
    assert code == 0 and screen.strip().splitlines()[-1] == "Przetworzono: 0, błędy techniczne: 0"
    polish_screen(screen)

    code, screen = on_terminal(desk, "review", "list")
    assert code == 0 and "Deklaracje do weryfikacji: 1" in screen
    decl_id = re.search(r"#(\d+)", screen).group(1)
    polish_screen(screen)
    code, screen = on_terminal(desk, "review", "show", decl_id)
    assert code == 0 and "odczytano: „02211307589”, pewność odczytu 0,83" in screen and "Obraz skanu (PDF, stron: 1):" in screen
    polish_screen(screen)
    code, screen = on_terminal(desk, "reprocess", "--declaration", decl_id, "--dry-run")
    assert code == 0 and screen.strip().splitlines()[-1].startswith("Próba, nic nie zapisano: 1 dokument")
    polish_screen(screen)
    code, screen = on_terminal(desk, "reprocess", "--declaration", decl_id)
    assert code == 0 and screen.strip().splitlines()[-1].startswith("Przetworzono ponownie: 1 dokument")
    polish_screen(screen)
    code, screen = on_terminal(desk, "check", str(DEMO / "scans" / "skan-2025-02-03-0001-0007.xml"))
    assert code == 0 and "obraz skanu: zgodny z eksportem" in screen
    polish_screen(screen)
    code, screen = on_terminal(desk, "status")
    assert code == 0 and "Kolejka dokumentów:" in screen
    polish_screen(screen)
    code, screen = on_terminal(desk, "correspondence", "list")
    assert code == 0 and screen.strip() == "Brak korespondencji."

    # the clerk's mistakes
    for argv, said in [
        (("reprocess", "--code", "FOO"), "ebok-worker: --code: nie ma kodu ustalenia 'FOO'"),
        (("reprocess", "--id", "999"), "ebok-worker: --id: nie ma dokumentu o id 999"),
        (("reprocess", "--since", "2025-09-10", "--until", "2025-09-01"), "ebok-worker: --since 2025-09-10 jest później niż --until 2025-09-01"),
        (("correspondence", "show", "999"), "ebok-worker: nie ma dokumentu o id 999"),
        (("review", "show", "999"), "ebok-worker: nie ma deklaracji o id 999"),
    ]:
        code, screen = on_terminal(desk, *argv)
        assert code == 2 and screen.strip().startswith(said), screen
        polish_screen(screen)
    for argv, said in [
        (("reprocess", "--since", "01.09.2025"), "ebok-worker reprocess: błąd: --since: niepoprawna data '01.09.2025': podaj datę w postaci RRRR-MM-DD, np. 2025-09-01"),
        (("review", "accept", decl_id), "ebok-worker review accept: błąd: brak wymaganych argumentów: --note"),
        (("status", "--bogus"), "ebok-worker: błąd: nieznane argumenty: --bogus"),
    ]:
        code, screen = on_terminal(desk, *argv)
        assert code == 2 and said in screen and screen.startswith("Użycie: "), screen
        polish_screen(screen)


def test_with_the_database_down_the_clerk_sees_one_polish_line(write_config):
    cfg = write_config(database={"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    code, screen = on_terminal(cfg, "status")
    assert code == 1
    assert screen.strip() == ("ebok-worker: błąd: nie można połączyć się z bazą danych (database.url): 127.0.0.1:1/none — "
                              "serwer nie przyjmuje połączeń (czy PostgreSQL działa i słucha pod tym adresem?)")
    polish_screen(screen)
    code, screen = on_terminal(cfg, "review", "list")
    assert code == 1 and screen.count("\n") <= 1 and "Connection refused" not in screen


def test_pull_on_a_terminal_says_what_it_did(write_config, keys, epuap_double):
    from tests.conftest import epuap_env, epuap_section

    server = epuap_double(DEMO / "epuap")
    cfg = write_config(epuap=epuap_section(server, keys, "czystyregion/deklaracje"),
                       signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"]})
    code, screen = on_terminal(cfg, "pull", env=epuap_env(keys))
    assert code == 0
    assert screen.strip().splitlines() == [  # the double's plain http:// endpoints are warned about (issue #20), as one short line each
        f"uwaga: epuap.insecure_endpoint (key=epuap.endpoint, endpoint={server.url})",
        f"uwaga: epuap.insecure_endpoint (key=epuap.filerepo_endpoint, endpoint={server.filerepo_url})",
        "Skrytka /czystyregion/deklaracje: pobrane 6, nowe 6, już zapisane 0, potwierdzone 6",
    ]
    polish_screen(screen)


def test_import_package_and_the_trusted_lists_on_a_terminal(write_config, tmp_path):
    """The commands of the neighbouring issues at the desk: ``import-package`` (#21) and
    ``trust update``/``trust show`` (#22) speak Polish on a terminal — a refused entry, a
    list that cannot be read and one whose signature does not verify — and no log line or
    traceback mixes with their output."""
    from adapters.epuap.double import load_folder
    from tests.test_import_package import MAILBOX, SAMPLES, descriptor, dokument

    (tmp_path / "pl-tl.xml").write_text("<TrustServiceStatusList/>", encoding="utf-8")
    cfg = write_config(
        epuap={"enabled": False, "mailboxes": [{"podmiot": "czystyregion", "skrytka": "deklaracje"}]},
        signatures={"trust_anchors": DEMO / "trust" / "test-anchors.pem", "trusted_profile_seals": [DEMO / "trust" / "test-pz-seal.pem"],
                    "trusted_lists": ["brak-listy.xml", "pl-tl.xml"], "trusted_list_signers": DEMO / "trust" / "test-anchors.pem"},
    )
    code, screen = on_terminal(cfg, "db", "upgrade")
    assert code == 0 and screen.strip() == "Baza danych jest aktualna."

    import io
    import zipfile

    good = load_folder(SAMPLES)[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("Deskryptor.xml", descriptor(dokument("dokumenty/" + good.name, good.meta), dokument("../poza.xml", good.meta)))
        z.writestr("dokumenty/" + good.name, good.content)
    (tmp_path / "eksport.zip").write_bytes(buf.getvalue())
    code, screen = on_terminal(cfg, "import-package", str(tmp_path / "eksport.zip"), "--mailbox", MAILBOX, "--user", "akowalska")
    assert code == 1, screen
    lines = screen.strip().splitlines()
    assert lines[0] == f"Import paczki eksport.zip do skrytki {MAILBOX} (importuje: akowalska)"
    assert any(line.endswith(": zapisano jako dokument #1") for line in lines) and any("ODRZUCONO" in line for line in lines), screen
    assert lines[-2].startswith(f"Podsumowanie ({MAILBOX}): zapisane 1,")
    polish_screen(screen)
    code, screen = on_terminal(cfg, "import-package", str(tmp_path / "nie-ma.zip"), "--mailbox", MAILBOX)
    assert code == 2 and screen.strip() == f"ebok-worker: nie ma pliku {tmp_path / 'nie-ma.zip'} (podaj ścieżkę do paczki ZIP pobranej z ePUAP)"

    code, screen = on_terminal(cfg, "trust", "update")
    assert code == 1, screen
    assert screen.strip().splitlines()[0] == "Zaufane listy (ETSI TS 119 612):"  # what the output says is not repeated as warning lines
    assert f"{tmp_path / 'brak-listy.xml'}: NIE przyjęta — nie można jej pobrać (nie można odczytać pliku {tmp_path / 'brak-listy.xml'}: " \
           "errno 2: nie ma takiego pliku ani folderu); brak poprawnej kopii — lista nie jest używana" in screen, screen
    assert f"{tmp_path / 'pl-tl.xml'}: NIE przyjęta — jej podpis nie zgadza się z przypiętymi certyfikatami podpisujących" in screen, screen
    assert screen.strip().splitlines()[-1] == "Listy zweryfikowane: 0, nieprzyjęte: 2."
    polish_screen(screen)
    code, screen = on_terminal(cfg, "trust", "show")
    assert code == 0 and "Zaufane listy w użyciu (ETSI TS 119 612):" in screen and "UWAGA:" in screen, screen
    polish_screen(screen)
    code, screen = on_terminal(cfg, "trust", "refresh")
    assert code == 2 and "CZYNNOŚĆ: niedozwolona wartość 'refresh'" in screen
    polish_screen(screen)
