"""Database engine and migrations (Alembic, run from the installed package).

Alembic is imported only by the functions that migrate or read the migration scripts:
the commands that process documents check the schema with :func:`schema_is_current`,
plain SQL against :data:`SCHEMA_REVISION` (a test keeps it equal to the scripts' head).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text

from adapters.fsmodes import GROUP_DIR, PRIVATE_FILE, create_file, make_dirs

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

#: the newest migration (``adapters/db/migrations/versions``)
SCHEMA_REVISION = "0008"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the worker's database. SQLite gets foreign keys, WAL and a busy
    timeout, so the daemon and a hand-run command can share the file; a database file
    that does not exist yet is created first, with no access for other users (0600, its
    folder 0750 when made here: :mod:`adapters.fsmodes`) — SQLite gives its journal and
    WAL files the database file's mode."""
    if url.startswith("sqlite"):
        _create_sqlite_file(url)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _create_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` (0600) when it does not exist yet."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        return
    make_dirs(path.parent, GROUP_DIR)
    try:
        create_file(path, PRIVATE_FILE).close()
    except FileExistsError:
        pass  # created meanwhile by another process


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("adapters.db") / "migrations"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent)."""
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is migrated to :data:`SCHEMA_REVISION` (without Alembic)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [SCHEMA_REVISION]
