"""Processes that share a command's work: forked from the command's process, each one does
its part from end to end (claims, analyses, loads) and sends small messages back; the
command's process only supervises them.

Used by ``process`` / ``run --once`` and ``reprocess`` when ``[processing] workers`` > 1:
one process per core, each with its own database connections, instead of one process that
loads while a pool analyses (no documents and results between processes: see
docs/performance.md). The claims on the database keep them from ever doing the same
document; a process that dies (a document that crashes its analysis, the out-of-memory
killer) leaves its claims, which the command takes back and finishes itself.

Forking is safe only from a process that runs no other thread (a lock held by another
thread would stay held in the child): the callers check it, and fork before a progress
display starts (which then runs without a thread of its own). The children are forked
while the parent's objects are frozen for the garbage collector, so a child never
finalises an object it inherited (an open lock context of the parent, a database
connection), and each child opens its own connections (``engine.dispose(close=False)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, cast

log = logging.getLogger(__name__)

#: what a child calls to send a message to the command's process: ``send(kind, payload)``
Send = Callable[[str, Any], None]
#: a child's work: ``work(number, send, stop)``; ``stop`` is set when the command is
#: interrupted (finish the batch in hand, then return)
Work = Callable[[int, Send, threading.Event], None]

ENDED = "ended"  # the last message of each child: the payload is True when it finished its work


def can_fork() -> bool:
    """Forking is safe now: this process runs a single thread."""
    return threading.active_count() == 1


@dataclass
class _Child:
    number: int
    process: Any  # multiprocessing.context.ForkProcess
    reader: Connection
    finished: bool = False


@dataclass
class Children:
    """Forked children at work; :meth:`messages` yields what they send until all ended.
    As a context manager, it stops them when its block is left on an exception."""

    children: list[_Child] = field(default_factory=list)

    def messages(self) -> Iterator[tuple[int, str, Any]]:
        """``(child number, kind, payload)`` in the order they arrive; every child ends with
        ``(number, ENDED, finished)`` — ``finished`` False when it died before finishing
        (killed, a crash, an exception: logged by the child)."""
        live: dict[Connection, _Child] = {c.reader: c for c in self.children}
        while live:
            for ready in wait(list(live)):
                reader = cast(Connection, ready)
                child = live[reader]
                try:
                    kind, payload = reader.recv()
                except (EOFError, OSError):
                    del live[reader]
                    child.process.join()
                    reader.close()
                    finished = child.finished and child.process.exitcode == 0
                    if not finished:
                        log.warning("a processing process ended before finishing its work",
                                    extra={"event": "processing.process_died", "exit_code": child.process.exitcode})
                    yield child.number, ENDED, finished
                    continue
                if kind == "_finished":
                    child.finished = True
                    continue
                yield child.number, kind, payload

    def __enter__(self) -> Children:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Leaving the block on an exception (Ctrl-C, a lost database) stops the children."""
        if exc_type is not None:
            self.stop()

    def stop(self, grace_s: float = 30.0) -> None:
        """Ask the children that still run to stop (the command is interrupted): each
        finishes its batch in hand; one that does not within ``grace_s`` is killed (its
        claims are taken back by the next run)."""
        for child in self.children:
            if child.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
        for child in self.children:
            child.process.join(grace_s)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()


def fork(count: int, work: Work) -> Children:
    """Fork ``count`` children, each running ``work(number, send, stop)`` (number
    0…count-1), then exiting. Call only when :func:`can_fork`."""
    context = multiprocessing.get_context("fork")
    children = Children()
    gc.freeze()  # a child never collects (and so never finalises) what it inherited
    try:
        for number in range(count):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(work, number, writer), name=f"ebok-worker-{number}", daemon=False)
            process.start()
            writer.close()
            children.children.append(_Child(number, process, reader))
    except BaseException:  # a fork that failed (no memory, a process limit): the others stop too
        children.stop()
        raise
    finally:
        gc.unfreeze()
    return children


def _child(work: Work, number: int, writer: Connection) -> None:
    with contextlib.suppress(Exception):  # Linux: SIGKILL when the parent dies
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)
    # Ctrl-C reaches the whole process group: the command's process decides (and sends
    # SIGTERM, which lets the batch in hand finish)
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())

    def send(kind: str, payload: Any) -> None:
        writer.send((kind, payload))

    code = 1
    try:
        work(number, send, stop)
        send("_finished", None)
        code = 0
    except BaseException:  # noqa: BLE001 - logged here, the parent finishes the work
        log.exception("processing process failed", extra={"event": "processing.process_failed"})
    finally:
        with contextlib.suppress(Exception):
            writer.close()
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(code)  # no exit handlers of the parent's (its database engine, its pool)
