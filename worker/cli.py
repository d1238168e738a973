"""``ebok-worker``: the command line the back office uses (``spec/operations.md``).

This module only parses: each (sub)command is bound to its handler in
:mod:`worker.commands` with ``set_defaults(func=…)``; exit codes and ``--json`` output
live in :mod:`worker.output`. Exit status: 0 success, 2 usage or configuration error
(one line, no traceback), 1 runtime failure. Human output is Polish; ``--json`` output
has English keys. The parser's own texts (usage, help, usage errors) are Polish too: it is
built and run inside :func:`worker.cli_polish.polish_argparse`, so a command added here
gets them without more ado. Where the logs go: :func:`_setup_logging`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import worker
from adapters.db import errors as db_errors
from worker import channels, commands, logs
from worker import config as config_mod
from worker.cli_polish import PolishParser, day, polish_argparse, whole_number
from worker.config import ConfigError
from worker.errors import UsageError, describe_technical_error, file_error_text, is_disk_full, os_error_of
from worker.output import EXIT_FAILURE, EXIT_MONITOR_UNKNOWN, EXIT_USAGE, one_line

log = logging.getLogger("worker.cli")


def _parser() -> argparse.ArgumentParser:
    """The command line (build it inside :func:`worker.cli_polish.polish_argparse`: the
    parser's own texts are taken in Polish when it is built)."""
    help_config = "plik konfiguracji (domyślnie $EBOK_WORKER_CONFIG, a potem ./config.toml)"
    # --config is accepted before and after the command; the subcommands' copy must not
    # overwrite a value given before the command, hence SUPPRESS there
    common = PolishParser(add_help=False)
    common.add_argument("--config", metavar="PLIK", default=argparse.SUPPRESS, help=help_config)

    p = PolishParser(prog="ebok-worker", description="Integracja deklaracji DO-1 (ePUAP, skany) z bazą eBOK.")
    p.add_argument("--config", metavar="PLIK", default=None, help=help_config)
    p.add_argument("--version", action="version", version=f"ebok-worker {worker.version()}", help="pokaż wersję programu i zakończ")
    sub = p.add_subparsers(dest="command", required=True, metavar="POLECENIE")

    r = sub.add_parser("run", parents=[common], help="demon: pobieranie z ePUAP, skrzynka skanów i przetwarzanie wg harmonogramu")
    r.add_argument("--once", action="store_true", help="jeden przebieg wszystkich źródeł i przetwarzania, potem koniec")
    r.set_defaults(func=commands.run)

    pl = sub.add_parser("pull", parents=[common], help="jeden przebieg pobierania z ePUAP")
    pl.add_argument("--mailbox", metavar="SKRYTKA", help="tylko ta skrytka (/podmiot/skrytka)")
    pl.set_defaults(func=commands.pull)

    sub.add_parser("scan", parents=[common], help="jeden przebieg skrzynki skanów (deklaracje papierowe)").set_defaults(func=commands.scan)

    sub.add_parser("process", parents=[common], help="przetwórz wszystkie oczekujące dokumenty").set_defaults(func=commands.process)

    rp = sub.add_parser("reprocess", parents=[common], help="przetwórz ponownie zapisane dokumenty z ich oryginalnych bajtów")
    rp.add_argument("--id", type=whole_number, action="append", default=[], metavar="ID_DOKUMENTU",
                    help="id dokumentu (jak w logach i w „status”; to NIE jest id deklaracji); można powtarzać")
    rp.add_argument("--declaration", type=whole_number, action="append", default=[], metavar="ID_DEKLARACJI",
                    help="id deklaracji eBOK (jak w „review list”/„review show”); można powtarzać")
    rp.add_argument("--status", metavar="STATUS", help="ACCEPTED, NEEDS_REVIEW, REJECTED, SUPERSEDED, FAILED, CORRESPONDENCE, TEST albo UNREADABLE")
    rp.add_argument("--code", metavar="KOD", help="kod ustalenia, np. FEE_MISMATCH")
    _day_options(rp)
    rp.add_argument("--channel", choices=channels.names(), metavar="KANAŁ", help=" albo ".join(channels.names()))
    rp.add_argument("--dry-run", action="store_true", help="pokaż, co by się zmieniło, niczego nie zapisując")
    rp.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    rp.set_defaults(func=commands.reprocess)

    rv = sub.add_parser("review", parents=[common], help="kolejka deklaracji do weryfikacji (NEEDS_REVIEW)")
    rvs = rv.add_subparsers(dest="review_command", required=True, metavar="CZYNNOŚĆ")
    rvs.add_parser("list", parents=[common], help="lista deklaracji do weryfikacji").set_defaults(func=commands.review_list)
    show = rvs.add_parser("show", parents=[common], help="szczegóły deklaracji")
    show.add_argument("id", type=whole_number, metavar="ID_DEKLARACJI")
    show.set_defaults(func=commands.review_show)
    for name, text in (("accept", "przyjmij deklarację"), ("reject", "odrzuć deklarację")):
        a = rvs.add_parser(name, parents=[common], help=text)
        a.add_argument("id", type=whole_number, metavar="ID_DEKLARACJI")
        a.add_argument("--note", required=True, metavar="TEKST", help="uzasadnienie decyzji")
        a.add_argument("--user", default=os.environ.get("USER") or "office", metavar="UŻYTKOWNIK", help="kto podejmuje decyzję")
        a.set_defaults(func=commands.review_decide)

    ex = rvs.add_parser("export-attachments", parents=[common], help="zapisz załączniki deklaracji do folderu (deklaracja papierowa: obraz skanu)")
    ex.add_argument("id", type=whole_number, metavar="ID_DEKLARACJI")
    ex.add_argument("--to", required=True, metavar="FOLDER", help="folder docelowy (powstaje w nim deklaracja-ID/)")
    ex.set_defaults(func=commands.review_export_attachments)
    es = rvs.add_parser("export-scan", parents=[common], help="zapisz obraz skanu (PDF) deklaracji papierowej do folderu")
    es.add_argument("id", type=whole_number, metavar="ID_DEKLARACJI")
    es.add_argument("--to", required=True, metavar="FOLDER", help="folder docelowy (powstaje w nim deklaracja-ID/)")
    es.set_defaults(func=commands.review_export_scan)

    co = sub.add_parser("correspondence", parents=[common], help="korespondencja inna niż deklaracje (pisma, skargi, wnioski)")
    cos = co.add_subparsers(dest="correspondence_command", required=True, metavar="CZYNNOŚĆ")
    cl = cos.add_parser("list", parents=[common], help="lista pism")
    _day_options(cl)
    cl.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    cl.set_defaults(func=commands.correspondence_list)
    cs = cos.add_parser("show", parents=[common], help="treść i metadane pisma")
    cs.add_argument("id", type=whole_number, metavar="ID_DOKUMENTU", help="id dokumentu")
    cs.set_defaults(func=commands.correspondence_show)
    ce = cos.add_parser("export", parents=[common], help="zapisz pismo z załącznikami do folderu")
    ce.add_argument("id", type=whole_number, metavar="ID_DOKUMENTU", help="id dokumentu")
    ce.add_argument("--to", required=True, metavar="FOLDER", help="folder docelowy (powstaje w nim ID/)")
    ce.set_defaults(func=commands.correspondence_export)

    st = sub.add_parser("status", parents=[common], help="stan kolejek i ostatnich pobrań")
    st_out = st.add_mutually_exclusive_group()
    st_out.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    st_out.add_argument("--monitor", action="store_true",
                        help="jedna linia w formacie wtyczki Nagios; kod wyjścia 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    st.set_defaults(func=commands.status)

    ck = sub.add_parser("check", parents=[common], help="sprawdź dokumenty offline (niczego nie zapisuje)")
    ck.add_argument("files", nargs="+", type=Path, metavar="PLIK")
    ck.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    ck.add_argument("--filed-at", type=_iso_datetime, metavar="CZAS",
                    help="czas złożenia (ISO, np. 2025-03-10T09:41); domyślnie dataNadania z pliku PLIK.meta.json obok, a bez niego teraz")
    ck.set_defaults(func=commands.check)

    ip = sub.add_parser("import-package", parents=[common],
                        help="zaimportuj paczkę eksportu skrytki ePUAP (ZIP z Deskryptor.xml), gdy pobieranie z ePUAP nie działa")
    ip.add_argument("file", type=Path, metavar="PLIK.zip", help="paczka pobrana z ePUAP (awaryjne pobranie dokumentów skrytki)")
    ip.add_argument("--mailbox", required=True, metavar="/PODMIOT/SKRYTKA", help="skrytka, z której pochodzi paczka")
    ip.add_argument("--user", default=os.environ.get("USER") or "office", metavar="UŻYTKOWNIK", help="kto importuje (zapisywane przy dokumentach)")
    ip.set_defaults(func=commands.import_package)

    tr = sub.add_parser("trust", parents=[common], help="zaufane listy (TSL) i sprawdzanie unieważnień certyfikatów")
    trs = tr.add_subparsers(dest="trust_command", required=True, metavar="CZYNNOŚĆ")
    trs.add_parser("update", parents=[common], help="pobierz i zweryfikuj zaufane listy teraz").set_defaults(func=commands.trust_update)
    tsh = trs.add_parser("show", parents=[common], help="pokaż zaufane listy w użyciu i ustawienia zaufania")
    tsh.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    tsh.set_defaults(func=commands.trust_show)

    db = sub.add_parser("db", parents=[common], help="baza danych")
    dbs = db.add_subparsers(dest="db_command", required=True, metavar="CZYNNOŚĆ")
    dbs.add_parser("upgrade", parents=[common], help="zastosuj migracje bazy danych").set_defaults(func=commands.db_upgrade)

    cf = sub.add_parser("config", parents=[common], help="konfiguracja")
    cfs = cf.add_subparsers(dest="config_command", required=True, metavar="CZYNNOŚĆ")
    cfs.add_parser("check", parents=[common], help="sprawdź konfigurację i wszystko, co wskazuje (pliki, klucze, foldery, bazę)") \
        .set_defaults(func=commands.config_check)

    dbl = sub.add_parser("epuap-double", parents=[common], help="lokalny sobowtór usługi ePUAP (do demonstracji i testów)", add_help=False)
    dbl.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _day_options(parser: argparse.ArgumentParser) -> None:
    """``--since``/``--until`` (the day the worker took the document in) and
    ``--filed-since``/``--filed-until`` (the day it was filed): one meaning in every command."""
    parser.add_argument("--since", type=day, metavar="RRRR-MM-DD", help="przyjęte przez worker od dnia (czas polski)")
    parser.add_argument("--until", type=day, metavar="RRRR-MM-DD", help="przyjęte przez worker do dnia włącznie (czas polski)")
    parser.add_argument("--filed-since", type=day, metavar="RRRR-MM-DD", help="złożone (data nadania, data wpływu skanu) od dnia")
    parser.add_argument("--filed-until", type=day, metavar="RRRR-MM-DD", help="złożone do dnia włącznie")


def _iso_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"to nie jest data i godzina ISO (RRRR-MM-DDTGG:MM): {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


#: commands whose stdout is their result for a person or a script: their logs go to stderr
RESULT_COMMANDS = ("check", "status", "review", "reprocess", "scan", "process", "correspondence", "import-package", "trust", "config", "db")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["epuap-double"]:
        from adapters.epuap import double  # the test double's server: only for this command

        return double.main(argv[1:])
    with polish_argparse():
        args = _parser().parse_args(argv)
    monitor = args.command == "status" and getattr(args, "monitor", False)
    cfg = None
    try:
        cfg = config_mod.load(config_mod.resolve_path(args.config))
        _setup_logging(args, cfg)
        return commands.dispatch(args, cfg)
    except (ConfigError, UsageError) as exc:
        if monitor:
            print(f"EBOK-WORKER UNKNOWN - błąd konfiguracji: {one_line(exc)}")
            return EXIT_MONITOR_UNKNOWN
        for line in getattr(exc, "problems", None) or [one_line(exc)]:
            print(f"ebok-worker: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:  # a runtime failure: logged with its traceback, one line to stderr
        log.exception("command failed", extra={"event": "cli.failed", "command": args.command,
                                                 "driver_message": _driver_message(exc)})
        what = _describe(exc, cfg)
        if monitor:  # e.g. the database cannot be reached
            print(f"EBOK-WORKER UNKNOWN - nie można ustalić stanu: {what}")
            return EXIT_MONITOR_UNKNOWN
        print(f"ebok-worker: błąd: {what}", file=sys.stderr)
        return EXIT_FAILURE


def _setup_logging(args: argparse.Namespace, cfg: config_mod.Config) -> None:
    """Where a command's logs go: ``logging.file`` when configured; otherwise the daemon's
    JSON stream on stdout (``run``), the others' on stdout or — for the commands that print
    a result — stderr. A stream that would land on a person's terminal carries only
    warnings, as short text lines without tracebacks (``spec/operations.md``, "What a
    clerk sees")."""
    daemon = args.command == "run" and not getattr(args, "once", False)
    stream = sys.stderr if args.command in RESULT_COMMANDS else sys.stdout
    terminal = not daemon and _is_terminal(stream)
    logs.setup(cfg.logging.format, cfg.logging.level, stream=stream, file=cfg.logging.file, terminal=terminal)


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def _driver_message(exc: BaseException) -> str | None:
    """The driver's own text of a failed connection (for the log: it names the server,
    never document data)."""
    refused = db_errors.connection_failure(exc)
    return one_line(refused)[:500] if refused is not None else None


def _describe(exc: BaseException, cfg: config_mod.Config | None = None) -> str:
    """A runtime failure for the administrator, in Polish: a refused or lost database
    connection says what the driver's error means (its English text goes to the log); any
    other database error only its type, table and code location, since its text carries
    SQL parameters (personal data); a file-system failure its errno in Polish."""
    if db_errors.connection_failure(exc) is not None:
        at = f" {db_errors.where(cfg.database.url)} —" if cfg is not None else ""
        return f"nie można połączyć się z bazą danych (database.url):{at} {db_errors.connection_problem(exc)}"
    if db_errors.from_database_library(exc):
        return f"błąd bazy danych: {describe_technical_error(exc).text()}"
    if os_error_of(exc) is not None or is_disk_full(exc):
        return file_error_text(exc)
    return one_line(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
