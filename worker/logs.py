"""Logging: one event per line on stdout, JSON by default, personal data masked.

Every record passes through :class:`MaskingFilter` (installed on the handler), which runs
:func:`mask` over the message and every extra value: PESEL- and NIP-like digit runs keep
their first six digits (``440514*****``), IBAN/NRB-like runs are cut likewise, and extra
keys that name personal data (``pesel``, ``name``, ``address``…) are replaced whole. The
worker's own code never passes names, addresses or document content to a log call; the
filter is the net under that rule.

Log keys are stable: ``ts`` (UTC, ISO 8601), ``level``, ``event``, ``logger``, ``msg`` and
the extras (``document_id``, ``channel``, ``mailbox``, ``step``, ``duration_ms``,
``outcome``…).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from worker.errors import describe_technical_error

_DIGITS = re.compile(r"(?<!\d)(\d{6})\d{4,20}(?!\d)")
_SENSITIVE_KEYS = frozenset(
    {
        "pesel", "nip", "regon", "name", "first_name", "last_name", "signer", "signer_name",
        "address", "street", "town", "email", "phone", "content", "raw", "password", "secret",
    }
)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def mask(text: str) -> str:
    """Mask identifier-like digit runs (10 or more digits) in ``text``.

    >>> mask("PESEL 44051401359 i NIP 7492045956")
    'PESEL 440514***** i NIP 749204****'
    >>> mask("dokument 1234 z 2025-02-03")
    'dokument 1234 z 2025-02-03'
    """
    return _DIGITS.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 6), text)


def _mask_value(key: str, value: Any) -> Any:
    if key.lower() in _SENSITIVE_KEYS:
        return "***"
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    return value


def extras_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def safe_exception_text(exc: BaseException | None) -> str:
    """A traceback without personal data: the frames (file, line, function) and, for each
    exception in the chain, only its type and the table of a failed SQL statement — never
    the message, which may quote SQL parameters or document content (names, addresses)."""
    if exc is None:
        return ""
    chain: list[BaseException] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(chain) < 10:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    parts = []
    for e in reversed(chain):
        lines = ["Traceback (most recent call last):"]
        for frame in traceback.extract_tb(e.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        lines.append(describe_technical_error(e).text())
        parts.append("\n".join(lines))
    return "\n\nDuring handling of the above exception, another exception occurred:\n\n".join(parts)


class MaskingFilter(logging.Filter):
    """Masks personal data in every record that reaches the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = ()
        if record.exc_info:  # always ours: another handler may have cached the full text already
            record.exc_text = safe_exception_text(record.exc_info[1])
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        record.exc_info = None
        for key, value in extras_of(record).items():
            setattr(record, key, _mask_value(key, value))
        return True


_SCHEDULER_EVENTS = (
    ("was missed by", "scheduler.job_missed"),
    ("skipped: maximum number of running instances", "scheduler.job_skipped"),
    ("raised an exception", "scheduler.job_failed"),
    ("Error submitting job", "scheduler.submit_failed"),
    ("Scheduler started", "scheduler.started"),
    ("Scheduler has been shut down", "scheduler.stopped"),
)


class SchedulerEvents(logging.Filter):
    """APScheduler's own records get a worker event name (``scheduler.job_missed``,
    ``scheduler.job_skipped``…) and the ``job`` id they concern, before masking flattens
    their arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("apscheduler") or getattr(record, "event", None):
            return True
        template = str(record.msg)
        record.event = next((ev for needle, ev in _SCHEDULER_EVENTS if needle in template), "scheduler.log")
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            job_id = getattr(arg, "id", None)
            if isinstance(job_id, str):
                record.job = job_id
                break
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "event": getattr(record, "event", None) or "log",
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extras_of(record).items():
            if key != "event":
                out[key] = value
        if record.exc_text:
            out["error"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        extras = " ".join(f"{k}={v}" for k, v in extras_of(record).items() if k != "event")
        event = getattr(record, "event", None) or "log"
        line = f"{ts} {record.levelname:<7} {event} {record.getMessage()}"
        if extras:
            line += f" [{extras}]"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def make_handler(fmt: str = "json", stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    return _dressed(handler, JsonFormatter() if fmt == "json" else TextFormatter())


def _dressed(handler: logging.Handler, formatter: logging.Formatter) -> logging.Handler:
    handler.addFilter(SchedulerEvents())
    handler.addFilter(MaskingFilter())
    handler.setFormatter(formatter)
    return handler


_LEVELS_PL = {"WARNING": "uwaga", "ERROR": "błąd", "CRITICAL": "błąd krytyczny"}


class TerminalFormatter(logging.Formatter):
    """A warning on a person's terminal: one line, the level in Polish, the event's stable
    name and its values — not the (English) message, never a traceback (the full record
    goes to the configured destination). A record without an event name (a library's
    own warning) shows its message."""

    def format(self, record: logging.LogRecord) -> str:
        extras = ", ".join(f"{k}={v}" for k, v in extras_of(record).items() if k != "event" and v is not None)
        event = getattr(record, "event", None)
        line = f"{_LEVELS_PL.get(record.levelname, record.levelname.lower())}: {event or record.name}"
        if not event:
            line += f": {record.getMessage()}"
        return line + (f" ({extras})" if extras else "")


#: events a person at the terminal reads in the command's own output: not repeated there as
#: a warning line (a command's own failure is printed by the command line as one Polish line)
_REPORTED_BY_THE_COMMAND: set[str] = {"cli.failed"}


def reported_by_the_command(*events: str) -> None:
    """The running command prints what these events say (``trust update`` a list not
    adopted): on a terminal they are not shown again as warning lines; the configured
    destination still gets them."""
    _REPORTED_BY_THE_COMMAND.update(events)


class _NotForTheTerminal(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "event", None) not in _REPORTED_BY_THE_COMMAND


def setup(fmt: str = "json", level: str = "INFO", stream: Any = None, *, file: Any = None, terminal: bool = False) -> None:
    """Route every logger (the worker's and the libraries') to the masked handlers: the
    records at ``level`` to ``file`` when one is configured, else to ``stream`` (stdout by
    default) unless ``terminal``; with ``terminal`` (the log stream would land on a person's
    terminal) warnings and errors go to stderr as short text lines without tracebacks."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_ebok", False):
            root.removeHandler(h)
            if isinstance(h, logging.FileHandler):
                h.close()
    handlers: list[logging.Handler] = []
    if file is not None:
        handlers.append(_dressed(logging.FileHandler(file, encoding="utf-8", delay=True), JsonFormatter() if fmt == "json" else TextFormatter()))
    elif not terminal:
        handlers.append(make_handler(fmt, stream))
    if terminal:
        on_screen = _dressed(logging.StreamHandler(sys.stderr), TerminalFormatter())
        on_screen.addFilter(_NotForTheTerminal())
        on_screen.setLevel(logging.WARNING)
        handlers.append(on_screen)
    for handler in handlers:
        handler._ebok = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    configured = logging.getLevelName(level)
    root.setLevel(configured if handlers and (file is not None or not terminal) else max(configured, logging.WARNING))
    # libraries are chatty at INFO/DEBUG; their warnings still come through
    for noisy in ("zeep", "urllib3", "apscheduler", "alembic", "xmlschema", "signxml"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # pyHanko's records name certificate subjects (persons' names) and report as warnings what
    # the worker records itself as outcomes (findings, evidence): kept out of the logs
    for quiet in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(quiet).setLevel(logging.CRITICAL)
