"""A progress bar on a terminal (``rich``), for the commands that work through a backlog
(``run --once``, ``process``, ``reprocess``); nothing elsewhere.

The bar is redrawn by the thread that moves it (at most ten times a second), never by a
thread of its own: these commands fork processes while it is shown (``worker.parallel``),
which is safe only while the process runs a single thread."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool, description: str, *, stderr: bool = False) -> Iterator[tuple[Callable[..., None], Callable[[str], None]]]:
    """Yields ``(advance, emit)``: ``advance(n=1)`` moves the bar, ``emit(line)`` prints a
    line above it (on stdout, or on stderr with ``stderr``). Disabled or nothing to do: no
    bar, ``emit`` prints."""
    if not enabled or total == 0:
        yield (lambda n=1: None), print
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=stderr)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True,
                  console=console, redirect_stdout=False, redirect_stderr=False, auto_refresh=False) as bar:
        task = bar.add_task(description, total=total)
        drawn = 0.0

        def advance(n: int = 1) -> None:
            nonlocal drawn
            bar.advance(task, n)
            now = time.monotonic()
            if now - drawn >= 0.1:
                drawn = now
                bar.refresh()

        def emit(line: str) -> None:
            bar.console.print(line, markup=False, highlight=False, soft_wrap=True)

        yield advance, emit
