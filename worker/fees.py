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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.db import ebok, settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

RATES_KEY = "fee_periods.rates_fingerprint"


def rates_fingerprint(ruleset: Any) -> str:
    """What the fee periods depend on in the rules: the dated rate tables."""
    return hashlib.sha256(repr((ruleset.residential, ruleset.containers)).encode()).hexdigest()


def recompute_if_rates_changed(engine: Engine, ruleset: Any, *, now: datetime | None = None) -> int | None:
    """Recompute every property's fee periods when the rates changed since the last time.
    Returns how many properties were recomputed, or None when nothing changed."""
    now = now or datetime.now(UTC)
    fingerprint = rates_fingerprint(ruleset)
    with engine.connect() as conn:
        stored = settings.get(conn, RATES_KEY)
        properties = ebok.properties_with_fee_periods(conn)
    if stored == fingerprint:
        return None
    for pid in properties:
        with engine.begin() as conn:
            ebok.recompute_fee_periods(conn, pid, ruleset)
    with engine.begin() as conn:
        settings.put(conn, RATES_KEY, fingerprint, now, exists=stored is not None)
    if properties:
        log.info("fee periods recomputed for new rates", extra={"event": "fees.recomputed", "properties": len(properties)})
    return len(properties)
