"""``ebok-worker``: the command line the back office uses (``spec/operations.md``).

This module only parses: each (sub)command is bound to its handler in
:mod:`worker.commands` with ``set_defaults(func=…)``; exit codes and ``--json`` output
live in :mod:`worker.output`. Exit status: 0 success, 2 usage or configuration error
(one line, no traceback), 1 runtime failure. Human output is Polish; ``--json`` output
has English keys.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from adapters.db import errors as db_errors
from worker import channels, commands, logs
from worker import config as config_mod
from worker.config import ConfigError
from worker.errors import UsageError, describe_technical_error
from worker.output import EXIT_FAILURE, EXIT_MONITOR_UNKNOWN, EXIT_USAGE, one_line

log = logging.getLogger("worker.cli")


def _parser() -> argparse.ArgumentParser:
    help_config = "plik konfiguracji (domyślnie $EBOK_WORKER_CONFIG, a potem ./config.toml)"
    # --config is accepted before and after the command; the subcommands' copy must not
    # overwrite a value given before the command, hence SUPPRESS there
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=help_config)

    p = argparse.ArgumentParser(prog="ebok-worker", description="Integracja deklaracji DO-1 (ePUAP, skany) z bazą eBOK.")
    p.add_argument("--config", metavar="PATH", default=None, help=help_config)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", parents=[common], help="demon: pobieranie z ePUAP, skrzynka skanów i przetwarzanie wg harmonogramu")
    r.add_argument("--once", action="store_true", help="jeden przebieg wszystkich źródeł i przetwarzania, potem koniec")
    r.set_defaults(func=commands.run)

    pl = sub.add_parser("pull", parents=[common], help="jeden przebieg pobierania z ePUAP")
    pl.add_argument("--mailbox", metavar="ADDR", help="tylko ta skrytka (/podmiot/skrytka)")
    pl.set_defaults(func=commands.pull)

    sub.add_parser("scan", parents=[common], help="jeden przebieg skrzynki skanów (deklaracje papierowe)").set_defaults(func=commands.scan)

    sub.add_parser("process", parents=[common], help="przetwórz wszystkie oczekujące dokumenty").set_defaults(func=commands.process)

    rp = sub.add_parser("reprocess", parents=[common], help="przetwórz ponownie zapisane dokumenty z ich oryginalnych bajtów")
    rp.add_argument("--id", type=int, action="append", default=[], metavar="DOC_ID",
                    help="id dokumentu (jak w logach i w „status”; to NIE jest id deklaracji); można powtarzać")
    rp.add_argument("--declaration", type=int, action="append", default=[], metavar="DECL_ID",
                    help="id deklaracji eBOK (jak w „review list”/„review show”); można powtarzać")
    rp.add_argument("--status", help="ACCEPTED, NEEDS_REVIEW, REJECTED, SUPERSEDED, FAILED, CORRESPONDENCE…")
    rp.add_argument("--code", help="kod ustalenia, np. FEE_MISMATCH")
    rp.add_argument("--since", type=date.fromisoformat, help="przyjęte od dnia (RRRR-MM-DD, czas polski)")
    rp.add_argument("--until", type=date.fromisoformat, help="przyjęte do dnia włącznie (RRRR-MM-DD, czas polski)")
    rp.add_argument("--channel", choices=channels.names())
    rp.add_argument("--dry-run", action="store_true", help="pokaż, co by się zmieniło, niczego nie zapisując")
    rp.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    rp.set_defaults(func=commands.reprocess)

    rv = sub.add_parser("review", parents=[common], help="kolejka deklaracji do weryfikacji (NEEDS_REVIEW)")
    rvs = rv.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    rvs.add_parser("list", parents=[common], help="lista deklaracji do weryfikacji").set_defaults(func=commands.review_list)
    show = rvs.add_parser("show", parents=[common], help="szczegóły deklaracji")
    show.add_argument("id", type=int)
    show.set_defaults(func=commands.review_show)
    for name, text in (("accept", "przyjmij deklarację"), ("reject", "odrzuć deklarację")):
        a = rvs.add_parser(name, parents=[common], help=text)
        a.add_argument("id", type=int)
        a.add_argument("--note", required=True, help="uzasadnienie decyzji")
        a.add_argument("--user", default=os.environ.get("USER") or "office", help="kto podejmuje decyzję")
        a.set_defaults(func=commands.review_decide)

    ex = rvs.add_parser("export-attachments", parents=[common], help="zapisz załączniki deklaracji do folderu")
    ex.add_argument("id", type=int)
    ex.add_argument("--to", required=True, metavar="DIR", help="folder docelowy (powstaje w nim deklaracja-ID/)")
    ex.set_defaults(func=commands.review_export_attachments)

    co = sub.add_parser("correspondence", parents=[common], help="korespondencja inna niż deklaracje (pisma, skargi, wnioski)")
    cos = co.add_subparsers(dest="correspondence_command", required=True, metavar="ACTION")
    cl = cos.add_parser("list", parents=[common], help="lista pism")
    cl.add_argument("--since", type=date.fromisoformat, help="złożone od dnia (RRRR-MM-DD, czas polski)")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=commands.correspondence_list)
    cs = cos.add_parser("show", parents=[common], help="treść i metadane pisma")
    cs.add_argument("id", type=int, help="id dokumentu")
    cs.set_defaults(func=commands.correspondence_show)
    ce = cos.add_parser("export", parents=[common], help="zapisz pismo z załącznikami do folderu")
    ce.add_argument("id", type=int, help="id dokumentu")
    ce.add_argument("--to", required=True, metavar="DIR", help="folder docelowy (powstaje w nim ID/)")
    ce.set_defaults(func=commands.correspondence_export)

    st = sub.add_parser("status", parents=[common], help="stan kolejek i ostatnich pobrań")
    st_out = st.add_mutually_exclusive_group()
    st_out.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    st_out.add_argument("--monitor", action="store_true",
                        help="jedna linia w formacie wtyczki Nagios; kod wyjścia 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    st.set_defaults(func=commands.status)

    ck = sub.add_parser("check", parents=[common], help="sprawdź dokumenty offline (niczego nie zapisuje)")
    ck.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ck.add_argument("--json", action="store_true")
    ck.add_argument("--filed-at", type=_iso_datetime, help="czas złożenia (ISO), domyślnie teraz")
    ck.set_defaults(func=commands.check)

    ip = sub.add_parser("import-package", parents=[common],
                        help="zaimportuj paczkę eksportu skrytki ePUAP (ZIP z Deskryptor.xml), gdy pobieranie z ePUAP nie działa")
    ip.add_argument("file", type=Path, metavar="PLIK.zip", help="paczka pobrana z ePUAP (awaryjne pobranie dokumentów skrytki)")
    ip.add_argument("--mailbox", required=True, metavar="/PODMIOT/SKRYTKA", help="skrytka, z której pochodzi paczka")
    ip.add_argument("--user", default=os.environ.get("USER") or "office", help="kto importuje (zapisywane przy dokumentach)")
    ip.set_defaults(func=commands.import_package)

    tr = sub.add_parser("trust", parents=[common], help="zaufane listy (TSL) i sprawdzanie unieważnień certyfikatów")
    trs = tr.add_subparsers(dest="trust_command", required=True, metavar="ACTION")
    trs.add_parser("update", parents=[common], help="pobierz i zweryfikuj zaufane listy teraz").set_defaults(func=commands.trust_update)
    tsh = trs.add_parser("show", parents=[common], help="pokaż zaufane listy w użyciu i ustawienia zaufania")
    tsh.add_argument("--json", action="store_true", help="wynik dla skryptów (JSON, klucze angielskie)")
    tsh.set_defaults(func=commands.trust_show)

    db = sub.add_parser("db", parents=[common], help="baza danych")
    dbs = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbs.add_parser("upgrade", parents=[common], help="zastosuj migracje bazy danych").set_defaults(func=commands.db_upgrade)

    dbl = sub.add_parser("epuap-double", parents=[common], help="lokalny sobowtór usługi ePUAP (do demonstracji i testów)", add_help=False)
    dbl.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _iso_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"to nie jest data i godzina ISO (RRRR-MM-DDTGG:MM): {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["epuap-double"]:
        from adapters.epuap import double  # the test double's server: only for this command

        return double.main(argv[1:])
    args = _parser().parse_args(argv)
    monitor = args.command == "status" and getattr(args, "monitor", False)
    try:
        cfg = config_mod.load(config_mod.resolve_path(args.config))
        # commands that print results keep stdout for them; their logs go to stderr
        to_stderr = args.command in ("check", "status", "review", "reprocess", "scan", "process", "correspondence", "import-package", "trust")
        logs.setup(cfg.logging.format, cfg.logging.level, stream=sys.stderr if to_stderr else None)
        return commands.dispatch(args, cfg)
    except (ConfigError, UsageError) as exc:
        if monitor:
            print(f"EBOK-WORKER UNKNOWN - błąd konfiguracji: {one_line(exc)}")
            return EXIT_MONITOR_UNKNOWN
        print(f"ebok-worker: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:  # a runtime failure: logged with its traceback, one line to stderr
        log.exception("command failed", extra={"event": "cli.failed", "command": args.command})
        what = _describe(exc)
        if monitor:  # e.g. the database cannot be reached
            print(f"EBOK-WORKER UNKNOWN - nie można ustalić stanu: {what}")
            return EXIT_MONITOR_UNKNOWN
        print(f"ebok-worker: błąd: {what}", file=sys.stderr)
        return EXIT_FAILURE


def _describe(exc: BaseException) -> str:
    """A runtime failure for the administrator: a database failure says so in Polish. A lost
    or refused connection carries the driver's own message (in English, for the
    specialist); any other database error only its type, table and code location, since
    its text carries SQL parameters (personal data)."""
    refused = db_errors.connection_failure(exc)
    if refused is not None:
        return f"nie można połączyć się z bazą danych (database.url): {one_line(refused)}"
    if db_errors.from_database_library(exc):
        return f"błąd bazy danych: {describe_technical_error(exc).text()}"
    return one_line(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
