"""Errors the command line turns into exit status 2 (one line, no traceback)."""

from worker.config import ConfigError


class UsageError(Exception):
    """A command used wrongly (an unknown id, a missing option value…)."""


__all__ = ["ConfigError", "UsageError"]
