"""The worker's counters (``worker_counter``), for the Prometheus metrics: documents
processed by outcome (``processed``) and errors by kind (``errors``).

A counter is increased in the transaction that does the work it counts where there is one
(a batch's load, a technical failure), so it never counts what was rolled back; the
others (a failed pull pass, a database outage once it is over) in a short transaction of
their own, best effort. Every process on the database adds to the same rows: the metrics
written by any of them agree, and a counter never goes down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from adapters.db.tables import worker_counter
from worker.domain.clock import utcnow

log = logging.getLogger(__name__)

PROCESSED = "processed"
ERRORS = "errors"
#: the kinds of ``errors`` (each is exported, also at 0)
ERROR_KINDS = ("processing", "epuap", "storage", "scan", "handover", "database", "trust")


def add(conn: Connection, name: str, counts: Mapping[str, float], now: datetime | None = None) -> None:
    """Add ``counts`` (label → amount) to the counter ``name``, within ``conn``'s transaction."""
    counts = {label: n for label, n in counts.items() if n}
    if not counts:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    at = now or utcnow()
    c = worker_counter.c
    for label in sorted(counts):  # always the same order: two transactions never wait on each other crosswise
        stmt = insert(worker_counter).values(name=name, label=label[:40], value=float(counts[label]), updated_at=at)
        conn.execute(stmt.on_conflict_do_update(index_elements=[c.name, c.label],
                                                set_={"value": c.value + stmt.excluded.value, "updated_at": stmt.excluded.updated_at}))


def record(engine: Engine, name: str, label: str, n: float = 1) -> bool:
    """:func:`add` in a transaction of its own; False (logged) when the database refused."""
    if not n:
        return True
    try:
        with engine.begin() as conn:
            add(conn, name, {label: n})
        return True
    except Exception as exc:  # noqa: BLE001 - a counter never stops the work it counts
        log.info("counter not recorded", extra={"event": "counter.not_recorded", "counter": name, "label": label, "error": type(exc).__name__})
        return False


def read(conn: Connection) -> dict[str, dict[str, float]]:
    """Every counter: name → label → value."""
    out: dict[str, dict[str, float]] = {}
    for name, label, value in conn.execute(select(worker_counter.c.name, worker_counter.c.label, worker_counter.c.value)):
        out.setdefault(name, {})[label] = value
    return out
