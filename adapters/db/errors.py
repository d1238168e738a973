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


# what the driver's own (English) text of a failed connection means, for the administrator
_CONNECTION_PROBLEMS = (
    ("connection refused", "serwer nie przyjmuje połączeń (czy PostgreSQL działa i słucha pod tym adresem?)"),
    ("password authentication failed", "logowanie odrzucone: błędny użytkownik lub hasło (database.password_env)"),
    ("no password supplied", "serwer wymaga hasła, a nie podano go (database.password_env)"),
    ("does not exist", "nie ma takiej bazy danych albo użytkownika na serwerze"),
    ("no pg_hba.conf entry", "serwer nie przyjmuje połączeń z tego komputera (pg_hba.conf)"),
    ("could not translate host name", "nieznana nazwa serwera bazy danych"),
    ("name or service not known", "nieznana nazwa serwera bazy danych"),
    ("timeout expired", "przekroczony czas oczekiwania na serwer bazy danych"),
    ("timed out", "przekroczony czas oczekiwania na serwer bazy danych"),
    ("no route to host", "serwer bazy danych jest nieosiągalny w sieci"),
    ("network is unreachable", "sieć do serwera bazy danych jest nieosiągalna"),
    ("too many connections", "serwer odrzuca połączenie: zbyt wiele połączeń"),
    ("remaining connection slots", "serwer odrzuca połączenie: zbyt wiele połączeń"),
    ("the database system is starting up", "serwer bazy danych właśnie się uruchamia"),
    ("the database system is shutting down", "serwer bazy danych właśnie się zatrzymuje"),
    ("server closed the connection", "serwer bazy danych zerwał połączenie"),
    ("terminating connection", "serwer bazy danych zerwał połączenie"),
    ("unable to open database file", "nie można otworzyć pliku bazy SQLite (czy folder istnieje i jest dostępny do zapisu?)"),
    ("database or disk is full", "errno 28: brak miejsca na dysku"),
    ("disk i/o error", "błąd odczytu lub zapisu dysku"),
    ("readonly database", "plik bazy SQLite jest tylko do odczytu"),
    ("database is locked", "baza SQLite jest zajęta przez inny proces"),
    ("no space left on device", "errno 28: brak miejsca na dysku"),
)


def connection_problem(exc: BaseException) -> str:
    """A failed database connection in Polish, from what the driver said (its English text
    is for the log, never for the screen).

    >>> from sqlalchemy.exc import OperationalError
    >>> connection_problem(OperationalError("SELECT 1", {}, Exception('connection to server at "127.0.0.1", port 1 failed: Connection refused')))
    'serwer nie przyjmuje połączeń (czy PostgreSQL działa i słucha pod tym adresem?)'
    """
    text = str(getattr(exc, "orig", None) or exc).lower()
    for needle, meaning in _CONNECTION_PROBLEMS:
        if needle in text:
            return meaning
    return f"połączenie nieudane ({type(getattr(exc, 'orig', None) or exc).__name__}; szczegóły w logu)"


def where(url: str) -> str:
    """The database a URL names, without the password: ``127.0.0.1:5432/ebok`` or the file.

    >>> where("postgresql+psycopg://ebok:secret@db.local:5432/ebok"), where("sqlite:////var/lib/ebok.sqlite3")
    ('db.local:5432/ebok', '/var/lib/ebok.sqlite3')
    """
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as nothing
        return "?"
    if u.get_backend_name() == "sqlite":
        return u.database or ":memory:"
    return f"{u.host or 'localhost'}{':' + str(u.port) if u.port else ''}/{u.database or ''}"
