"""The command line's frame in Polish: argparse's own messages (usage, ``--help``, usage
errors) through a Polish catalogue, and value types whose errors say what the right form is.

argparse takes every message it prints through ``gettext`` (the module-level ``_`` and
``ngettext`` of :mod:`argparse`). :func:`polish_argparse` puts the catalogue below in their
place while the command line is built and parsed, so every (sub)command gets it — also the
ones added later — without naming its messages one by one. :class:`PolishParser` prints a
usage error as one Polish line after the usage, with where to find help. A message argparse
adds in a later Python version and that is missing here stays English; the test of this
module compares the catalogue with the messages of the argparse it runs on.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any, NoReturn

#: argparse's messages (msgid, as in its source) → Polish. Placeholders are kept.
CATALOGUE: dict[str, str] = {
    # the help's frame
    "usage: ": "Użycie: ",
    "positional arguments": "argumenty",
    "options": "opcje",
    "optional arguments": "opcje",  # Python < 3.10
    "subcommands": "polecenia",
    "%(heading)s:": "%(heading)s:",
    " (default: %(default)s)": " (domyślnie: %(default)s)",
    "show this help message and exit": "pokaż tę pomoc i zakończ",
    "show program's version number and exit": "pokaż wersję programu i zakończ",
    # usage errors
    "%(prog)s: error: %(message)s\n": "%(prog)s: błąd: %(message)s\n",
    "%(prog)s: warning: %(message)s\n": "%(prog)s: uwaga: %(message)s\n",
    "argument %(argument_name)s: %(message)s": "%(argument_name)s: %(message)s",
    "the following arguments are required: %s": "brak wymaganych argumentów: %s",
    "one of the arguments %s is required": "wymagany jest jeden z argumentów: %s",
    "unrecognized arguments: %s": "nieznane argumenty: %s",
    "invalid choice: %(value)r (choose from %(choices)s)": "niedozwolona wartość %(value)r (dozwolone: %(choices)s)",
    "invalid choice: %(value)r, maybe you meant %(closest)r? (choose from %(choices)s)":
        "niedozwolona wartość %(value)r, może chodziło o %(closest)r? (dozwolone: %(choices)s)",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "nieznane polecenie %(parser_name)r (dozwolone: %(choices)s)",
    "invalid %(type)s value: %(value)r": "niepoprawna wartość %(value)r",
    "expected one argument": "oczekiwano jednej wartości",
    "expected at most one argument": "oczekiwano najwyżej jednej wartości",
    "expected at least one argument": "oczekiwano co najmniej jednej wartości",
    "expected %s argument": "oczekiwano %s wartości",
    "expected %s arguments": "oczekiwano %s wartości",
    "not allowed with argument %s": "nie można łączyć z %s",
    "ambiguous option: %(option)s could match %(matches)s": "niejednoznaczna opcja %(option)s: pasuje do %(matches)s",
    "ignored explicit argument %r": "opcja nie przyjmuje wartości (podano %r)",
    "unexpected option string: %s": "nieoczekiwana opcja: %s",
    "can't open '%(filename)s': %(error)s": "nie można otworzyć pliku '%(filename)s': %(error)s",
    "argument \"-\" with mode %r": "argument „-” w trybie %r",
    "option '%(option)s' is deprecated": "opcja '%(option)s' jest przestarzała",
    "argument '%(argument_name)s' is deprecated": "argument '%(argument_name)s' jest przestarzały",
    "command '%(parser_name)s' is deprecated": "polecenie '%(parser_name)s' jest przestarzałe",
    # mistakes in the program's own definition of the command line (never seen by a user
    # of a correct program; translated so that no English can reach the office)
    "conflicting option string: %s": "powtórzona opcja: %s",
    "conflicting option strings: %s": "powtórzone opcje: %s",
    "conflicting subparser: %s": "powtórzone polecenie: %s",
    "conflicting subparser alias: %s": "powtórzony alias polecenia: %s",
    ".__call__() not defined": ".__call__() nie jest zdefiniowane",
    "'required' is an invalid argument for positionals": "argument pozycyjny nie przyjmuje 'required'",
    "mutually exclusive arguments must be optional": "wzajemnie wykluczające się argumenty muszą być opcjami",
    "%r is not callable": "%r nie jest wywoływalne",
    "cannot merge actions - two groups are named %r": "nie można połączyć grup: dwie noszą nazwę %r",
    "invalid option string %(option)r: must start with a character %(prefix_chars)r":
        "niepoprawna opcja %(option)r: musi zaczynać się znakiem %(prefix_chars)r",
    "dest= is required for options like %r": "opcja taka jak %r wymaga dest=",
    "invalid conflict_resolution value: %r": "niepoprawna wartość conflict_resolution: %r",
    "cannot have multiple subparser arguments": "tylko jeden zestaw poleceń",
}


def gettext(message: str) -> str:
    """A message of argparse in Polish (unknown ones as they are).

    >>> gettext("the following arguments are required: %s") % "--note"
    'brak wymaganych argumentów: --note'
    """
    return CATALOGUE.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


@contextlib.contextmanager
def polish_argparse() -> Iterator[None]:
    """argparse speaks Polish inside the block (building the parser, parsing, help)."""
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = gettext, ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


class PolishParser(argparse.ArgumentParser):
    """A parser whose usage error is the usage, one Polish line naming the mistake, and
    where the help is; exit status 2 (``spec/operations.md``, "What a clerk sees")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        with polish_argparse():
            line = gettext("%(prog)s: error: %(message)s\n") % {"prog": self.prog, "message": message}
        self.exit(2, f"{line}Pomoc: {self.prog} --help\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", type(self))
        return super().add_subparsers(**kwargs)


# --- value types: the error names the right form -------------------------------------------

_DMY = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")


def day(text: str) -> date:
    """A calendar day ``RRRR-MM-DD``; another form is refused with the right one shown.

    >>> day("2025-09-01")
    datetime.date(2025, 9, 1)
    >>> day("01.09.2025")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: niepoprawna data '01.09.2025': podaj datę w postaci RRRR-MM-DD, np. 2025-09-01
    """
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"niepoprawna data {text!r}: nie ma takiego dnia (postać RRRR-MM-DD)") from None
    example = "2025-01-31"
    m = _DMY.fullmatch(text.strip())
    if m:
        with contextlib.suppress(ValueError):
            example = date(int(m.group(3)), int(m.group(2)), int(m.group(1))).isoformat()
    raise argparse.ArgumentTypeError(f"niepoprawna data {text!r}: podaj datę w postaci RRRR-MM-DD, np. {example}")


def whole_number(text: str) -> int:
    """An id: a whole number ≥ 1.

    >>> whole_number("17")
    17
    >>> whole_number("#17")
    17
    >>> whole_number("abc")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: niepoprawny numer 'abc': podaj liczbę całkowitą, np. 17
    """
    digits = text.strip().removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,18}", digits) or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"niepoprawny numer {text!r}: podaj liczbę całkowitą, np. 17")
    return int(digits)
