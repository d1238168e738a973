"""The ePUAP pull-service client: zeep, with our own WS-Security plugin.

zeep's stock ``BinarySignature`` does not fit ePUAP (token after the signature, SHA-1,
responses verified with the client's own certificate, verification before Fault detection).
:class:`EpuapWsse` replaces it:

- ``apply`` signs every request with the union's system key (see :mod:`.wssec` for the layout);
- ``verify`` first looks for a SOAP Fault — a Fault is an error whether signed or not and is
  never acted upon as a success, so it is passed on to zeep, which raises it and we surface
  ``Wyjatek{kod, komunikat}`` — and only then verifies the signature against the *pinned* ePUAP
  response certificate. An unsigned or badly signed regular response whose ``status/kod`` is
  not 1 is reported as that status (marked unsigned), never as a mere signature error.

:class:`PullClient` wraps the three operations and maps every failure onto
:mod:`.errors` (Polish messages for the operator). It counts HTTP round trips.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Self

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.transports import Transport

from schemas.epuap import PULL_WSDL
from worker.domain.clock import WARSAW

from . import wssec
from .errors import (
    EpuapConfigError,
    EpuapError,
    EpuapFault,
    EpuapResponseError,
    EpuapSignatureError,
    EpuapStatusError,
    EpuapTransportError,
)
from .extra import parse_dane_dodatkowe

log = logging.getLogger(__name__)

# zeep's transport logs whole messages (documents with personal data) at DEBUG: never let it.
logging.getLogger("zeep.transports").setLevel(logging.INFO)

BINDING = "{http://ws.epuap.gov.pl/pull/}pull"
OBJ_NS = "http://wsdl.epuap.gov.pl/obiekty/"
EPUAP_TZ = WARSAW  # assumed for a dataNadania without an offset

_RESPONSE_OPERATION = {
    "OdpowiedzPullOczekujace": "oczekujaceDokumenty",
    "OdpowiedzPullPobierz": "pobierzNastepny",
    "OdpowiedzPullPotwierdz": "potwierdzOdebranie",
    "DataDocument": "downloadFile",
}


class MailboxLike(Protocol):
    podmiot: str
    skrytka: str

    @property
    def address(self) -> str: ...


def skrot_of(content: bytes) -> str:
    """The ``skrot`` ePUAP expects when confirming: base64 of the SHA-1 of the content bytes.

    >>> skrot_of(b"abc")
    'qZk+NkcGgWq6PiVxeFDCbJzQ2J0='
    """
    return base64.b64encode(hashlib.sha1(content).digest()).decode("ascii")


@dataclass(frozen=True)
class FetchedDocument:
    """One document from ``pobierzNastepny``: its exact bytes and its metadata."""

    content: bytes
    skrot: str  # base64(SHA-1(content)), for potwierdzOdebranie
    sha256: str  # hex, for recognising a re-delivery
    filed_at: datetime | None  # dataNadania (timezone-aware)
    test: bool  # czyTestowe
    metadata: dict[str, Any]  # JSON-serialisable, no base64 content


# --------------------------------------------------------------------------- WS-Security plugin


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child.text
    return None


def _status_of(envelope: etree._Element) -> tuple[str | None, int | None, str | None]:
    """(operation, kod, komunikat) read from an (unverified) response body, for diagnostics."""
    body = envelope.find(f"{{{wssec.SOAP11}}}Body")
    payload = body[0] if body is not None and len(body) else None
    if payload is None:
        return None, None, None
    operation = _RESPONSE_OPERATION.get(_local(payload.tag), _local(payload.tag))
    status = next((c for c in payload if _local(c.tag) == "status"), None)
    kod_text = _child_text(status, "kod")
    try:
        kod = int(kod_text) if kod_text is not None else None
    except ValueError:
        kod = None
    return operation, kod, _child_text(status, "komunikat")


class EpuapWsse:
    """A zeep ``wsse`` plugin: signs requests, verifies responses against a pinned certificate."""

    def __init__(
        self,
        identity: wssec.SigningIdentity,
        response_certificate: Any,
        *,
        sign_timestamp: bool = True,
        timestamp_ttl_s: float = 300.0,
        max_clock_skew_s: float = 300.0,
    ) -> None:
        self.identity = identity
        self.response_certificate = response_certificate
        self.sign_timestamp = sign_timestamp
        self.timestamp_ttl_s = timestamp_ttl_s
        self.max_clock_skew_s = max_clock_skew_s
        self.last_verified: wssec.VerifiedMessage | None = None
        self.last_zawartosc: str | None = None  # dokument/zawartosc of the last verified answer, as text

    def apply(self, envelope: etree._Element, headers: dict) -> tuple[etree._Element, dict]:
        signed = wssec.sign_envelope(
            envelope,
            self.identity,
            timestamp_ttl_s=self.timestamp_ttl_s if self.sign_timestamp else None,
        )
        return signed, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        self.last_verified = None
        self.last_zawartosc = None
        if envelope.tag != f"{{{wssec.SOAP11}}}Envelope":
            raise EpuapTransportError(f"Odpowiedź ePUAP nie jest kopertą SOAP 1.1 (element {_local(envelope.tag)!r})")
        if wssec.find_fault(envelope) is not None:
            return envelope  # zeep raises the Fault next; see the module docstring
        try:
            self.last_verified = wssec.verify_envelope(
                envelope, self.response_certificate, max_clock_skew_s=self.max_clock_skew_s
            )
        except wssec.WsSecurityError as exc:
            operation, kod, komunikat = _status_of(envelope)
            if kod is not None and kod != 1:
                raise EpuapStatusError(operation or "?", kod, komunikat, signed=False) from None
            raise EpuapSignatureError(str(exc)) from None
        self.last_zawartosc = _take_zawartosc(envelope)
        return envelope


def _take_zawartosc(envelope: etree._Element) -> str | None:
    """Take the text of ``dokument/zawartosc`` out of a verified answer (None: no such element).

    The content is decoded by :func:`decode_zawartosc`, not by zeep: whatever a sender put
    there (nothing, text that is not base64), the answer stays attributable to the document,
    which is then stored and confirmed like any other. The element is left empty for zeep.
    """
    body = envelope.find(f"{{{wssec.SOAP11}}}Body")
    payload = body[0] if body is not None and len(body) else None
    if payload is None:
        return None
    dokument = next((c for c in payload if _local(c.tag) == "dokument"), None)
    if dokument is None:
        return None
    element = next((c for c in dokument if _local(c.tag) == "zawartosc"), None)
    if element is None:
        return None
    text = "".join(element.itertext())
    for child in list(element):
        element.remove(child)
    element.text = None
    return text


_BASE64_SPACE = re.compile(r"[ \t\r\n]+")


def decode_zawartosc(text: str) -> tuple[bytes, str | None]:
    """The document bytes of a ``zawartosc`` text and what was wrong with it, if anything.

    ``("", "empty")`` for an empty one; the text itself (UTF-8) with ``"not_base64"`` when it is
    not valid base64 — the document is then stored exactly as it arrived.

    >>> decode_zawartosc("YWJj")
    (b'abc', None)
    >>> decode_zawartosc(" ")
    (b'', 'empty')
    >>> decode_zawartosc("<a/>")
    (b'<a/>', 'not_base64')
    """
    compact = _BASE64_SPACE.sub("", text)
    if not compact:
        return b"", "empty"
    try:
        return base64.b64decode(compact, validate=True), None
    except (binascii.Error, ValueError):
        return text.encode("utf-8", "surrogatepass"), "not_base64"


# --------------------------------------------------------------------------- transport


class _SocketRegistry:
    """The sockets a session's connections opened (weakly held), so that a call can be cut
    from another thread: shutting a socket down wakes a ``recv`` blocked on it at once."""

    def __init__(self) -> None:
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def shutdown_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _pool_classes(registry: _SocketRegistry) -> dict[str, type]:
    """urllib3 pool classes whose connections register their sockets in ``registry``."""

    class Connection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            registry.add(sock)
            return sock

    class TlsConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            registry.add(sock)
            return sock

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Connection

    class TlsPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = TlsConnection

    return {"http": Pool, "https": TlsPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections' sockets can all be shut down by the deadline."""

    def __init__(self, registry: _SocketRegistry) -> None:
        self.registry = registry
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.registry)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _pool_classes(self.registry)
        return manager


class CallDeadlineExceeded(EpuapTransportError):
    """A call did not end within ``epuap.timeout_s`` (its whole duration, not one read)."""


class CallStopped(EpuapTransportError):
    """A call cut short because the worker is stopping (SIGTERM): nothing of it was used."""


class _Watch:
    """The deadline of one call, watched by a thread of its own: when the deadline passes
    or ``stop`` is set, every socket of the session is shut down, which ends the call
    wherever it waits (connecting over TLS, headers, a body trickling in)."""

    def __init__(self, registry: _SocketRegistry, deadline_s: float, stop: threading.Event | None) -> None:
        self.registry = registry
        self.deadline_s = deadline_s
        self.stop = stop
        self.cut: str | None = None  # "deadline" / "stop"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="epuap-deadline", daemon=True)

    def __enter__(self) -> _Watch:
        self._ends = time.monotonic() + self.deadline_s
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def _watch(self) -> None:
        while not self._done.wait(min(_WATCH_STEP_S, self.remaining())):
            if self.stop is not None and self.stop.is_set():
                self.cut = "stop"
            elif time.monotonic() >= self._ends:
                self.cut = "deadline"
            else:
                continue
            self.registry.shutdown_all()
            return


_WATCH_STEP_S = 0.1  # how soon a stop is noticed during a call


class _CountingTransport(Transport):
    """zeep's transport for every ePUAP service (the pull service and any other client
    built on it): the deadline of a whole call (``deadline_s``, ``epuap.timeout_s``: from
    connecting to the last byte, also while an answer trickles in), ``stop`` (set on
    SIGTERM) cutting a call under way, the size limit of an answer, a round-trip counter
    and the last HTTP status. ``connect_timeout_s`` bounds connecting alone, within the
    deadline; ``read_timeout_s`` each read."""

    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float, session: requests.Session | None,
                 max_response_bytes: int = 64 * 1024 * 1024, deadline_s: float | None = None,
                 stop: threading.Event | None = None) -> None:
        super().__init__(session=session, timeout=read_timeout_s, operation_timeout=(connect_timeout_s, read_timeout_s))
        self.round_trips = 0
        self.last_status: int | None = None
        self.max_response_bytes = max_response_bytes
        self.deadline_s = deadline_s if deadline_s is not None else read_timeout_s
        self.stop = stop
        self.sockets = _SocketRegistry()
        adapter = _DeadlineAdapter(self.sockets)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def post(self, address, message, headers):  # noqa: ANN001 - zeep's signature
        """POST and read the answer within the call's deadline, at most
        ``max_response_bytes`` after decompression (``iter_content`` yields decoded bytes,
        so a gzip bomb stops at the limit)."""
        self.round_trips += 1
        self.last_status = None
        if self.stop is not None and self.stop.is_set():
            raise CallStopped("Przerwano wywołanie ePUAP: usługa jest zatrzymywana")
        with _Watch(self.sockets, self.deadline_s, self.stop) as watch:
            try:
                response = self._read(address, message, headers, watch)
            except (requests.RequestException, OSError, urllib3.exceptions.HTTPError):
                if watch.cut is None:
                    raise
                response = None
        if watch.cut == "stop":
            raise CallStopped("Przerwano wywołanie ePUAP: usługa jest zatrzymywana")
        if watch.cut == "deadline" or response is None:
            raise CallDeadlineExceeded(self.deadline_exceeded(None))
        return response

    def deadline_exceeded(self, operation: str | None) -> str:
        where = f" w operacji {operation}" if operation else ""
        return (f"Przekroczono czas oczekiwania na ePUAP{where}: odpowiedź nie nadeszła w całości "
                f"w epuap.timeout_s = {self.deadline_s:g} s")

    def _read(self, address: str, message: Any, headers: Any, watch: _Watch) -> requests.Response:
        connect_s, read_s = self.operation_timeout
        timeout = (min(connect_s, max(watch.remaining(), 0.001)), read_s)
        response = self.session.post(address, data=message, headers=headers, timeout=timeout, stream=True)
        try:
            self.last_status = response.status_code
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes \
                    and "Content-Encoding" not in response.headers:
                raise ResponseTooLarge(self.max_response_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=1024 * 1024):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ResponseTooLarge(self.max_response_bytes)
                chunks.append(chunk)
            response._content = b"".join(chunks)
            response._content_consumed = True  # type: ignore[union-attr]  # requests' own flag
        finally:
            response.close()
        return response


class ResponseTooLarge(EpuapError):
    """The answer exceeds ``epuap.max_response_bytes`` (counted after decompression)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Odpowiedź ePUAP przekracza limit epuap.max_response_bytes ({limit} B po rozpakowaniu)")


# --------------------------------------------------------------------------- client


class EpuapSoapClient:
    """One ePUAP SOAP service at one endpoint, signed with one identity: the zeep client,
    the WS-Security plugin with the pinned response certificate, the transport. The pull
    service (:class:`PullClient`) and the file repository (``adapters.epuap.filerepo``) are
    built on it, so both sign, verify and bound their calls the same way.

    Not thread-safe (one client per pass/thread). ``round_trips`` counts HTTP requests sent.
    """

    WSDL: Path = PULL_WSDL
    BINDING: str = BINDING

    def __init__(
        self,
        endpoint: str,
        identity: wssec.SigningIdentity,
        response_certificate: Any,
        *,
        connect_timeout_s: float = 30.0,
        read_timeout_s: float = 120.0,
        sign_timestamp: bool = True,
        session: requests.Session | None = None,
        wsdl: Path | None = None,
        max_response_bytes: int = 64 * 1024 * 1024,
        stop: threading.Event | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.wsse = EpuapWsse(identity, response_certificate, sign_timestamp=sign_timestamp)
        # read_timeout_s (epuap.timeout_s) is the deadline of each whole call as well
        self.transport = _CountingTransport(
            connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, session=session,
            max_response_bytes=max_response_bytes, deadline_s=read_timeout_s, stop=stop,
        )
        settings = zeep.Settings(
            # lenient about elements ePUAP may add one day: the answer is authenticated by its
            # signature, and what we need (status, zawartosc) is checked explicitly below
            strict=False,
            xml_huge_tree=True,  # a document's base64 content may exceed libxml2's 10 MB text limit
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        self._client = zeep.Client(str(wsdl or self.WSDL), wsse=self.wsse, transport=self.transport, settings=settings)
        self._service = self._client.create_service(self.BINDING, endpoint)

    @classmethod
    def from_config(cls, cfg: Any, *, password: str | None = None, session: requests.Session | None = None,
                    endpoint: str | None = None, max_response_bytes: int | None = None,
                    stop: threading.Event | None = None) -> Self:
        """Build the client from an ``EpuapConfig``-like object (see ``worker/config.py``).

        The key's password is ``password`` or, when None, the environment variable named by
        ``cfg.private_key_password_env`` (None there: the key is not encrypted). ``endpoint``
        and ``max_response_bytes``, when given, replace ``cfg.endpoint`` and
        ``cfg.max_response_bytes`` (another service of ePUAP with the same keys). ``stop``
        (set on SIGTERM) cuts a call under way (:class:`CallStopped`).
        """
        if password is None and cfg.private_key_password_env:
            password = os.environ.get(cfg.private_key_password_env)
            if password is None:
                raise EpuapConfigError(
                    f"Brak hasła klucza systemowego ePUAP: zmienna środowiskowa {cfg.private_key_password_env} nie jest ustawiona",
                    "epuap.private_key_password_env",
                )
        for name in ("certificate", "private_key", "response_certificate"):
            if getattr(cfg, name, None) is None:
                raise EpuapConfigError(f"Brak ustawienia epuap.{name}", f"epuap.{name}")
        try:
            identity = wssec.load_identity(cfg.certificate, cfg.private_key, password)
        except (OSError, ValueError, TypeError) as exc:
            raise EpuapConfigError(f"Nie można wczytać klucza/certyfikatu systemowego ePUAP: {exc}", "epuap.private_key") from None
        try:
            pinned = wssec.load_certificate(cfg.response_certificate)
        except (OSError, ValueError) as exc:
            raise EpuapConfigError(f"Nie można wczytać certyfikatu odpowiedzi ePUAP (epuap.response_certificate): {exc}", "epuap.response_certificate") from None
        return cls(
            endpoint if endpoint is not None else cfg.endpoint,
            identity,
            pinned,
            connect_timeout_s=float(getattr(cfg, "connect_timeout_s", 30.0)),
            read_timeout_s=float(cfg.timeout_s),
            sign_timestamp=bool(getattr(cfg, "sign_timestamp", True)),
            session=session,
            max_response_bytes=max_response_bytes or int(getattr(cfg, "max_response_bytes", 64 * 1024 * 1024)),
            stop=stop,
        )

    @property
    def round_trips(self) -> int:
        return self.transport.round_trips

    def close(self) -> None:
        self.transport.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def _call(self, operation: str, **params: str) -> Any:
        try:
            return getattr(self._service, operation)(**params)
        except CallDeadlineExceeded:
            raise CallDeadlineExceeded(self.transport.deadline_exceeded(operation)) from None
        except CallStopped:
            raise
        except EpuapError as exc:
            status = self.transport.last_status
            if status is not None and status != 200:  # an HTTP error page is not a signature problem
                raise EpuapTransportError(f"ePUAP odpowiedział HTTP {status} w operacji {operation}: {exc}") from None
            raise
        except zeep.exceptions.Fault as fault:
            raise self._fault(operation, fault) from None
        except zeep.exceptions.TransportError as exc:
            raise EpuapTransportError(
                f"ePUAP nie dał poprawnej odpowiedzi SOAP w operacji {operation} (HTTP {exc.status_code})"
            ) from None
        except requests.Timeout:
            raise EpuapTransportError(f"Przekroczono czas oczekiwania na ePUAP w operacji {operation}") from None
        except requests.RequestException as exc:
            raise EpuapTransportError(
                f"Błąd połączenia z ePUAP w operacji {operation}: {type(exc).__name__}"
            ) from None
        except (zeep.exceptions.Error, etree.LxmlError, ValueError, TypeError, AttributeError) as exc:
            raise EpuapResponseError(operation, f"{type(exc).__name__}: {str(exc)[:200]}") from None

    def _fault(self, operation: str, fault: zeep.exceptions.Fault) -> EpuapError:
        status = self.transport.last_status
        detail = fault.detail if isinstance(fault.detail, etree._Element) else None
        wyjatek = None
        if detail is not None:
            # the pull service's Wyjatek, the file repository's WyjatekTyp
            wyjatek = next((e for e in detail.iter() if _local(e.tag) in ("Wyjatek", "WyjatekTyp")), None)
        if wyjatek is None and fault.message == "Unknown fault occured":  # zeep: HTTP error, no Fault
            return EpuapTransportError(f"ePUAP odpowiedział HTTP {status} bez komunikatu SOAP Fault w operacji {operation}")
        kod_text = _child_text(wyjatek, "kod")
        try:
            kod = int(kod_text) if kod_text is not None else None
        except ValueError:
            kod = None
        komunikat = _child_text(wyjatek, "komunikat") or fault.message or "brak komunikatu"
        return EpuapFault(operation, kod, komunikat.strip(), status)

    def _guarded(self, operation: str, interpret: Any, **params: str) -> Any:
        """Call and interpret; any unexpected shape of the answer becomes an EpuapResponseError."""
        response = self._call(operation, **params)
        try:
            return interpret(response)
        except EpuapError:
            raise
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            raise EpuapResponseError(operation, f"{type(exc).__name__}: {str(exc)[:200]}") from None


class PullClient(EpuapSoapClient):
    """The three pull operations for one endpoint, signed with one identity.

    Not thread-safe (one client per pass/thread). ``round_trips`` counts HTTP requests sent.
    """

    @staticmethod
    def _request(mailbox: MailboxLike) -> dict[str, str]:
        return {"podmiot": mailbox.podmiot, "nazwaSkrytki": mailbox.skrytka, "adresSkrytki": mailbox.address}

    @staticmethod
    def _status(response: Any) -> tuple[int | None, str | None]:
        """(kod, komunikat); zeep unwraps a response whose only child is ``status``."""
        status = response if hasattr(response, "kod") else getattr(response, "status", None)
        if status is None:
            return None, None
        return status.kod, status.komunikat

    def count(self, mailbox: MailboxLike) -> int:
        """``oczekujaceDokumenty``: how many documents wait in the mailbox."""

        def interpret(response: Any) -> int:
            kod, komunikat = self._status(response)
            if kod != 1:
                raise EpuapStatusError("oczekujaceDokumenty", kod, komunikat)
            if response.oczekujace is None:
                raise EpuapResponseError("oczekujaceDokumenty", "brak liczby oczekujących dokumentów")
            return int(response.oczekujace)

        return self._guarded("oczekujaceDokumenty", interpret, **self._request(mailbox))

    def fetch(self, mailbox: MailboxLike) -> FetchedDocument | None:
        """``pobierzNastepny``: the head of the queue, or None when it is empty (``kod`` 0)."""

        def interpret(response: Any) -> FetchedDocument | None:
            kod, komunikat = self._status(response)
            if kod == 0:
                return None
            if kod != 1:
                raise EpuapStatusError("pobierzNastepny", kod, komunikat)
            return document_from_response(response, zawartosc=self.wsse.last_zawartosc)

        return self._guarded("pobierzNastepny", interpret, **self._request(mailbox))

    def confirm(self, mailbox: MailboxLike, skrot: str) -> None:
        """``potwierdzOdebranie``: remove the document whose SHA-1 ``skrot`` is given."""

        def interpret(response: Any) -> None:
            kod, komunikat = self._status(response)
            if kod != 1:
                raise EpuapStatusError("potwierdzOdebranie", kod, komunikat)

        self._guarded("potwierdzOdebranie", interpret, **self._request(mailbox), skrot=skrot)


# --------------------------------------------------------------------------- response → document


def _plain(value: Any) -> Any:
    """zeep objects → plain JSON-able dicts/lists (bytes never expected here)."""
    value = serialize_object(value, dict)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def document_from_response(response: Any, zawartosc: str | None = None) -> FetchedDocument:
    """Turn an ``OdpowiedzPullPobierz`` (kod 1) into a :class:`FetchedDocument`.

    ``zawartosc`` is the content's text as taken out of the verified answer (see
    :func:`_take_zawartosc`); without it, zeep's decoded value is used. Content that is empty
    or not base64 is kept (``metadata["zawartosc_problem"]``): such a document is stored,
    confirmed and then rejected by processing — it must never block the mailbox.
    """
    dokument = response.dokument
    problem = None
    content: bytes | None
    if zawartosc is not None:
        content, problem = decode_zawartosc(zawartosc)
    else:
        content = dokument.zawartosc if dokument is not None else None
        if content is None and dokument is not None:
            content, problem = b"", "empty"
        if not isinstance(content, bytes | bytearray):
            raise EpuapResponseError("pobierzNastepny", "odpowiedź bez zawartości dokumentu (dokument/zawartosc)")
        content = bytes(content)
    filed_at = response.dataNadania
    if isinstance(filed_at, datetime) and filed_at.tzinfo is None:
        filed_at = filed_at.replace(tzinfo=EPUAP_TZ)
    if not isinstance(filed_at, datetime):
        filed_at = None
    test = response.czyTestowe
    extra = response.daneDodatkowe
    dane_dodatkowe = parse_dane_dodatkowe(bytes(extra)) if isinstance(extra, bytes | bytearray) else None
    sha256 = hashlib.sha256(content).hexdigest()
    skrot = skrot_of(content)
    metadata: dict[str, Any] = {
        "adresSkrytki": response.adresSkrytki,
        "nazwaSkrytki": response.nazwaSkrytki,
        "dataNadania": filed_at.isoformat() if filed_at is not None else None,
        "daneNadawcy": _plain(response.daneNadawcy),
        "danePodmiotu": _plain(response.danePodmiotu),
        "adresOdpowiedzi": response.adresOdpowiedzi,
        "czyTestowe": test if isinstance(test, bool) else None,
        "daneDodatkowe": dane_dodatkowe,
        "identyfikatorDokumentu": (dane_dodatkowe or {}).get("fields", {}).get("IdentyfikatorDokumentu"),
        "nazwaPliku": dokument.nazwaPliku if dokument is not None else None,
        "typPliku": dokument.typPliku if dokument is not None else None,
        "size": len(content),
        "sha256": sha256,
        "skrot": skrot,
    }
    if problem is not None:
        metadata["zawartosc_problem"] = problem
    return FetchedDocument(
        content=content, skrot=skrot, sha256=sha256, filed_at=filed_at, test=test is True, metadata=metadata
    )
