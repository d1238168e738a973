"""Writing a hand-over folder: built under a temporary name, then renamed into place.

The office's document system (EZD) or a clerk picks folders up from the outbox, so a folder
must appear whole or not at all: every file is written and fsync'ed inside
``<parent>/.tmp-<name>-<random>/``, the folder is renamed to its final name and the parent
fsync'ed. A folder that is already there is never touched (``created=False``): the caller
decides whether it is the same item (a crash between writing and recording) or a clash.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from adapters.fsmodes import GROUP_DIR, GROUP_FILE, PRIVATE_DIR, PRIVATE_FILE, create_file, make_dirs, restrict
from adapters.storage import fsync_dir  # the same durability step as the document store
from worker.errors import file_error_text


class OutboxError(Exception):
    """The folder cannot be written (permissions, full disk, a clash): a technical state."""


@dataclass(frozen=True)
class Written:
    path: Path
    created: bool  # False: the folder was already there and was left as it was


def _checkpoint(name: str) -> None:
    """A named point between two steps (the tests make a crash happen exactly there)."""


def _safe_relative(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") or part.startswith(".tmp-") for part in p.parts):
        raise OutboxError(f"niebezpieczna ścieżka w folderze docelowym: {rel!r}")
    return p


def write_folder(root: Path, relative: str, files: dict[str, bytes], *, group_readable: bool = False) -> Written:
    """Create ``root/relative`` holding ``files`` (relative names, ``zalaczniki/a.pdf``)
    atomically; never overwrite an existing folder. It holds personal data: the folders
    and files it creates are the worker's user's only (0700/0600), or also readable by
    the group with ``group_readable`` (0750/0640: ``correspondence.outbox_group_readable``,
    the office's document system in the outbox folder's group) — never by others,
    whatever the umask."""
    dir_mode, file_mode = (GROUP_DIR, GROUP_FILE) if group_readable else (PRIVATE_DIR, PRIVATE_FILE)
    rel = _safe_relative(relative)
    for name in files:
        _safe_relative(name)
    final = Path(root).joinpath(*rel.parts)
    if final.exists() or final.is_symlink():
        return Written(final, False)
    parent = final.parent
    try:
        make_dirs(parent, dir_mode)
        _remove_leftovers(parent, final.name)
        tmp = parent / f".tmp-{final.name}-{uuid.uuid4().hex[:12]}"
        os.mkdir(tmp, dir_mode)
        restrict(tmp, dir_mode)
    except OSError as exc:
        raise OutboxError(f"nie można zapisać w folderze {root}: {file_error_text(exc)}") from exc
    try:
        folders = {tmp}
        for name, data in files.items():
            target = tmp.joinpath(*PurePosixPath(name).parts)
            make_dirs(target.parent, dir_mode)
            folders.add(target.parent)
            with create_file(target, file_mode) as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(folder)
        _checkpoint("folder_built")
        try:
            os.rename(tmp, final)
        except OSError:
            if final.exists():  # another process was quicker: its folder stays
                shutil.rmtree(tmp, ignore_errors=True)
                return Written(final, False)
            raise
        fsync_dir(parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutboxError(f"nie można zapisać w folderze {root}: {file_error_text(exc)}") from exc
    return Written(final, True)


def _remove_leftovers(parent: Path, name: str) -> None:
    """Temporary folders of this name left by a crash while building (hidden names,
    which the office is told never to pick up)."""
    for p in parent.glob(f".tmp-{name}-*"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)

