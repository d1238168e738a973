"""The trust cache folder (``[signatures] cache``): the trusted lists kept and the
revocation answers, shared by every process of the worker. Files are written atomically
(temporary file, rename) with no access for other users of the machine (``o-rwx``: the
folder and its files hold what decided about citizens' signatures)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path


def private_folder(path: Path) -> Path:
    """``path`` created when missing, without access for other users."""
    path.mkdir(parents=True, exist_ok=True, mode=0o750)
    with contextlib.suppress(OSError):
        os.chmod(path, os.stat(path).st_mode & ~0o007)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (temporary file, rename), no access for other users."""
    private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One writer at a time in ``folder`` (an flock on its ``.lock``), across processes."""
    private_folder(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
