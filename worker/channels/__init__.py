"""Intake channels as data: one entry per channel says which stages run for its documents
and how ``check`` treats a file of it. ``worker.stages.stages_for`` (processing) and
``check`` ask the registry; a new channel is one module here with its :class:`Channel`,
plus one line in :data:`ENTRIES` (tests register their own with :func:`register`).

The source adapter that stores the channel's documents (``Intake.store(channel=…)``) and
its scheduled job stay where they are (``adapters/``, ``worker/daemon.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.pipeline import Stage


@dataclass(frozen=True)
class Channel:
    name: str  # as stored in worker_document.channel and ebok_declaration.channel
    stages: Callable[[], list[Stage]]  # the pipeline of its documents, in order
    # ``check``: is this parsed file (its root element; None when unreadable) one of the channel's?
    recognises: Callable[[Any], bool] = lambda root: False
    # ``check`` without --filed-at: True, now; False, the document's own date (its stages read it)
    filed_now: bool = True
    # reported when the pipeline found no signature (``check`` and the loader's defaults)
    unsigned_signature: str | None = None
    unsigned_status: str = "NOT_APPLICABLE"
    # ``check``: a further offline check of the file (the scan's PDF beside its export), with the settings
    offline_check: Callable[[Path, Any, Any], dict[str, Any]] | None = None


_REGISTRY: dict[str, Channel] = {}


def register(channel: Channel) -> Channel:
    _REGISTRY[channel.name] = channel
    return channel


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> Channel:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"no pipeline for channel {name!r}") from None


def names() -> list[str]:
    return list(_REGISTRY)


def recognise(root: Any, default: str) -> Channel:
    """The channel whose files look like ``root``; ``default`` when none claims it."""
    for channel in _REGISTRY.values():
        if channel.recognises(root):
            return channel
    return get(default)


from worker.channels import epuap, paper  # noqa: E402 - the entries need Channel above

ENTRIES = (epuap.CHANNEL, paper.CHANNEL)
for _entry in ENTRIES:
    register(_entry)
