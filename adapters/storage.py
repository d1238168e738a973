"""Raw document storage: the bytes exactly as received, content-addressed, never modified.

A document is written to a temporary file in ``.incoming/`` (named after the host and the
writing process), flushed and fsync'ed, then renamed into place and the folder fsync'ed, so
after a crash it is either wholly there or not there at all; what a killed writer left in
``.incoming/`` is removed at the next start (:meth:`DocumentStore.remove_stale_incoming`). The key is the SHA-256 of the content (``ab/cd/abcd…``): storing the same
bytes twice writes once.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path


def _checkpoint(name: str) -> None:
    """A named point between two steps of a write (the crash tests kill the process here)."""


_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")


class DocumentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._resolved_root = self.root.resolve()

    @staticmethod
    def digest(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()

    @staticmethod
    def key_for(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path_of(self, key: str) -> Path:
        if _KEY.fullmatch(key):  # what key_for gives: nothing to resolve
            return self._resolved_root / key
        p = (self.root / key).resolve()
        if self._resolved_root not in p.parents:
            raise ValueError("storage key outside the storage folder")
        return p

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store ``raw`` durably; return ``(sha256, key)``."""
        sha = self.digest(raw)
        key = self.key_for(sha)
        target = self.path_of(key)
        if target.is_file() and _file_sha256(target) == sha:
            return sha, key  # reused only when its bytes are exactly these (corrupt storage is rewritten)
        target.parent.mkdir(parents=True, exist_ok=True)
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        # named after this host and process: what a killed writer leaves is found and removed at start
        fd, tmp = tempfile.mkstemp(prefix=f"{_host()}-{os.getpid()}-", dir=incoming)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            _checkpoint("incoming_written")
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        fsync_dir(target.parent)
        return sha, key

    def get(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def remove_stale_incoming(self) -> int:
        """Remove the temporary files of writers on this host whose process is gone (killed
        between writing and renaming); those of living processes and of other hosts stay.
        The number removed."""
        folder = self.root / INCOMING
        try:
            names = [p.name for p in folder.iterdir()]
        except OSError:
            return 0
        removed = 0
        for name in names:
            host, _, rest = name.rpartition("-")[0].rpartition("-")
            pid = rest if rest.isdigit() else ""
            if host != _host() or not pid or process_alive(int(pid)):
                continue
            try:
                (folder / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed


#: where a document is written before it is renamed into place (same file system)
INCOMING = ".incoming"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname())[:60] or "host"


def process_alive(pid: int) -> bool:
    """Is a process with this id running on this host? (A recycled id counts as alive.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def fsync_dir(path: Path, *, best_effort: bool = False) -> None:
    """Make a folder's entries (a file just renamed into it) durable. ``best_effort``: a
    folder that cannot be opened or synced is skipped (the scan inbox's moves, which the
    next pass repeats) instead of raising."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if best_effort:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not best_effort:
            raise
    finally:
        os.close(fd)
