"""Raw document storage: the bytes exactly as received, content-addressed, never modified.

A document is written to a temporary file in ``.incoming/`` (named after the host and the
writing process), flushed and fsync'ed, then renamed into place and the folder fsync'ed, so
after a crash it is either wholly there or not there at all; what a killed writer left in
``.incoming/`` is removed at the next start (:meth:`DocumentStore.remove_stale_incoming`).
The key is the SHA-256 of the content (``ab/cd/abcd…``): storing the same bytes twice
writes once. Files are 0600 and folders 0700 (:mod:`adapters.fsmodes`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from adapters.fsmodes import make_dirs


def _checkpoint(name: str) -> None:
    """A named point between two steps of a write (the crash tests kill the process here)."""


_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")
_CHUNK = 1 << 20  # files are copied and hashed a MiB at a time
_NOTE = re.compile(r"[0-9a-f]{64}")


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
        self._write(target, raw)
        return sha, key

    def _write(self, target: Path, raw: bytes) -> None:
        """``raw`` as ``target``, atomically and durably (temporary file, fsync, rename, fsync)."""
        make_dirs(target.parent)
        with self._incoming() as (fh, tmp):
            fh.write(raw)
            _flush(fh)
            _checkpoint("incoming_written")
            os.replace(tmp, target)
        fsync_dir(target.parent)

    def put_file(self, source: Path, *, expected_sha256: str | None = None) -> tuple[str, str] | None:
        """Store the file ``source`` durably, streamed (read and hashed in chunks, never
        whole in memory); return ``(sha256, key)`` — or ``None`` when ``expected_sha256``
        is given and the bytes read are not those (the file changed meanwhile): then
        nothing is stored."""
        with self._incoming() as (fh, tmp):
            h = hashlib.sha256()
            with open(source, "rb") as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    h.update(chunk)
                    fh.write(chunk)
            _flush(fh)
            sha = h.hexdigest()
            if expected_sha256 is not None and sha != expected_sha256:
                return None
            key = self.key_for(sha)
            target = self.path_of(key)
            if target.is_file() and _file_sha256(target) == sha:
                return sha, key
            make_dirs(target.parent)
            _checkpoint("incoming_written")
            os.replace(tmp, target)
        fsync_dir(target.parent)
        return sha, key

    def get(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    # a small note kept beside the documents until the database knows what it says (the
    # fileId a fetched attachment was stored as: ``adapters.epuap.referenced``)

    def _note_path(self, name: str) -> Path:
        if not _NOTE.fullmatch(name):
            raise ValueError("a note's name is a hex digest")
        return self._resolved_root / "notes" / f"{name}.json"

    def put_note(self, name: str, data: bytes) -> None:
        """Write the note ``name`` (64 hex digits) durably, replacing an older one."""
        self._write(self._note_path(name), data)

    def get_note(self, name: str) -> bytes | None:
        try:
            return self._note_path(name).read_bytes()
        except FileNotFoundError:
            return None

    def drop_note(self, name: str) -> None:
        try:
            self._note_path(name).unlink()
        except FileNotFoundError:
            pass

    @contextlib.contextmanager
    def _incoming(self) -> Iterator[tuple[BinaryIO, str]]:
        """A new temporary file (0600) in ``.incoming/``, named after this host and process
        (what a killed writer leaves is found and removed at start), removed again unless
        it was renamed into place meanwhile."""
        incoming = self.root / INCOMING
        make_dirs(incoming)
        fd, tmp = tempfile.mkstemp(prefix=f"{_host()}-{os.getpid()}-", dir=incoming)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh, tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

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


def _flush(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())


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
