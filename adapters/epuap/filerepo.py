"""The client of ePUAP's file repository (WS-FileRepo): ``downloadFile`` of an attachment
sent by reference.

Built on :class:`~adapters.epuap.client.EpuapSoapClient`, like the pull client: the same
WS-Security plugin (requests signed with the union's system key, answers verified against
the pinned ePUAP certificate, a Fault recognised before the signature), the same transport
(timeouts, the round-trip counter, the size limit of an answer, counted after
decompression). Errors are the channel's :mod:`.errors`; a Fault's detail is
``WyjatekTyp{kod, komunikat}``.

A file can be downloaded once: what to do with its bytes the moment they arrive is the
caller's business (:mod:`.referenced`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.epuap import FILEREPO_WSDL

from .client import EpuapSoapClient
from .errors import EpuapError, EpuapResponseError

FILEREPO_BINDING = "{http://ws.epuap.gov.pl/filerepo/}FileRepoBinding"
ENVELOPE_ALLOWANCE = 1024 * 1024  # the SOAP envelope, the WS-Security header and the file's metadata


def response_limit(max_file_bytes: int) -> int:
    """The largest answer that can carry a file of ``max_file_bytes`` (base64: 4 characters
    per 3 bytes, with line breaks a sender may add).

    >>> response_limit(3 * 1024 * 1024) - ENVELOPE_ALLOWANCE
    4259840
    """
    base64_chars = 4 * -(-max_file_bytes // 3)
    return base64_chars + base64_chars // 64 + ENVELOPE_ALLOWANCE


class FileTooLarge(EpuapError):
    """The file is larger than ``epuap.filerepo_max_file_bytes``."""

    retryable = False

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"Plik z repozytorium ePUAP ma {size} B, więcej niż epuap.filerepo_max_file_bytes ({limit} B)")


@dataclass(frozen=True)
class DownloadedFile:
    """A file as the repository gave it."""

    file_id: str
    content: bytes
    filename: str | None
    mime_type: str | None
    encoding: str | None


class FileRepoClient(EpuapSoapClient):
    """``downloadFile`` for one repository endpoint, signed with one identity."""

    WSDL = FILEREPO_WSDL
    BINDING = FILEREPO_BINDING

    def __init__(self, *args: Any, max_file_bytes: int = 100 * 1024 * 1024, **kw: Any) -> None:
        kw.setdefault("max_response_bytes", response_limit(max_file_bytes))
        super().__init__(*args, **kw)
        self.max_file_bytes = max_file_bytes

    @classmethod
    def for_config(cls, cfg: Any, **kw: Any) -> FileRepoClient:
        """The client of ``cfg.filerepo_endpoint`` with the pull service's keys (an
        ``EpuapConfig``-like object)."""
        limit = int(getattr(cfg, "filerepo_max_file_bytes", 100 * 1024 * 1024))
        client = cls.from_config(cfg, endpoint=cfg.filerepo_endpoint, max_response_bytes=response_limit(limit), **kw)
        client.max_file_bytes = limit
        return client

    def download(self, file_id: str, subject: str) -> DownloadedFile:
        """The file ``file_id`` (the link's ``fileId``), asked for as ``subject`` (the
        mailbox's podmiot). Raises :class:`FileTooLarge`, ``ResponseTooLarge`` or another
        :class:`~.errors.EpuapError`."""

        def interpret(response: Any) -> DownloadedFile:
            content = getattr(response, "file", None)
            if not isinstance(content, bytes | bytearray):
                raise EpuapResponseError("downloadFile", "odpowiedź bez zawartości pliku (DataDocument/file)")
            if len(content) > self.max_file_bytes:
                raise FileTooLarge(len(content), self.max_file_bytes)
            return DownloadedFile(file_id, bytes(content), _text(response, "filename"), _text(response, "mimeType"),
                                  _text(response, "encoding"))

        result: DownloadedFile = self._guarded("downloadFile", interpret, fileId=file_id, subject=subject)
        return result


def _text(response: Any, name: str) -> str | None:
    value = getattr(response, name, None)
    return str(value)[:300] if value is not None else None
