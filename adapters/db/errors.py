"""What a database failure was, for the callers that must tell an outage from a fault."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError


def database_lost(exc: BaseException | None) -> bool:
    """Was ``exc`` (or what caused it) a lost or refused database connection?"""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def is_database_error(exc: BaseException) -> bool:
    """Did the database driver raise it (the database down, a statement refused)?"""
    return isinstance(exc, DBAPIError)


def connection_failure(exc: BaseException) -> BaseException | None:
    """A lost or refused connection: the driver's own error (its text names no data); None
    for any other failure."""
    if isinstance(exc, OperationalError):
        return exc.orig or exc
    return None


def from_database_library(exc: BaseException) -> bool:
    """Raised by SQLAlchemy (its text may carry SQL parameters: never show it)."""
    return isinstance(exc, SQLAlchemyError)
