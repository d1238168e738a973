"""Locks shared by every process working on one database: at most one pull per mailbox
and one scan pass at a time, whoever runs them (a second daemon, a hand-run ``pull``).

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection
  of its own for the duration of the pass. It goes away with the connection, so a process
  that dies (or loses the database) never leaves a lock behind.
- SQLite: an exclusive ``flock`` on a lock file beside the database file
  (``<db>.<name>.lock``); the kernel releases it when the process dies.
- Anything else (an in-memory database): a lock within the process.

Locks are never waited for: a pass that finds its lock taken is skipped — the other
process is doing that very work.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

log = logging.getLogger("worker.locks")  # the logger keeps its name from before the move to adapters/db

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``.

    >>> lock_key("scan") == lock_key("scan") and lock_key("scan") != lock_key("epuap:/a/b")
    True
    """
    return int.from_bytes(hashlib.sha256(f"ebok-worker:{name}".encode()).digest()[:8], "big", signed=True)


def _safe_file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:80] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


class PassLocks:
    """Non-blocking, cross-process locks on one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._kept: dict[str, contextlib.ExitStack] = {}

    def keep(self, name: str) -> bool:
        """Take ``name`` for the rest of this process's life (or until :meth:`let_go`); True
        when it is (now) ours. Used as a sign of life: see :meth:`is_held_elsewhere`."""
        if name in self._kept:
            return True
        stack = contextlib.ExitStack()
        try:
            mine = stack.enter_context(self.hold(name))
        except BaseException:
            stack.close()
            raise
        if not mine:
            stack.close()
            return False
        self._kept[name] = stack
        return True

    def let_go(self, name: str) -> None:
        stack = self._kept.pop(name, None)
        if stack is not None:
            try:
                stack.close()
            except Exception:  # noqa: BLE001 - a lost connection has released it already
                pass

    def is_held_elsewhere(self, name: str) -> bool:
        """True when another process (or another part of this one) holds ``name`` now. On
        SQLite a lock file that is not there is held by no one (asking creates none)."""
        path = self._file_path(name)
        if path is not None and not path.exists():
            return False
        with self.hold(name) as mine:
            return not mine

    def _file_path(self, name: str) -> Path | None:
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        db = Path(database)
        return db.with_name(f"{db.name}.{_safe_file_part(name)}.lock")

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """``with locks.hold("scan") as mine:`` — ``mine`` is False when another process
        holds it (then do nothing)."""
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            with self._pg(name) as mine:
                yield mine
        elif dialect == "sqlite" and self.engine.url.database and self.engine.url.database != ":memory:":
            with self._file(Path(self.engine.url.database), name) as mine:
                yield mine
        else:
            with self._local(name) as mine:
                yield mine

    def remove_stale_files(self, *, prefix: str = "processor:", older_than_s: float = 60.0) -> int:
        """SQLite: remove the lock files of processes' signs of life (``prefix``) that no
        process holds any more — one is left by every process that ever ran (the kernel
        releases the lock, not the file). A file younger than ``older_than_s`` is left
        alone (its process may be between creating and locking it). The number removed."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return 0
        db = Path(database)
        pattern = f"{db.name}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', prefix).strip('_')}*.lock"
        removed = 0
        now = time.time()
        for path in db.parent.glob(pattern):
            try:
                if now - path.stat().st_mtime < older_than_s:
                    continue
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
            finally:
                os.close(fd)
        return removed

    @contextlib.contextmanager
    def writer_turn(self) -> Iterator[None]:
        """SQLite (a file): wait for this process's turn to write, blocking on an ``flock``
        of ``<db>.writer.lock`` — the kernel wakes the next waiter the moment the lock is
        released, where SQLite's own busy handler sleeps in steps (1, 2, 5, 10, 15, 20 …
        ms) and so leaves a core idle after the other process has committed. Used by the
        processors around their claims and loads; other writers keep SQLite's busy wait.
        Nothing elsewhere (PostgreSQL has row locks and :meth:`UnitOfWork.serialize_loads`)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        path = Path(database).with_name(f"{Path(database).name}.writer.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _pg(self, name: str) -> Iterator[bool]:
        key = lock_key(name)
        conn = self.engine.connect()
        try:
            mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield mine
            finally:
                if mine:
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
                    except Exception:  # noqa: BLE001 - a lost connection released it already
                        conn.invalidate()
        finally:
            conn.close()

    @contextlib.contextmanager
    def _file(self, database: Path, name: str) -> Iterator[bool]:
        path = database.with_name(f"{database.name}.{_safe_file_part(name)}.lock")  # as _file_path names it
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _local(self, name: str) -> Iterator[bool]:
        with _local_guard:
            lock = _local_locks.setdefault(name, threading.Lock())
        mine = lock.acquire(blocking=False)
        try:
            yield mine
        finally:
            if mine:
                lock.release()
