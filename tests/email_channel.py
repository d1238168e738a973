"""A channel that exists only in the tests: e-mailed declarations, to show that a new
intake channel is this one module plus one registry entry (tests/test_channels.py)."""

from __future__ import annotations

from tests.pipeline_doubles import parse_test
from worker.channels import Channel
from worker.pipeline import Stage

NAME = "EMAIL"


def stages() -> list[Stage]:
    return [parse_test]


def recognises(root) -> bool:
    return getattr(root, "tag", None) == "t"


CHANNEL = Channel(name=NAME, stages=stages, recognises=recognises, unsigned_signature=None, unsigned_status="NOT_APPLICABLE")
