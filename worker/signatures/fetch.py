"""Fetching what trust decisions need from the network: trusted lists, OCSP answers, CRLs.

:class:`Fetcher` makes one HTTP(S) request with **bounded time and size**: ``timeout_s`` is
the deadline for the whole exchange (connecting, sending, every byte of the answer — a
server that trickles bytes is cut off too), ``max_bytes`` the largest answer read (counted
as it arrives, after any ``Content-Encoding`` decompression, so a compressed bomb is
refused as well). Only ``http://`` and ``https://`` are fetched (redirects too, at most
:data:`MAX_REDIRECTS`). A failure is a :class:`FetchError` with a short Polish reason
(the URL is not personal data; it is logged and shown to the administrator by ``trust
update``/``trust show`` and ``status --monitor``).

:func:`read_source` reads a trusted list given either as a URL or as a local file (the
same size limit; a file needs no network).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import requests

from worker.errors import errno_text

MAX_REDIRECTS = 5
USER_AGENT = "ebok-worker (trust and revocation)"


class FetchError(Exception):
    """A fetch that gave no usable answer; ``str()`` is the reason (Polish)."""


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Fetcher:
    timeout_s: float = 30.0
    max_bytes: int = 32 * 1024 * 1024

    def get(self, url: str, *, accept: str = "*/*") -> bytes:
        return self._request("GET", url, accept=accept)

    def post(self, url: str, data: bytes, *, content_type: str, accept: str = "*/*") -> bytes:
        return self._request("POST", url, data=data, content_type=content_type, accept=accept)

    def _request(self, method: str, url: str, *, data: bytes | None = None, content_type: str | None = None, accept: str) -> bytes:
        if not is_url(url):
            raise FetchError(f"to nie jest adres http:// ani https://: {url[:200]}")
        deadline = time.monotonic() + self.timeout_s
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        session = requests.Session()
        session.max_redirects = MAX_REDIRECTS
        try:
            with session.request(method, url, data=data, headers=headers, stream=True, timeout=(self.timeout_s, self.timeout_s)) as resp:
                if resp.status_code != 200:
                    raise FetchError(f"odpowiedź HTTP {resp.status_code} z {url}")
                if not is_url(resp.url):
                    raise FetchError(f"przekierowanie spod {url} na adres inny niż http:// i https://")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(f"odpowiedź z {url} ma {declared} B, więcej niż dopuszczalne {self.max_bytes} B")
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_content(chunk_size=64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(f"odpowiedź z {url} jest większa niż dopuszczalne {self.max_bytes} B")
                    if time.monotonic() > deadline:
                        raise FetchError(f"brak pełnej odpowiedzi z {url} w ciągu {self.timeout_s:g} s")
                    chunks.append(chunk)
                return b"".join(chunks)
        except FetchError:
            raise
        except requests.Timeout:
            raise FetchError(f"brak odpowiedzi z {url} w ciągu {self.timeout_s:g} s") from None
        except requests.TooManyRedirects:
            raise FetchError(f"ponad {MAX_REDIRECTS} przekierowań spod {url}") from None
        except requests.ConnectionError as exc:
            raise FetchError(f"nie można połączyć się z {url} ({_short(exc)})") from None
        except requests.RequestException as exc:
            raise FetchError(f"zapytanie do {url} nie powiodło się ({type(exc).__name__})") from None
        finally:
            session.close()


#: what a failed connection's text says, in the administrator's words
_CONNECTION_PROBLEMS = {
    "Connection refused": "serwer odmówił połączenia",
    "Name or service not known": "nieznana nazwa serwera",
    "timed out": "przekroczony czas oczekiwania",
    "Temporary failure in name resolution": "chwilowy błąd ustalania adresu serwera (DNS)",
    "certificate verify failed": "certyfikat TLS serwera nie przeszedł weryfikacji",
}


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker, said in _CONNECTION_PROBLEMS.items():
        if marker in text:
            return said
    return type(exc).__name__


def read_source(location: str, fetcher: Fetcher) -> bytes:
    """A trusted list's bytes: fetched when ``location`` is a URL, else read from the file
    (within ``fetcher.max_bytes``)."""
    if is_url(location):
        return fetcher.get(location, accept="application/vnd.etsi.tsl+xml, application/xml, text/xml, */*")
    path = Path(location)
    try:
        size = path.stat().st_size
        if size > fetcher.max_bytes:
            raise FetchError(f"plik {path} ma {size} B, więcej niż dopuszczalne {fetcher.max_bytes} B (signatures.fetch_max_bytes)")
        return path.read_bytes()
    except OSError as exc:
        raise FetchError(f"nie można odczytać pliku {path}: {errno_text(exc.errno)}") from None
