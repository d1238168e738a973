"""Fee periods follow the union's rates: when the rate tables change, every property's
periods are recomputed, without a new declaration (fee-rules.md: "the fee of every property
changes with them from the first month the new rates apply").

The fingerprint of the rate tables the periods were last computed with is kept in
``worker_setting``; the daemon and ``run --once`` compare it with the rules in force at
start and recompute every property when it differs, one transaction per property.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert, select, update

from adapters.db import ebok
from adapters.db.tables import ebok_declaration, worker_setting
from worker.domain.findings import ACCEPTED, SUPERSEDED

log = logging.getLogger(__name__)

RATES_KEY = "fee_periods.rates_fingerprint"


def rates_fingerprint(ruleset: Any) -> str:
    """What the fee periods depend on in the rules: the dated rate tables."""
    return hashlib.sha256(repr((ruleset.residential, ruleset.containers)).encode()).hexdigest()


def recompute_if_rates_changed(engine: Engine, ruleset: Any, *, now: datetime | None = None) -> int | None:
    """Recompute every property's fee periods when the rates changed since the last time.
    Returns how many properties were recomputed, or None when nothing changed."""
    now = now or datetime.now(timezone.utc)
    fingerprint = rates_fingerprint(ruleset)
    with engine.connect() as conn:
        stored = conn.execute(select(worker_setting.c.value).where(worker_setting.c.key == RATES_KEY)).scalar()
        d = ebok_declaration.c
        properties = list(
            conn.execute(select(d.property_id).where(d.status.in_((ACCEPTED, SUPERSEDED)), d.property_id.is_not(None)).distinct().order_by(d.property_id)).scalars()
        )
    if stored == fingerprint:
        return None
    for pid in properties:
        with engine.begin() as conn:
            ebok.recompute_fee_periods(conn, pid, ruleset)
    with engine.begin() as conn:
        values = {"value": fingerprint, "updated_at": now}
        if stored is None:
            conn.execute(insert(worker_setting).values(key=RATES_KEY, **values))
        else:
            conn.execute(update(worker_setting).where(worker_setting.c.key == RATES_KEY).values(**values))
    if properties:
        log.info("fee periods recomputed for new rates", extra={"event": "fees.recomputed", "properties": len(properties)})
    return len(properties)
