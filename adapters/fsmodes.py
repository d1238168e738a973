"""Modes of the files and folders the worker creates: no access for other users.

What the worker writes holds personal data — the SQLite database, the stored documents,
the correspondence outbox, the caches — so it is created without any access for other
users of the machine (``o-rwx``, ``spec/operations.md``), whatever the process's umask
(also under the common 022): folders :data:`PRIVATE_DIR`, files :data:`PRIVATE_FILE`; where
a group must read (the outbox, when ``correspondence.outbox_group_readable``)
:data:`GROUP_DIR` / :data:`GROUP_FILE`. The mode is set explicitly after creating (the
umask can only take bits away, so a umask of 077 would otherwise drop the group's read
too). Files are created with :func:`create_file`; folders with :func:`make_dirs`, each
missing level with the mode (``os.makedirs`` gives it to the last one only). The systemd
unit sets ``UMask=0027`` as well, for whatever a library creates.

>>> import tempfile, pathlib
>>> base = pathlib.Path(tempfile.mkdtemp())
>>> make_dirs(base / "a" / "b")
>>> oct((base / "a").stat().st_mode & 0o777), oct((base / "a" / "b").stat().st_mode & 0o777)
('0o700', '0o700')
>>> with create_file(base / "a" / "f", GROUP_FILE) as fh:
...     _ = fh.write(b"x")
>>> oct((base / "a" / "f").stat().st_mode & 0o777)
'0o640'
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
GROUP_DIR = 0o750
GROUP_FILE = 0o640


def make_dirs(path: Path, mode: int = PRIVATE_DIR) -> None:
    """Create ``path`` and its missing parents, each new one with ``mode`` (folders that
    exist are left as they are)."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode stays
        os.chmod(folder, mode)
    if not path.is_dir():  # a file where the folder should be: what os.makedirs says then
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))


def create_file(path: Path, mode: int = PRIVATE_FILE, *, exclusive: bool = True) -> BinaryIO:
    """Open a new file for writing with ``mode`` (``exclusive``: it must not exist)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def restrict(path: Path, mode: int) -> None:
    """Set ``mode`` on a file or folder the worker has just created."""
    os.chmod(path, mode)


__all__ = ["GROUP_DIR", "GROUP_FILE", "PRIVATE_DIR", "PRIVATE_FILE", "create_file", "make_dirs", "restrict"]
