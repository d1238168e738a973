"""Running the command line in tests.

``run_cli`` calls ``worker.cli.main`` in this process (no interpreter to start, no imports
to repeat): the exit code and what the command printed, as a ``subprocess.run`` result
would give them. ``run_cli_process`` starts ``python -m worker.cli`` for the tests where the
process boundary is the point (signals, kills, two instances, the module entry point); those
tests are marked ``slow``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# the loggers whose level worker.logs.setup changes (restored after every in-process run)
_LOGGERS = ("", "zeep", "urllib3", "apscheduler", "alembic", "xmlschema", "signxml", "pyhanko", "pyhanko_certvalidator")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None):
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(cfg: Path | str | None, *args: str, env: Mapping[str, str] | None = None) -> CliResult:
    """``ebok-worker --config CFG ARGS…`` in this process; ``env`` replaces the environment
    for the call. The logging set up by the command is taken down again afterwards."""
    from worker.cli import main

    argv = (["--config", str(cfg)] if cfg is not None else []) + list(args)
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    handlers = list(root.handlers)
    try:
        with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage errors and --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(cfg: Path | str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m worker.cli --config CFG ARGS…`` in its own process."""
    return subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(cfg), *args], capture_output=True, text=True, env=env, timeout=timeout)
