"""Errors the command line turns into exit status 2 (one line, no traceback), and what may
be recorded of a technical error (no personal data)."""

import errno as _errno
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


# --- what the operating system said, in Polish ------------------------------------------

_ERRNO_PL = {
    "ENOSPC": "brak miejsca na dysku",
    "EDQUOT": "przekroczony przydział miejsca na dysku (quota)",
    "EACCES": "brak uprawnień",
    "EPERM": "operacja niedozwolona",
    "EROFS": "system plików jest tylko do odczytu",
    "ENOENT": "nie ma takiego pliku ani folderu",
    "ENOTDIR": "to nie jest folder",
    "EISDIR": "to jest folder, a nie plik",
    "EEXIST": "plik już istnieje",
    "EIO": "błąd odczytu lub zapisu dysku",
    "EMFILE": "za dużo otwartych plików",
    "ENFILE": "za dużo otwartych plików w systemie",
    "ENAMETOOLONG": "za długa nazwa pliku",
    "EBUSY": "zasób jest zajęty",
    "ENOMEM": "brak pamięci",
    "ESTALE": "nieaktualny dostęp do udziału sieciowego (NFS)",
    "ETIMEDOUT": "przekroczony czas oczekiwania",
    "ECONNREFUSED": "połączenie odrzucone",
    "EHOSTUNREACH": "serwer nieosiągalny",
    "ENETUNREACH": "sieć nieosiągalna",
    "EXDEV": "przeniesienie między różnymi systemami plików",
    "ELOOP": "zapętlone dowiązania",
}

#: the errno of a full disk (and of an exceeded quota): ``disk_full`` wherever it is met
DISK_FULL_ERRNOS = frozenset({_errno.ENOSPC, _errno.EDQUOT})


def errno_text(number: int | None) -> str:
    """An errno as the administrator reads it: the number and its Polish text.

    >>> errno_text(28)
    'errno 28: brak miejsca na dysku'
    >>> errno_text(None)
    'błąd systemu plików'
    """
    if number is None:
        return "błąd systemu plików"
    name = _errno.errorcode.get(number)
    text = _ERRNO_PL.get(name or "")
    return f"errno {number}: {text}" if text else f"errno {number} ({name or 'nieznany'})"


def os_error_of(exc: BaseException | None) -> OSError | None:
    """The :class:`OSError` with an errno that ``exc`` is or was caused by (a driver's
    error wrapping it too), or None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def is_disk_full(exc: BaseException | None) -> bool:
    """A write refused for want of space: ENOSPC/EDQUOT, SQLite's "database or disk is full"
    (``SQLITE_FULL``) or PostgreSQL's SQLSTATE 53100 (``disk_full``).

    >>> is_disk_full(OSError(28, "No space left on device")), is_disk_full(OSError(13, "Permission denied"))
    (True, False)
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        orig = getattr(exc, "orig", None)
        if getattr(orig, "sqlstate", None) == "53100" or getattr(exc, "sqlstate", None) == "53100":
            return True
        if type(orig).__module__.startswith("sqlite3") and "disk is full" in str(orig):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def file_error_text(exc: BaseException, path: object | None = None) -> str:
    """A file-system failure in Polish: ``errno 28: brak miejsca na dysku (/var/lib/…)``;
    a full disk met through the database driver reads the same."""
    found = os_error_of(exc)
    if found is None and is_disk_full(exc):
        text = errno_text(_errno.ENOSPC)
    else:
        text = errno_text(found.errno if found is not None else None)
    where = path if path is not None else (found.filename if found is not None and found.filename else None)
    return f"{text} ({where})" if where else text
