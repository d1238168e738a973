"""Shared test fixtures.

``shared_dir`` is the union's read-only ``../shared`` folder. Tests that need it skip with
a reason when it is absent, but fail when ``EBOK_REQUIRE_SHARED=1`` (CI sets it).
"""

from __future__ import annotations

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
