"""Which stages run for which channel, in order: each channel's entry in the registry
(:mod:`worker.channels`) assembles its pipeline — ePUAP in :mod:`worker.channels.epuap`,
PAPER in :mod:`worker.channels.paper`. The database checks (corrections, retroactive
decreases) and the load follow in the service layer.
"""

from __future__ import annotations

from typing import Any

from worker import channels
from worker.pipeline import Stage


def stages_for(channel: str, metadata: dict[str, Any] | None = None) -> list[Stage]:
    """The stages of ``channel``'s documents; ValueError for a channel nobody registered."""
    return channels.get(channel).stages()
