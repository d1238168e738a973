"""A local double of ePUAP's pull service, for development, demonstrations and tests.

It behaves like the facts in ``../shared/spec/epuap.md``:

- ``GET …?wsdl`` serves the project's WSDL (``?xsd=obiektypk.xsd`` its schema) with the
  double's own address;
- one FIFO queue per mailbox, loaded from ``<queue_dir>/<podmiot>/<skrytka>/NAME.xml`` (plus an
  optional ``NAME.xml.meta.json`` sidecar in the format of ``samples/signed/*.meta.json``), or
  from any flat folder assigned to a mailbox (``load={"/podmiot/skrytka": folder}``); the
  queue is ordered by ``dataNadania`` then name; the files are only read, never changed;
- every request must carry WS-Security signed by a certificate the double trusts (the
  development system certificate, plus any added with ``trust``): unsigned requests, unknown
  certificates, bad signatures and requests that are not valid against the pull schema get a
  SOAP Fault ``Wyjatek`` (HTTP 500);
- responses are signed with the double's key (the client pins its certificate);
- ``pobierzNastepny`` returns the head of the queue until it is confirmed; an empty queue is
  answered with ``status/kod`` 0; ``potwierdzOdebranie`` removes the head only when ``skrot`` is
  base64(SHA-1(content)) of it;
- faults and latency can be injected (:class:`Faults`, or ``--fault``/``--latency-ms``):
  ``http500``, ``drop`` (connection closed without an answer), ``hang`` (no answer until
  ``hang_s``), ``soap-fault`` (Fault, HTTP 500), ``soap-fault-200`` (Fault, HTTP 200),
  ``garbage`` (HTTP 200, not XML), ``bad-signature`` (signed, then altered), ``unsigned``,
  ``trickle`` (the right answer's headers at once, then its body one byte every
  ``trickle_s``: a slow-loris answer that every read sees making progress),
  ``status-error`` (signed regular answer with ``kod`` −1), ``confirm-fail`` (confirmation
  refused, document kept) and ``confirm-lost`` (document removed, then the connection dropped).

It serves ePUAP's file repository too (``downloadFile`` at :data:`FILEREPO_PATH`, same
WS-Security): files added with :meth:`DoubleServer.add_file` or loaded from
``<queue_dir>/_repozytorium/<fileId>/<file name>``; **a file can be downloaded once** (a
second request, like a request for an unknown file, gets a Fault ``WyjatekTyp``); the same
faults can be injected into ``downloadFile``.

Start it from Python with :func:`serve`, or from the command line with :func:`main`
(``ebok-worker epuap-double``).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import logging
import random
import signal
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from schemas.epuap import FILEREPO_WSDL, FILEREPO_XSD, OBJECTS_XSD, PULL_WSDL

from . import wssec
from .client import decode_zawartosc, skrot_of
from .devkeys import DevKeys, ensure

log = logging.getLogger(__name__)

PATH = "/pk_external_ws/services/pull"
FILEREPO_PATH = "/repo-ws-ext/FileRepoService"
OBJ_NS = "http://wsdl.epuap.gov.pl/obiekty/"
FC_NS = "http://wsdl.epuap.gov.pl/filerepocore/"
DOWNLOAD = "downloadFile"
REPOSITORY_DIR = "_repozytorium"  # in a queue dir: the file repository's files, <fileId>/<file name>
MAX_REQUEST_BYTES = 1 << 20

FAULT_KINDS = (
    "http500",
    "drop",
    "hang",
    "soap-fault",
    "soap-fault-200",
    "garbage",
    "bad-signature",
    "unsigned",
    "status-error",
    "confirm-fail",
    "confirm-lost",
    "trickle",
)
CONFIRM_ONLY = {"confirm-fail", "confirm-lost"}
OPERATIONS = {
    "ZapytaniePullOczekujace": "oczekujaceDokumenty",
    "ZapytaniePullPobierz": "pobierzNastepny",
    "ZapytaniePullPotwierdz": "potwierdzOdebranie",
}
RESPONSES = {
    "oczekujaceDokumenty": "OdpowiedzPullOczekujace",
    "pobierzNastepny": "OdpowiedzPullPobierz",
    "potwierdzOdebranie": "OdpowiedzPullPotwierdz",
}


# --------------------------------------------------------------------------- faults


@dataclass
class FaultRule:
    kind: str
    operation: str | None = None  # None: any operation
    times: int = 1  # how many matching requests it hits; < 0: every one
    after: int = 0  # let this many matching requests through first


class Faults:
    """Programmable fault and latency injection (thread-safe)."""

    def __init__(self, *, latency_s: float = 0.0, hang_s: float = 30.0, probability: float = 0.0, trickle_s: float = 3.0,
                 random_kinds: tuple[str, ...] = ("http500", "drop", "soap-fault", "garbage", "bad-signature", "confirm-lost"),
                 seed: int | None = None) -> None:
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.trickle_s = trickle_s
        self.probability = probability
        self.random_kinds = tuple(random_kinds)
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.injected: list[tuple[str, str]] = []  # (operation, kind), in order

    def add(self, kind: str, operation: str | None = None, *, times: int = 1, after: int = 0) -> Faults:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if operation is not None and operation not in RESPONSES and operation != DOWNLOAD:
            raise ValueError(f"unknown operation {operation!r}; known: {', '.join([*RESPONSES, DOWNLOAD])}")
        if kind in CONFIRM_ONLY and operation not in (None, "potwierdzOdebranie"):
            raise ValueError(f"{kind} applies to potwierdzOdebranie only")
        with self._lock:
            self._rules.append(FaultRule(kind, "potwierdzOdebranie" if kind in CONFIRM_ONLY else operation, times, after))
        return self

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.probability = 0.0

    def take(self, operation: str) -> str | None:
        """The fault to inject into this request, if any (consumes one use of a rule)."""
        with self._lock:
            for rule in self._rules:
                if rule.operation not in (None, operation) or rule.times == 0:
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    continue
                if rule.times > 0:
                    rule.times -= 1
                self.injected.append((operation, rule.kind))
                return rule.kind
            if self.probability and self._random.random() < self.probability:
                kinds = [k for k in self.random_kinds if k not in CONFIRM_ONLY or operation == "potwierdzOdebranie"]
                if kinds:
                    kind = self._random.choice(kinds)
                    self.injected.append((operation, kind))
                    return kind
        return None

    @staticmethod
    def parse_spec(spec: str) -> FaultRule:
        """``KIND[:OPERATION][:TIMES]`` (TIMES ``*`` = every request), e.g. ``drop:pobierzNastepny:2``."""
        parts = spec.split(":")
        kind = parts[0]
        operation = parts[1] if len(parts) > 1 and parts[1] not in ("", "*") else None
        times = -1 if len(parts) > 2 and parts[2] == "*" else int(parts[2]) if len(parts) > 2 else 1
        return FaultRule(kind, operation, times)


# --------------------------------------------------------------------------- queues


@dataclass(frozen=True)
class QueuedDocument:
    name: str
    content: bytes
    meta: dict[str, Any]

    @property
    def skrot(self) -> str:
        """What the double expects in ``potwierdzOdebranie``: SHA-1 of the content it holds —
        for a document served with a raw ``zawartosc_text`` (empty, not base64), of the bytes
        that text stands for (the text itself when it is not base64)."""
        return skrot_of(self.wire_content)

    @property
    def wire_content(self) -> bytes:
        text = self.meta.get("zawartosc_text")
        if text is None:
            return self.content
        return decode_zawartosc(text)[0]


@dataclass(frozen=True)
class RepositoryFile:
    file_id: str
    content: bytes
    filename: str
    mime_type: str


@dataclass
class Mailbox:
    podmiot: str
    skrytka: str
    queue: deque[QueuedDocument] = field(default_factory=deque)
    confirmed: list[QueuedDocument] = field(default_factory=list)
    deliveries: int = 0  # pobierzNastepny answers that carried a document

    @property
    def address(self) -> str:
        return f"/{self.podmiot}/{self.skrytka}"


def _sort_key(doc: QueuedDocument) -> tuple[str, str]:
    filed = doc.meta.get("dataNadania")
    try:
        moment = datetime.fromisoformat(str(filed)).astimezone(UTC).isoformat() if filed else ""
    except ValueError:
        moment = ""
    return (moment or "9999", doc.name)


def load_folder(folder: Path) -> list[QueuedDocument]:
    """``*.xml`` documents of a folder with their optional ``.meta.json`` sidecars, in queue order."""
    docs = []
    for path in sorted(Path(folder).glob("*.xml")):
        if not path.is_file():
            continue
        sidecar = path.with_name(path.name + ".meta.json")
        meta: dict[str, Any] = {}
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        docs.append(QueuedDocument(path.name, path.read_bytes(), meta))
    return sorted(docs, key=_sort_key)


def _split_address(address: str) -> tuple[str, str]:
    parts = address.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"a mailbox address is /podmiot/skrytka, not {address!r}")
    return parts[0], parts[1]


# --------------------------------------------------------------------------- XML helpers


def _el(parent: etree._Element, name: str, text: Any = None) -> etree._Element:
    child = etree.SubElement(parent, name)  # unqualified children, as the interface says
    if text is not None:
        child.text = text if isinstance(text, str) else str(text)
    return child


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{wssec.SOAP11}}}Envelope", nsmap={"soapenv": wssec.SOAP11})
    body = etree.SubElement(envelope, f"{{{wssec.SOAP11}}}Body")
    return envelope, body


def fault_envelope(kod: int, komunikat: str, faultstring: str | None = None, *, filerepo: bool = False) -> bytes:
    envelope, body = _envelope()
    fault = etree.SubElement(body, f"{{{wssec.SOAP11}}}Fault")
    _el(fault, "faultcode", "soapenv:Server" if kod >= 0 else "soapenv:Client")
    _el(fault, "faultstring", faultstring or komunikat)
    detail = _el(fault, "detail")
    if filerepo:
        wyjatek = etree.SubElement(detail, f"{{{FC_NS}}}WyjatekTyp", nsmap={"fc": FC_NS})
    else:
        wyjatek = etree.SubElement(detail, f"{{{OBJ_NS}}}Wyjatek", nsmap={"p140": OBJ_NS})
    _el(wyjatek, "kod", kod)
    _el(wyjatek, "komunikat", komunikat)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _status(parent: etree._Element, kod: int, komunikat: str | None) -> None:
    status = _el(parent, "status")
    _el(status, "kod", kod)
    komunikat_el = _el(status, "komunikat", komunikat)
    if komunikat is None:
        komunikat_el.set("{http://www.w3.org/2001/XMLSchema-instance}nil", "true")


def _document_fields(payload: etree._Element, mailbox: Mailbox, doc: QueuedDocument) -> None:
    meta = doc.meta
    podmiot = meta.get("danePodmiotu") or {"identyfikator": "anonim", "typOsoby": "F", "zgoda": False}
    dp = _el(payload, "danePodmiotu")
    _el(dp, "identyfikator", podmiot.get("identyfikator", ""))
    _el(dp, "typOsoby", podmiot.get("typOsoby", "F"))
    for name in ("imieSkrot", "nazwiskoNazwa", "nip", "pesel", "regon"):
        if podmiot.get(name) is not None:
            _el(dp, name, podmiot[name])
    _el(dp, "zgoda", _bool(podmiot.get("zgoda", False)))
    dn = _el(payload, "daneNadawcy")
    if meta.get("nadawca_uzytkownik") is not None:
        _el(dn, "uzytkownik", meta["nadawca_uzytkownik"])
    if meta.get("nadawca_system") is not None:
        _el(dn, "system", meta["nadawca_system"])
    filed = meta.get("dataNadania") or datetime.now(UTC).isoformat(timespec="milliseconds")
    _el(payload, "dataNadania", filed)
    _el(payload, "nazwaSkrytki", mailbox.skrytka)
    _el(payload, "adresSkrytki", mailbox.address)
    _el(payload, "adresOdpowiedzi", meta.get("adresOdpowiedzi", f"/{podmiot.get('identyfikator', 'anonim')}/SkrytkaESP"))
    _el(payload, "czyTestowe", _bool(meta.get("czyTestowe", False)))
    extra = meta.get("daneDodatkowe")
    if extra is None:
        extra = (
            '<DaneDodatkowe xmlns="http://crd.gov.pl/xml/schematy/dziedzinowe/mswia/2011/11/15/">'
            f"<IdentyfikatorDokumentu>{int(hashlib.sha256((mailbox.address + doc.name).encode()).hexdigest()[:8], 16)}"
            "</IdentyfikatorDokumentu>"
            "</DaneDodatkowe>"
        )
    _el(payload, "daneDodatkowe", base64.b64encode(extra.encode("utf-8")).decode("ascii"))
    dokument = _el(payload, "dokument")
    _el(dokument, "nazwaPliku", meta.get("nazwaPliku", doc.name))
    if meta.get("typPliku") is not None:
        _el(dokument, "typPliku", meta["typPliku"])
    text = doc.meta.get("zawartosc_text")  # tests: serve this text as is (empty, not base64…)
    _el(dokument, "zawartosc", text if text is not None else base64.b64encode(doc.content).decode("ascii"))


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class RequestRecord:
    operation: str | None
    body: bytes  # the request exactly as received
    accepted: bool
    fault: str | None  # the injected fault kind, if any


class DoubleServer(ThreadingHTTPServer):
    """The double: an HTTP server with queues, trust, a signing identity and fault injection."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, host: str, port: int, identity: wssec.SigningIdentity,
                 trusted: list[x509.Certificate], faults: Faults) -> None:
        super().__init__((host, port), _Handler)
        self.identity = identity
        self.faults = faults
        self.mailboxes: dict[str, Mailbox] = {}
        self.requests: deque[RequestRecord] = deque(maxlen=10000)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self._trusted = {c.public_bytes(serialization.Encoding.DER) for c in trusted}
        self._schema = etree.XMLSchema(etree.parse(str(OBJECTS_XSD)))
        self._filerepo_schema = etree.XMLSchema(etree.parse(str(FILEREPO_XSD)))
        self.files: dict[str, RepositoryFile] = {}
        self.downloaded: dict[str, int] = {}  # fileId → downloadFile answers that carried it (at most 1)
        self.download_requests: list[str] = []  # every fileId asked for and answered (no fault injected), in order
        self._thread: threading.Thread | None = None
        self.gzip_responses = False  # tests: answer gzip-compressed when the client accepts it
        self.gzipped_responses = 0

    # -- set-up ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server: a str, never bytes
        return f"http://{host}:{port}{PATH}"

    @property
    def filerepo_url(self) -> str:
        return self.url.removesuffix(PATH) + FILEREPO_PATH

    def add_file(self, file_id: str, content: bytes, filename: str = "zalacznik.pdf", mime_type: str = "application/pdf") -> str:
        """Put a file in the repository; the link a document carries to it."""
        with self.lock:
            self.files[file_id] = RepositoryFile(file_id, bytes(content), filename, mime_type)
        return f"https://epuap.gov.pl/file-download-servlet/DownloadServlet?fileId={file_id}"

    def load_repository(self, folder: Path) -> int:
        """``<folder>/<fileId>/<file name>``: one file per folder."""
        import mimetypes

        count = 0
        for entry in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
            for path in sorted(p for p in entry.iterdir() if p.is_file()):
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self.add_file(entry.name, path.read_bytes(), path.name, mime)
                count += 1
        return count

    def trust(self, certificate: x509.Certificate) -> None:
        """Accept requests signed with this (additional) client certificate."""
        with self.lock:
            self._trusted.add(certificate.public_bytes(serialization.Encoding.DER))

    def mailbox(self, address: str) -> Mailbox:
        """The mailbox at ``/podmiot/skrytka`` (created, empty, when new)."""
        podmiot, skrytka = _split_address(address)
        with self.lock:
            return self.mailboxes.setdefault(f"/{podmiot}/{skrytka}", Mailbox(podmiot, skrytka))

    def enqueue(self, address: str, content: bytes, meta: dict[str, Any] | None = None, name: str = "dokument.xml") -> QueuedDocument:
        doc = QueuedDocument(name, bytes(content), dict(meta or {}))
        with self.lock:
            self.mailbox(address).queue.append(doc)
        return doc

    def load(self, address: str, folder: Path) -> int:
        docs = load_folder(folder)
        with self.lock:
            self.mailbox(address).queue.extend(docs)
        return len(docs)

    def load_tree(self, queue_dir: Path) -> int:
        """Load ``<queue_dir>/<podmiot>/<skrytka>/*.xml`` into the matching mailboxes."""
        count = 0
        if (Path(queue_dir) / REPOSITORY_DIR).is_dir():
            self.load_repository(Path(queue_dir) / REPOSITORY_DIR)
        for podmiot_dir in sorted(p for p in Path(queue_dir).iterdir() if p.is_dir() and p.name != REPOSITORY_DIR):
            for skrytka_dir in sorted(p for p in podmiot_dir.iterdir() if p.is_dir()):
                count += self.load(f"/{podmiot_dir.name}/{skrytka_dir.name}", skrytka_dir)
        return count

    def pending(self, address: str) -> list[QueuedDocument]:
        with self.lock:
            return list(self.mailbox(address).queue)

    def confirmed(self, address: str) -> list[QueuedDocument]:
        with self.lock:
            return list(self.mailbox(address).confirmed)

    def start(self) -> DoubleServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="epuap-double", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:  # also releases hanging requests
        self.stopping.set()
        super().shutdown()
        self.server_close()

    def __enter__(self) -> DoubleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- protocol ----------------------------------------------------------------------

    def check_security(self, envelope: etree._Element) -> None:
        cert = wssec.token_certificate(envelope)
        with self.lock:
            known = cert.public_bytes(serialization.Encoding.DER) in self._trusted
        if not known:
            raise wssec.WsSecurityError("unknown client certificate")
        wssec.verify_envelope(envelope, cert)

    def validate(self, payload: etree._Element, schema: etree.XMLSchema | None = None) -> str | None:
        schema = schema or self._schema
        if schema.validate(payload):
            return None
        return str(schema.error_log.last_error)

    def download(self, file_id: str) -> tuple[RepositoryFile | None, str | None]:
        """The file to hand out (marked taken), or why not (a Fault's komunikat)."""
        with self.lock:
            self.download_requests.append(file_id)
            found = self.files.get(file_id)
            if found is None:
                return None, "Nie znaleziono pliku o podanym identyfikatorze"
            if self.downloaded.get(file_id):
                return None, "Plik został już pobrany (repozytorium wydaje plik tylko raz)"
            self.downloaded[file_id] = 1
            return found, None

    def respond(self, operation: str, request: dict[str, str], fault: str | None) -> tuple[etree._Element, etree._Element]:
        envelope, body = _envelope()
        payload = etree.SubElement(body, f"{{{OBJ_NS}}}{RESPONSES[operation]}", nsmap={"p140": OBJ_NS})
        if fault == "status-error":
            _status(payload, -1, "Błąd wewnętrzny usługi (symulowany)")
            if operation == "oczekujaceDokumenty":
                _el(payload, "oczekujace", 0)
            return envelope, payload
        with self.lock:
            mailbox = self.mailbox(request["adresSkrytki"])
            if operation == "oczekujaceDokumenty":
                _status(payload, 1, "OK")
                _el(payload, "oczekujace", len(mailbox.queue))
            elif operation == "pobierzNastepny":
                if not mailbox.queue:
                    _status(payload, 0, "Brak dokumentów do pobrania")
                else:
                    mailbox.deliveries += 1
                    _status(payload, 1, "OK")
                    _document_fields(payload, mailbox, mailbox.queue[0])
            else:
                head = mailbox.queue[0] if mailbox.queue else None
                if fault == "confirm-fail":
                    _status(payload, -1, "Nie udało się potwierdzić odebrania (symulowany błąd)")
                elif head is None:
                    _status(payload, -1, "Brak dokumentu do potwierdzenia")
                elif request.get("skrot") != head.skrot:
                    _status(payload, -1, "Skrót nie odpowiada dokumentowi w kolejce")
                else:
                    mailbox.queue.popleft()
                    mailbox.confirmed.append(head)
                    _status(payload, 1, "OK")
        return envelope, payload


def _parse_request(raw: bytes) -> tuple[etree._Element, etree._Element]:
    """A request's SOAP envelope and its body's element, parsed safely; ValueError (or an
    XMLSyntaxError) when it is not a SOAP 1.1 request."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    envelope = etree.fromstring(raw, parser)
    if envelope.tag != f"{{{wssec.SOAP11}}}Envelope" or envelope.getroottree().docinfo.doctype:
        raise ValueError("not a SOAP 1.1 envelope")
    body = envelope.find(f"{{{wssec.SOAP11}}}Body")
    payload = body[0] if body is not None and len(body) else None
    if payload is None:
        raise ValueError("unknown operation")
    return envelope, payload


def _request_fields(payload: etree._Element) -> dict[str, str]:
    return {etree.QName(c).localname: (c.text or "") for c in payload if isinstance(c.tag, str)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DoubleServer

    def setup(self) -> None:
        super().setup()
        # answer in one go: no Nagle/delayed-ACK stall between headers and body on keep-alive
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("epuap double: " + format, *args, extra={"event": "epuap.double.http"})

    def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if self.server.gzip_responses and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            body = gzip.compress(body, compresslevel=9)
            self.send_header("Content-Encoding", "gzip")
            with self.server.lock:
                self.server.gzipped_responses += 1
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path == FILEREPO_PATH and ("wsdl" in query or parts.query.lower() == "wsdl"):
            text = FILEREPO_WSDL.read_text(encoding="utf-8")
            text = text.replace("https://epuap.invalid/repo-ws-ext/FileRepoService", self.server.filerepo_url)
            text = text.replace('schemaLocation="filerepocore.xsd"', f'schemaLocation="{self.server.filerepo_url}?xsd=filerepocore.xsd"')
            self._send(200, text.encode("utf-8"))
        elif parts.path == FILEREPO_PATH and query.get("xsd") == ["filerepocore.xsd"]:
            self._send(200, FILEREPO_XSD.read_bytes())
        elif parts.path != PATH:
            self._send(404, b"not found", "text/plain")
        elif "wsdl" in query or parts.query.lower() == "wsdl":
            text = PULL_WSDL.read_text(encoding="utf-8")
            text = text.replace("https://epuap.invalid/pk_external_ws/services/pull", self.server.url)
            text = text.replace('schemaLocation="obiektypk.xsd"', f'schemaLocation="{self.server.url}?xsd=obiektypk.xsd"')
            self._send(200, text.encode("utf-8"))
        elif query.get("xsd") == ["obiektypk.xsd"]:
            self._send(200, OBJECTS_XSD.read_bytes())
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        server = self.server
        if server.faults.latency_s:
            server.stopping.wait(server.faults.latency_s)
        length = int(self.headers.get("Content-Length") or 0)
        if urlsplit(self.path).path == FILEREPO_PATH and 0 < length <= MAX_REQUEST_BYTES:
            self._filerepo(self.rfile.read(length))
            return
        if urlsplit(self.path).path != PATH or length <= 0 or length > MAX_REQUEST_BYTES:
            self.rfile.read(min(max(length, 0), MAX_REQUEST_BYTES))
            self._send(400 if length > 0 else 411, b"bad request", "text/plain")
            return
        raw = self.rfile.read(length)
        operation = None
        try:
            envelope, payload = _parse_request(raw)
            if etree.QName(payload).namespace != OBJ_NS or etree.QName(payload).localname not in OPERATIONS:
                raise ValueError("unknown operation")
            operation = OPERATIONS[etree.QName(payload).localname]
        except (etree.XMLSyntaxError, ValueError) as exc:
            self._refuse(raw, None, -2, f"Niepoprawne żądanie SOAP: {exc}")
            return
        try:
            server.check_security(envelope)
        except wssec.WsSecurityError as exc:
            self._refuse(raw, operation, -3, f"Odrzucono żądanie: błąd WS-Security ({exc})")
            return
        problem = server.validate(payload)
        if problem:
            self._refuse(raw, operation, -2, f"Żądanie niezgodne ze schematem: {problem}")
            return
        request = _request_fields(payload)
        if request.get("adresSkrytki") != f"/{request.get('podmiot')}/{request.get('nazwaSkrytki')}":
            self._refuse(raw, operation, -4, "adresSkrytki nie odpowiada podmiotowi i nazwie skrytki")
            return
        with server.lock:
            known = request["adresSkrytki"] in server.mailboxes
        if not known:
            self._refuse(raw, operation, -4, "Nieznana skrytka")
            return
        fault = server.faults.take(operation)
        server.requests.append(RequestRecord(operation, raw, True, fault))
        if self._transport_fault(fault, filerepo=False):
            return
        envelope, payload = server.respond(operation, request, fault)
        if fault == "confirm-lost":
            self._drop()
            return
        if fault != "unsigned":
            envelope = wssec.sign_envelope(envelope, server.identity)
        if fault == "bad-signature":
            status_text = payload.find("status/komunikat")
            status_text.text = (status_text.text or "") + " (zmienione po podpisaniu)"
        body_bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        if fault == "trickle":
            self._trickle(body_bytes)
        else:
            self._send(200, body_bytes)

    def _refuse(self, raw: bytes, operation: str | None, kod: int, komunikat: str, *, filerepo: bool = False) -> None:
        self.server.requests.append(RequestRecord(operation, raw, False, None))
        log.info("epuap double refused a request", extra={"event": "epuap.double.refused", "operation": operation, "kod": kod})
        self._send(500, fault_envelope(kod, komunikat, filerepo=filerepo))

    def _transport_fault(self, fault: str | None, *, filerepo: bool) -> bool:
        """Answer with an injected fault that needs no regular answer; True when it did."""
        if fault == "http500":
            self._send(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html")
        elif fault == "drop":
            self._drop()
        elif fault == "hang":
            self.server.stopping.wait(self.server.faults.hang_s)
            self._drop()
        elif fault in ("soap-fault", "soap-fault-200"):
            body_bytes = fault_envelope(5003, "Usługa chwilowo niedostępna (symulowany błąd)", filerepo=filerepo)
            self._send(500 if fault == "soap-fault" else 200, body_bytes)
        elif fault == "garbage":
            self._send(200, b"\x00\x01<<<to nie jest XML>>>")
        else:
            return False
        return True

    def _trickle(self, body: bytes) -> None:
        """The headers of a whole answer, then its body a byte every ``trickle_s`` (until
        the client goes away or the double stops)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        for i in range(len(body)):
            if self.server.stopping.wait(self.server.faults.trickle_s):
                return
            try:
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
            except OSError:
                return  # the client cut the call

    def _filerepo(self, raw: bytes) -> None:
        """``downloadFile``: the file once, signed; a Fault for an unknown or taken one."""
        server = self.server
        try:
            envelope, payload = _parse_request(raw)
            if payload.tag != f"{{{FC_NS}}}DownloadFileParam":
                raise ValueError("unknown operation")
        except (etree.XMLSyntaxError, ValueError) as exc:
            self._refuse(raw, None, -2, f"Niepoprawne żądanie SOAP: {exc}", filerepo=True)
            return
        try:
            server.check_security(envelope)
        except wssec.WsSecurityError as exc:
            self._refuse(raw, DOWNLOAD, -3, f"Odrzucono żądanie: błąd WS-Security ({exc})", filerepo=True)
            return
        problem = server.validate(payload, server._filerepo_schema)
        if problem:
            self._refuse(raw, DOWNLOAD, -2, f"Żądanie niezgodne ze schematem: {problem}", filerepo=True)
            return
        request = _request_fields(payload)
        fault = server.faults.take(DOWNLOAD)
        server.requests.append(RequestRecord(DOWNLOAD, raw, True, fault))
        if self._transport_fault(fault, filerepo=True):
            return
        found, refusal = server.download(request.get("fileId", ""))
        if found is None:
            self._send(500, fault_envelope(-10, refusal or "Błąd", filerepo=True))
            return
        envelope, body = _envelope()
        answer = etree.SubElement(body, f"{{{FC_NS}}}DataDocument", nsmap={"fc": FC_NS})
        _el(answer, "file", base64.b64encode(found.content).decode("ascii"))
        _el(answer, "filename", found.filename)
        _el(answer, "mimeType", found.mime_type)
        if fault != "unsigned":
            envelope = wssec.sign_envelope(envelope, server.identity)
        if fault == "bad-signature":
            answer.find("filename").text = "zmieniony-po-podpisaniu.pdf"
        body_bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        if fault == "trickle":
            self._trickle(body_bytes)
        else:
            self._send(200, body_bytes)


# --------------------------------------------------------------------------- entry points


def serve(
    host: str,
    port: int,
    queue_dir: Path | None,
    keys: DevKeys,
    faults: Faults | None = None,
    *,
    load: dict[str, Path] | None = None,
    mailboxes: list[str] | tuple[str, ...] = (),
    trusted: list[x509.Certificate] | None = None,
) -> DoubleServer:
    """Start the double in a background thread and return it (``.url``, ``.shutdown()``).

    Mailboxes come from ``queue_dir`` (``<podmiot>/<skrytka>/`` folders), from ``load``
    (address → flat folder) and from ``mailboxes`` (addresses of empty mailboxes). Requests
    must be signed with ``keys``' system certificate or one of ``trusted``.
    """
    identity = keys.double_identity()
    client_certs = [wssec.load_certificate(keys.system_certificate), *(trusted or [])]
    server = DoubleServer(host, port, identity, client_certs, faults or Faults())
    try:
        if queue_dir is not None and Path(queue_dir).is_dir():
            server.load_tree(Path(queue_dir))
        for address, folder in (load or {}).items():
            server.load(address, Path(folder))
        for address in mailboxes:
            server.mailbox(address)
    except Exception:
        server.server_close()
        raise
    return server.start()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ebok-worker epuap-double",
        description="Lokalna atrapa usługi pull ePUAP (do rozwoju, pokazów i testów).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8089, help="0: any free port")
    p.add_argument("--keys", type=Path, default=Path("var/devkeys"), help="folder of the development PKI (created when missing)")
    p.add_argument("--queue-dir", type=Path, help="folder of <podmiot>/<skrytka>/NAME.xml (+ NAME.xml.meta.json)")
    p.add_argument("--load", action="append", default=[], metavar="/PODMIOT/SKRYTKA=FOLDER",
                   help="queue the *.xml of a flat folder in a mailbox (repeatable)")
    p.add_argument("--mailbox", action="append", default=[], metavar="/PODMIOT/SKRYTKA", help="an (empty) mailbox (repeatable)")
    p.add_argument("--trust-cert", action="append", default=[], type=Path, metavar="PEM",
                   help="accept requests signed with this certificate too (repeatable)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before every SOAP answer")
    p.add_argument("--fault", action="append", default=[], metavar="KIND[:OPERATION][:TIMES]",
                   help=f"inject a fault (repeatable); kinds: {', '.join(FAULT_KINDS)}")
    p.add_argument("--random-faults", type=float, default=0.0, metavar="P", help="inject a random recoverable fault with probability P")
    p.add_argument("--hang-s", type=float, default=30.0, help="how long a 'hang' fault holds the connection")
    p.add_argument("--trickle-s", type=float, default=3.0, help="seconds between two bytes of a 'trickle' answer")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI: run the double in the foreground until SIGINT/SIGTERM. Exit 2 on a usage error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults(latency_s=args.latency_ms / 1000.0, hang_s=args.hang_s, probability=args.random_faults, trickle_s=args.trickle_s)
        for spec in args.fault:
            rule = Faults.parse_spec(spec)
            faults.add(rule.kind, rule.operation, times=rule.times)
        load = {}
        for item in args.load:
            address, sep, folder = item.partition("=")
            if not sep or not Path(folder).is_dir():
                raise ValueError(f"--load {item}: expected /PODMIOT/SKRYTKA=FOLDER with an existing folder")
            _split_address(address)
            load[address] = Path(folder)
        for address in args.mailbox:
            _split_address(address)
        keys = ensure(args.keys)
        trusted = [wssec.load_certificate(p) for p in args.trust_cert]
        server = serve(args.host, args.port, args.queue_dir, keys, faults, load=load, mailboxes=args.mailbox, trusted=trusted)
    except (ValueError, OSError) as exc:
        print(f"epuap-double: {exc}")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"ePUAP double: {server.url}  (WSDL: {server.url}?wsdl)")
    print(f"  response certificate to pin: {keys.double_certificate}")
    print(f"  system certificate/key:      {keys.system_certificate} / {keys.system_key} (password: {keys.directory / 'system.key.password'})")
    for address, mailbox in sorted(server.mailboxes.items()):
        print(f"  mailbox {address}: {len(mailbox.queue)} document(s)")
    print(f"  file repository: {server.filerepo_url}  ({len(server.files)} file(s))")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
