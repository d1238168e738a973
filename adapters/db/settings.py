"""The worker's own settings kept in the database (``worker_setting``: key → value)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update

from adapters.db.tables import worker_setting


def get(conn: Connection, key: str) -> str | None:
    return conn.execute(select(worker_setting.c.value).where(worker_setting.c.key == key)).scalar()


def put(conn: Connection, key: str, value: str, now: datetime, *, exists: bool) -> None:
    """Record ``value`` under ``key``; ``exists``: whether :func:`get` found one."""
    values = {"value": value, "updated_at": now}
    if exists:
        conn.execute(update(worker_setting).where(worker_setting.c.key == key).values(**values))
    else:
        conn.execute(insert(worker_setting).values(key=key, **values))


PROBE_KEY = "health.write_probe"


def database_writable(engine: Engine) -> bool:
    """Does a write go through (a database on a full disk still answers reads)? One small
    row of ``worker_setting`` rewritten and committed."""
    from worker.domain.clock import utcnow

    now = utcnow()
    try:
        with engine.begin() as conn:
            exists = get(conn, PROBE_KEY) is not None
            put(conn, PROBE_KEY, now.isoformat(), now, exists=exists)
        return True
    except Exception:  # noqa: BLE001 - any refusal counts
        return False
