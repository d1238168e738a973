"""Errors the command line turns into exit status 2 (one line, no traceback), and what may
be recorded of a technical error (no personal data)."""

import re
import traceback
from dataclasses import dataclass

from worker.config import ConfigError


class UsageError(Exception):
    """A command used wrongly (an unknown id, a missing option value…)."""


__all__ = ["ConfigError", "SafeMessage", "TechnicalError", "UsageError", "describe_technical_error"]


# --- technical errors without personal data ---------------------------------------------

_TABLE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|FROM)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class SafeMessage(Exception):
    """An exception whose message is written by the worker itself and never holds document
    data: it may be shown in ``last_error`` and the logs as is."""


@dataclass(frozen=True)
class TechnicalError:
    """What may be recorded of a technical failure: the exception's type, the table of the
    failed SQL statement, the code location — never SQL parameters, values or messages that
    may quote document content (PESELs, names, addresses)."""

    type: str
    table: str | None
    where: str | None
    message: str | None  # only for :class:`SafeMessage` exceptions

    def text(self) -> str:
        parts = [self.type]
        if self.table:
            parts.append(f"tabela {self.table}")
        if self.where:
            parts.append(f"w {self.where}")
        head = parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")
        return f"{head}: {self.message}" if self.message else head

    def log_fields(self) -> dict:
        return {"error": self.type, "table": self.table, "where": self.where}


def describe_technical_error(exc: BaseException) -> TechnicalError:
    from sqlalchemy.exc import StatementError

    name = type(exc).__name__
    table = None
    if isinstance(exc, StatementError):
        orig = getattr(exc, "orig", None)
        if orig is not None:
            name = f"{name}/{type(orig).__name__}"
        match = _TABLE.search(exc.statement or "")
        table = match.group(1) if match else None
    where = None
    tb = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if tb:
        frame = tb[-1]
        where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
    message = str(exc)[:500] if isinstance(exc, SafeMessage) else None
    return TechnicalError(name, table, where, message)
