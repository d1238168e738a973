"""Reading a ZIP archive that comes from outside (ePUAP's mailbox export package, a ZIP
attachment), entry by entry, refusing what is hostile with a Polish reason.

Nothing is ever extracted to the file system: an entry's bytes are read into memory, within
limits, and the caller stores them where it stores everything (the document store, an
outbox folder written atomically). Refused, one by one: names that are absolute (``/x``,
``C:\\x``), contain ``..`` or are empty, links (symbolic links stored as entries), encrypted
entries, duplicated names (compared case-insensitively: which one was meant is unknown),
entries above ``max_entry_bytes`` or compressed more than ``max_ratio`` times (a bomb; the
ratio counts for entries above :data:`RATIO_FLOOR`), entries past ``max_entries`` or past
``max_total_bytes`` altogether. Sizes are counted while reading, never taken from the
archive's headers on trust.

Names: an entry flagged UTF-8 (bit 11) is read as UTF-8; one without the flag — a ZIP made
on Windows — in the DOS code page CP852, which is how Polish Windows writes them, so
„Oświadczenie żółte.pdf” comes out with its Polish letters.

>>> import io, zipfile
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as z:
...     z.writestr("ok.txt", b"ok"); z.writestr("../zly.txt", b"x"); z.writestr("a.txt", b"1"); z.writestr("A.TXT", b"2")
>>> archive = SafeZip(io.BytesIO(buf.getvalue()))
>>> [e.name for e in archive.entries if e.refused is None], archive.read(archive.entries[0])
(['ok.txt'], b'ok')
>>> archive.entries[1].refused
'nazwa wychodzi poza archiwum (zawiera „..”)'
"""

from __future__ import annotations

import stat
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

RATIO_FLOOR = 1024 * 1024  # smaller entries are never refused for their compression ratio
NAME_ENCODING = "cp852"  # names without the UTF-8 flag (ZIPs made on Polish Windows)


class ArchiveUnreadable(Exception):
    """The file is not a ZIP archive that can be read at all (the message is Polish)."""


@dataclass
class Entry:
    info: zipfile.ZipInfo
    name: str  # the name as decoded (UTF-8 flag, else CP852)
    parts: tuple[str, ...]  # its path components ("/" and "\\" both separate)
    refused: str | None = None  # Polish reason; None: it may be read

    @property
    def is_dir(self) -> bool:
        return self.info.is_dir()


@dataclass(frozen=True)
class Limits:
    max_entries: int = 10000
    max_entry_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: int = 200

    @classmethod
    def from_config(cls, cfg: Any) -> Limits:
        return cls(int(cfg.package_max_entries), int(cfg.package_max_entry_bytes), int(cfg.package_max_total_bytes),
                   int(cfg.package_max_ratio))


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB".replace(".", ",")


def _name_problem(name: str, parts: tuple[str, ...]) -> str | None:
    if not name or not parts:
        return "pusta nazwa pozycji"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "nazwa bezwzględna (ścieżka od korzenia dysku)"
    if any(p == ".." for p in parts):
        return "nazwa wychodzi poza archiwum (zawiera „..”)"
    if any(ord(ch) < 32 for ch in name):
        return "nazwa zawiera znaki sterujące"
    return None


class SafeZip:
    """The entries of a ZIP archive, each with its decoded name and whether it is refused;
    :meth:`read` gives an entry's bytes within the limits. ``source`` is a path or a
    seekable binary file."""

    def __init__(self, source: str | Any | IO[bytes], limits: Limits = Limits()) -> None:
        self.limits = limits
        try:
            self._zip = zipfile.ZipFile(source, metadata_encoding=NAME_ENCODING)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError) as exc:
            raise ArchiveUnreadable(f"plik nie jest poprawnym archiwum ZIP ({type(exc).__name__})") from None
        self.entries: list[Entry] = []
        self._read_total = 0
        declared_total = 0
        for n, info in enumerate(infos):
            name = info.filename
            parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
            entry = Entry(info, name, parts)
            if n >= limits.max_entries:
                entry.refused = f"archiwum ma więcej niż {limits.max_entries} pozycji (package_max_entries)"
            else:
                entry.refused = _name_problem(name, parts) or self._content_problem(info)
            if entry.refused is None and not entry.is_dir:
                declared_total += info.file_size
                if declared_total > limits.max_total_bytes:
                    entry.refused = f"razem po rozpakowaniu ponad {_mib(limits.max_total_bytes)} (package_max_total_bytes)"
            self.entries.append(entry)
        seen = Counter("/".join(e.parts).casefold() for e in self.entries if not e.is_dir and e.parts)
        for e in self.entries:
            if not e.is_dir and e.parts and seen["/".join(e.parts).casefold()] > 1:
                e.refused = e.refused or "nazwa powtórzona w archiwum (nie wiadomo, która pozycja jest właściwa)"

    def _content_problem(self, info: zipfile.ZipInfo) -> str | None:
        limits = self.limits
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            return "dowiązanie symboliczne (link), nie plik"
        if info.flag_bits & 0x1:
            return "pozycja zaszyfrowana"
        if info.is_dir():
            return None
        if info.file_size > limits.max_entry_bytes:
            return f"po rozpakowaniu ponad {_mib(limits.max_entry_bytes)} (package_max_entry_bytes)"
        if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            return f"stopień kompresji ponad {limits.max_ratio}:1 (package_max_ratio): możliwa „bomba ZIP”"
        return None

    def files(self) -> list[Entry]:
        return [e for e in self.entries if not e.is_dir]

    def find(self, name: str) -> list[Entry]:
        """The entries whose path is ``name`` (``/`` or ``\\`` separated, compared
        case-insensitively, as the archive's own duplicates are)."""
        wanted = "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", ".")).casefold()
        return [e for e in self.files() if "/".join(e.parts).casefold() == wanted]

    def read(self, entry: Entry) -> bytes:
        """The entry's bytes; ``ValueError`` (Polish) when it is refused or turns out larger
        than its header said (counted while reading), or cannot be decompressed."""
        if entry.refused is not None:
            raise ValueError(entry.refused)
        limit = min(self.limits.max_entry_bytes, self.limits.max_total_bytes - self._read_total)
        chunks: list[bytes] = []
        size = 0
        try:
            with self._zip.open(entry.info) as fh:
                while True:
                    chunk = fh.read(1024 * 1024)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        entry.refused = f"po rozpakowaniu większa niż podaje archiwum i niż dopuszczalne {_mib(limit)}"
                        raise ValueError(entry.refused)
                    chunks.append(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            entry.refused = f"nie można rozpakować pozycji ({type(exc).__name__})"
            raise ValueError(entry.refused) from None
        self._read_total += size
        return b"".join(chunks)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def posix_name(entry: Entry) -> str:
    """The entry's path with ``/`` separators."""
    return str(PurePosixPath(*entry.parts)) if entry.parts else ""
