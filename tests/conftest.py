"""Shared test fixtures.

``shared_dir`` is the union's read-only ``../shared`` folder. Tests that need it skip with
a reason when it is absent, but fail when ``EBOK_REQUIRE_SHARED=1`` (CI sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("EBOK_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "README.md").is_file():
        if os.environ.get("EBOK_REQUIRE_SHARED") == "1":
            pytest.fail(f"EBOK_REQUIRE_SHARED=1 but the shared folder is missing: {SHARED_DIR}")
        pytest.skip(f"the union's shared folder is not present at {SHARED_DIR}")
    return SHARED_DIR


# --- databases ----------------------------------------------------------------------------
#
# SQLite by default: every test gets a fresh copy of a migrated template file.
# With EBOK_TEST_DATABASE_URL (a PostgreSQL URL whose user may create databases) the whole
# suite runs against PostgreSQL: one database is created for the session, migrated once,
# and emptied before every test that uses it.

PG_ADMIN_URL = os.environ.get("EBOK_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def _db_template(tmp_path_factory):
    from adapters.db.migrate import make_engine, upgrade

    if PG_ADMIN_URL:
        from sqlalchemy.engine import make_url

        name = f"ebok_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield ("postgresql", url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("dbtemplate") / "template.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield ("sqlite", str(path))


@pytest.fixture
def db_url(_db_template, tmp_path) -> str:
    """URL of a migrated, empty database for this test."""
    kind, where = _db_template
    if kind == "sqlite":
        target = tmp_path / "ebok.sqlite3"
        shutil.copyfile(where, target)
        return f"sqlite:///{target}"
    from adapters.db.tables import metadata

    engine = create_engine(where)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return where


@pytest.fixture
def engine(db_url):
    from adapters.db.migrate import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


# --- ePUAP development keys ----------------------------------------------------------------


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """The development PKI of the ePUAP double (system certificate, response certificate)."""
    from adapters.epuap import devkeys

    return devkeys.ensure(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory):
    """A second, unrelated development PKI (a wrong client or response certificate)."""
    from adapters.epuap import devkeys

    return devkeys.ensure(tmp_path_factory.mktemp("other-keys"))


# --- the test PKI of the signature tests (generated once per session) ---------------------

from tests.sigtools.fixtures import pki, trust, trust_files  # noqa: E402,F401  (fixtures for every module)

# --- the worker's configuration file -------------------------------------------------------


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string (Path → its text)


def render_toml(sections: dict) -> str:
    """``{"epuap": {"enabled": True, "mailboxes": [{…}, {…}]}}`` as TOML: the scalar keys of a
    section under ``[name]``, a list of tables as ``[[name.key]]``."""
    lines: list[str] = []
    for name, body in sections.items():
        tables = {k: v for k, v in body.items() if isinstance(v, list) and v and all(isinstance(t, dict) for t in v)}
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in body.items() if k not in tables]
        for key, items in tables.items():
            for item in items:
                lines.append(f"[[{name}.{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def epuap_section(server, keys, *mailboxes: str, **overrides) -> dict:
    """The ``[epuap]`` section for the local double ``server`` and the development ``keys``;
    ``mailboxes`` as ``podmiot/skrytka``."""
    section = {
        "enabled": True,
        "endpoint": server.url,
        "filerepo_endpoint": server.filerepo_url,
        "certificate": keys.system_certificate,
        "private_key": keys.system_key,
        "private_key_password_env": "TEST_EPUAP_KEY_PASSWORD",
        "response_certificate": keys.double_certificate,
        "timeout_s": 10,
        "max_attempts": 2,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.1,
        **overrides,
    }
    section["mailboxes"] = [dict(zip(("podmiot", "skrytka"), m.split("/"), strict=True)) for m in mailboxes]
    return section


def epuap_env(keys) -> dict[str, str]:
    """The environment with the password of the development key (``private_key_password_env``)."""
    return dict(os.environ, TEST_EPUAP_KEY_PASSWORD=keys.system_key_password)


@pytest.fixture
def write_config(request, tmp_path):
    """A factory: ``write_config(epuap={…}, scans={…}, path=…)`` writes a config.toml (by
    default ``tmp_path/config.toml``) for this test's database (``db_url``) with documents
    in ``documents/``; a section given replaces the default one, ``None`` drops it, and
    ``extra`` is raw TOML appended at the end."""

    def write(*, path: Path | None = None, extra: str = "", **sections) -> Path:
        merged: dict = {}
        if "database" not in sections:
            merged["database"] = {"url": request.getfixturevalue("db_url")}
        merged["storage"] = {"path": "documents"}
        for name, body in sections.items():
            if body is None:
                merged.pop(name, None)
            else:
                merged[name] = body
        target = path or tmp_path / "config.toml"
        target.write_text(render_toml(merged) + extra, encoding="utf-8")
        return target

    return write


@pytest.fixture
def epuap_double(keys):
    """A factory starting the local ePUAP double (``adapters.epuap.double.serve`` on a free
    port, with the development ``keys``); every server started is shut down after the test."""
    from adapters.epuap import double

    started = []

    def start(root=None, **kw):
        server = double.serve("127.0.0.1", 0, root, keys, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
