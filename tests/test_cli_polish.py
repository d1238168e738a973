"""The command line's own frame speaks Polish: usage, ``--help`` of every command, usage
errors (a missing argument, an unknown option or value, a wrong date or id), ``--version``
(``spec/operations.md``, "What a clerk sees")."""

from __future__ import annotations

import argparse
import ast
import inspect
import re

import pytest

import worker
from tests.clitools import run_cli
from worker import cli_polish
from worker.cli import _parser

#: our commands' names are English words by the specification (run, show, list…): not "English text"
COMMAND_WORDS = {"run", "pull", "scan", "process", "reprocess", "review", "list", "show", "accept", "reject", "export",
                 "attachments", "correspondence", "status", "check", "upgrade", "config", "epuap", "double"}


def argparse_messages() -> list[str]:
    """Every message the running Python's argparse takes through gettext."""
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(argparse))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "ngettext"):
            found += [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def english_words() -> set[str]:
    """argparse's own vocabulary (lower-case words of 4 letters or more) and a few more a
    frame in English would show."""
    words = {w for m in argparse_messages() for w in re.findall(r"[a-z']{4,}", re.sub(r"%\([a-z_]+\)[rs]", " ", m))}
    return (words | {"usage", "error", "invalid", "optional", "arguments", "required", "unrecognized", "choose", "help", "message"}) - COMMAND_WORDS


ENGLISH = english_words()


def assert_no_english(text: str) -> None:
    # option strings and metavars are names, not text: --help, --config, PLIK…
    words = re.findall(r"(?<![-\w])[a-z']{4,}(?![-\w])", re.sub(r"--?[\w-]+", " ", text))
    found = sorted({w for w in words if w in ENGLISH})
    assert found == [], f"English in: {text!r}"


def test_the_catalogue_has_every_message_of_this_pythons_argparse():
    missing = sorted(set(argparse_messages()) - set(cli_polish.CATALOGUE))
    assert missing == []
    for msgid, msgstr in cli_polish.CATALOGUE.items():
        # positional placeholders kept one for one; a named one may be left out (the type name "int")
        assert re.findall(r"%[rsd]", msgid) == re.findall(r"%[rsd]", msgstr), msgid
        assert set(re.findall(r"%\([a-z_]+\)[rsd]", msgstr)) <= set(re.findall(r"%\([a-z_]+\)[rsd]", msgid)), msgid


def _every_parser(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name != "epuap-double":  # the test double's own parser (add_help=False; for developers)
                    yield from _every_parser(sub, (*prefix, name))


@pytest.mark.parametrize("words", list(_every_parser(_parser())), ids=lambda w: " ".join(w) or "ebok-worker")
def test_help_of_every_command_is_polish(words):
    r = run_cli(None, *words, "--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("Użycie: ebok-worker")
    assert "opcje:" in r.stdout and "pokaż tę pomoc i zakończ" in r.stdout
    assert_no_english(r.stdout)


#: English words a metavar would show (argparse's default metavar is the option's English dest)
ENGLISH_METAVARS = {"action", "command", "user", "file", "files", "mailbox", "dir", "directory", "date", "day", "time", "code", "note",
                    "path", "name", "args", "since", "until", "channel", "text"}


def _metavars(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command, what, metavar) of every value a command takes — including the commands
    added by the neighbouring issues (import-package, trust …)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield prefix, "CZYNNOŚĆ/POLECENIE", action.metavar
            for name, sub in action.choices.items():
                if name != "epuap-double":
                    yield from _metavars(sub, (*prefix, name))
        elif action.nargs != 0 and not isinstance(action, argparse._HelpAction | argparse._VersionAction) and not action.choices:
            yield prefix, "/".join(action.option_strings) or action.dest, action.metavar


def test_every_metavar_is_polish():
    found = list(_metavars(_parser()))
    assert {cmd[0] for cmd, _, _ in found if cmd} >= {"import-package", "trust", "config", "review", "correspondence"}
    unnamed = [(" ".join(cmd), what) for cmd, what, metavar in found if metavar is None]
    assert unnamed == []  # argparse would show the English dest in capitals
    english = [(" ".join(cmd), what, metavar) for cmd, what, metavar in found
               if set(re.findall(r"[a-ząćęłńóśźż]+", str(metavar).lower())) & ENGLISH_METAVARS]
    assert english == []


MISTAKES = [
    (["review", "accept", "5"], "brak wymaganych argumentów: --note"),
    (["review", "show"], "brak wymaganych argumentów: ID_DEKLARACJI"),
    (["review", "show", "abc"], "ID_DEKLARACJI: niepoprawny numer 'abc': podaj liczbę całkowitą, np. 17"),
    (["review", "frobnicate"], "CZYNNOŚĆ: niedozwolona wartość 'frobnicate'"),
    (["reprocess", "--since", "01.09.2025"], "--since: niepoprawna data '01.09.2025': podaj datę w postaci RRRR-MM-DD, np. 2025-09-01"),
    (["reprocess", "--until", "2025-02-30"], "--until: niepoprawna data '2025-02-30': nie ma takiego dnia (postać RRRR-MM-DD)"),
    (["reprocess", "--id", "x"], "--id: niepoprawny numer 'x'"),
    (["reprocess", "--channel", "FAX"], "--channel: niedozwolona wartość 'FAX' (dozwolone: 'EPUAP', 'PAPER')"),
    (["status", "--json", "--monitor"], "--monitor: nie można łączyć z --json"),
    (["status", "--bogus"], "nieznane argumenty: --bogus"),
    (["correspondence", "list", "--since"], "--since: oczekiwano jednej wartości"),
    (["check"], "brak wymaganych argumentów: PLIK"),
    ([], "brak wymaganych argumentów: POLECENIE"),
    (["kawa"], "POLECENIE: niedozwolona wartość 'kawa'"),
    (["import-package", "paczka.zip"], "brak wymaganych argumentów: --mailbox"),
    (["import-package", "--mailbox", "/cr/deklaracje"], "brak wymaganych argumentów: PLIK.zip"),
    (["trust"], "brak wymaganych argumentów: CZYNNOŚĆ"),
    (["trust", "refresh"], "CZYNNOŚĆ: niedozwolona wartość 'refresh' (dozwolone: 'update', 'show')"),
    (["trust", "show", "--bogus"], "nieznane argumenty: --bogus"),
    (["config"], "brak wymaganych argumentów: CZYNNOŚĆ"),
]


@pytest.mark.parametrize(("argv", "expected"), MISTAKES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_usage_error_is_polish_and_shows_the_right_form(argv, expected):
    r = run_cli(None, *argv)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith("Użycie: ebok-worker")
    error = next(line for line in lines if ": błąd: " in line)
    assert expected in error, error
    assert lines[-1].startswith("Pomoc: ebok-worker") and lines[-1].endswith("--help")
    assert "Traceback" not in r.stderr
    assert_no_english(r.stderr)


def test_version():
    r = run_cli(None, "--version")
    assert r.returncode == 0 and r.stdout == f"ebok-worker {worker.version()}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", worker.version())


def test_argparse_speaks_english_again_outside_the_command_line():
    """The catalogue is in place only while the command line is built and parsed."""
    run_cli(None, "--help")
    other = argparse.ArgumentParser(prog="x")
    assert "show this help message and exit" in other.format_help()


def test_the_english_detector_sees_english():
    with pytest.raises(AssertionError):
        assert_no_english("usage: ebok-worker review accept: error: the following arguments are required: --note")
    assert_no_english("Użycie: ebok-worker review accept --note TEKST [--help]")
