"""The database: migrations create exactly the eBOK contract tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from adapters.db.migrate import SCHEMA_REVISION, current_revision, head_revision, make_engine, schema_is_current, upgrade
from adapters.db.tables import metadata


def contract_columns(shared_dir) -> dict[str, list[str]]:
    """The tables and columns as `spec/ebok-contract.md` lists them."""
    text = (shared_dir / "spec" / "ebok-contract.md").read_text(encoding="utf-8")
    tables: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^`(ebok_\w+)` —", line)
        if m:
            current = tables.setdefault(m.group(1), [])
            continue
        if current is not None and line.startswith("| ") and not line.startswith("| column") and not line.startswith("|---"):
            cell = line.split("|")[1].strip()
            current.extend(c.strip() for c in cell.split(","))
        elif current is not None and not line.strip():
            if tables and current:
                current = None
    return tables


def test_migrations_create_the_contract_tables(engine, shared_dir):
    insp = inspect(engine)
    contract = contract_columns(shared_dir)
    assert set(contract) == {"ebok_payer", "ebok_property", "ebok_declaration", "ebok_fee_period"}
    for table, columns in contract.items():
        actual = {c["name"] for c in insp.get_columns(table)}
        missing = set(columns) - actual
        assert not missing, f"{table} lacks {missing}"
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("ebok_declaration")}
    assert ("channel", "source_ref") in uniques


def test_migrations_match_the_table_definitions(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_at_head(engine):
    upgrade(engine)
    assert current_revision(engine) == head_revision() is not None


def test_the_schema_check_without_alembic_knows_the_scripts_head(engine):
    """The commands check the schema with plain SQL against SCHEMA_REVISION: it must be
    the newest migration script."""
    assert SCHEMA_REVISION == head_revision()
    assert schema_is_current(engine)


def test_a_database_never_migrated_is_not_current(db_url, tmp_path):
    if db_url.startswith("sqlite"):
        empty = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    else:  # the same server, a schema with no tables
        empty = create_engine(db_url, connect_args={"options": "-c search_path=ebok_no_such_schema"})
    try:
        assert not schema_is_current(empty)
    finally:
        empty.dispose()
